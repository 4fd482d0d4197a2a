"""The report's error patterns: the window's top error groups with their counts in the
window, regressions, spikes and rates, from the error tables (errors/queries.py)."""

from __future__ import annotations

import sqlite3
from collections import Counter

import msgspec

from ttamond.errors.queries import HOUR_MS, analyze_patterns
from ttamond.report.model import Chart, ChartLine, ErrorGroupRow, ErrorPatterns
from ttamond.report.window import Window

TOP_GROUPS = 10


class _Regression(msgspec.Struct):
    fingerprint: str


_regression = msgspec.json.Decoder(_Regression)


def read_errors(conn: sqlite3.Connection, window: Window, *,
                top: int = TOP_GROUPS) -> tuple[ErrorPatterns, Chart]:
    """The window's error patterns and the chart of events per hour.

    Error counts are kept per hour, so the window is read from the start of the hour
    it starts in (as `ttamond errors patterns` does). Raises sqlite3.Error.
    """
    patterns = analyze_patterns(conn, since_ms=window.since_ms, until_ms=window.until_ms,
                                top=top)
    first_hour = window.since_ms - window.since_ms % HOUR_MS
    hours = {hour: count for hour, count in conn.execute(
        "SELECT hour_ts, sum(count) FROM error_counts WHERE hour_ts >= ? AND hour_ts < ?"
        " GROUP BY 1 ORDER BY 1", (first_hour, window.until_ms))}
    in_window = dict(conn.execute(
        "SELECT group_id, sum(count) FROM error_counts WHERE hour_ts >= ? AND hour_ts < ?"
        " GROUP BY 1", (first_hour, window.until_ms)).fetchall())
    regressed = Counter(_regression.decode(detail).fingerprint for (detail,) in conn.execute(
        "SELECT detail FROM events WHERE kind = 'regression' AND ts >= ? AND ts <= ?",
        (window.since_ms, window.until_ms)))
    rows = [ErrorGroupRow(id=group.id, title=group.title, error_type=group.error_type,
                          state=group.state, severity=group.severity,
                          events=in_window.get(group.id, 0), total=group.count,
                          first_seen_ms=group.first_seen_ms, last_seen_ms=group.last_seen_ms,
                          components=group.components,
                          regressions=regressed[group.fingerprint])
            for group in patterns.top_groups]
    errors = ErrorPatterns(
        events=patterns.events, groups=len(in_window), new_groups=len(patterns.new_groups),
        regressions=sum(regressed.values()), top=rows, spikes=patterns.spikes,
        per_component=patterns.per_component, per_hour=sorted(hours.items()))
    # Every hour of the window, so an hour without errors is drawn as 0, not a gap.
    points = [(hour, float(hours.get(hour, 0)))
              for hour in range(first_hour, window.until_ms, HOUR_MS)] if hours else []
    chart = Chart(section="errors", title="Error events per hour", unit="", step_ms=HOUR_MS,
                  lines=[ChartLine("errors", points)])
    return errors, chart
