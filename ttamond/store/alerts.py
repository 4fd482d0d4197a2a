"""The alert escalator's tables: writes inside the store's transaction, and the read
that restores the escalator after a restart."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec

from ttamond.alerts.groups import NotificationGroup
from ttamond.alerts.lifecycle import AlertRecord
from ttamond.alerts.silences import Silence
from ttamond.messages import (
    AlertCountersSaved,
    AlertForgotten,
    AlertSaved,
    DeliveryAttempted,
    Notification,
    NotificationGroupForgotten,
    NotificationGroupSaved,
    SilenceSaved,
)
from ttamond.store.readonly import open_reader

_json = msgspec.json.Encoder()
_notification = msgspec.json.Decoder(Notification)
AlertWrite = (AlertSaved | AlertForgotten | SilenceSaved | NotificationGroupSaved
              | NotificationGroupForgotten | AlertCountersSaved | DeliveryAttempted
              | Notification)


def write_alert_state(conn: sqlite3.Connection, message: AlertWrite) -> None:
    """Apply one escalator or notifier message to its table."""
    match message:
        case AlertSaved(record=record, transition=transition, timestamp_ms=ts):
            conn.execute(
                "INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?, ?)",
                (record.fingerprint, record.labels.get("alertname", ""), record.state,
                 record.severity, record.updated_ms, _json.encode(record).decode()))
            if transition:
                conn.execute(
                    "INSERT INTO alert_history (ts, fingerprint, alertname, transition, value,"
                    " labels) VALUES (?, ?, ?, ?, ?, ?)",
                    (ts, record.fingerprint, record.labels.get("alertname", ""), transition,
                     record.value, _json.encode(record.labels).decode()))
        case AlertForgotten(fingerprint=fp):
            conn.execute("DELETE FROM alerts WHERE fingerprint = ?", (fp,))
        case SilenceSaved(silence=silence):
            conn.execute("INSERT OR REPLACE INTO silences VALUES (?, ?, ?, ?)",
                         (silence.id, silence.starts_ms, silence.ends_ms,
                          _json.encode(silence).decode()))
        case NotificationGroupSaved(group=group):
            conn.execute("INSERT OR REPLACE INTO notification_groups VALUES (?, ?, ?, ?)",
                         (group.group_key, group.channel, group.last_sent_ms,
                          _json.encode(group).decode()))
        case NotificationGroupForgotten(group_key=key):
            conn.execute("DELETE FROM notification_groups WHERE group_key = ?", (key,))
        case AlertCountersSaved(counters=counters):
            conn.executemany("INSERT OR REPLACE INTO alert_counters VALUES (?, ?)",
                             list(counters.items()))
        case Notification(id=notification_id, channel=channel, created_ms=created):
            # The outbox: decided, not yet delivered. Stored with the alert state that
            # decided it, so a crash before delivery sends it after the restart.
            conn.execute("INSERT OR REPLACE INTO outbox VALUES (?, ?, ?, ?)",
                         (notification_id, channel, created, _json.encode(message).decode()))
        case DeliveryAttempted():
            m = message
            if m.outcome != "failed":
                conn.execute("DELETE FROM outbox WHERE notification_id = ?",
                             (m.notification_id,))
            conn.execute(
                "INSERT INTO deliveries (ts, notification_id, channel, reason, group_key,"
                " attempt, outcome, error, duration_ms, fingerprints)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (m.timestamp_ms, m.notification_id, m.channel, m.reason, m.group_key,
                 m.attempt, m.outcome, m.error, m.duration_ms,
                 _json.encode(m.fingerprints).decode()))


def expire_alert_state(conn: sqlite3.Connection, before_ms: int) -> None:
    """Drop history, deliveries, resolved alerts and expired silences older than
    `before_ms`."""
    conn.execute("DELETE FROM alert_history WHERE ts < ?", (before_ms,))
    conn.execute("DELETE FROM deliveries WHERE ts < ?", (before_ms,))
    conn.execute("DELETE FROM alerts WHERE state = 'resolved' AND updated_ms < ?", (before_ms,))
    conn.execute("DELETE FROM silences WHERE ends_ms < ?", (before_ms,))
    conn.execute("DELETE FROM outbox WHERE created_ms < ?", (before_ms,))


class AlertState(msgspec.Struct):
    """What the escalator keeps across restarts."""

    records: list[AlertRecord]
    silences: list[Silence]
    groups: list[NotificationGroup]
    counters: dict[str, int]
    outbox: list[Notification]
    """Notifications decided before the last stop and never delivered, oldest first."""


def load_alert_state(database: Path) -> AlertState:
    """Read the stored alert state (empty when the database or its tables are missing)."""
    empty = AlertState([], [], [], {}, [])
    if not database.exists():
        return empty
    conn = open_reader(database)
    try:
        try:
            records = [msgspec.json.decode(row[0], type=AlertRecord)
                       for row in conn.execute("SELECT record FROM alerts")]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return empty
            raise
        silences = [msgspec.json.decode(row[0], type=Silence)
                    for row in conn.execute("SELECT silence FROM silences")]
        groups = [msgspec.json.decode(row[0], type=NotificationGroup)
                  for row in conn.execute("SELECT grp FROM notification_groups")]
        counters = dict(conn.execute("SELECT name, value FROM alert_counters").fetchall())
        outbox = [_notification.decode(row[0]) for row in conn.execute(
            "SELECT notification FROM outbox ORDER BY created_ms")]
        return AlertState(records, silences, groups, counters, outbox)
    finally:
        conn.close()
