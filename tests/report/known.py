"""A database with known contents, written through the daemon's own conversion and
store code, and the figures a report over it must show (worked out by hand below)."""

from __future__ import annotations

import itertools
from pathlib import Path

from ttamond.actors.carbon import series as carbon_series
from ttamond.actors.health import LEVEL_VALUE
from ttamond.alerts.lifecycle import AlertRecord, AlertState
from ttamond.ingest.convert import Converter
from ttamond.messages import (
    AIMetrics,
    AlertCountersSaved,
    AlertSaved,
    AnyMessage,
    DatabaseOperation,
    DeliveryAttempted,
    DeliveryOutcome,
    EngagementEvent,
    ErrorEvent,
    ErrorGroupChanged,
    ErrorGroupStateSet,
    MetricBatch,
    MetricPoint,
    ReportedMessage,
    labels,
)
from ttamond.privacy import Scrubber
from ttamond.probes.carbon import CarbonReading
from ttamond.pseudonyms import Pseudonyms
from ttamond.report.window import Window
from ttamond.store.database import HOUR_MS, MINUTE_MS, Database
from ttamond.store.queries import Retention

DAY_MS = 24 * HOUR_MS
T0 = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS
"""An hour boundary; every sample lies in [T0, T0 + 30 min)."""
NOW = T0 + HOUR_MS
RETENTION = Retention(raw_ms=48 * HOUR_MS, minute_ms=30 * DAY_MS, hour_ms=400 * DAY_MS)
KEY = b"k" * 32
PLAYERS = [f"player-{i}@example.org" for i in range(5)]
SCRIPT_MESSAGE = "<script>alert('x')</script>"

WINDOWS = {
    # 30 min: 10 s buckets of raw samples.
    "raw": (T0, T0 + 30 * MINUTE_MS),
    # 2 h: 1 min buckets from the 1-minute rollups.
    "minute": (T0 - HOUR_MS, T0 + HOUR_MS),
    # 14 d: 2 h buckets from the 1-hour rollups (availability still by the minute).
    "hour": (T0 + HOUR_MS - 14 * DAY_MS, T0 + HOUR_MS),
}

# Operations: (component, kind, response times in s, failed flags).
AI_TIMES = [0.5, 1.5, 2.5, 3.5]
AI_FAILED = [False, False, True, False]
NARRATIVE_DB_TIMES = [0.010, 0.030]
WORLD_DB_TIMES = [0.020, 0.040, 0.060]
WORLD_DB_FAILED = [True, False, False]
OPERATIONS = 9
RESPONSE_SUM = 8.0 + 0.04 + 0.12
RESPONSE_AVG = RESPONSE_SUM / 9  # 0.90666...
RESPONSE_PEAK = 3.5
ERROR_RATE = 2 / 9

# Health levels, one sample every 10 s. narrative: 30 ok, 12 critical, 6 degraded,
# 6 unknown, 6 ok: up 42 of 54 known. world: a minute of 3 ok and 3 critical, then 6
# ok: up 9 of 12 (the mixed minute is split by its mean). Overall: up 5 of 6.
NARRATIVE_LEVELS = ["ok"] * 30 + ["critical"] * 12 + ["degraded"] * 6 + ["unknown"] * 6 \
    + ["ok"] * 6
WORLD_LEVELS = ["ok", "ok", "ok", "critical", "critical", "critical"] + ["ok"] * 6
OVERALL_LEVELS = ["ok"] * 4 + ["critical", "ok"]

CPU = [10.0, 20.0, 30.0, 40.0, 50.0]
MEMORY = [40.0, 60.0]
DISK_ROOT = [70.0, 72.0, 74.0]

_keys = itertools.count()


def window(name: str) -> Window:
    """One of WINDOWS, seen at NOW."""
    since, until = WINDOWS[name]
    return Window(since_ms=since, until_ms=until, now_ms=NOW, retention=RETENTION)


def pseudonyms() -> list[str]:
    """The players' pseudonyms as stored: none may appear in a report."""
    keyed = Pseudonyms(KEY)
    return [keyed.of(player) for player in PLAYERS]


def write(db: Database, messages: list[AnyMessage]) -> None:
    """Commit `messages` as one batch, as the store actor does."""
    if not db.write(f"k{next(_keys)}", messages, origin="live"):
        raise AssertionError("batch refused as a duplicate")


def at(minutes: float) -> int:
    """T0 plus `minutes`."""
    return T0 + int(minutes * MINUTE_MS)


def write_known(path: Path) -> None:
    """Create the database at `path` and fill it with the known data."""
    db = Database(path, busy_timeout=1.0, synchronous="normal")
    db.open()
    try:
        converter = Converter(Scrubber(), Pseudonyms(KEY))
        write(db, _converted(converter, _reported()))
        write(db, _samples())
        _errors(db, converter)
        write(db, _alerts())
        write(db, _engagement(converter))
    finally:
        db.close()


def _converted(converter: Converter, messages: list[ReportedMessage]) -> list[AnyMessage]:
    return [out for message in messages for out in converter.convert_all(message, NOW)]


def _reported() -> list[ReportedMessage]:
    reported: list[ReportedMessage] = [
        AIMetrics(component="narrative", environment="prod", timestamp_ms=at(1 + i),
                  model="m1", operation="generate", inference_time_ms=seconds * 1000,
                  tokens_in=100, tokens_out=200, success=not failed)
        for i, (seconds, failed) in enumerate(zip(AI_TIMES, AI_FAILED, strict=True))]
    reported += [DatabaseOperation(component="narrative", environment="prod",
                                   timestamp_ms=at(5 + i), database="neo4j", operation="match",
                                   duration_ms=seconds * 1000)
                 for i, seconds in enumerate(NARRATIVE_DB_TIMES)]
    reported += [DatabaseOperation(component="world", environment="prod", timestamp_ms=at(7 + i),
                                   database="redis", operation="get", duration_ms=seconds * 1000,
                                   success=not failed)
                 for i, (seconds, failed) in enumerate(zip(WORLD_DB_TIMES, WORLD_DB_FAILED,
                                                           strict=True))]
    return reported


def _point(name: str, value: float, ts: int, point_labels: tuple[tuple[str, str], ...] = (),
           unit: str = "") -> MetricBatch:
    return MetricBatch(source="test", timestamp_ms=ts,
                       points=(MetricPoint(name, value, point_labels, "gauge", unit),))


def _samples() -> list[AnyMessage]:
    batches: list[AnyMessage] = []
    for component, levels, start in (("narrative", NARRATIVE_LEVELS, at(10)),
                                     ("world", WORLD_LEVELS, at(20))):
        batches += [_point("ttamond_component_health", LEVEL_VALUE[level], start + i * 10_000,
                           labels(component=component)) for i, level in enumerate(levels)]
    batches += [_point("ttamond_health_overall", LEVEL_VALUE[level], at(25) + i * 10_000)
                for i, level in enumerate(OVERALL_LEVELS)]
    batches += [_point("host_cpu_percent", value, at(1 + i), labels(cpu="total"), "percent")
                for i, value in enumerate(CPU)]
    batches.append(_point("host_cpu_percent", 99.0, at(1), labels(cpu="0"), "percent"))
    batches += [_point("host_memory_percent", value, at(1 + i), (), "percent")
                for i, value in enumerate(MEMORY)]
    disk = labels(mount="/", device="/dev/sda1", fstype="ext4")
    batches += [_point("host_disk_percent", value, at(1 + i), disk, "percent")
                for i, value in enumerate(DISK_ROOT)]
    data = labels(mount="/data", device="/dev/sdb1", fstype="xfs")
    batches.append(_point("host_disk_percent", 10.0, at(2), data, "percent"))
    # The carbon actor's readings: 1 kWh and 0.4 kg over the window, estimated.
    for minutes, kwh, kg in ((1, 0.0, 0.0), (11, 0.5, 0.2), (21, 1.0, 0.4)):
        reading = CarbonReading(
            timestamp_ms=at(minutes), energy_kwh=kwh, cpu_energy_kwh=kwh, gpu_energy_kwh=0.0,
            ram_energy_kwh=0.0, emissions_kg=kg, cpu_power_w=30.0, gpu_power_w=0.0,
            ram_power_w=0.0, intensity_g_per_kwh=400.0,
            methods={"cpu": "cpu-load-estimate", "ram": "constant"}, estimated=True)
        batches.append(carbon_series(reading, open_sessions=0))
    return batches


def _error(message: str, error_type: str, component: str, minutes: float) -> ErrorEvent:
    return ErrorEvent(component=component, environment="prod", timestamp_ms=at(minutes),
                      error_type=error_type, message=message, release="2.0")


def _errors(db: Database, converter: Converter) -> None:
    """KeyError: three events in the window (one after being resolved: a regression),
    one three days before; ValueError with a script in its message: one event."""
    old = converter.error(_error("missing chapter", "KeyError", "narrative", -3 * 24 * 60), NOW)
    write(db, [old])
    first = converter.error(_error("missing chapter", "KeyError", "narrative", 1), NOW)
    write(db, [first, converter.error(_error("missing chapter", "KeyError", "narrative", 2),
                                      NOW)])
    write(db, [ErrorGroupStateSet(group_id=1, state="resolved", timestamp_ms=at(2.5))])
    write(db, [converter.error(_error("missing chapter", "KeyError", "narrative", 3), NOW),
               ErrorGroupChanged(change="regression", fingerprint=first.fingerprint,
                                 title=first.title, component="narrative", timestamp_ms=at(3)),
               converter.error(_error(SCRIPT_MESSAGE, "ValueError", "world", 4), NOW)])


def _record(fingerprint: str, name: str, severity: str, state: AlertState,
            minutes: float) -> AlertRecord:
    return AlertRecord(
        fingerprint=fingerprint, rule=f"metric:{name}:0",
        labels={"alertname": name, "severity": severity, "instance": fingerprint},
        annotations={}, severity=severity, priority="P3", escalation="default", state=state,
        value=1.0, active_since_ms=at(minutes), updated_ms=at(minutes))


def _alerts() -> list[AnyMessage]:
    """HighCpu (warning) twice: acknowledged after 120 s and resolved after 600 s; then
    resolved after 60 s. ComponentDown (critical): escalated, acknowledged after 60 s,
    still firing."""
    changes: list[tuple[str, str, str, AlertState, str, float]] = [
        ("a1", "HighCpu", "warning", "pending", "pending", 1),
        ("a1", "HighCpu", "warning", "firing", "firing", 2),
        ("a1", "HighCpu", "warning", "firing", "acknowledged", 4),
        ("a2", "HighCpu", "warning", "firing", "firing", 5),
        ("a2", "HighCpu", "warning", "resolved", "resolved", 6),
        ("a3", "ComponentDown", "critical", "firing", "firing", 10),
        ("a3", "ComponentDown", "critical", "firing", "escalated", 10.5),
        ("a3", "ComponentDown", "critical", "firing", "acknowledged", 11),
        ("a1", "HighCpu", "warning", "resolved", "resolved", 12),
    ]
    messages: list[AnyMessage] = [
        AlertSaved(record=_record(fp, name, severity, state, minutes), transition=transition,
                   timestamp_ms=at(minutes))
        for fp, name, severity, state, transition, minutes in changes]
    deliveries: list[tuple[str, str, int, DeliveryOutcome]] = [
        ("n1", "oncall", 1, "failed"), ("n1", "oncall", 2, "sent"), ("n2", "log", 1, "sent"),
        ("n3", "oncall", 1, "rate_limited"), ("n4", "slack", 1, "gave_up")]
    messages += [DeliveryAttempted(notification_id=nid, channel=channel, reason="firing",
                                   group_key="g", attempt=attempt, outcome=outcome,
                                   timestamp_ms=at(2 + i))
                 for i, (nid, channel, attempt, outcome) in enumerate(deliveries)]
    messages.append(AlertCountersSaved(counters={
        "notifications": 7, "suppressed_silence": 2, "suppressed_inhibition": 1,
        "suppressed_grouping": 3, "suppressed_flapping": 0, "suppressed_acknowledged": 1},
        timestamp_ms=at(12)))
    return messages


def _engagement(converter: Converter) -> list[AnyMessage]:
    """Five players, one ten-minute session each."""
    reported: list[ReportedMessage] = []
    for i, player in enumerate(PLAYERS):
        for event, minutes in (("session_start", 1), ("interaction", 5), ("session_end", 11)):
            reported.append(EngagementEvent(component="narrative", environment="prod",
                                            timestamp_ms=at(minutes), event=event,
                                            session_id=f"session-{i}", user_id=player))
    return _converted(converter, reported)
