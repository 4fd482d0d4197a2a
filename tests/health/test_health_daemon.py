"""The health monitor in the real daemon, against a real Redis: a check goes down after
its N-of-M rule, its component turns critical, a dependent component degraded (not a
second root cause), and the changes are stored events."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_process import FAST_CONFIG, DaemonProcess
from ttamond.control import request

HEALTH = """
[health]
evaluate_every = 0.5

[[health.checks]]
name = "redis"
kind = "redis"
port = {port}
interval = 1.0
timeout = 1.0
fail_after = [2, 3]

[[health.checks]]
name = "state-dir"
kind = "disk"
path = "{state}"
component = "host"
interval = 1.0

[[health.components]]
name = "narrative"
depends_on = ["redis"]
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def redis_port() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: redis-server)")
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--daemonize", "no"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.05)
    yield port, server
    server.kill()
    server.wait()


def wait_health(daemon: DaemonProcess, predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        reply = request(daemon.socket_path, "health")
        if predicate(reply):
            return reply
        if time.monotonic() > deadline:
            raise AssertionError(f"health never matched; last: {reply}")
        time.sleep(0.1)


def test_a_dependency_down_degrades_its_dependents(
    short_tmp: Path, redis_port: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, server = redis_port
    config = FAST_CONFIG.format(state=short_tmp / "state", run=short_tmp / "run", interval=1.0)
    daemon = DaemonProcess(short_tmp, config_text=config + HEALTH.format(
        port=port, state=short_tmp))
    try:
        daemon.start_ready()
        up = wait_health(daemon, lambda r: r["components"].get("redis", {}).get("level") == "ok")
        assert up["overall"] == "ok"
        assert up["components"]["narrative"]["level"] in ("ok", "unknown")
        checks = {c["check"]: c for c in up["checks"]}
        assert checks["redis"]["state"] == "ok" and checks["state-dir"]["state"] == "ok"

        server.kill()
        server.wait()
        down = wait_health(daemon, lambda r: r["components"]["redis"]["level"] == "critical")
        narrative = down["components"]["narrative"]
        assert narrative["status"] == "degraded (dependency redis down)"
        assert narrative["root_cause"] is False and down["components"]["redis"]["root_cause"]
        assert down["inhibited"] == ["narrative"]
        assert down["overall"] == "critical"

        now = request(daemon.socket_path, "perform_health_check", {"check": "redis"})
        assert now["status"] == "crit" and "refused" in now["message"]
        dependencies = request(daemon.socket_path, "check_dependency_health",
                               {"component": "narrative"})
        assert dependencies["redis"]["level"] == "critical"
        assert dependencies["redis"]["status"].startswith("critical (")
        status = request(daemon.socket_path, "get_system_status")
        assert status["overall"] == "critical"
        text = daemon.cli("health")
        assert text.returncode == 0, text.stderr
        assert "degraded (dependency redis down)" in text.stdout
        assert "HEALTH    CRITICAL" in daemon.cli("status").stdout.upper()

        kinds = daemon.query("SELECT kind, source FROM events WHERE kind IN"
                             " ('check_state', 'component_health')")
        assert ("check_state", "redis") in kinds and ("component_health", "narrative") in kinds
        series = daemon.query("SELECT DISTINCT s.name FROM series s WHERE s.name LIKE"
                              " 'ttamond_check_%' OR s.name LIKE 'ttamond_component_%'")
        assert {"ttamond_check_status", "ttamond_check_latency_seconds",
                "ttamond_component_health"} <= {row[0] for row in series}
    finally:
        daemon.close()
