"""The streaming detector on synthetic series with known anomalies (seeded noise)."""

from __future__ import annotations

import math
import random
import statistics

import msgspec
import pytest

from ttamond.analytics.detector import Detector, DetectorSettings
from ttamond.analytics.records import RangeRecord, RunRecord
from ttamond.analytics.rhythm import WEEK_SECONDS, Rhythm
from ttamond.analytics.tail import TailEstimator
from ttamond.analytics.window import RollingWindow

START = 1_700_000_000.0
STEP = 300.0  # five minutes, as most NAB files: 288 samples a day
DAY = 288
ALARM = DetectorSettings().alarm_score


def scores_of(values: list[float], step: float = STEP) -> list[float]:
    detector = Detector()
    return [detector.update(START + i * step, value) for i, value in enumerate(values)]


def alarms(scores: list[float]) -> list[int]:
    return [i for i, score in enumerate(scores) if score >= ALARM]


def test_a_spike_is_flagged_and_nothing_else_is() -> None:
    rng = random.Random(1)
    values = [50 + rng.gauss(0, 1) for _ in range(3000)]
    values[2000] += 15
    scores = scores_of(values)
    assert alarms(scores) == [2000]
    assert scores[2000] == max(scores)


def test_a_level_shift_is_flagged_then_learnt() -> None:
    rng = random.Random(1)
    values = [10 + rng.gauss(0, 1) + (10 if i >= 2000 else 0) for i in range(4000)]
    scores = scores_of(values)
    flagged = alarms(scores)
    assert flagged and 2000 <= flagged[0] <= 2003
    # Once the window's median has crossed over, the new level is ordinary again.
    after = scores[2800:]
    assert max(after) < ALARM
    assert statistics.mean(after) < 0.05


def test_a_slow_drift_does_not_alarm_constantly() -> None:
    rng = random.Random(3)
    values = [10 + 0.002 * i + rng.gauss(0, 1) for i in range(6000)]  # 12 sigma in all
    scores = scores_of(values)
    assert len(alarms(scores)) <= 1
    assert statistics.mean(scores) < 0.05


def test_a_broken_day_in_a_daily_cycle_is_flagged_and_normal_days_are_not() -> None:
    rng = random.Random(2)
    values = []
    for i in range(10 * DAY):
        swing = 10 * math.sin(2 * math.pi * i / DAY)
        # Day 8 runs the cycle backwards: every value is in the usual range, at the
        # wrong time of day, which only the rhythm can tell.
        values.append(20 + (-swing if i // DAY == 8 else swing) + rng.gauss(0, 0.5))
    scores = scores_of(values)
    flagged = alarms(scores)
    assert flagged and all(8 * DAY <= i < 9 * DAY for i in flagged)
    assert flagged[0] < 8 * DAY + 12  # within the first hour


MONDAY = 1_699_833_600.0  # 2023-11-13 00:00 UTC


def weekly_scores(week_advantage: float) -> list[float]:
    """Five weeks of five-minute samples: a daily cycle on weekdays, a quiet weekend,
    and in week five a Wednesday as quiet as a Sunday (an outage, say)."""
    rng = random.Random(6)
    detector = Detector(DetectorSettings(week_advantage=week_advantage))
    scores = []
    for i in range(5 * 7 * DAY):
        day = i // DAY
        quiet = day % 7 >= 5 or day == 4 * 7 + 2
        value = (5.0 if quiet else 20 + 10 * math.sin(2 * math.pi * i / DAY)) + rng.gauss(0, 0.5)
        scores.append(detector.update(MONDAY + i * STEP, value))
    return scores


def test_a_weekly_rhythm_is_learnt_and_a_weekday_off_it_is_flagged() -> None:
    flagged_days = sorted({i // DAY for i in alarms(weekly_scores(0.4))})
    # The first weekend is new; from the third on, weekends are expected, and the
    # quiet Wednesday of week five is the one day that stands out.
    assert [day for day in flagged_days if day >= 14] == [30]
    # The daily rhythm alone flags every Saturday and cannot see the Wednesday: its
    # values are all in the range of a normal week.
    without = sorted({i // DAY for i in alarms(weekly_scores(0.0))})
    assert {19, 26} <= set(without) and 30 not in without


def test_the_rhythm_follows_the_clock_not_the_sample_count() -> None:
    rng = random.Random(4)
    detector = Detector()
    ts = START
    scores = []
    for _ in range(12 * DAY):
        ts += rng.uniform(60, 540)  # irregular: one to nine minutes apart
        swing = 10 * math.sin(2 * math.pi * (ts % 86_400) / 86_400)
        scores.append(detector.update(ts, 20 + swing + rng.gauss(0, 0.5)))
    assert alarms(scores[3 * DAY:]) == []


def test_a_value_stuck_in_a_moving_series_is_flagged_once() -> None:
    rng = random.Random(8)
    values = [50 + rng.gauss(0, 1) for _ in range(3000)] + [50.0] * 300
    scores = scores_of(values)
    stuck = DetectorSettings().stuck_run
    assert alarms(scores) == [3000 + stuck - 1]


def test_a_value_far_beyond_every_value_seen_is_flagged() -> None:
    rng = random.Random(9)
    # Noise of one sigma with a wide daily swing: 4 sigma off the recent median is
    # ordinary, but 90 is far beyond anything seen.
    values = [20 + 30 * math.sin(2 * math.pi * i / DAY) + rng.gauss(0, 1)
              for i in range(10 * DAY)]
    values[9 * DAY] = 90.0
    assert 9 * DAY in alarms(scores_of(values))


def test_a_flat_line_never_alarms() -> None:
    assert set(scores_of([42.0] * 5000)) == {0.0}


def test_a_perfectly_regular_series_stays_quiet() -> None:
    square = [80.0 if i % DAY < DAY // 2 else 20.0 for i in range(10 * DAY)]
    scores = scores_of(square)
    assert alarms(scores) == []
    assert statistics.mean(scores[3 * DAY:]) < 0.05


def test_scores_stay_in_0_1_whatever_comes_in() -> None:
    rng = random.Random(5)
    detector = Detector()
    ts = START
    for i in range(6000):
        ts += rng.choice([0.0, 1.0, 60.0, 3600.0, -5.0])
        value = rng.choice([
            rng.gauss(0, 1), 0.0, 1e300, -1e300, 5e-324, float(i % 7), math.nan, math.inf,
            rng.lognormvariate(0, 4),
        ])
        score = detector.update(ts, value)
        assert 0.0 <= score <= 1.0
    assert detector.skipped > 0
    assert detector.update(math.nan, 1.0) == 0.0


def test_state_is_bounded_by_the_settings() -> None:
    rng = random.Random(6)
    detector = Detector()
    sizes = []
    for i in range(30_000):
        detector.update(START + i * 10.0, rng.gauss(0, 1) * (1 + i % 17))
        if i in (5_000, 29_999):
            sizes.append(detector.stored_values)
    assert sizes[0] == sizes[1]
    s = detector.settings
    assert sizes[1] <= 2 * s.window + s.day_buckets + s.week_buckets + s.short_mean \
        + s.long_mean + 3 * (s.tail_bins + 5) + 25


def test_settings_refuse_unknown_keys_and_a_scale_below_the_floor() -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field `windw`"):
        msgspec.json.decode(b'{"windw": 10}', type=DetectorSettings)
    with pytest.raises(ValueError, match=r"score_scale \(3.0\) must be above surprise_floor"):
        DetectorSettings(score_scale=3.0)
    with pytest.raises(ValueError, match=r"warmup \(100\) cannot be more than window \(50\)"):
        DetectorSettings(window=50, warmup=100)


def test_rolling_window_quantiles_follow_the_latest_values() -> None:
    window = RollingWindow(5)
    for value in [9.0, 1.0, 5.0, 3.0, 7.0, 100.0, 100.0]:
        window.push(value)
    assert len(window) == 5
    assert window.median() == 7.0  # of 5, 3, 7, 100, 100
    with pytest.raises(ValueError, match="at least 4 values"):
        RollingWindow(2)


def test_daily_rhythm_expects_each_time_of_day_its_own_value() -> None:
    rhythm = Rhythm(buckets=24, level_tau=86_400.0, gamma=0.5)
    for hour in range(24 * 5):
        ts = START + hour * 3600.0
        rhythm.learn(ts, rhythm.bucket(ts), 100.0 if hour % 24 == 12 else 0.0)
    busy = rhythm.bucket(START + 12 * 3600.0)
    assert rhythm.expected(busy) == pytest.approx(100.0, abs=20)
    assert rhythm.expected((busy + 6) % 24) == pytest.approx(0.0, abs=20)
    assert Rhythm(buckets=24, level_tau=1.0, gamma=0.5).expected(busy) is None


def test_a_rhythm_learns_per_pass_through_a_bucket_not_per_sample() -> None:
    # One pass through a bucket moves its offset `gamma` of the way whether the pass
    # holds one sample or sixty: day two's first hour is 10 where day one's was 0.
    moved = []
    for per_hour in (1, 60):
        rhythm = Rhythm(buckets=24, level_tau=1e12, gamma=0.5)
        for k in range(25 * per_hour):
            ts = MONDAY + k * 3600.0 / per_hour
            rhythm.learn(ts, rhythm.bucket(ts), 10.0 if k >= 24 * per_hour else 0.0)
        moved.append(rhythm.expected(0))
    assert moved[0] == pytest.approx(5.0)
    assert moved[1] == pytest.approx(5.0, abs=0.2)


def test_a_weekly_rhythm_starts_its_week_on_monday() -> None:
    week = Rhythm(buckets=7, level_tau=1.0, gamma=0.5, period=WEEK_SECONDS)
    assert week.bucket(MONDAY) == 0
    assert week.bucket(MONDAY - 1.0) == 6  # Sunday night
    assert week.bucket(MONDAY + 2.5 * 86_400.0) == 2  # Wednesday noon


def test_range_record_breaks_only_beyond_the_tolerance() -> None:
    record = RangeRecord(0.1)
    assert not record.breaks(5.0)  # the first value has no range to leave
    assert record.breaks(5.5)  # a single point has no width: anything else leaves it
    record = RangeRecord(0.1)
    for value in (0.0, 10.0):
        record.breaks(value)
    assert not record.breaks(10.9)  # within a tenth of the range (0..10)
    assert record.breaks(12.1)  # beyond a tenth of the range (0..10.9)
    assert record.breaks(-1.3)
    with pytest.raises(ValueError, match="cannot be negative"):
        RangeRecord(-0.1)


def test_run_record_breaks_once_per_run_and_never_on_a_flat_line() -> None:
    record = RunRecord(4)
    assert not any(record.breaks(1.0) for _ in range(100))
    record = RunRecord(4)
    pattern = [1.0, 1.0, 2.0, 2.0, 2.0, 1.0] + [3.0] * 10 + [4.0] * 10 + [5.0] * 11
    assert [i for i, v in enumerate(pattern) if record.breaks(v)] == [9, 26 + 10]
    with pytest.raises(ValueError, match="at least 2 samples"):
        RunRecord(1)


def test_tail_estimator_ranks_records_by_how_far_they_break_them() -> None:
    tail = TailEstimator(horizon=1000, bins=40, per_e=4.0, prior=1.0, extrapolation=6.0)
    assert tail.surprise(5.0) == 0.0
    rng = random.Random(7)
    for _ in range(2000):
        tail.add(abs(rng.gauss(0, 1)))
    typical, rare, record, far_record = (tail.surprise(v) for v in (0.7, 3.0, 8.0, 40.0))
    assert typical < 1.5 < rare < record < far_record
