"""Run the real daemon as a subprocess, with a real NOTIFY_SOCKET, for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FAST_CONFIG = """
[paths]
state_dir = "{state}"
runtime_dir = "{run}"

[store]
batch_max_age = 0.2
retry_interval = 0.2

[collectors.host]
interval = {interval}

[selfmon]
interval = 0.5

[web]
bind = "127.0.0.1:0"
"""


class DaemonProcess:
    """A ttamond daemon in a subprocess, and the datagram socket it notifies."""

    def __init__(
        self,
        root: Path,
        *,
        interval: float = 0.2,
        extra_env: dict[str, str] | None = None,
        config_text: str | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.root = root
        self.state = root / "state"
        self.run = root / "run"
        self.config = root / "ttamond.toml"
        if config_text is None:
            config_text = FAST_CONFIG.format(state=self.state, run=self.run, interval=interval)
        self.config.write_text(config_text)
        self.database = self.state / "ttamond.db"
        self.socket_path = self.run / "control.sock"
        self.notify_path = root / "notify.sock"
        self.extra_env = extra_env or {}
        self.cwd = cwd
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.notifications: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.stderr_path = root / "stderr.log"

    def start(self) -> None:
        """Start the daemon; returns at once (see wait_for_notification)."""
        self.notifications.clear()
        # Datagrams the last process sent but nobody read (READY=1 after a reload) must
        # not pass for this one's.
        self.notify.setblocking(False)
        try:
            while True:
                try:
                    self.notify.recv(4096)
                except BlockingIOError:
                    break  # drained
        finally:
            self.notify.setblocking(True)
        env = {**os.environ, "NOTIFY_SOCKET": str(self.notify_path), **self.extra_env}
        if "JOURNAL_STREAM" not in self.extra_env:
            env.pop("JOURNAL_STREAM", None)
        with self.stderr_path.open("ab") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ttamond", "run", "--config", str(self.config)],
                env=env, stdout=subprocess.DEVNULL, stderr=stderr, cwd=self.cwd,
            )

    def wait_for_notification(self, field: str, timeout: float = 20.0) -> str:
        """Block on the notify socket until a datagram carries `field` (e.g. READY=1)."""
        deadline = time.monotonic() + timeout
        for seen in self.notifications:
            if field in seen.split("\n"):
                return seen
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no {field} within {timeout} s; got {self.notifications}; "
                    f"stderr:\n{self.stderr()}"
                )
            self.notify.settimeout(remaining)
            try:
                datagram = self.notify.recv(4096).decode()
            except TimeoutError:
                continue
            self.notifications.append(datagram)
            if field in datagram.split("\n"):
                return datagram

    def start_ready(self) -> None:
        """Start and wait for READY=1."""
        self.start()
        self.wait_for_notification("READY=1")

    def cli(self, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
        """Run the ttamond CLI against this daemon's config."""
        return subprocess.run(
            [sys.executable, "-m", "ttamond", *args, "--config", str(self.config)],
            capture_output=True, text=True, timeout=timeout, check=False,
        )

    def status(self) -> dict[str, Any]:
        """`ttamond status --json`, parsed."""
        result = self.cli("status", "--json", "--socket", str(self.socket_path))
        if result.returncode != 0:
            raise AssertionError(f"status failed ({result.returncode}): {result.stderr}")
        reply: dict[str, Any] = json.loads(result.stdout)
        return reply

    def wait_for_status(self, predicate: Callable[[dict[str, Any]], bool],
                        timeout: float = 20.0) -> dict[str, Any]:
        """Poll status until `predicate` holds: a condition, not a readiness sleep."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if predicate(status):
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"status never matched; last: {json.dumps(status)[:2000]}")
            time.sleep(0.1)

    def signal(self, signum: signal.Signals) -> None:
        """Send a real signal to the daemon."""
        if self.process is None:
            raise AssertionError("daemon not started")
        self.process.send_signal(signum)

    def wait(self, timeout: float = 10.0) -> int:
        """Wait for the daemon to exit; returns its status."""
        if self.process is None:
            raise AssertionError("daemon not started")
        return self.process.wait(timeout=timeout)

    def stderr(self) -> str:
        """Everything the daemon logged so far."""
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run SQL on the daemon's database through a separate connection."""
        conn = sqlite3.connect(self.database)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def close(self) -> None:
        """Kill the daemon if it still runs, and close the notify socket."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.notify.close()


def until(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll a condition until it holds and return what it returned (never a fixed
    sleep for readiness); fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
