"""The write side of error tracking: one event into its group, inside the store's transaction.

Runs on the store's worker thread, inside `Database.write`'s transaction, so an error
event, its group's new count and state, and its hourly count commit together or not
at all.
"""

from __future__ import annotations

import sqlite3

import msgspec

from ttamond.errors.lifecycle import GroupState, after_event
from ttamond.messages import SEVERITIES, ErrorGroupStateSet, ErrorRecorded

HOUR_MS = 3_600_000
_json = msgspec.json.Encoder()


def record_error(conn: sqlite3.Connection, recorded: ErrorRecorded, *, keep_events: int) -> None:
    """Add one event to its group (creating the group), move the group's state, count
    it in its hour, remember the affected session, and trim the group's old events."""
    event = recorded.event
    ts = event.timestamp_ms or recorded.received_ms
    row = conn.execute(
        "SELECT id, state, resolved_in, severity FROM error_groups WHERE fingerprint = ?",
        (recorded.fingerprint,),
    ).fetchone()
    if row is None:
        group_id = conn.execute(
            "INSERT INTO error_groups (fingerprint, error_type, title, first_seen_ms,"
            " last_seen_ms, count, severity, state, state_changed_ms)"
            " VALUES (?, ?, ?, ?, ?, 1, ?, 'unresolved', ?)",
            (recorded.fingerprint, event.error_type, recorded.title, ts, ts,
             event.severity, recorded.received_ms),
        ).lastrowid
    else:
        group_id, state, resolved_in, severity = row
        new_state = after_event(state, resolved_in, event.release)
        conn.execute(
            "UPDATE error_groups SET count = count + 1,"
            " first_seen_ms = min(first_seen_ms, ?1), last_seen_ms = max(last_seen_ms, ?1),"
            " severity = ?2, state = ?3,"
            " state_changed_ms = CASE WHEN state = ?3 THEN state_changed_ms ELSE ?4 END"
            " WHERE id = ?5",
            (ts, _worse(severity, event.severity), new_state, recorded.received_ms, group_id),
        )
    session = event.user_session_id
    conn.execute(
        "INSERT INTO error_events (group_id, ts, component, environment, severity, release,"
        " message, stack, context, session) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (group_id, ts, event.component, event.environment, event.severity, event.release,
         event.message, _json.encode(event.stack).decode(), _json.encode(event.context).decode(),
         session),
    )
    if session:
        conn.execute("INSERT OR IGNORE INTO error_sessions VALUES (?, ?)", (group_id, session))
    conn.execute(
        "INSERT INTO error_counts VALUES (?, ?, ?, ?, 1) ON CONFLICT DO UPDATE"
        " SET count = count + 1",
        (group_id, ts - ts % HOUR_MS, event.component, event.environment),
    )
    # Keep the newest `keep_events` per group; counts and sessions keep the history.
    conn.execute(
        "DELETE FROM error_events WHERE group_id = ?1 AND id <= (SELECT id FROM error_events"
        " WHERE group_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        (group_id, keep_events),
    )


def set_group_state(conn: sqlite3.Connection, change: ErrorGroupStateSet) -> None:
    """Apply a person's resolve, ignore or reopen to a group (a missing group is a no-op:
    the command checked it exists before sending)."""
    state: GroupState = change.state
    conn.execute(
        "UPDATE error_groups SET state = ?, resolved_in = ?, state_changed_ms = ?"
        " WHERE id = ?",
        (state, change.resolved_in if state == "resolved" else "", change.timestamp_ms,
         change.group_id),
    )


def expire_errors(conn: sqlite3.Connection, before_ms: int) -> int:
    """Delete error history older than `before_ms`, and groups with nothing left;
    returns groups deleted."""
    conn.execute("DELETE FROM error_counts WHERE hour_ts < ?", (before_ms - before_ms % HOUR_MS,))
    conn.execute("DELETE FROM error_events WHERE ts < ?", (before_ms,))
    stale = "SELECT id FROM error_groups WHERE last_seen_ms < ?"
    conn.execute(f"DELETE FROM error_sessions WHERE group_id IN ({stale})", (before_ms,))
    return int(conn.execute("DELETE FROM error_groups WHERE last_seen_ms < ?",
                            (before_ms,)).rowcount)


def _worse(first: str, second: str) -> str:
    rank: dict[str, int] = {name: position for position, name in enumerate(SEVERITIES)}
    return first if rank.get(first, 0) >= rank.get(second, 0) else second
