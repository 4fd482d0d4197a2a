"""The Monitor with no daemon at all: it buffers, bounds, counts, and never raises."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.client.conftest import MonitorFactory
from tests.client.helpers import buffered, wait_for
from ttamond.client import Monitor
from ttamond.messages import (
    AIMetrics,
    DatabaseOperation,
    ErrorEvent,
    Heartbeat,
    MonitoringStarted,
    MonitoringStopped,
    NetworkActivity,
)


def test_recording_without_a_daemon_buffers_and_raises_nothing(
    make_monitor: MonitorFactory,
) -> None:
    monitor = make_monitor()
    monitor.gauge("queue_depth", 3, queue="narrative")
    monitor.counter("requests_total", 10)
    monitor.record("latency", 0.5, labels={"route": "/play"}, unit="seconds")
    monitor.gauge(123, "not a number")  # type: ignore[arg-type]
    monitor.record_error(KeyError("scene"))
    monitor.record_message_error("disk almost full", severity="warning")
    monitor.record_network("http", "/api", bytes_sent=5)
    monitor.record_engagement("choice", properties={"scene": "forest"})
    started = time.monotonic()
    assert monitor.flush(timeout=5.0) is False
    assert time.monotonic() - started < 1.0, "flush waited although the daemon is absent"
    stats = monitor.stats()
    assert stats.buffered == 8
    assert (stats.sent, stats.dropped, stats.rejected, stats.connected) == (0, 0, 0, False)
    assert stats.last_error.startswith("no control socket at ")


def test_a_full_buffer_drops_the_oldest_and_counts_them(make_monitor: MonitorFactory) -> None:
    monitor = make_monitor(capacity=10)
    for value in range(25):
        monitor.gauge("g", value)
    stats = monitor.stats()
    assert (stats.buffered, stats.dropped) == (10, 15)
    assert [record[1] for record in buffered(monitor)] == list(range(15, 25))  # type: ignore[index]


def test_trackers_record_durations_and_failures_and_reraise(
    make_monitor: MonitorFactory,
) -> None:
    monitor = make_monitor(environment="prod")
    failure = RuntimeError("model crashed")
    with pytest.raises(RuntimeError) as caught, monitor.track_inference(
        "llama", operation="chat"
    ) as inference:
        inference.tokens_in = 12
        inference.gpu_utilization = 55.0
        raise failure
    assert caught.value is failure
    with monitor.track_db("neo4j", "match") as query:
        query.rows = 4
    with monitor.track_network("websocket", "/play") as call:
        call.bytes_sent, call.bytes_received = 10, 20
    with monitor.timer("render", scene="forest") as timer:
        pass
    ai, db, network, sample = buffered(monitor)
    assert isinstance(ai, AIMetrics)
    assert (ai.model, ai.operation, ai.tokens_in, ai.gpu_utilization, ai.success) == (
        "llama", "chat", 12, 55.0, False)
    assert (ai.component, ai.environment) == ("narrative", "prod")
    assert ai.inference_time_ms >= 0
    assert isinstance(db, DatabaseOperation)
    assert (db.rows, db.success) == (4, True)
    assert isinstance(network, NetworkActivity)
    assert (network.bytes_sent, network.bytes_received) == (10, 20)
    assert network.latency_ms is not None
    assert isinstance(sample, tuple)
    assert sample[:5] == ("render", timer.seconds, {"scene": "forest"}, "gauge", "seconds")


def test_sessions_start_send_heartbeats_and_stop(make_monitor: MonitorFactory) -> None:
    monitor = make_monitor(release="2.1")
    session = monitor.start_monitoring(heartbeat_interval=0.05)
    assert len(session.session_id) == 32 and session.active
    wait_for(lambda: any(isinstance(r, Heartbeat) for r in buffered(monitor)),
             timeout=5.0, what="a heartbeat")
    assert session.stop("done") is True
    assert session.stop() is False
    assert not session.active
    records = buffered(monitor)
    started = records[0]
    assert isinstance(started, MonitoringStarted)
    assert (started.session_id, started.version, started.pid) == (
        session.session_id, "2.1", os.getpid())
    stopped = [r for r in records if isinstance(r, MonitoringStopped)]
    assert [(s.session_id, s.reason) for s in stopped] == [(session.session_id, "done")]


def test_close_stops_live_sessions_and_is_idempotent(make_monitor: MonitorFactory) -> None:
    monitor = make_monitor()
    with monitor.start_monitoring():
        pass
    second = monitor.start_monitoring()
    assert monitor.close(timeout=1.0) is False
    assert monitor.close(timeout=1.0) is False
    assert not second.active
    stopped = [r for r in buffered(monitor) if isinstance(r, MonitoringStopped)]
    assert [s.reason for s in stopped] == ["", "closed"]
    assert not monitor._sender._thread.is_alive()


def test_increments_are_summed_and_sent_as_counter_totals(
    make_monitor: MonitorFactory,
) -> None:
    monitor = make_monitor(flush_interval=0.05)
    for _ in range(3):
        monitor.increment("requests_total", route="/play")
    monitor.increment("requests_total", 2, route="/play")
    totals = wait_for(
        lambda: [r for r in buffered(monitor) if isinstance(r, tuple)],
        timeout=5.0, what="a counter total",
    )
    assert [total[:4] for total in totals] == [
        ("requests_total", 5.0, {"route": "/play"}, "counter")]


def test_system_status_without_a_daemon_is_unknown(make_monitor: MonitorFactory) -> None:
    status = make_monitor().get_system_status(timeout=0.5)
    assert status["overall"] == "unknown"
    assert status["error"].startswith("no control socket at ")


def test_invalid_settings_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="component must be a name of 1 to 128 characters"):
        Monitor("", socket_path="/nonexistent.sock")
    with pytest.raises(ValueError, match="environment must be one of dev, prototype, prod"):
        Monitor("c", "staging", socket_path="/nonexistent.sock")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="capacity must be at least 1"):
        Monitor("c", socket_path="/nonexistent.sock", capacity=0)


def test_the_socket_path_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, make_monitor: MonitorFactory,
) -> None:
    monkeypatch.setenv("TTAMOND_SOCKET", "/run/elsewhere/control.sock")
    monitor = make_monitor(socket_path=None)
    assert str(monitor.socket_path) == "/run/elsewhere/control.sock"


def test_the_default_socket_path_is_the_daemons(monkeypatch: pytest.MonkeyPatch) -> None:
    from ttamond.client import default_socket_path
    from ttamond.config import PathsConfig
    from ttamond.paths import resolve_paths

    environ = {"XDG_RUNTIME_DIR": "/run/user/1000"}
    assert default_socket_path(environ) == resolve_paths(
        PathsConfig(), environ=environ).control_socket


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_sends_from_its_own_thread(make_monitor: MonitorFactory) -> None:
    monitor = make_monitor()
    monitor.gauge("before_fork", 1)
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status, never return into pytest
        healthy = (monitor._sender._thread.is_alive() and monitor.stats().buffered == 0)
        monitor.gauge("in_child", 1)
        os._exit(0 if healthy and monitor.stats().buffered == 1 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert monitor.stats().buffered == 1


def test_importing_the_client_leaves_trio_anyio_and_the_config_alone() -> None:
    code = ("import sys, ttamond.client; "
            "print(sorted(m for m in ('trio', 'anyio', 'ttamond.config', 'sysconfig', "
            "'ttamond.control', 'ttamond.ingest.decode') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=30)
    assert result.stdout.strip() == "[]"


def test_unrecordable_errors_are_counted_not_raised(make_monitor: MonitorFactory) -> None:
    monitor = make_monitor()
    monitor.record_message_error(None)  # type: ignore[arg-type]
    assert monitor.stats().dropped == 1
    assert not any(isinstance(r, ErrorEvent) for r in buffered(monitor))
