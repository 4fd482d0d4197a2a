"""Socket activation: the daemon serves the control socket systemd opened, and a watchdog."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_process import FAST_CONFIG, DaemonProcess
from ttamond.control import request
from ttamond.systemd import InheritedSocket, inherited_sockets, pick_socket

# What systemd does between fork and exec: the socket becomes descriptor 3 and
# LISTEN_PID names the process that will run ttamond (exec keeps the PID). In Python,
# because dash redirects only descriptors 0 to 9.
ACTIVATE = """
import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""

# A check command that fails when the activation variables reached it.
LEAK_CHECK = """
[health]
enabled = true

[[health.checks]]
name = "env"
kind = "command"
command = ["/bin/sh", "-c", "env | grep ^LISTEN_ && exit 2; echo clean"]
interval = 1.0
"""


class ActivatedDaemon(DaemonProcess):
    """The daemon started the way systemd starts it from ttamond.socket."""

    def __init__(self, root: Path, listener: socket.socket, *, config_text: str,
                 extra_env: dict[str, str] | None = None) -> None:
        super().__init__(root, config_text=config_text, extra_env=extra_env)
        self.listener = listener

    def start(self) -> None:
        self.notifications.clear()
        fd = self.listener.fileno()
        env = {**os.environ, "NOTIFY_SOCKET": str(self.notify_path), "LISTEN_FDS": "1",
               "LISTEN_FDNAMES": "control", **self.extra_env}
        env.pop("JOURNAL_STREAM", None)
        with self.stderr_path.open("ab") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-c", ACTIVATE, str(fd), sys.executable, "-m", "ttamond",
                 "run", "--config", str(self.config)],
                env=env, pass_fds=(fd,), stdout=subprocess.DEVNULL, stderr=stderr,
            )


@pytest.fixture
def listener(short_tmp: Path) -> Iterator[socket.socket]:
    """What ttamond.socket makes: a listening Unix stream socket at a path of its own."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(short_tmp / "activated.sock"))
    sock.listen(16)
    yield sock
    sock.close()


def test_serves_on_the_inherited_socket_with_watchdog(
    short_tmp: Path, listener: socket.socket,
) -> None:
    path = short_tmp / "activated.sock"
    config = FAST_CONFIG.format(state=short_tmp / "state", run=short_tmp / "run", interval=1.0)
    daemon = ActivatedDaemon(short_tmp, listener, config_text=config + LEAK_CHECK,
                             extra_env={"WATCHDOG_USEC": "2000000"})
    try:
        daemon.start()
        ready = daemon.wait_for_notification("READY=1")
        assert daemon.process is not None
        assert f"MAINPID={daemon.process.pid}" in ready.split("\n")
        # Pings at half of WATCHDOG_USEC: one a second, again and again.
        daemon.wait_for_notification("WATCHDOG=1", timeout=3)
        daemon.notifications.clear()
        daemon.wait_for_notification("WATCHDOG=1", timeout=3)

        status = subprocess.run(
            [sys.executable, "-m", "ttamond", "status", "--json", "--socket", str(path)],
            capture_output=True, text=True, timeout=20, check=False)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["pid"] == daemon.process.pid
        # It made no socket of its own.
        assert not daemon.socket_path.exists()
        assert "serving on the socket systemd passed" in daemon.stderr()

        # Check commands neither see the activation variables nor hold the socket.
        checks = _wait_for_check(path, "env")
        assert checks["state"] == "ok" and checks["message"] == "clean"

        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=5) == 0
        # The path and the listening socket stay, as with systemd between two runs.
        assert path.exists()

        # A client that connects while no daemon runs waits in the backlog, and the next
        # daemon given the same socket answers it.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as early:
            early.settimeout(20)
            early.connect(str(path))
            early.sendall(b'{"version": 1, "command": "ping"}\n')
            daemon.start()
            reply = json.loads(early.makefile().readline())
        assert reply["ok"] is True and reply["result"]["pid"] == daemon.process.pid
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=5) == 0
    finally:
        daemon.close()


def test_a_datagram_socket_is_refused_in_one_line(short_tmp: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(short_tmp / "activated.sock"))
    config = FAST_CONFIG.format(state=short_tmp / "state", run=short_tmp / "run", interval=1.0)
    daemon = ActivatedDaemon(short_tmp, sock,
                             config_text=config + "\n[supervisor]\nmax_restarts = 0\n")
    try:
        daemon.start()
        assert daemon.wait(timeout=20) == 1
        assert ("critical actor 'control' exceeded its restart intensity: OSError: [Errno 22] "
                "the socket systemd passed is not a listening Unix stream socket: give "
                "ttamond.socket a ListenStream= path") in daemon.stderr()
    finally:
        daemon.close()
        sock.close()


def _wait_for_check(path: Path, name: str) -> dict[str, object]:
    deadline = time.monotonic() + 20
    while True:
        reply = request(path, "health")
        found = [c for c in reply["checks"] if c["check"] == name and c["state"] != "unknown"]
        if found:
            return dict(found[0])
        if time.monotonic() > deadline:
            raise AssertionError(f"check {name} never ran; last: {reply}")
        time.sleep(0.1)


def test_nothing_passed_means_nothing_taken() -> None:
    environ = {"PATH": "/bin"}
    assert inherited_sockets(environ) == []
    assert environ == {"PATH": "/bin"}


def test_sockets_for_another_process_are_left_and_the_variables_removed() -> None:
    environ = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1",
               "LISTEN_FDNAMES": "control", "PATH": "/bin"}
    assert inherited_sockets(environ) == []
    assert environ == {"PATH": "/bin"}


def test_malformed_variables_are_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    environ = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "one"}
    with caplog.at_level(logging.WARNING, logger="ttamond.systemd"):
        assert inherited_sockets(environ) == []
    assert environ == {}
    assert "ignoring malformed socket activation: LISTEN_PID=" in caplog.text


def test_pick_socket_by_name_closes_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    first, second = socket.socketpair()
    inherited = [InheritedSocket("metrics", first), InheritedSocket("control", second)]
    with caplog.at_level(logging.WARNING, logger="ttamond.systemd"):
        assert pick_socket(inherited, "control") is second
    assert first.fileno() == -1 and second.fileno() >= 0
    assert "closing inherited socket 'metrics'" in caplog.text
    second.close()


def test_pick_socket_takes_a_lone_unnamed_one() -> None:
    only, peer = socket.socketpair()
    assert pick_socket([InheritedSocket("unknown", only)], "control") is only
    assert pick_socket([], "control") is None
    only.close()
    peer.close()
