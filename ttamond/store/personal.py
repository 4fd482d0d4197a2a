"""The store's side of privacy: engagement rows, audit entries, erasure and purge, all
inside the store's transaction, so a change and its audit entry commit together."""

from __future__ import annotations

import sqlite3

import msgspec

from ttamond import audit
from ttamond.messages import (
    AuditRecorded,
    EngagementRecorded,
    PersonalDataErased,
    StoredTextRedacted,
)

_json = msgspec.json.Encoder()


def write_engagement(conn: sqlite3.Connection, row: EngagementRecorded) -> None:
    """Insert one engagement row."""
    conn.execute(
        "INSERT INTO engagement_events (ts, component, environment, event, pseudonym, session,"
        " name, value, chapter, arc, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (row.timestamp_ms, row.component, row.environment, row.event, row.pseudonym,
         row.session, row.name, row.value, row.chapter, row.arc,
         _json.encode(row.extra).decode()))


def write_audit(conn: sqlite3.Connection, entry: AuditRecorded) -> None:
    """Append one entry to the hash chain."""
    audit.append(conn, ts=entry.timestamp_ms, action=entry.action, actor=entry.actor,
                 detail=entry.detail)


def erase(conn: sqlite3.Connection, order: PersonalDataErased) -> dict[str, int]:
    """Delete what the order covers and audit it; returns rows affected per table.

    The caller has turned `secure_delete` on, so deleted content is overwritten, and
    empties the WAL after the commit. The audit entry holds counts and the scope, never
    the pseudonyms erased.
    """
    counts: dict[str, int] = {}
    if order.scope == "subject":
        people = list(order.pseudonyms)
        marks = ",".join("?" * len(people)) or "NULL"
        sessions = [row[0] for row in conn.execute(
            f"SELECT DISTINCT session FROM engagement_events WHERE pseudonym IN ({marks})"
            " AND session IS NOT NULL", people)]
        keys = people + sessions
        both = ",".join("?" * len(keys)) or "NULL"
        counts["engagement_events"] = conn.execute(
            f"DELETE FROM engagement_events WHERE pseudonym IN ({both}) OR session IN ({both})",
            keys + keys).rowcount
        counts["error_sessions"] = conn.execute(
            f"DELETE FROM error_sessions WHERE session IN ({both})", keys).rowcount
        counts["error_events"] = conn.execute(
            f"UPDATE error_events SET session = NULL WHERE session IN ({both})", keys).rowcount
        # Engagement and lifecycle rows of earlier releases, kept as JSON in events.
        events = 0
        for key in keys:
            events += conn.execute(
                "DELETE FROM events WHERE kind IN ('engagement', 'monitoring_started',"
                " 'monitoring_stopped') AND instr(detail, ?) > 0", (key,)).rowcount
        counts["events"] = events
    else:
        counts["engagement_events"] = conn.execute("DELETE FROM engagement_events").rowcount
        counts["events"] = conn.execute(
            "DELETE FROM events WHERE kind = 'engagement'").rowcount
        if order.scope == "all":
            counts["error_sessions"] = conn.execute("DELETE FROM error_sessions").rowcount
            counts["error_events"] = conn.execute(
                "UPDATE error_events SET session = NULL WHERE session IS NOT NULL").rowcount
    action = "erasure" if order.scope == "subject" else "purge"
    audit.append(conn, ts=order.timestamp_ms, action=action, actor=order.actor,
                 detail={"scope": order.scope, "rows": counts,
                         "pseudonyms": len(order.pseudonyms)})
    return counts


REDACTABLE = {"error_events": {"message", "stack", "context"}, "error_groups": {"title"},
              "engagement_events": {"name", "chapter", "arc", "extra"}, "events": {"detail"}}


def redact(conn: sqlite3.Connection, order: StoredTextRedacted) -> int:
    """Replace each cell the privacy scan found with its scrubbed text and audit the hit
    (tables, counts and kinds: never the text). Returns cells changed."""
    changed = 0
    tables: dict[str, int] = {}
    for table, rowid, column, text in order.cells:
        if column not in REDACTABLE.get(table, ()):
            raise ValueError(f"the privacy scan cannot redact {table}.{column}")
        changed += conn.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?",
                                (text, rowid)).rowcount
        tables[table] = tables.get(table, 0) + 1
    audit.append(conn, ts=order.timestamp_ms, action=audit.SCANNER_HIT, actor="daemon",
                 detail={"cells": tables, "kinds": order.kinds})
    return changed


def expire_engagement(conn: sqlite3.Connection, before_ms: int) -> int:
    """Delete engagement rows older than `before_ms`; returns how many."""
    return int(conn.execute("DELETE FROM engagement_events WHERE ts < ?",
                            (before_ms,)).rowcount)
