"""Writing one event-like message (everything but samples) inside the store's open
transaction: events, error groups, AI invocations, carbon sessions, alert state,
engagement rows, audit entries, erasures."""

from __future__ import annotations

import json
import logging
import sqlite3

import msgspec

from ttamond.messages import (
    ActorStateChanged,
    AIInvocationRecorded,
    AlertCountersSaved,
    AlertForgotten,
    AlertSaved,
    AnyMessage,
    AuditRecorded,
    CarbonSessionEnded,
    ChannelHealthChanged,
    ComponentEvent,
    CriticalErrorRaised,
    DeliveryAttempted,
    EngagementRecorded,
    ErrorGroupChanged,
    ErrorGroupStateSet,
    ErrorRecorded,
    Notification,
    NotificationGroupForgotten,
    NotificationGroupSaved,
    PersonalDataErased,
    ProbeFailed,
    SilenceSaved,
    StoredTextRedacted,
    StoreEvent,
)
from ttamond.store.alerts import write_alert_state
from ttamond.store.errors import record_error, set_group_state
from ttamond.store.personal import erase, redact, write_audit, write_engagement

log = logging.getLogger(__name__)
_json = msgspec.json.Encoder()


def write_event(conn: sqlite3.Connection, message: AnyMessage, *,
                keep_error_events: int) -> bool:
    """Write `message` in the caller's transaction. Returns True when it erased or
    redacted personal data: `secure_delete` is then on, and the caller turns it off and
    empties the WAL after the commit. Raises TypeError for a message the store does not
    keep, sqlite3.Error when the write fails."""
    match message:
        case ProbeFailed(source=source, timestamp_ms=ts, error=error):
            _event(conn, ts, "probe_failed", source, error)
        case ActorStateChanged():
            detail = {"state": message.state, "restarts": message.restarts,
                      "error": message.error}
            _event(conn, message.timestamp_ms, "actor_state", message.actor,
                   json.dumps(detail))
        case StoreEvent(kind=kind, timestamp_ms=ts, detail=detail, source=source):
            _event(conn, ts, kind, source, detail)
        case ErrorRecorded():
            record_error(conn, message, keep_events=keep_error_events)
        case ErrorGroupStateSet():
            set_group_state(conn, message)
        case CriticalErrorRaised():
            _event(conn, message.timestamp_ms, "critical_error",
                   message.component, _json.encode(message).decode())
        case AIInvocationRecorded(invocation=ai, received_ms=received):
            conn.execute(
                "INSERT INTO ai_invocations (ts, component, environment, model,"
                " operation, duration_s, tokens_in, tokens_out, energy_joules,"
                " gpu_utilization, success) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ai.timestamp_ms or received, ai.component, ai.environment, ai.model,
                 ai.operation, ai.inference_time_ms / 1000, ai.tokens_in,
                 ai.tokens_out, ai.energy_joules, ai.gpu_utilization,
                 int(ai.success)),
            )
        case CarbonSessionEnded():
            conn.execute(
                "INSERT OR REPLACE INTO carbon_sessions VALUES"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (message.session_id, message.operation, message.component,
                 message.model, message.pid, message.started_ms,
                 message.stopped_ms, message.state, message.energy_kwh,
                 message.emissions_kg, message.method),
            )
        case (AlertSaved() | AlertForgotten() | SilenceSaved()
              | NotificationGroupSaved() | NotificationGroupForgotten()
              | AlertCountersSaved() | DeliveryAttempted() | Notification()):
            write_alert_state(conn, message)
        case ErrorGroupChanged():
            _event(conn, message.timestamp_ms, message.change,
                   message.component, _json.encode(message).decode())
        case EngagementRecorded():
            write_engagement(conn, message)
        case AuditRecorded():
            write_audit(conn, message)
        case PersonalDataErased():
            # Deleted content is overwritten (the pages in the file and the
            # WAL frames this commit writes); the WAL is emptied after it.
            conn.execute("PRAGMA secure_delete = ON")
            counts = erase(conn, message)
            log.warning("personal data erased (%s): %s", message.scope, counts)
            return True
        case StoredTextRedacted():
            conn.execute("PRAGMA secure_delete = ON")
            redact(conn, message)
            return True
        case ChannelHealthChanged():
            _event(conn, message.timestamp_ms, "channel_health",
                   message.channel, _json.encode(message).decode())
        case ComponentEvent():
            detail = {"environment": message.environment, **message.detail}
            _event(conn, message.timestamp_ms, message.kind, message.component,
                   _json.encode(detail).decode())
        case _:
            raise TypeError(f"the store cannot write {type(message).__name__}")
    return False


def _event(conn: sqlite3.Connection, ts: int, kind: str, source: str, detail: str) -> None:
    conn.execute("INSERT INTO events (ts, kind, source, detail) VALUES (?, ?, ?, ?)",
                 (ts, kind, source, detail))
