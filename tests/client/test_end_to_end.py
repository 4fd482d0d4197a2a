"""The Monitor against the real daemon in a subprocess: delivery, outages, drops, refusals."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import pytest

from tests.client.conftest import MonitorFactory
from tests.client.helpers import stored_values, wait_for
from tests.daemon_process import FAST_CONFIG, DaemonProcess
from ttamond.client._batch import DROPPED_METRIC


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [record.getMessage() for record in caplog.records
            if record.name == "ttamond.client" and record.levelno == logging.WARNING
            and text in record.getMessage()]


def test_recorded_samples_reach_the_database(
    daemon: DaemonProcess, make_monitor: MonitorFactory,
) -> None:
    daemon.start_ready()
    monitor = make_monitor(socket_path=daemon.socket_path, ack="accepted")
    for value in range(5):
        monitor.gauge("queue_depth", value, queue="narrative")
    monitor.counter("requests_total", 42)
    with monitor.timer("render_seconds"):
        pass
    assert monitor.flush(timeout=10.0)
    stats = monitor.stats()
    assert (stats.sent, stats.rejected, stats.dropped, stats.buffered) == (7, 0, 0, 0)
    assert stats.connected
    values = wait_for(lambda: stored_values(daemon, "queue_depth"), what="stored samples")
    assert sorted(values) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert wait_for(lambda: stored_values(daemon, "requests_total")) == [42.0]
    labels = daemon.query("SELECT labels FROM series WHERE name = 'queue_depth'")
    assert all('"narrative"' in row[0] for row in labels), labels


def test_without_the_daemon_it_buffers_then_delivers_when_it_starts(
    daemon: DaemonProcess, make_monitor: MonitorFactory,
) -> None:
    monitor = make_monitor(socket_path=daemon.socket_path)
    for value in range(100):
        monitor.gauge("backlog", value)
    monitor.record_error(ValueError("while the daemon was away"))
    assert monitor.flush(timeout=2.0) is False
    stats = monitor.stats()
    assert (stats.buffered, stats.connected) == (101, False)
    assert stats.last_error.startswith("no control socket at ")
    daemon.start_ready()
    assert monitor.flush(timeout=10.0)
    assert monitor.stats().sent == 101
    # Durable acknowledgement: what was acknowledged is committed already.
    assert stored_values(daemon, "backlog") == [float(value) for value in range(100)]


def test_a_full_buffer_reports_its_drops_once(
    daemon: DaemonProcess, make_monitor: MonitorFactory, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="ttamond.client")
    monitor = make_monitor(socket_path=daemon.socket_path, capacity=10)
    for value in range(25):
        monitor.gauge("overflow", value)
    assert monitor.stats().dropped == 15
    daemon.start_ready()
    assert monitor.flush(timeout=10.0)
    assert stored_values(daemon, "overflow") == [float(value) for value in range(15, 25)]
    assert stored_values(daemon, DROPPED_METRIC) == [15.0]
    monitor.gauge("overflow", 99)
    assert monitor.flush(timeout=10.0)
    assert stored_values(daemon, DROPPED_METRIC) == [15.0]
    assert _warnings(caplog, "dropped") == [
        "ttamond client narrative: 15 record(s) dropped because the buffer of 10 was full "
        "(reported as ttamond_client_dropped_total)"
    ]


def test_a_daemon_restart_costs_nothing_recorded_meanwhile(
    daemon: DaemonProcess, make_monitor: MonitorFactory,
) -> None:
    daemon.start_ready()
    monitor = make_monitor(socket_path=daemon.socket_path)
    monitor.gauge("across_restart", 0)
    assert monitor.flush(timeout=10.0)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    for value in range(1, 11):
        monitor.gauge("across_restart", value)
    assert monitor.flush(timeout=2.0) is False
    assert monitor.stats().buffered == 10
    daemon.start_ready()
    assert monitor.flush(timeout=10.0)
    assert stored_values(daemon, "across_restart") == [float(value) for value in range(11)]


def test_refused_records_are_counted_and_warned_once_per_reason(
    daemon: DaemonProcess, make_monitor: MonitorFactory, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="ttamond.client")
    daemon.start_ready()
    monitor = make_monitor(socket_path=daemon.socket_path)
    for _ in range(2):  # the same problem twice, each in a batch of its own
        monitor.record_network("")
        assert monitor.flush(timeout=10.0)
    monitor.record_network("x" * 200)
    monitor.gauge("latency.ms", 1.0)
    monitor.gauge("good", 1.0)
    assert monitor.flush(timeout=10.0)
    stats = monitor.stats()
    assert (stats.rejected, stats.sent) == (4, 1)
    reasons = _warnings(caplog, "refuses records")
    assert len(reasons) == 3, reasons
    assert any("protocol: expected str of length >= 1" in reason for reason in reasons)
    assert any("'latency.ms' is not a metric name" in reason for reason in reasons)
    assert stored_values(daemon, "good") == [1.0]


def test_sessions_and_events_are_taken_by_the_daemon(
    daemon: DaemonProcess, make_monitor: MonitorFactory,
) -> None:
    daemon.start_ready()
    monitor = make_monitor(socket_path=daemon.socket_path, release="3.0")
    session = monitor.start_monitoring(heartbeat_interval=0.1)
    with monitor.track_inference("llama", operation="chat") as inference:
        inference.tokens_in, inference.tokens_out = 12, 30
    with monitor.track_db("neo4j", "match") as query:
        query.rows = 3
    with monitor.track_network("websocket", "/play") as call:
        call.bytes_sent = 100
    try:
        raise KeyError("scene")
    except KeyError as exc:
        monitor.record_error(exc, context={"scene": "forest"})
    monitor.record_message_error("the world store answered slowly", severity="warning")
    monitor.record_engagement("choice", session_id="therapy-1", properties={"scene": "forest"})
    assert monitor.flush(timeout=10.0)
    assert monitor.stats().rejected == 0

    def beating() -> bool:
        status = monitor.get_system_status(timeout=5.0)
        entry = {s["session_id"]: s for s in status["sessions"]}[session.session_id]
        return bool(entry["last_seen_ms"] > entry["started_ms"])

    wait_for(beating, what="a heartbeat reaching the daemon")
    status = monitor.get_system_status(timeout=5.0)
    assert status["components"] == {"narrative": "active"}
    session.stop("done")
    assert monitor.flush(timeout=10.0)
    status = monitor.get_system_status(timeout=5.0)
    entry = {s["session_id"]: s for s in status["sessions"]}[session.session_id]
    assert (entry["state"], entry["reason"], entry["version"]) == ("stopped", "done", "3.0")
    assert monitor.stats().rejected == 0


def test_requests_over_the_daemons_line_limit_are_split_until_they_fit(
    short_tmp: Path, make_monitor: MonitorFactory,
) -> None:
    config = FAST_CONFIG.format(state=short_tmp / "state", run=short_tmp / "run", interval=1.0)
    limit = "\n[control]\nmax_request_bytes = 65536\n"
    daemon = DaemonProcess(short_tmp, config_text=config + limit)
    try:
        daemon.start_ready()
        monitor = make_monitor(socket_path=daemon.socket_path, batch_size=5_000)
        for value in range(4_000):
            monitor.gauge("split", value, scene="forest")
        assert monitor.flush(timeout=20.0)
        stats = monitor.stats()
        assert (stats.sent, stats.rejected) == (4_000, 0)
        assert monitor._sender.request_bytes < 512 * 1024  # it learnt the lower limit
        assert stored_values(daemon, "split") == [float(value) for value in range(4_000)]
    finally:
        daemon.close()
