"""The carbon actor in the real daemon, with CodeCarbon's real offline tracker: sessions
from two clients overlapping, status, a report, and a loop that never waited on it."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.daemon_process import FAST_CONFIG, DaemonProcess
from ttamond.control import CommandError, request

pytest.importorskip("codecarbon")

CARBON = """
[carbon]
enabled = true
country_iso_code = "FRA"
measure_interval = 1.0
session_timeout = 6.0
"""


def burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(1000))


def test_sessions_status_report_and_loop_lag(short_tmp: Path) -> None:
    config = FAST_CONFIG.format(state=short_tmp / "state", run=short_tmp / "run", interval=1.0)
    workdir = short_tmp / "cwd"
    workdir.mkdir()
    daemon = DaemonProcess(short_tmp, config_text=config + CARBON, cwd=workdir)
    try:
        daemon.start_ready()
        status = daemon.wait_for_status(lambda s: any(
            a["name"] == "carbon" and a["state"] == "running" for a in s["actors"]))
        assert status["state"] == "running"  # readiness did not wait for CodeCarbon
        deadline = time.monotonic() + 30
        while not request(daemon.socket_path, "get_carbon_metrics")["tracking"]:
            assert time.monotonic() < deadline, "the tracker did not start within 30 s"
            time.sleep(0.2)

        pid = os.getpid()
        first = request(daemon.socket_path, "start_carbon_tracking",
                        {"operation": "narrate", "component": "agents", "model": "m1",
                         "pid": pid})
        second = request(daemon.socket_path, "start_carbon_tracking",
                         {"operation": "embed", "component": "world", "model": "m2"})
        worker = threading.Thread(target=burn, args=(3.0,))
        worker.start()
        worker.join()
        time.sleep(1.2)  # one more reading after the work
        results = [request(daemon.socket_path, "stop_carbon_tracking",
                           {"session_id": started["session_id"]})
                   for started in (first, second)]
        for result in results:
            assert result["state"] == "stopped" and result["duration_s"] >= 3.0
            assert result["energy_kwh"] > 0 and result["emissions_kg"] > 0
            assert "estimated" in result["method"] or "rapl" in result["method"]
        with pytest.raises(CommandError, match="no open carbon session"):
            request(daemon.socket_path, "stop_carbon_tracking",
                    {"session_id": first["session_id"]})
        rows = daemon.query("SELECT operation, state FROM carbon_sessions ORDER BY operation")
        assert rows == [("embed", "stopped"), ("narrate", "stopped")]

        human = daemon.cli("carbon", "status")
        assert human.returncode == 0, human.stderr
        assert "method" in human.stdout
        overall = daemon.cli("status")
        assert "carbon    " in overall.stdout and "g CO2e" in overall.stdout
        page = httpx.get(f'{daemon.status()["web"]["url"]}carbon?inline=1', timeout=10)
        assert "<h2>Carbon</h2>" in page.text and "How: cpu=" in page.text
        if daemon.status()["carbon"]["estimated"]:
            assert '<span class="badge warn">estimated</span>' in page.text

        # A session whose client never stops it expires, with a clear state.
        request(daemon.socket_path, "start_carbon_tracking", {"operation": "forgotten"})
        deadline = time.monotonic() + 20
        while not daemon.query("SELECT state FROM carbon_sessions"
                               " WHERE operation = 'forgotten'"):
            assert time.monotonic() < deadline, "the forgotten session did not expire"
            time.sleep(0.2)
        assert daemon.query("SELECT state FROM carbon_sessions WHERE operation = 'forgotten'"
                            ) == [("expired",)]
        report = request(daemon.socket_path, "generate_carbon_report", {"since_ms": 1})
        assert report["total_energy_kwh"] > 0
        text = daemon.cli("carbon", "report", "--since", "1h")
        assert text.returncode == 0, text.stderr

        # The worst event-loop lag selfmon saw while CodeCarbon started and ran.
        lag = daemon.query("SELECT max(value) FROM samples JOIN series s ON s.id = series_id"
                           " WHERE s.name = 'ttamond_loop_lag_seconds'")[0][0]
        assert lag is not None and lag < 0.05
    finally:
        daemon.close()
    assert not list(workdir.iterdir())  # CodeCarbon wrote nothing where it was started


def test_with_carbon_off_pandas_is_never_loaded(daemon: DaemonProcess) -> None:
    daemon.start_ready()
    daemon.wait_for_status(lambda s: s["store"]["points_committed"] > 0)
    assert daemon.process is not None
    maps = Path(f"/proc/{daemon.process.pid}/maps").read_text()
    assert "/pandas/" not in maps
    # Nor, with no health checks configured, the HTTP check's certificate reader.
    assert "/cryptography/" not in maps
    with pytest.raises(CommandError, match=r"carbon tracking is off"):
        request(daemon.socket_path, "get_carbon_metrics")
