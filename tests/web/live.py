"""A real daemon with something on every panel: a firing alert, an error group whose
message is an attempted script, host series; for the browser and API-conformance tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.daemon_process import FAST_CONFIG, DaemonProcess, until
from ttamond.control import request

ALERTING = """
[alerts]
evaluate_every = 0.2

[[alerts.rules]]
kind = "metric"
name = "MemoryInUse"
series = "host_memory_percent"
aggregate = "last"
window = 30.0
threshold = 0
annotations = { summary = "memory at {{ $value }}%" }

[[notify.channels]]
kind = "log"
name = "log"

[carbon]
enabled = true
country_iso_code = "FRA"
measure_interval = 1.0
"""
EVIL = "<script>window.hacked = 1</script> in chapter 3"


def start_demo(root: Path) -> tuple[DaemonProcess, str]:
    """Start the daemon, feed it an error, wait until the alert fires; returns the
    daemon and its web address."""
    workdir = root / "cwd"  # CodeCarbon writes beside itself
    workdir.mkdir()
    config = FAST_CONFIG.format(state=root / "state", run=root / "run", interval=0.5)
    config = config.replace('bind = "127.0.0.1:0"', 'bind = "127.0.0.1:0"\nunix_socket = "web.sock"')
    daemon = DaemonProcess(root, config_text=config + ALERTING, cwd=workdir)
    daemon.start_ready()
    url = daemon.status()["web"]["url"].rstrip("/")
    error = {"type": "error", "component": "narrative", "environment": "dev",
             "error_type": "StoryError", "message": EVIL,
             "stack": [{"module": "story", "function": "tell", "filename": "story.py",
                        "lineno": 12}]}
    reply = httpx.post(f"{url}/api/v1/ingest", json={"messages": [error], "ack": "durable"},
                       timeout=10)
    if reply.status_code != 200 or reply.json().get("rejected"):
        raise AssertionError(f"ingest failed: {reply.status_code} {reply.text}")
    until(lambda: request(daemon.socket_path, "errors_list", {}), "the error group")
    until(lambda: alerts(daemon, "firing"), "the MemoryInUse alert to fire")
    until(lambda: daemon.status()["carbon"]["tracking"], "CodeCarbon's first reading")
    return daemon, url


def alerts(daemon: DaemonProcess, state: str) -> list[dict[str, Any]]:
    """The daemon's alerts in `state`, through the control socket."""
    found: list[dict[str, Any]] = request(daemon.socket_path, "alerts_list",
                                          {"state": state})["alerts"]
    return found


def dump(value: Any) -> str:
    """For assertion messages."""
    return json.dumps(value, indent=1, default=str)[:3000]
