"""A real Alertmanager (Debian's `prometheus-alertmanager`) started by a test on loopback."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import trio

from tests.probes.checks.servers import free_port

ALERTMANAGER = (shutil.which("prometheus-alertmanager", path="/usr/bin:/usr/local/bin")
                or shutil.which("alertmanager"))
READY_WITHIN = 30.0

CONFIG = """\
route:
  receiver: "null"
receivers:
  - name: "null"
"""


class Alertmanager:
    """An Alertmanager process with a route to a receiver that notifies nobody, its
    storage under tmp and clustering off."""

    def __init__(self, folder: Path, *, config: str = CONFIG, cluster_port: int | None = None,
                 peers: tuple[int, ...] = ()) -> None:
        """Start it now. With `cluster_port`, it gossips on that loopback port with
        `peers` (their cluster ports), settling in about a second."""
        self.folder = folder
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = folder / "alertmanager.log"
        (folder / "am.yml").write_text(config)
        cluster = ["--cluster.listen-address="]
        if cluster_port is not None:
            cluster = [f"--cluster.listen-address=127.0.0.1:{cluster_port}",
                       f"--cluster.advertise-address=127.0.0.1:{cluster_port}",
                       *[f"--cluster.peer=127.0.0.1:{peer}" for peer in peers],
                       "--cluster.gossip-interval=50ms", "--cluster.pushpull-interval=1s",
                       "--cluster.peer-timeout=2s", "--cluster.settle-timeout=1s",
                       "--cluster.reconnect-interval=1s"]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(ALERTMANAGER), f"--config.file={folder / 'am.yml'}",
                 f"--storage.path={folder / 'data'}",
                 f"--web.listen-address={self.url.removeprefix('http://')}",
                 *cluster, "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, cwd=folder)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    async def ready(self, client: httpx.AsyncClient) -> None:
        """Wait until /-/ready answers 200; fail with the log if it exits or never does."""
        with trio.fail_after(READY_WITHIN):
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"alertmanager exited {self.process.returncode}:\n"
                                         f"{self.log.read_text(errors='replace')[-3000:]}")
                try:
                    answer: httpx.Response | None = await client.get(f"{self.url}/-/ready")
                except httpx.TransportError:
                    answer = None  # not listening yet
                if answer is not None and answer.status_code == 200:
                    return
                await trio.sleep(0.05)

    async def alerts(self, client: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
        response = await client.get(f"{self.url}/api/v2/alerts", params=params)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found

    def wait_ready(self) -> None:
        """The blocking twin of `ready`, for tests that drive a daemon subprocess."""
        deadline = time.monotonic() + READY_WITHIN
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"alertmanager exited {self.process.returncode}:\n"
                                     f"{self.log.read_text(errors='replace')[-3000:]}")
            try:
                status = httpx.get(f"{self.url}/-/ready", timeout=2).status_code
            except httpx.TransportError:
                status = None  # not listening yet
            if status == 200:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"alertmanager not ready within {READY_WITHIN} s")
            time.sleep(0.05)

    def peers_now(self) -> int:
        """How many cluster members this instance sees (itself included)."""
        response = httpx.get(f"{self.url}/api/v2/status", timeout=5)
        response.raise_for_status()
        return len(response.json()["cluster"].get("peers") or [])

    def alerts_now(self, **params: str) -> list[dict[str, Any]]:
        """The blocking twin of `alerts`."""
        response = httpx.get(f"{self.url}/api/v2/alerts", params=params, timeout=5)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found
