"""The daemon as a real subprocess keeps its anomaly detectors across a restart."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.daemon_process import FAST_CONFIG, DaemonProcess

ANALYTICS = """
[analytics]
series = ['host_cpu_percent{cpu="total"}', "host_memory_percent"]
step_seconds = 0
"""


def test_detectors_survive_a_daemon_restart(short_tmp: Path) -> None:
    root = short_tmp
    config = FAST_CONFIG.format(state=root / "state", run=root / "run", interval=0.2) + ANALYTICS
    daemon = DaemonProcess(root, config_text=config)
    try:
        daemon.start_ready()
        daemon.wait_for_status(lambda s: s["analytics"]["tracked"] == 2)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=5) == 0
        saved = root / "state" / "analytics-detectors.msgpack"
        assert saved.stat().st_size > 1000

        daemon.start_ready()
        status = daemon.wait_for_status(lambda s: s["analytics"]["tracked"] == 2)
        assert status["analytics"]["restored"] == 2
        assert "2 series scored (2 carried over, not learnt afresh)" in daemon.cli("status").stdout
        assert saved.stat().st_mode & 0o777 == 0o600
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=5) == 0
        assert "not restored" not in daemon.stderr()
    finally:
        daemon.close()
