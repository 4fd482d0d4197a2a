"""The engagement report: stored play events read back and turned into k-anonymous
aggregates (`ttamond engagement report`, the `engagement_report` command)."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any, get_args

import msgspec
import trio

from ttamond.config import PrivacyConfig
from ttamond.control import CommandError, Handler
from ttamond.engagement.anonymity import Noise
from ttamond.engagement.metrics import (
    EngagementEvent,
    EngagementMetrics,
    EventKind,
    engagement_metrics,
)
from ttamond.messages import now_ms
from ttamond.store.readonly import open_reader

KINDS = frozenset(get_args(EventKind))


def read_events(database: Path, *, since_ms: int) -> list[EngagementEvent]:
    """Engagement rows since `since_ms` of the kinds the metrics know (others are
    stored, not analysed). Raises sqlite3.Error."""
    conn = open_reader(database)
    try:
        rows = conn.execute(
            "SELECT ts, pseudonym, session, event, name, value, chapter, arc"
            " FROM engagement_events WHERE ts >= ? AND pseudonym IS NOT NULL ORDER BY ts",
            (since_ms,)).fetchall()
    finally:
        conn.close()
    return [EngagementEvent(ts_ms=ts, pseudonym=pseudonym, session_id=session, event=event,
                            name=name, value=value, chapter=chapter, arc=arc)
            for ts, pseudonym, session, event, name, value, chapter, arc in rows
            if event in KINDS]


def report(database: Path, config: PrivacyConfig, *, since_ms: int,
           until_ms: int) -> EngagementMetrics:
    """The metrics of the events since `since_ms`, k-anonymous, noisy when epsilon is
    set. Raises sqlite3.Error."""
    events = read_events(database, since_ms=since_ms)
    noise = Noise(config.epsilon, random.SystemRandom()) if config.epsilon > 0 else None
    return engagement_metrics(events, k=config.k, noise=noise, until_ms=until_ms,
                              rotate_every_days=config.rotate_every_days)


def engagement_handlers(database: Path, config: Any) -> dict[str, Handler]:
    """`engagement_report` (args: `since_ms`); `config()` gives the privacy settings."""

    async def engagement_report(args: dict[str, Any]) -> Any:
        since = args.get("since_ms", now_ms() - 30 * 86_400_000)
        if not isinstance(since, int):
            raise CommandError("bad_request", "'since_ms' must be an integer")
        settings: PrivacyConfig = config()
        try:
            metrics = await trio.to_thread.run_sync(
                lambda: report(database, settings, since_ms=since, until_ms=now_ms()))
        except sqlite3.Error as exc:
            raise CommandError("not_available", f"cannot read {database}: {exc}") from None
        return {"since_ms": since, **msgspec.to_builtins(metrics)}

    def section(*keys: str) -> Handler:
        async def handler(args: dict[str, Any]) -> Any:
            full = await engagement_report(args)
            return {key: full[key] for key in ("since_ms", "k", "people", *keys)}

        return handler

    return {
        "engagement_report": engagement_report,
        # The platform's names, each for its part of the report.
        "get_engagement_metrics": engagement_report,
        "analyze_session_patterns": section("hours", "lengths", "drop_off", "suppressed"),
        "correlate_engagement_outcomes": section("outcomes", "suppressed"),
        "generate_engagement_insights": engagement_report,
    }
