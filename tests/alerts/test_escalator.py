"""The escalator's engine, driven round by round with explicit times."""

from __future__ import annotations

from typing import Any

import msgspec

from ttamond.alerts.escalator import Escalator
from ttamond.alerts.rules import MetricRule
from ttamond.alerts.settings import (
    AlertsConfig,
    EscalationLevel,
    EscalationPolicy,
    GroupingConfig,
)
from ttamond.alerts.silences import new_silence
from ttamond.messages import AlertSaved, Notification, labels

T0 = 1_700_000_000_000
S = 1000
MIN = 60 * S


def config(**overrides: Any) -> AlertsConfig:
    base: dict[str, Any] = {
        "rules": [MetricRule(name="CpuHigh", series="cpu", aggregate="last", window=60,
                             threshold=90, clear=80, for_=30,
                             annotations={"summary": "cpu {{ $value }} on {{ $labels.host }}"})],
        "escalations": [EscalationPolicy(name="default", levels=[
            EscalationLevel(channels=["chat"]),
            EscalationLevel(after_minutes=15, channels=["pager"])])],
        "grouping": GroupingConfig(group_by=["alertname"], group_wait=10, group_interval=60,
                                   repeat_interval=3600),
        "inhibit": [],
    }
    base.update(overrides)
    return AlertsConfig(**base)


def escalator(cfg: AlertsConfig | None = None, **kwargs: Any) -> Escalator:
    return Escalator(cfg or config(), host="h1", alertmanagers=kwargs.get("am", {}),
                     channels=kwargs.get("channels", ["chat", "pager"]), started_ms=T0)


def feed(esc: Escalator, ts: int, value: float, host: str = "a") -> None:
    esc.windows.add("cpu", labels(host=host), ts, value)


def run(esc: Escalator, start: int, end: int, value: float | None = None,
        every: int = 5 * S, host: str = "a") -> list[Notification]:
    sent: list[Notification] = []
    for ts in range(start, end, every):
        if value is not None:
            feed(esc, ts, value, host)
        sent += esc.evaluate(ts).notifications
    return sent


def test_pending_then_firing_then_grouped_notification_then_resolved() -> None:
    esc = escalator()
    assert run(esc, T0, T0 + 25 * S, 95) == []
    (record,) = esc.records.values()
    assert record.state == "pending"
    sent = run(esc, T0 + 25 * S, T0 + 45 * S, 95)
    assert record.fired_ms == T0 + 30 * S
    assert esc.records[record.fingerprint].state == "firing"
    # group_wait is 10 s after the group appeared at the firing
    (first,) = sent
    assert first.channel == "chat" and first.reason == "firing"
    assert first.alerts[0].annotations["summary"] == "cpu 95 on a"
    assert first.alerts[0].labels == {"alertname": "CpuHigh", "host": "a", "instance": "h1",
                                      "severity": "warning"}
    # Hysteresis: 85 is under the threshold but above clear: still firing.
    assert run(esc, T0 + 45 * S, T0 + 60 * S, 85) == []
    assert esc.records[record.fingerprint].state == "firing"
    resolved = run(esc, T0 + 60 * S, T0 + 200 * S, 70)
    assert esc.records[record.fingerprint].state == "resolved"
    (note,) = resolved
    assert note.reason == "resolved" and note.alerts[0].status == "resolved"
    assert note.alerts[0].ends_ms > 0


def test_a_blip_shorter_than_for_never_fires() -> None:
    esc = escalator()
    run(esc, T0, T0 + 20 * S, 95)
    outcome = esc.evaluate(T0 + 20 * S)
    feed(esc, T0 + 21 * S, 50)
    outcome = esc.evaluate(T0 + 21 * S)
    assert esc.records == {}
    assert [type(m).__name__ for m in outcome.saves] == ["AlertForgotten"]


def test_keep_firing_for_holds_a_firing_alert() -> None:
    cfg = config(rules=[MetricRule(name="CpuHigh", series="cpu", aggregate="last", window=60,
                                   threshold=90, keep_firing_for=60)])
    esc = escalator(cfg)
    run(esc, T0, T0 + 10 * S, 95)
    run(esc, T0 + 10 * S, T0 + 60 * S, 10)
    assert next(iter(esc.records.values())).state == "firing"
    run(esc, T0 + 60 * S, T0 + 80 * S, 10)
    assert next(iter(esc.records.values())).state == "resolved"


def test_alerts_arriving_within_group_wait_go_out_together() -> None:
    cfg = config(rules=[MetricRule(name="CpuHigh", series="cpu", aggregate="last", window=60,
                                   threshold=90)],
                 escalations=[EscalationPolicy(name="default",
                                               levels=[EscalationLevel(channels=["chat"])])])
    esc = escalator(cfg)
    feed(esc, T0, 95, "a")
    assert esc.evaluate(T0).notifications == []
    feed(esc, T0 + 5 * S, 95, "a")
    feed(esc, T0 + 5 * S, 96, "b")
    assert esc.evaluate(T0 + 5 * S).notifications == []
    feed(esc, T0 + 10 * S, 95, "a")
    feed(esc, T0 + 10 * S, 96, "b")
    (note,) = esc.evaluate(T0 + 10 * S).notifications
    assert sorted(a.labels["host"] for a in note.alerts) == ["a", "b"]
    assert esc.counters["suppressed_grouping"] == 1
    # Still firing, nothing new: the next notification is the repeat, an hour on.
    quiet: list[Notification] = []
    for ts in range(T0 + 15 * S, T0 + 3600 * S, 60 * S):
        feed(esc, ts, 95, "a")
        feed(esc, ts, 96, "b")
        quiet += esc.evaluate(ts).notifications
    assert quiet == []
    feed(esc, T0 + 3611 * S, 95, "a")
    feed(esc, T0 + 3611 * S, 96, "b")
    (repeat,) = esc.evaluate(T0 + 3611 * S).notifications
    assert repeat.reason == "repeat"


def test_escalation_climbs_until_acknowledged_and_resolution_reaches_every_level() -> None:
    esc = escalator()
    sent = run(esc, T0, T0 + 17 * MIN, 95, every=30 * S)
    assert [(n.channel, n.reason) for n in sent] == [("chat", "firing"), ("pager", "escalation")]
    assert sent[1].level == 1
    resolved = run(esc, T0 + 17 * MIN, T0 + 20 * MIN, 10, every=30 * S)
    assert sorted((n.channel, n.reason) for n in resolved) == [("chat", "resolved"),
                                                                ("pager", "resolved")]


def test_acknowledging_stops_the_climb() -> None:
    esc = escalator()
    run(esc, T0, T0 + 2 * MIN, 95, every=30 * S)
    (record,) = esc.records.values()
    record.acked_ms, record.acked_by = T0 + 2 * MIN, "sam"
    sent = run(esc, T0 + 2 * MIN, T0 + 30 * MIN, 95, every=30 * S)
    assert sent == []
    assert record.level == 0


def test_a_silence_mutes_and_is_counted_once() -> None:
    esc = escalator()
    silence = new_silence('{alertname="CpuHigh"}', now_ms=T0, duration_s=600, author="sam",
                          comment="maintenance")
    esc.silences[silence.id] = silence
    assert run(esc, T0, T0 + 5 * MIN, 95) == []
    assert esc.counters["suppressed_silence"] == 1
    assert next(iter(esc.muted.values())).startswith("silenced by")
    # When the silence ends, the alert is notified.
    sent = run(esc, T0 + 10 * MIN, T0 + 11 * MIN, 95)
    assert [n.channel for n in sent] == ["chat"]


def test_critical_inhibits_warning_with_equal_labels() -> None:
    cfg = config(rules=[
        MetricRule(name="CpuHigh", series="cpu", aggregate="last", window=60, threshold=90,
                   severity="warning"),
        MetricRule(name="CpuHigh", series="cpu", aggregate="last", window=60, threshold=95,
                   severity="critical")], inhibit=AlertsConfig().inhibit)
    esc = escalator(cfg)
    sent = run(esc, T0, T0 + 30 * S, 99)
    severities = [a.labels["severity"] for n in sent for a in n.alerts]
    assert severities == ["critical"]
    assert esc.counters["suppressed_inhibition"] == 1


def test_health_dependents_are_inhibited() -> None:
    from ttamond.alerts.rules import HealthRule

    cfg = config(rules=[HealthRule(name="Down")])
    esc = escalator(cfg)
    components = {"redis": "critical", "api": "critical"}
    sent: list[Notification] = []
    for ts in range(T0, T0 + 30 * S, 5 * S):
        sent += esc.evaluate(ts, components=components, down_dependents={"api"}).notifications
    assert [a.labels["component"] for n in sent for a in n.alerts] == ["redis"]


def test_flapping_alert_stops_notifying() -> None:
    cfg = config(rules=[MetricRule(name="CpuHigh", series="cpu", aggregate="last", window=60,
                                   threshold=90)], flap_threshold=3)
    esc = escalator(cfg)
    sent: list[Notification] = []
    for cycle in range(6):
        base = T0 + cycle * 5 * MIN
        sent += run(esc, base, base + 2 * MIN, 95, every=30 * S)
        sent += run(esc, base + 2 * MIN, base + 5 * MIN, 10, every=30 * S)
    (record,) = esc.records.values()
    assert record.flapping
    firing = [n for n in sent if n.reason == "firing"]
    assert len(firing) == 3
    assert esc.counters["suppressed_flapping"] >= 3


def test_failing_channel_raises_an_alert_through_the_others() -> None:
    esc = escalator()
    esc.failing_channels["pager"] = "HTTP 500"
    sent = run(esc, T0, T0 + 20 * S)
    assert [(n.channel, n.alerts[0].labels["alertname"]) for n in sent] == [
        ("chat", "NotificationChannelFailing")]
    del esc.failing_channels["pager"]
    resolved = run(esc, T0 + 20 * S, T0 + 90 * S)
    assert [(n.channel, n.reason) for n in resolved] == [("chat", "resolved")]


def test_alertmanager_sync_sends_all_firing_and_then_resolved() -> None:
    cfg = config(rules=[MetricRule(name="CpuHigh", series="cpu", aggregate="last", window=60,
                                   threshold=90)])
    esc = escalator(cfg, am={"am": 60.0}, channels=["chat", "pager", "am"])
    sent = run(esc, T0, T0 + 10 * S, 95)
    syncs = [n for n in sent if n.channel == "am"]
    assert len(syncs) == 1 and syncs[0].reason == "sync"
    sent = run(esc, T0 + 10 * S, T0 + 75 * S, 95)
    assert len([n for n in sent if n.channel == "am"]) == 1  # the re-send after 60 s
    sent = run(esc, T0 + 75 * S, T0 + 80 * S, 10)
    (sync,) = [n for n in sent if n.channel == "am"]
    assert sync.alerts[0].status == "resolved"


def test_saved_records_round_trip_through_the_message_codec() -> None:
    from ttamond.messages import message_decoder, message_encoder

    esc = escalator()
    saves = []
    for ts in range(T0, T0 + 45 * S, 5 * S):
        feed(esc, ts, 95)
        saves += esc.evaluate(ts).saves
    saved = [m for m in saves if isinstance(m, AlertSaved)]
    assert [m.transition for m in saved][:2] == ["pending", "firing"]
    for message in saves:
        assert message_decoder.decode(message_encoder.encode(message)) == message
    assert msgspec.json.decode(msgspec.json.encode(saved[-1].record))["state"] == "firing"
