"""Engagement metrics against numbers worked out by hand on a small fixed data set."""

from __future__ import annotations

import math
import random

import pytest

from ttamond.engagement.anonymity import Noise
from ttamond.engagement.metrics import (
    Bucket,
    EngagementEvent,
    EventKind,
    OutcomeCorrelation,
    ProgressPoint,
    Retention,
    RetentionCohort,
    engagement_metrics,
)

DAY0_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC; day 20454, a multiple of 7
DAY_MS = 86_400_000


def at(day: int, hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return DAY0_MS + day * DAY_MS + (int(hours) * 60 + int(minutes)) * 60_000


def event(
    day: int, hhmm: str, who: str, session: str | None, kind: EventKind, *,
    name: str | None = None, value: float | None = None,
    chapter: str | None = None, arc: str | None = None,
) -> EngagementEvent:
    return EngagementEvent(
        ts_ms=at(day, hhmm), pseudonym=who, session_id=session, event=kind, name=name,
        value=value, chapter=chapter, arc=arc,
    )


def data() -> list[EngagementEvent]:
    """Seven sessions of five people (a to e) over days 0 to 5, outcome scores later.

    session  who  day  start  minutes  interactions  completed  ended  last place
    s1       a    0    10:00  20       4 (1 choice)  yes        yes    intro/c1
    s2       b    0    10:30  10       2             no         yes    intro/c1
    s3       a    1    09:00  30       1             yes        yes    -
    s4       c    0    22:00  4        1             no         yes    intro/c2
    s5       b    5    10:00  70       6             no         yes    intro/c2
    s6       d    0    10:10  3        1             no         no     -
    s7       e    2    12:00  5        0             no         yes    -
    """
    events = [
        event(0, "10:00", "a", "s1", "session_start"),
        event(0, "10:05", "a", "s1", "interaction", chapter="c1", arc="intro"),
        event(0, "10:06", "a", "s1", "interaction"),
        event(0, "10:07", "a", "s1", "choice"),
        event(0, "10:08", "a", "s1", "interaction"),
        event(0, "10:10", "a", "s1", "progress", name="mood", value=3),
        event(0, "10:15", "a", "s1", "chapter_complete", chapter="c1", arc="intro"),
        event(0, "10:20", "a", "s1", "session_end"),
        event(0, "10:30", "b", "s2", "session_start"),
        event(0, "10:32", "b", "s2", "interaction"),
        event(0, "10:35", "b", "s2", "interaction", chapter="c1", arc="intro"),
        event(0, "10:36", "b", "s2", "progress", name="mood", value=5),
        event(0, "10:40", "b", "s2", "session_end"),
        event(1, "09:00", "a", "s3", "session_start"),
        event(1, "09:10", "a", "s3", "interaction"),
        event(1, "09:12", "a", "s3", "progress", name="mood", value=4),
        event(1, "09:20", "a", "s3", "quest_complete"),
        event(1, "09:30", "a", "s3", "session_end"),
        event(0, "22:00", "c", "s4", "session_start"),
        event(0, "22:01", "c", "s4", "interaction", chapter="c2", arc="intro"),
        event(0, "22:02", "c", "s4", "progress", name="mood", value=7),
        event(0, "22:04", "c", "s4", "session_end"),
        event(5, "10:00", "b", "s5", "session_start"),
        *(event(5, time, "b", "s5", "interaction") for time in ("10:10", "10:20", "10:30",
                                                                 "10:40", "10:45")),
        event(5, "10:50", "b", "s5", "interaction", chapter="c2", arc="intro"),
        event(5, "11:10", "b", "s5", "session_end"),
        event(0, "10:10", "d", "s6", "session_start"),
        event(0, "10:13", "d", "s6", "interaction"),
        event(2, "12:00", "e", "s7", "session_start"),
        event(2, "12:05", "e", "s7", "session_end"),
    ]
    scores = {"a": (10, 6), "b": (12, 11), "c": (8, 8), "d": (15, 7)}
    for who, (first, last) in scores.items():
        events.append(event(0, "08:00", who, None, "outcome", name="phq9", value=first))
        events.append(event(30, "08:00", who, None, "outcome", name="phq9", value=last))
    events.append(event(0, "08:00", "e", None, "outcome", name="phq9", value=9))
    events.append(event(0, "08:00", "a", None, "outcome", name="gad7", value=5))
    events.append(event(9, "08:00", "a", None, "outcome", name="gad7", value=4))
    random.Random(7).shuffle(events)  # input order must not matter
    return events


UNTIL_MS = DAY0_MS + 40 * DAY_MS


def test_session_figures() -> None:
    metrics = engagement_metrics(data(), k=2, until_ms=UNTIL_MS)
    assert metrics.people == 5
    assert metrics.sessions == 7
    # 20 + 10 + 30 + 4 + 70 + 3 + 5 = 142 minutes over 7 sessions.
    assert metrics.mean_session_seconds == pytest.approx(142 * 60 / 7)
    assert metrics.interactions_per_minute == pytest.approx(15 / 142)
    assert metrics.completion_rate == pytest.approx(2 / 7)


def test_session_patterns_suppress_groups_under_k() -> None:
    metrics = engagement_metrics(data(), k=2, until_ms=UNTIL_MS)
    # Hour 10: s1 (a), s2 (b), s5 (b), s6 (d); 09 (a), 22 (c) and 12 (e) are one person.
    assert metrics.hours == [Bucket("10", people=3, sessions=4, mean_minutes=25.75)]
    assert metrics.lengths == [
        Bucket("0-5m", people=2, sessions=2, mean_minutes=3.5),  # s4 (c), s6 (d)
        Bucket("5-15m", people=2, sessions=2, mean_minutes=7.5),  # s2 (b), s7 (e)
    ]
    # Ended without completing: s2 at intro/c1 (b alone), s4 and s5 at intro/c2, s7 nowhere.
    assert metrics.drop_off == [Bucket("intro/c2", people=2, sessions=2, mean_minutes=37.0)]
    assert metrics.suppressed["hours"] == 3
    assert metrics.suppressed["lengths"] == 3
    assert metrics.suppressed["drop_off"] == 2


def test_retention_cohorts() -> None:
    metrics = engagement_metrics(data(), k=2, until_ms=UNTIL_MS)
    # Day 0: a, b, c, d. a returns on day 1, b on day 5. Day 2: e alone, suppressed.
    assert metrics.retention == [RetentionCohort("2026-01-01", 4, day1=1, day7=2, day30=2)]
    assert metrics.retention_overall == Retention(day1=0.25, day7=0.5, day30=0.5)
    assert metrics.suppressed["retention"] == 1


def test_retention_horizons_not_yet_observed_are_none() -> None:
    # Observed to the end of day 2: day 1 is known for the day 0 cohort, day 7 is not.
    metrics = engagement_metrics(data(), k=2, until_ms=at(3, "00:00"))
    assert metrics.retention == [RetentionCohort("2026-01-01", 4, day1=1, day7=None, day30=None)]
    assert metrics.retention_overall == Retention(day1=0.25, day7=None, day30=None)
    # The last day-1 millisecond has to be observed, not just reached.
    early = engagement_metrics(data(), k=2, until_ms=at(2, "00:00") - 2)
    assert early.retention[0].day1 is None


def test_retention_across_a_key_rotation_is_left_out() -> None:
    # Weekly keys: day 0 opens an epoch, so day 7 lies in the next one.
    metrics = engagement_metrics(data(), k=2, until_ms=UNTIL_MS, rotate_every_days=7)
    assert metrics.retention == [RetentionCohort("2026-01-01", 4, day1=1, day7=None, day30=None)]


def test_progress_daily_means() -> None:
    metrics = engagement_metrics(data(), k=2, until_ms=UNTIL_MS)
    # Day 0: a 3, b 5, c 7. Day 1: a alone.
    assert metrics.progress == [ProgressPoint("mood", "2026-01-01", 3, 3, 5.0)]
    assert metrics.suppressed["progress"] == 1


def test_outcome_correlations_by_hand() -> None:
    metrics = engagement_metrics(data(), k=2, until_ms=UNTIL_MS, resamples=200, seed=3)
    # phq9 change (last - first): a -4, b -1, c 0, d -8; e has one reading; gad7 is a alone.
    # sessions a 2, b 2, c 1, d 1 -> ranks 3.5, 3.5, 1.5, 1.5 against 2, 3, 4, 1: rho 0.
    # minutes a 50, b 80, c 4, d 3 -> ranks 3, 4, 2, 1: sum of products 2 over 5: rho 0.4.
    # interactions a 5, b 8, c 1, d 1 -> 3, 4, 1.5, 1.5: 0.5 / sqrt(4.5 * 5).
    by_feature = {result.feature: result for result in metrics.outcomes}
    assert [result.outcome for result in metrics.outcomes] == ["phq9"] * 3
    assert {result.n for result in metrics.outcomes} == {4}
    assert by_feature["sessions"].rho == pytest.approx(0.0, abs=1e-12)
    assert by_feature["minutes"].rho == pytest.approx(0.4)
    assert by_feature["interactions"].rho == pytest.approx(0.5 / math.sqrt(22.5))
    for result in metrics.outcomes:
        assert result.low is not None and result.high is not None
        assert -1 <= result.low <= result.high <= 1
    assert metrics.suppressed["outcomes"] == 1
    again = engagement_metrics(data(), k=2, until_ms=UNTIL_MS, resamples=200, seed=3)
    assert again.outcomes == metrics.outcomes


def test_a_data_set_smaller_than_k_releases_nothing() -> None:
    metrics = engagement_metrics(data(), k=6, until_ms=UNTIL_MS)
    assert (metrics.people, metrics.sessions) == (0, 0)
    assert metrics.mean_session_seconds is None
    assert metrics.interactions_per_minute is None
    assert metrics.completion_rate is None
    assert metrics.retention == []
    assert metrics.progress == []
    assert metrics.hours == metrics.lengths == metrics.drop_off == []
    assert metrics.outcomes == []
    assert metrics.retention_overall is None
    assert metrics.suppressed["overall"] == 1


def test_noise_changes_counts_only_and_is_seeded() -> None:
    def run(seed: int) -> object:
        noise = Noise(epsilon=0.5, rng=random.Random(seed))
        return engagement_metrics(data(), k=2, until_ms=UNTIL_MS, noise=noise)

    first, second = run(11), run(11)
    assert first == second
    exact = engagement_metrics(data(), k=2, until_ms=UNTIL_MS)
    assert isinstance(first, type(exact))
    # Release decisions rest on the true counts; means are exact.
    assert [bucket.key for bucket in first.hours] == [bucket.key for bucket in exact.hours]
    assert [bucket.mean_minutes for bucket in first.lengths] == [
        bucket.mean_minutes for bucket in exact.lengths
    ]
    assert first.mean_session_seconds == exact.mean_session_seconds
    assert all(bucket.people >= 0 and bucket.sessions >= 0 for bucket in first.lengths)


def test_bad_k_is_refused() -> None:
    with pytest.raises(ValueError, match="k must be a whole number of at least 1"):
        engagement_metrics(data(), k=0)


def test_outcome_correlation_type() -> None:
    # A constant feature gives no correlation rather than a made-up number.
    events = [
        event(0, "10:00", who, f"s-{who}", "session_start") for who in "abc"
    ] + [
        event(day, "08:00", who, None, "outcome", name="phq9", value=score)
        for who, scores in {"a": (1, 2), "b": (3, 1), "c": (2, 2)}.items()
        for day, score in zip((0, 9), scores, strict=True)
    ]
    metrics = engagement_metrics(events, k=3, resamples=50)
    sessions = next(result for result in metrics.outcomes if result.feature == "sessions")
    assert sessions == OutcomeCorrelation("phq9", "sessions", 3, None, None, None)
