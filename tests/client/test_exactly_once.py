"""A batch whose acknowledgement is lost is sent again, and written once.

Between the client and the real daemon sits a real Unix-socket relay that loses the
first reply (it forwards the request, lets the daemon commit it, and hangs up instead
of answering): what a daemon stopped between its commit and its reply looks like.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.conftest import MonitorFactory
from tests.client.helpers import stored_values, wait_for
from tests.daemon_process import DaemonProcess
from ttamond.control import request


class LosingRelay:
    """Relays request lines to the daemon; drops the reply to the first `ingest`."""

    def __init__(self, path: Path, daemon_socket: Path) -> None:
        self.path = path
        self.daemon_socket = daemon_socket
        self.lost = 0
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(8)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with client, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as upstream:
            upstream.connect(str(self.daemon_socket))
            requests, replies = client.makefile("rb"), upstream.makefile("rb")
            for line in requests:
                upstream.sendall(line)
                reply = replies.readline()
                if b'"command":"ingest"' in line and self.lost == 0:
                    self.lost += 1
                    return  # hang up: the daemon committed, the client never hears it
                client.sendall(reply)

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def relay(daemon: DaemonProcess, short_tmp: Path) -> Iterator[LosingRelay]:
    daemon.start_ready()
    relay = LosingRelay(short_tmp / "relay.sock", daemon.socket_path)
    yield relay
    relay.close()


def test_a_batch_sent_again_after_a_lost_reply_is_written_once(
    daemon: DaemonProcess, relay: LosingRelay, make_monitor: MonitorFactory,
) -> None:
    monitor = make_monitor(socket_path=relay.path)
    for value in range(20):
        monitor.gauge("exactly_once", value)
    assert monitor.flush(timeout=15.0)
    assert relay.lost == 1
    assert stored_values(daemon, "exactly_once") == [float(value) for value in range(20)]
    status = wait_for(lambda: (s := request(daemon.socket_path, "status"))
                      ["store"]["duplicate_messages"] and s, what="a duplicate counted")
    assert status["store"]["duplicate_messages"] >= 1


def test_the_same_batch_id_twice_over_the_socket(daemon: DaemonProcess) -> None:
    daemon.start_ready()
    batch = {"messages": [{"type": "metrics", "component": "narrative", "environment": "dev",
                           "samples": [{"name": "twice", "value": 1.0}]}],
             "batch_id": "0123456789abcdef"}
    assert request(daemon.socket_path, "ingest", batch)["accepted"] == 1
    assert request(daemon.socket_path, "ingest", batch)["accepted"] == 1
    assert stored_values(daemon, "twice") == [1.0]
    fresh = {**batch, "batch_id": "fedcba9876543210"}
    request(daemon.socket_path, "ingest", fresh)
    assert stored_values(daemon, "twice") == [1.0, 1.0]
