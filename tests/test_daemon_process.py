"""The daemon as a real subprocess: sd_notify, status, signals, reload, kill -9, recovery."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.daemon_process import DaemonProcess
from ttamond.control import CommandError, request


def test_ready_status_and_clean_stop(daemon: DaemonProcess) -> None:
    daemon.start_ready()
    ready = daemon.wait_for_notification("READY=1")
    assert any(line.startswith("STATUS=running") for line in ready.split("\n"))

    # selfmon publishes every 0.5 s: wait for a few of its batches to be committed.
    status = daemon.wait_for_status(
        lambda s: s["store"]["points_committed"] > 0 and s["uptime_s"] >= 1.5
    )
    assert status["state"] == "running"
    actors = {a["name"]: a for a in status["actors"]}
    assert set(actors) == {"store", "latest", "errors", "control", "collector:host", "collector:cgroup",
                           "collector:process", "collector:gpu", "collector:docker",
                           "docker:events", "selfmon", "web", "health", "analytics", "notify", "alerts"}
    assert all(a["state"] == "running" for a in actors.values())
    assert actors["store"]["critical"] and actors["control"]["critical"]
    assert status["store"]["mode"] == "live"
    assert daemon.socket_path.stat().st_mode & 0o777 == 0o660

    human = daemon.cli("status")
    assert human.returncode == 0
    assert "RUNNING" in human.stdout and "collector:host" in human.stdout

    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=5) == 0
    daemon.wait_for_notification("STOPPING=1", timeout=1)
    committed = daemon.query("SELECT count(*), coalesce(sum(points), 0) FROM batches")[0]
    samples = daemon.query("SELECT count(*) FROM samples")[0][0]
    assert committed[1] >= status["store"]["points_committed"] > 0
    assert samples == committed[1]
    names = {row[0] for row in daemon.query("SELECT DISTINCT name FROM series")}
    assert {"host_cpu_percent", "host_memory_used_bytes", "host_load_average",
            "ttamond_loop_lag_seconds", "ttamond_queue_depth"} <= names
    assert daemon.query("PRAGMA integrity_check") == [("ok",)]
    assert not daemon.socket_path.exists()


def test_latest_values_over_the_socket(daemon: DaemonProcess) -> None:
    daemon.start_ready()
    daemon.wait_for_status(lambda s: s["store"]["points_committed"] > 0)
    result = daemon.cli("latest", "host_memory", "--json")
    assert result.returncode == 0, result.stderr
    assert "host_memory_total_bytes" in result.stdout
    text = daemon.cli("latest", "host_cpu_percent")
    assert 'host_cpu_percent{cpu="total"}' in text.stdout

    pong = request(daemon.socket_path, "ping")
    assert pong["pong"] is True and pong["pid"] == daemon.process.pid  # type: ignore[union-attr]
    actors = request(daemon.socket_path, "actors")
    assert [a["name"] for a in actors] == [
        "store", "latest", "errors", "control", "collector:host", "collector:cgroup", "collector:process",
        "collector:gpu", "collector:docker", "docker:events", "selfmon", "web", "health", "analytics", "notify", "alerts"]
    # No GPU on these machines: the GPU collector says so once, as a stored failure.
    latest = request(daemon.socket_path, "latest", {"prefix": "process_"})
    assert any(v["name"] == "process_count" for v in latest["values"])
    gpu = [f for f in latest["failures"] if f["source"] == "collector:gpu"]
    assert gpu and gpu[0]["error"].startswith("unavailable: NVML unavailable:")
    with pytest.raises(CommandError, match="latest: 'prefix' must be a string"):
        request(daemon.socket_path, "latest", {"prefix": 3})


def test_sighup_with_broken_config_keeps_running(daemon: DaemonProcess) -> None:
    daemon.start_ready()
    good = daemon.config.read_text()
    daemon.config.write_text(good + "\n[collectors.host]\nintervall = 3\n")
    daemon.notifications.clear()
    daemon.signal(signal.SIGHUP)
    reloading = daemon.wait_for_notification("RELOADING=1")
    assert "MONOTONIC_USEC=" in reloading
    daemon.wait_for_notification("READY=1")
    status = daemon.wait_for_status(lambda s: not s["config"]["reload"]["ok"])
    message = status["config"]["reload"]["message"]
    assert "unknown key 'intervall'" in message or "invalid TOML" in message
    assert "keeping the previous config" in message
    assert daemon.process is not None and daemon.process.poll() is None
    assert "reload failed" in daemon.stderr()

    daemon.config.write_text(good.replace("interval = 0.2", "interval = 0.3"))
    daemon.signal(signal.SIGHUP)
    status = daemon.wait_for_status(lambda s: s["config"]["reload"]["ok"]
                                    and "restarted" in s["config"]["reload"]["message"])
    assert "collector:host" in status["config"]["reload"]["message"]
    assert status["state"] == "running"
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=5) == 0


def test_kill_9_keeps_every_committed_batch(daemon: DaemonProcess) -> None:
    daemon.start_ready()
    status = daemon.wait_for_status(lambda s: s["store"]["batches_committed"] >= 5)
    reported = status["store"]["batches_committed"]
    reported_points = status["store"]["points_committed"]
    daemon.signal(signal.SIGKILL)
    assert daemon.wait() == -signal.SIGKILL

    assert daemon.query("PRAGMA integrity_check") == [("ok",)]
    batches, points = daemon.query("SELECT count(*), sum(points) FROM batches")[0]
    assert batches >= reported
    assert points >= reported_points
    assert daemon.query("SELECT count(*) FROM samples")[0][0] == points

    # The same folders start again: stale socket and lock are dealt with.
    assert daemon.socket_path.exists()
    daemon.start_ready()
    status = daemon.wait_for_status(lambda s: s["store"]["batches_committed"] > 0)
    assert status["state"] == "running"


def test_locked_database_spools_then_replays_exactly_once(daemon: DaemonProcess) -> None:
    daemon.start_ready()
    daemon.wait_for_status(lambda s: s["store"]["batches_committed"] > 0)
    blocker = sqlite3.connect(daemon.database, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        status = daemon.wait_for_status(
            lambda s: s["store"]["mode"] == "spooling" and s["store"]["spooled_batches"] >= 3
        )
        assert status["state"] == "degraded"
        assert "SQLITE_BUSY" in status["store"]["last_error"]
        assert status["store"]["spool_bytes"] > 0
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    status = daemon.wait_for_status(
        lambda s: s["store"]["mode"] == "live" and s["store"]["replayed_batches"] >= 3
    )
    assert status["store"]["spool_bytes"] == 0
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=5) == 0

    assert daemon.query("SELECT count(*) FROM batches WHERE origin = 'spool'")[0][0] >= 3
    points = daemon.query("SELECT sum(points) FROM batches")[0][0]
    assert daemon.query("SELECT count(*) FROM samples")[0][0] == points
    assert not (daemon.database.with_name("ttamond.db.spool").stat().st_size)


def test_corrupt_database_is_moved_aside(daemon: DaemonProcess) -> None:
    daemon.state.mkdir(parents=True)
    garbage = b"this is not a database" * 100
    daemon.database.write_bytes(garbage)
    daemon.start_ready()
    daemon.wait_for_status(lambda s: s["store"]["events_committed"] > 0)
    moved = list(daemon.state.glob("ttamond.db.corrupt-*"))
    assert [path.read_bytes() for path in moved] == [garbage]
    status = daemon.status()
    assert status["store"]["recoveries"] == 1
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=5) == 0
    events = daemon.query("SELECT detail FROM events WHERE kind = 'database_recovered'")
    assert len(events) == 1 and "moved to" in events[0][0]


def test_watchdog_pings(short_tmp: Path) -> None:
    daemon = DaemonProcess(short_tmp, extra_env={"WATCHDOG_USEC": "200000"})
    try:
        daemon.start_ready()
        daemon.wait_for_notification("WATCHDOG=1", timeout=5)
        before = sum("WATCHDOG=1" in n for n in daemon.notifications)
        daemon.notifications.clear()
        daemon.wait_for_notification("WATCHDOG=1", timeout=5)
        assert before >= 1
    finally:
        daemon.close()


def test_journald_log_format(short_tmp: Path) -> None:
    daemon = DaemonProcess(short_tmp, extra_env={"JOURNAL_STREAM": "8:1234"})
    try:
        daemon.start_ready()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=5) == 0
        lines = [line for line in daemon.stderr().splitlines() if line]
        assert lines and all(line.startswith("<") for line in lines)
        assert any(line.startswith("<6>ttamond.daemon: ttamond") for line in lines)
    finally:
        daemon.close()


def test_second_daemon_on_the_same_database_is_refused(daemon: DaemonProcess) -> None:
    daemon.start_ready()
    second = subprocess.run(
        [sys.executable, "-m", "ttamond", "run", "--config", str(daemon.config)],
        capture_output=True, text=True, timeout=20, check=False,
    )
    assert second.returncode == 1
    assert "another ttamond" in second.stderr
    assert daemon.status()["state"] == "running"


def test_status_when_no_daemon_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ttamond", "status", "--socket", str(tmp_path / "none.sock")],
        capture_output=True, text=True, timeout=20, check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"ttamond: daemon not reachable: no control socket at {tmp_path / 'none.sock'}:"
        " is ttamond running?"
    )


def test_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[collectors.host]\ninterval = 'fast'\n")
    result = subprocess.run(
        [sys.executable, "-m", "ttamond", "run", "--config", str(config)],
        capture_output=True, text=True, timeout=20, check=False,
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"ttamond: {config}: collectors.host.interval: expected a number, got a string\n"
    )


def test_query_over_the_socket(daemon: DaemonProcess) -> None:
    daemon.start_ready()
    daemon.wait_for_status(lambda s: s["store"]["batches_committed"] >= 3)
    result = daemon.cli("query", 'host_cpu_percent{cpu="total"}', "--since", "5m", "--json")
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["tier"] == "raw"
    (series,) = reply["series"]
    assert series["labels"] == {"cpu": "total"} and series["unit"] == "percent"
    assert len(series["points"]) >= 2

    stepped = json.loads(daemon.cli("query", "host_memory_total_bytes", "--step", "1m",
                                    "--agg", "max", "--json").stdout)
    assert stepped["tier"] == "1m" and stepped["series"][0]["points"]

    text = daemon.cli("query", "host_load_average", "--since", "1m")
    assert text.returncode == 0 and 'host_load_average{period="1m"}' in text.stdout

    bad = daemon.cli("query", "cpu{x=1}")
    assert bad.returncode == 1
    assert "cannot read a label matcher at 'x=1'" in bad.stderr
    duration = daemon.cli("query", "cpu", "--since", "forever")
    assert duration.returncode == 2 and "bad duration 'forever'" in duration.stderr


def test_metrics_and_health_over_http(daemon: DaemonProcess) -> None:
    daemon.start_ready()
    status = daemon.wait_for_status(lambda s: s["web"] is not None and s["uptime_s"] >= 1)
    url = status["web"]["url"]
    assert url.startswith("http://127.0.0.1:")
    metrics = httpx.get(url + "metrics", timeout=10)
    assert metrics.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    assert "host_cpu_percent" in families and "ttamond_build_info" in families
    assert families["host_net_received_bytes"].type == "counter"  # _total is the sample's
    assert httpx.get(url + "healthz", timeout=10).status_code == 200
    assert httpx.get(url + "readyz", timeout=10).status_code == 200
    api = httpx.get(url + "api/v1/status", timeout=10).json()
    assert api["state"] == "running" and api["pid"] == status["pid"]
