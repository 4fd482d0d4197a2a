"""User-engagement metrics from pseudonymised play events: sessions, completion,
retention, progress, session patterns and how engagement relates to outcomes, every
group k-anonymous."""

from __future__ import annotations

import datetime
import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Literal

import msgspec

from ttamond.engagement.anonymity import GroupAggregate, Noise, aggregate, check_k
from ttamond.engagement.stats import bootstrap_ci, spearman

EventKind = Literal[
    "session_start", "session_end", "interaction", "choice", "chapter_complete",
    "quest_complete", "progress", "outcome",
]
Feature = Literal["sessions", "minutes", "interactions"]

DAY_MS: Final = 86_400_000
HORIZONS: Final = (1, 7, 30)
FEATURES: Final[tuple[Feature, ...]] = ("sessions", "minutes", "interactions")
SECTIONS: Final = ("overall", "retention", "progress", "hours", "lengths", "drop_off", "outcomes")
"""The keys of `EngagementMetrics.suppressed`."""
LENGTH_EDGES_MINUTES: Final = (5, 15, 30, 60)
"""Session length buckets: under 5 minutes, 5 to 15, 15 to 30, 30 to 60, 60 and more."""
_Counter = Callable[[int], int]


class EngagementEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One play event, already pseudonymised: no identifier, no free text.

    ``session_id`` is None for events outside a session (a questionnaire's outcome
    score). ``name`` and ``value`` carry the indicator and its reading for ``progress``
    and ``outcome``; ``chapter`` and ``arc`` say where in the story the player was.
    """

    ts_ms: int
    pseudonym: str
    session_id: str | None
    event: EventKind
    name: str | None = None
    value: float | None = None
    chapter: str | None = None
    arc: str | None = None


class Bucket(msgspec.Struct, frozen=True):
    """A released group of sessions: ``people`` and ``sessions`` (noisy when noise is on)
    and their mean length in minutes."""

    key: str
    people: int
    sessions: int
    mean_minutes: float


class RetentionCohort(msgspec.Struct, frozen=True):
    """The pseudonyms first seen on ``day`` (UTC, ISO date): ``people`` of them, and how
    many came back on the next day (``day1``), within 7 days (``day7``) and within 30
    days (``day30``); a horizon is None while it has not been observed to its end, or
    when it crosses a key rotation (pseudonyms change there, so returns are invisible)."""

    day: str
    people: int
    day1: int | None
    day7: int | None
    day30: int | None


class Retention(msgspec.Struct, frozen=True):
    """Shares of all released cohorts together, for each horizon observed: retained
    people over cohort people, summed over the cohorts whose horizon is known."""

    day1: float | None
    day7: float | None
    day30: float | None


class ProgressPoint(msgspec.Struct, frozen=True):
    """The mean of one progress indicator over the readings of one UTC day."""

    name: str
    day: str
    people: int
    readings: int
    mean: float


class OutcomeCorrelation(msgspec.Struct, frozen=True):
    """Spearman's rho between one engagement feature per person and the change of one
    outcome measure (last score minus first), over ``n`` people, with a percentile
    bootstrap interval. ``rho``, ``low`` and ``high`` are None where undefined (a
    constant side, or too few people for an interval)."""

    outcome: str
    feature: Feature
    n: int
    rho: float | None
    low: float | None
    high: float | None


class EngagementMetrics(msgspec.Struct, frozen=True):
    """Everything `engagement_metrics` computes. Counts are noisy when noise is on;
    scalar figures are None when the whole data set holds fewer than k people.
    ``suppressed`` counts, per section, the groups held back for having fewer than k
    distinct pseudonyms."""

    k: int
    people: int
    sessions: int
    mean_session_seconds: float | None
    interactions_per_minute: float | None
    completion_rate: float | None
    retention: list[RetentionCohort]
    retention_overall: Retention | None
    progress: list[ProgressPoint]
    hours: list[Bucket]
    lengths: list[Bucket]
    drop_off: list[Bucket]
    outcomes: list[OutcomeCorrelation]
    suppressed: dict[str, int]


class _Session(msgspec.Struct):
    pseudonym: str
    start_ms: int
    end_ms: int
    interactions: int = 0
    started: bool = False
    completed: bool = False
    ended: bool = False
    place: str | None = None  # where the last event with a chapter or arc was

    @property
    def minutes(self) -> float:
        return max(0, self.end_ms - self.start_ms) / 60_000


def engagement_metrics(
    events: Iterable[EngagementEvent],
    *,
    k: int,
    noise: Noise | None = None,
    until_ms: int | None = None,
    rotate_every_days: float | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> EngagementMetrics:
    """Compute the engagement metrics of ``events`` (in any order).

    Sessions: a session lasts from its ``session_start`` (else its first event) to its
    ``session_end`` (else its last event); it belongs to the pseudonym of its first
    event. Interactions are ``interaction`` and ``choice`` events; interaction frequency
    is all interactions in sessions over all session minutes. Completion rate: sessions
    with a ``chapter_complete`` or ``quest_complete`` over all sessions. Days are UTC.

    Retention: a pseudonym is seen on a day when it has a session event that day, and
    first seen on the first such day in ``events``. Of the pseudonyms first seen on day
    D, ``day1`` counts those seen on D+1, ``day7`` those seen on any of D+1 to D+7,
    ``day30`` on any of D+1 to D+30. A horizon counts only once observed to its end:
    ``until_ms`` (default: the last event) must fall at or after the end of its last
    day. With ``rotate_every_days``, a horizon that reaches into another key epoch is
    left out, as its returners carry other pseudonyms.

    Drop-off: for sessions that have a ``session_end`` and no completion, the last
    ``arc/chapter`` they reached (``-`` for a missing part). Outcomes: per pseudonym and
    outcome name, the last score minus the first (two readings or more); correlated with
    that pseudonym's sessions, session minutes and interactions.

    Every group (cohort, day, bucket, outcome) with fewer than ``k`` distinct pseudonyms
    is left out and counted in ``suppressed``. Raises ValueError for a bad ``k``.
    """
    check_k(k)
    ordered = sorted(events, key=lambda event: event.ts_ms)
    sessions = _sessions(ordered)
    everyone = {event.pseudonym for event in ordered}
    suppressed = dict.fromkeys(SECTIONS, 0)
    rng = random.Random(seed)

    def count(true_count: int) -> int:
        return true_count if noise is None else noise.count(true_count)

    visible = len(everyone) >= k
    if not visible:
        suppressed["overall"] += 1
    runs = list(sessions.values())
    minutes = math.fsum(session.minutes for session in runs)
    interactions = sum(session.interactions for session in runs)
    end_ms = until_ms if until_ms is not None else (ordered[-1].ts_ms if ordered else 0)
    cohorts, overall = _retention(
        ordered, k, count, end_ms, rotate_every_days, suppressed
    )
    return EngagementMetrics(
        k=k,
        people=count(len(everyone)) if visible else 0,
        sessions=count(len(runs)) if visible else 0,
        mean_session_seconds=minutes * 60 / len(runs) if visible and runs else None,
        interactions_per_minute=interactions / minutes if visible and minutes > 0 else None,
        completion_rate=(
            sum(session.completed for session in runs) / len(runs) if visible and runs else None
        ),
        retention=cohorts,
        retention_overall=overall,
        progress=_progress(ordered, k, noise, suppressed),
        hours=_buckets(
            ((_hour(session.start_ms), session) for session in runs), "hours", k, noise, suppressed
        ),
        lengths=_buckets(
            ((_length_bucket(session.minutes), session) for session in runs),
            "lengths", k, noise, suppressed,
        ),
        drop_off=_buckets(
            (
                (session.place or "-/-", session)
                for session in runs
                if session.ended and not session.completed
            ),
            "drop_off", k, noise, suppressed,
        ),
        outcomes=_outcomes(ordered, runs, k, resamples, rng, suppressed),
        suppressed=suppressed,
    )


def _sessions(ordered: Sequence[EngagementEvent]) -> dict[str, _Session]:
    sessions: dict[str, _Session] = {}
    for event in ordered:
        if event.session_id is None:
            continue
        session = sessions.get(event.session_id)
        if session is None:
            session = sessions[event.session_id] = _Session(
                event.pseudonym, event.ts_ms, event.ts_ms
            )
        match event.event:
            case "session_start":
                if not session.started:
                    session.start_ms = event.ts_ms
                    session.started = True
            case "session_end":
                session.end_ms = event.ts_ms
                session.ended = True
            case "interaction" | "choice":
                session.interactions += 1
            case "chapter_complete" | "quest_complete":
                session.completed = True
        if not session.ended:
            session.end_ms = max(session.end_ms, event.ts_ms)
        if event.chapter is not None or event.arc is not None:
            session.place = f"{event.arc or '-'}/{event.chapter or '-'}"
    return sessions


def _day(ts_ms: int) -> int:
    return ts_ms // DAY_MS


def _iso(day: int) -> str:
    return (datetime.date(1970, 1, 1) + datetime.timedelta(days=day)).isoformat()


def _hour(ts_ms: int) -> str:
    return f"{ts_ms // 3_600_000 % 24:02d}"


def _length_bucket(minutes: float) -> str:
    lower = 0
    for edge in LENGTH_EDGES_MINUTES:
        if minutes < edge:
            return f"{lower}-{edge}m"
        lower = edge
    return f"{lower}m+"


def _retention(
    ordered: Sequence[EngagementEvent],
    k: int,
    count: _Counter,
    end_ms: int,
    rotate_every_days: float | None,
    suppressed: dict[str, int],
) -> tuple[list[RetentionCohort], Retention | None]:
    seen: dict[str, set[int]] = defaultdict(set)
    for event in ordered:
        if event.session_id is not None:
            seen[event.pseudonym].add(_day(event.ts_ms))
    cohorts: dict[int, list[set[int]]] = defaultdict(list)
    for days in seen.values():
        cohorts[min(days)].append(days)
    released: list[RetentionCohort] = []
    people_at: dict[int, int] = dict.fromkeys(HORIZONS, 0)
    retained_at: dict[int, int] = dict.fromkeys(HORIZONS, 0)
    for day in sorted(cohorts):
        members = cohorts[day]
        if len(members) < k:
            suppressed["retention"] += 1
            continue
        counts: dict[int, int | None] = {}
        for horizon in HORIZONS:
            if not _observable(day, horizon, end_ms, rotate_every_days):
                counts[horizon] = None
                continue
            back = sum(
                any(day < other <= day + horizon for other in days) for days in members
            )
            people_at[horizon] += len(members)
            retained_at[horizon] += back
            counts[horizon] = count(back)
        released.append(
            RetentionCohort(_iso(day), count(len(members)), counts[1], counts[7], counts[30])
        )
    shares: dict[int, float | None] = dict.fromkeys(HORIZONS)
    for horizon in HORIZONS:
        cohort = count(people_at[horizon]) if people_at[horizon] else 0
        if cohort > 0:
            shares[horizon] = min(1.0, count(retained_at[horizon]) / cohort)
    overall = Retention(shares[1], shares[7], shares[30]) if released else None
    return released, overall


def _observable(day: int, horizon: int, end_ms: int, rotate_every_days: float | None) -> bool:
    last_ms = (day + horizon + 1) * DAY_MS - 1
    if end_ms < last_ms:
        return False
    if rotate_every_days is None:
        return True
    epoch_ms = rotate_every_days * DAY_MS
    return math.floor(day * DAY_MS / epoch_ms) == math.floor(last_ms / epoch_ms)


def _progress(
    ordered: Sequence[EngagementEvent], k: int, noise: Noise | None, suppressed: dict[str, int]
) -> list[ProgressPoint]:
    rows = (
        ((event.name, _day(event.ts_ms)), event.pseudonym, event.value)
        for event in ordered
        if event.event == "progress" and event.name is not None and event.value is not None
        and math.isfinite(event.value)
    )
    released = aggregate(rows, k=k, noise=noise)
    suppressed["progress"] += released.suppressed
    return sorted(
        (
            ProgressPoint(group.key[0], _iso(group.key[1]), group.people, group.rows, group.mean)
            for group in released.groups
        ),
        key=lambda point: (point.name, point.day),
    )


def _buckets(
    keyed: Iterable[tuple[str, _Session]],
    section: str,
    k: int,
    noise: Noise | None,
    suppressed: dict[str, int],
) -> list[Bucket]:
    rows = ((key, session.pseudonym, session.minutes) for key, session in keyed)
    released = aggregate(rows, k=k, noise=noise)
    suppressed[section] += released.suppressed
    return sorted((_bucket(group) for group in released.groups), key=lambda bucket: bucket.key)


def _bucket(group: GroupAggregate[str]) -> Bucket:
    return Bucket(group.key, group.people, group.rows, group.mean)


def _outcomes(
    ordered: Sequence[EngagementEvent],
    runs: Sequence[_Session],
    k: int,
    resamples: int,
    rng: random.Random,
    suppressed: dict[str, int],
) -> list[OutcomeCorrelation]:
    features: dict[str, dict[Feature, float]] = defaultdict(
        lambda: dict.fromkeys(FEATURES, 0.0)
    )
    for session in runs:
        person = features[session.pseudonym]
        person["sessions"] += 1
        person["minutes"] += session.minutes
        person["interactions"] += session.interactions
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for event in ordered:
        if (
            event.event == "outcome" and event.name is not None and event.value is not None
            and math.isfinite(event.value)
        ):
            scores[event.name][event.pseudonym].append(event.value)
    results: list[OutcomeCorrelation] = []
    for outcome in sorted(scores):
        changes = {
            pseudonym: readings[-1] - readings[0]
            for pseudonym, readings in scores[outcome].items()
            if len(readings) >= 2
        }
        if len(changes) < k:
            suppressed["outcomes"] += 1
            continue
        people = sorted(changes)
        ys = [changes[pseudonym] for pseudonym in people]
        for feature in FEATURES:
            xs = [features[pseudonym][feature] for pseudonym in people]
            rho = spearman(xs, ys) if len(people) >= 2 else math.nan
            low, high = (
                bootstrap_ci(xs, ys, spearman, resamples=resamples, rng=rng)
                if len(people) >= 2 else (math.nan, math.nan)
            )
            results.append(
                OutcomeCorrelation(outcome, feature, len(people), _number(rho), _number(low),
                                   _number(high))
            )
    return results


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value
