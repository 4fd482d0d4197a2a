"""Reading error groups: lists, one group in full, patterns over a time range, totals.

Each function takes a read-only connection (readers never block the store's writer)
and runs on a worker thread.
"""

from __future__ import annotations

import math
import re
import sqlite3
from typing import Any

import msgspec

from ttamond.errors.lifecycle import GROUP_STATES, GroupState

HOUR_MS = 3_600_000
BASELINE_HOURS = 7 * 24
SPIKE_MIN_COUNT = 5
SPIKE_SIGMAS = 3.0


class GroupNotFound(Exception):
    """No group matches the id or fingerprint given."""


class GroupSummary(msgspec.Struct, frozen=True):
    """One error group, as lists show it."""

    id: int
    fingerprint: str
    error_type: str
    title: str
    state: GroupState
    resolved_in: str
    severity: str
    count: int
    first_seen_ms: int
    last_seen_ms: int
    sessions: int
    components: list[str]
    environments: list[str]


class EventView(msgspec.Struct, frozen=True):
    """One stored event of a group, with its stack and context."""

    id: int
    timestamp_ms: int
    component: str
    environment: str
    severity: str
    release: str
    message: str
    stack: list[dict[str, Any]]
    context: dict[str, Any]
    session: str | None


class GroupDetail(msgspec.Struct, frozen=True):
    """A group with its latest events, newest first."""

    group: GroupSummary
    events: list[EventView]


class Spike(msgspec.Struct, frozen=True):
    """An hour in which a group occurred far more often than in its own past week."""

    group_id: int
    title: str
    hour_ms: int
    count: int
    baseline_per_hour: float


class ComponentRate(msgspec.Struct, frozen=True):
    """Errors of one component over the range."""

    component: str
    events: int
    per_hour: float
    groups: int


class Patterns(msgspec.Struct, frozen=True):
    """What changed in a time range: new groups, spikes, the top groups, rates."""

    since_ms: int
    until_ms: int
    events: int
    new_groups: list[GroupSummary]
    spikes: list[Spike]
    top_groups: list[GroupSummary]
    per_component: list[ComponentRate]


_SUMMARY = (
    "SELECT g.id, g.fingerprint, g.error_type, g.title, g.state, g.resolved_in, g.severity,"
    " g.count, g.first_seen_ms, g.last_seen_ms,"
    " (SELECT count(*) FROM error_sessions s WHERE s.group_id = g.id),"
    " (SELECT group_concat(DISTINCT component) FROM error_counts c WHERE c.group_id = g.id),"
    " (SELECT group_concat(DISTINCT environment) FROM error_counts c WHERE c.group_id = g.id)"
    " FROM error_groups g"
)


def list_groups(
    conn: sqlite3.Connection,
    *,
    state: str | None = None,
    component: str | None = None,
    since_ms: int | None = None,
    limit: int = 50,
) -> list[GroupSummary]:
    """Groups, most recently seen first, filtered by state, component and last seen."""
    if state is not None and state not in GROUP_STATES:
        raise ValueError(f"state: {state!r} is not one of {', '.join(GROUP_STATES)}")
    where: list[str] = ["true"]
    args: list[object] = []
    if state is not None:
        where.append("g.state = ?")
        args.append(state)
    if since_ms is not None:
        where.append("g.last_seen_ms >= ?")
        args.append(since_ms)
    if component is not None:
        where.append("g.id IN (SELECT group_id FROM error_counts WHERE component = ?)")
        args.append(component)
    rows = conn.execute(
        f"{_SUMMARY} WHERE {' AND '.join(where)} ORDER BY g.last_seen_ms DESC LIMIT ?",
        (*args, limit),
    )
    return [_summary(row) for row in rows]


def find_group(conn: sqlite3.Connection, reference: str) -> GroupSummary:
    """A group by id (`12`) or by fingerprint prefix (at least 6 characters).

    Raises GroupNotFound, naming the reference, when none or several match.
    """
    # Ids: ASCII digits few enough for SQLite's integers. Prefixes compare exactly
    # (LIKE would read % and _ in a reference as wildcards).
    if re.fullmatch(r"[0-9]{1,18}", reference):
        rows = conn.execute(f"{_SUMMARY} WHERE g.id = ?", (int(reference),)).fetchall()
    elif len(reference) >= 6:
        rows = conn.execute(f"{_SUMMARY} WHERE substr(g.fingerprint, 1, ?) = ? LIMIT 2",
                            (len(reference), reference.lower())).fetchall()
    else:
        raise GroupNotFound(f"{reference!r}: give a group id or at least 6 characters of a"
                            " fingerprint")
    if not rows:
        raise GroupNotFound(f"no error group {reference!r}")
    if len(rows) > 1:
        raise GroupNotFound(f"{reference!r} matches several groups; give more characters")
    return _summary(rows[0])


def show_group(conn: sqlite3.Connection, reference: str, *, events: int = 10) -> GroupDetail:
    """A group and its latest events with stack and context."""
    group = find_group(conn, reference)
    rows = conn.execute(
        "SELECT id, ts, component, environment, severity, release, message, stack, context,"
        " session FROM error_events WHERE group_id = ? ORDER BY id DESC LIMIT ?",
        (group.id, events),
    )
    return GroupDetail(group=group, events=[
        EventView(id=row[0], timestamp_ms=row[1], component=row[2], environment=row[3],
                  severity=row[4], release=row[5], message=row[6],
                  stack=msgspec.json.decode(row[7]), context=msgspec.json.decode(row[8]),
                  session=row[9])
        for row in rows
    ])


def analyze_patterns(conn: sqlite3.Connection, *, since_ms: int, until_ms: int,
                     top: int = 10) -> Patterns:
    """New groups, spikes against each group's own past week, top groups and the
    error rate per component, between `since_ms` and `until_ms`."""
    first_hour, last_hour = since_ms - since_ms % HOUR_MS, until_ms
    counts: dict[int, dict[int, int]] = {}
    for group_id, hour, count in conn.execute(
        "SELECT group_id, hour_ts, sum(count) FROM error_counts WHERE hour_ts >= ? AND"
        " hour_ts < ? GROUP BY 1, 2",
        (first_hour - BASELINE_HOURS * HOUR_MS, last_hour),
    ):
        counts.setdefault(group_id, {})[hour] = count
    in_range = {gid: sum(c for h, c in hours.items() if h >= first_hour)
                for gid, hours in counts.items()}
    in_range = {gid: total for gid, total in in_range.items() if total}
    summaries = {g.id: g for g in _summaries(conn, list(in_range))}
    spikes = [spike for gid, hours in counts.items() if gid in summaries
              if (spike := _spike(summaries[gid], hours, first_hour)) is not None]
    ranked = sorted(in_range, key=lambda gid: -in_range[gid])
    hours = max((until_ms - since_ms) / HOUR_MS, 1 / 60)
    per_component = [
        ComponentRate(component=component, events=events, per_hour=round(events / hours, 3),
                      groups=groups)
        for component, events, groups in conn.execute(
            "SELECT component, sum(count), count(DISTINCT group_id) FROM error_counts"
            " WHERE hour_ts >= ? AND hour_ts < ? GROUP BY 1 ORDER BY 2 DESC",
            (first_hour, last_hour),
        )
    ]
    return Patterns(
        since_ms=since_ms, until_ms=until_ms, events=sum(in_range.values()),
        new_groups=[g for g in summaries.values() if g.first_seen_ms >= since_ms],
        spikes=sorted(spikes, key=lambda s: -s.count),
        top_groups=[summaries[gid] for gid in ranked[:top]],
        per_component=per_component,
    )


def error_metrics(conn: sqlite3.Connection, *, since_ms: int) -> dict[str, Any]:
    """Totals: groups by state, and events since `since_ms` by component and severity."""
    by_state = dict.fromkeys(GROUP_STATES, 0)
    by_state.update(conn.execute("SELECT state, count(*) FROM error_groups GROUP BY 1"))
    events = dict(conn.execute(
        "SELECT component, sum(count) FROM error_counts WHERE hour_ts >= ? GROUP BY 1",
        (since_ms - since_ms % HOUR_MS,),
    ))
    return {"groups": by_state, "events_by_component": events, "since_ms": since_ms}


def _spike(group: GroupSummary, hours: dict[int, int], first_hour: int) -> Spike | None:
    baseline = [hours.get(first_hour - (k + 1) * HOUR_MS, 0) for k in range(BASELINE_HOURS)]
    recent = {hour: count for hour, count in hours.items() if hour >= first_hour}
    hour, peak = max(recent.items(), key=lambda item: item[1])
    mean = sum(baseline) / len(baseline)
    spread = math.sqrt(sum((c - mean) ** 2 for c in baseline) / len(baseline))
    # A group quiet all week has no spread: floor it at a Poisson-like sqrt(mean), and
    # at one, so a handful of events is not called a spike.
    spread = max(spread, math.sqrt(mean), 1.0)
    if peak < SPIKE_MIN_COUNT or peak <= mean + SPIKE_SIGMAS * spread:
        return None
    return Spike(group_id=group.id, title=group.title, hour_ms=hour, count=peak,
                 baseline_per_hour=round(mean, 3))


def _summaries(conn: sqlite3.Connection, ids: list[int]) -> list[GroupSummary]:
    found: list[GroupSummary] = []
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        marks = ",".join("?" * len(part))
        found += [_summary(row) for row in conn.execute(f"{_SUMMARY} WHERE g.id IN ({marks})",
                                                        part)]
    return found


def _summary(row: tuple[Any, ...]) -> GroupSummary:
    return GroupSummary(
        id=row[0], fingerprint=row[1], error_type=row[2], title=row[3], state=row[4],
        resolved_in=row[5], severity=row[6], count=row[7], first_seen_ms=row[8],
        last_seen_ms=row[9], sessions=row[10], components=sorted((row[11] or "").split(",")
                                                                 if row[11] else []),
        environments=sorted(row[12].split(",") if row[12] else []),
    )
