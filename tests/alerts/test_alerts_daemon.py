"""The real daemon raising, forwarding, acknowledging, silencing and resolving an alert,
with a real Alertmanager and a real webhook receiver on loopback, across kill -9 and
reload."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.alertmanager import ALERTMANAGER, Alertmanager
from tests.daemon_process import FAST_CONFIG, DaemonProcess, until
from tests.webhook import Receiver

pytestmark = pytest.mark.skipif(
    ALERTMANAGER is None,
    reason="Alertmanager not installed (Debian package `prometheus-alertmanager`)")

RULES = """
[alerts]
instance = "host-a"
evaluate_every = 0.2

[alerts.grouping]
group_wait = 0.0
group_interval = 0.5

[[alerts.rules]]
kind = "metric"
name = "MemoryInUse"
series = "host_memory_percent"
aggregate = "last"
window = 30.0
threshold = {threshold}
annotations = {{ summary = "memory at {{{{ $value }}}}%" }}

[[alerts.escalations]]
name = "default"

[[alerts.escalations.levels]]
channels = ["hook"]

[[notify.channels]]
kind = "webhook"
name = "hook"
url = "{hook}"
format = "alertmanager"

[[notify.channels]]
kind = "alertmanager"
name = "am"
urls = ["{am}"]
resend_every = 2.0
"""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    folder = tmp_path / "am"
    folder.mkdir()
    server = Alertmanager(folder)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def config(daemon_root: Path, receiver: Receiver, alertmanager: Alertmanager,
           threshold: float) -> str:
    base = FAST_CONFIG.format(state=daemon_root / "state", run=daemon_root / "run",
                              interval=0.2)
    return base + RULES.format(threshold=threshold, hook=receiver.url, am=alertmanager.url)


def test_alert_lifecycle_through_the_real_daemon(tmp_path: Path, receiver: Receiver,
                                                 alertmanager: Alertmanager) -> None:
    daemon = DaemonProcess(tmp_path, config_text=config(tmp_path, receiver, alertmanager, 0))
    daemon.start_ready()
    try:
        # Memory in use is above 0%: the alert fires, reaches the webhook in the
        # Alertmanager webhook format, and is forwarded to the Alertmanager.
        until(lambda: "firing" in receiver.statuses(), "the webhook notification")
        body = receiver.received[0]
        assert body["version"] == "4" and body["receiver"] == "hook"
        (alert,) = body["alerts"]
        assert alert["labels"]["alertname"] == "MemoryInUse"
        assert alert["labels"]["instance"] == "host-a"
        assert alert["annotations"]["summary"].startswith("memory at ")
        forwarded = until(lambda: [a for a in alertmanager.alerts_now()
                                   if a["labels"].get("alertname") == "MemoryInUse"],
                          "the alert in Alertmanager")
        assert forwarded[0]["labels"]["instance"] == "host-a"

        listed = json.loads(daemon.cli("alerts", "list", "--json").stdout)
        (firing,) = listed["alerts"]
        fingerprint = firing["fingerprint"]
        assert (firing["state"], firing["level"]) == ("firing", 0)

        ack = daemon.cli("alerts", "ack", fingerprint[:6], "--by", "sam", "--comment", "on it")
        assert ack.returncode == 0, ack.stderr
        assert "acknowledged by sam" in ack.stdout
        silence = daemon.cli("alerts", "silence", "MemoryInUse", "--for", "1h",
                             "--comment", "known: the test host uses memory")
        assert silence.returncode == 0, silence.stderr
        assert silence.stdout.startswith("silence ")
        bad = daemon.cli("alerts", "silence", "{alertname=", "--comment", "x")
        assert bad.returncode != 0 and "bad selector" in bad.stderr
        unknown = daemon.cli("alerts", "test", "nope")
        assert unknown.returncode != 0 and "unknown channel 'nope'" in unknown.stderr
        tested = daemon.cli("alerts", "test", "hook")
        assert tested.returncode == 0 and "hook: sent" in tested.stdout, tested.stdout

        # kill -9: the alert, its acknowledgement, the silence and what the webhook was
        # told are in SQLite; the restarted daemon does not notify again.
        notified = len(receiver.received)
        daemon.signal(signal.SIGKILL)
        daemon.wait()
        daemon.start_ready()
        listed = json.loads(daemon.cli("alerts", "list", "--json").stdout)
        (restored,) = listed["alerts"]
        assert restored["fingerprint"] == fingerprint
        assert restored["acknowledged_by"] == "sam"
        assert restored["muted"].startswith("silenced by")
        assert len(listed["silences"]) == 1
        time.sleep(2.0)
        assert len(receiver.received) == notified

        # Reload with a threshold memory never reaches: the alert resolves, the webhook
        # hears it once, and the Alertmanager ends it.
        unsilence = daemon.cli("alerts", "unsilence", listed["silences"][0]["id"])
        assert unsilence.returncode == 0, unsilence.stderr
        daemon.config.write_text(config(tmp_path, receiver, alertmanager, 1000))
        daemon.signal(signal.SIGHUP)
        until(lambda: "resolved" in receiver.statuses(), "the resolved notification")
        until(lambda: not [a for a in alertmanager.alerts_now(active="true")
                           if a["labels"].get("alertname") == "MemoryInUse"],
              "the alert to end in Alertmanager")
        time.sleep(1.0)
        assert receiver.statuses().count("resolved") == 1
        history = daemon.cli("alerts", "history", fingerprint)
        assert history.returncode == 0, history.stderr
        assert "acknowledged" in history.stdout and "hook" in history.stdout
        stats = json.loads(daemon.cli("alerts", "list", "--json", "--state", "all").stdout)
        counters = stats["fatigue"]["counters"]
        assert counters["notifications"] >= 2 and counters["suppressed_silence"] == 1
    finally:
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0, daemon.stderr()
    # The delivery log and the history are in the database; nothing waits in the outbox.
    with sqlite3.connect(daemon.database) as db:
        outcomes = db.execute("SELECT reason, outcome FROM deliveries WHERE channel = 'hook'"
                              " ORDER BY id").fetchall()
        transitions = [row[0] for row in db.execute(
            "SELECT transition FROM alert_history ORDER BY id")]
        outbox = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
    assert outcomes[0] == ("firing", "sent") and ("resolved", "sent") in outcomes
    assert transitions[:1] == ["firing"] and "acknowledged" in transitions
    assert transitions[-1] == "resolved"
    assert outbox == 0
