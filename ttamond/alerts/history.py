"""What happened to alerts, read back from the database: transitions and deliveries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ttamond.store.readonly import open_reader


def read_history(database: Path, *, since_ms: int, limit: int,
                 fingerprint: str = "") -> dict[str, list[dict[str, Any]]]:
    """Transitions (pending, firing, acknowledged, escalated, resolved) and delivery
    attempts since `since_ms`, newest first, at most `limit` of each; only one alert's
    (a fingerprint prefix) when given. Raises sqlite3.Error when the database cannot be
    read."""
    conn = open_reader(database)
    try:
        where, args = "ts >= ?", list[int | str]([since_ms])
        if fingerprint:
            where += " AND fingerprint LIKE ? || '%'"
            args.append(fingerprint)
        transitions = [
            {"timestamp_ms": ts, "fingerprint": fp, "alertname": name, "transition": what,
             "value": value, "labels": json.loads(labels)}
            for ts, fp, name, what, value, labels in conn.execute(
                f"SELECT ts, fingerprint, alertname, transition, value, labels FROM"
                f" alert_history WHERE {where} ORDER BY id DESC LIMIT ?", (*args, limit))]
        delivery_where, delivery_args = "ts >= ?", list[int | str]([since_ms])
        if fingerprint:
            delivery_where += " AND fingerprints LIKE '%' || ? || '%'"
            delivery_args.append(fingerprint)
        deliveries = [
            {"timestamp_ms": ts, "notification_id": nid, "channel": channel, "reason": reason,
             "attempt": attempt, "outcome": outcome, "error": error, "duration_ms": duration}
            for ts, nid, channel, reason, attempt, outcome, error, duration in conn.execute(
                f"SELECT ts, notification_id, channel, reason, attempt, outcome, error,"
                f" duration_ms FROM deliveries WHERE {delivery_where}"
                f" ORDER BY id DESC LIMIT ?", (*delivery_args, limit))]
    finally:
        conn.close()
    return {"transitions": transitions, "deliveries": deliveries}
