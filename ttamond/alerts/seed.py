"""Refill the escalator's windows from the database at start, so a restart does not
blind the rules whose windows are long (a day of emissions, an hour's average)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from ttamond.alerts.windows import POINTS_PER_WINDOW, Windows
from ttamond.store.queries import QueryError, Reader, Retention

log = logging.getLogger(__name__)

SECOND_MS = 1000


def seed_windows(windows: Windows, database: Path, *, now_ms: int,
                 retention: Retention) -> int:
    """Add the stored history each watched selector needs; returns the points added.

    Reads at most POINTS_PER_WINDOW points per series (the last value of each step).
    A database that is missing or cannot be read leaves the windows to fill from live
    data, as they would without this, and says why in the log.
    """
    if not database.exists():
        return 0
    added = 0
    try:
        reader = Reader(database)
    except sqlite3.Error as exc:
        log.warning("alerts: cannot read %s to refill rule windows: %s", database, exc)
        return 0
    try:
        for selector, horizon in windows.wanted:
            step = max(SECOND_MS, horizon // POINTS_PER_WINDOW)
            try:
                result = reader.query(selector, start_ms=now_ms - horizon, end_ms=now_ms,
                                      step_ms=step, aggregate="last", retention=retention,
                                      now_ms=now_ms)
            except (QueryError, sqlite3.Error) as exc:
                log.warning("alerts: cannot refill the window of %s: %s", selector, exc)
                continue
            for series in result.series:
                labels = tuple(sorted(series.labels.items()))
                for ts, value in series.points:
                    windows.add(series.name, labels, ts, value)
                    added += 1
    finally:
        reader.close()
    return added
