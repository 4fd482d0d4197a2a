"""The streaming anomaly detector: one per series, a score in [0, 1] per sample."""

from __future__ import annotations

import math
from array import array
from typing import Annotated

import msgspec

from ttamond.analytics.records import RangeRecord, RunRecord
from ttamond.analytics.rhythm import WEEK_SECONDS, Rhythm
from ttamond.analytics.tail import TailEstimator
from ttamond.analytics.window import RollingWindow

PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
Positive = Annotated[float, msgspec.Meta(gt=0)]
Share = Annotated[float, msgspec.Meta(gt=0, le=1)]

# Mean absolute deviation of a normal distribution, in standard deviations, inverted.
_SIGMA_PER_MEAN_ABS = 1.2533
# A deviation from a series that has never varied has no scale; it gets this z.
_Z_WITHOUT_SCALE = 1e6
# Numbers the two record breaks hold (RangeRecord: 2, RunRecord: 3).
_RECORD_VALUES = 5
# One wild sample moves an error average by at most this many times the average.
_ERROR_CLIP = 5.0
# Seconds over which the weekly view's fit, and the other views', are averaged.
_WEEK_FIT_TAU = WEEK_SECONDS / 2


class DetectorSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The detector's parameters. The defaults were tuned for the whole Numenta Anomaly
    Benchmark corpus at a time (benchmarks/nab_tune.py, scored by benchmarks/nab.py),
    never per series; the figures they reach are fitted to that corpus (see
    benchmarks/README.md)."""

    window: Annotated[int, msgspec.Meta(ge=8)] = 960
    """Samples in the recent view: its median is the expected value, its interquartile
    range the spread."""
    warmup: Annotated[int, msgspec.Meta(ge=4)] = 50
    """Samples seen before any deviation is measured."""
    spread_alpha: Share = 0.01
    """Weight of each sample in the mean absolute deviation that floors the spread (a
    series stuck on a few values has no interquartile range)."""
    day_buckets: PositiveInt = 144
    """Time-of-day buckets of the daily rhythm (144: ten minutes each)."""
    level_tau: Positive = 41630.3683
    """Seconds over which the rhythm's level follows the series."""
    season_gamma: Share = 0.2535
    """Share of the way a time-of-day offset moves towards the values at each daily
    pass through its bucket."""
    rhythm_after_days: Annotated[float, msgspec.Meta(ge=0)] = 1.5
    """Days of data before the rhythm may judge a sample."""
    rhythm_advantage: Positive = 0.6111
    """The rhythm judges only while its mean error is below this share of the recent
    view's: a series must clearly follow the clock before the clock is trusted."""
    week_buckets: PositiveInt = 168
    """Buckets of the weekly rhythm (168: an hour each, Monday 00:00 UTC first). It
    learns the daily rhythm's residual, so the shape within a day stays as fine as
    `day_buckets`."""
    week_gamma: Share = 0.5
    """Share of the way an hour-of-the-week correction moves at each pass: a week
    has few passes, so the week learns faster than the day."""
    week_after_days: Annotated[float, msgspec.Meta(ge=0)] = 10.5
    """Days of data before the weekly rhythm may judge a sample (a week and a half:
    every hour of the week seen at least once)."""
    week_advantage: Annotated[float, msgspec.Meta(ge=0)] = 0.4
    """The weekly rhythm judges only while its mean error is below this share of the
    better of the other two views' (0: never): weekdays must clearly differ from the
    weekend before the calendar is trusted."""
    error_alpha: Share = 0.0131
    """Weight of each sample in the three views' mean errors."""
    short_mean: PositiveInt = 10
    """Samples in the short mean of the deviation (level shifts, bursts)."""
    long_mean: PositiveInt = 62
    """Samples in the long mean of the deviation (slower changes of behaviour)."""
    tail_horizon: Annotated[float, msgspec.Meta(gt=1)] = 1573.5674
    """Samples over which the history of each statistic fades."""
    tail_bins: Annotated[int, msgspec.Meta(ge=2)] = 48
    tail_bins_per_e: Positive = 4.0
    tail_prior: Positive = 0.7004
    tail_extrapolation: Annotated[float, msgspec.Meta(ge=0)] = 4.6829
    calibration: Annotated[int, msgspec.Meta(ge=0)] = 99
    """Samples of statistics gathered before anything is scored."""
    surprise_floor: Annotated[float, msgspec.Meta(ge=0)] = 5.4233
    """Nats of combined surprise that still score 0: what ordinary fluctuation reaches
    (a value as typical as any scores about ln 2 in each of the three statistics)."""
    score_scale: Positive = 12.25
    """Nats of combined surprise that score 0.5. With e = surprise - surprise_floor,
    the score is e / (e + score_scale - surprise_floor), so it only orders surprises."""
    range_tolerance: Annotated[float, msgspec.Meta(ge=0)] = 0.0748
    """A value beyond the range of all values seen by more than this share of the
    range scores 1 (Numenta's "spatial anomaly"), once the window has filled. Numenta's
    0.05 scores a little better on NAB but flags the odd record of plain Gaussian noise."""
    stuck_run: Annotated[int, msgspec.Meta(ge=2)] = 101
    """A value repeated longer than any run of one value before, and for at least
    this many samples, scores 1 (a stuck sensor in a series that used to move)."""
    alarm_score: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.5
    """A score from which an alarm is raised; repeats are held back for a while."""
    quiet_samples: Annotated[int, msgspec.Meta(ge=0)] = 89
    """Samples after an alarm whose scores are held below half the alarm score: one
    event is reported once, not once per sample it lasts."""

    def __post_init__(self) -> None:
        if self.warmup > self.window:
            raise ValueError(f"warmup ({self.warmup}) cannot be more than window"
                             f" ({self.window}): the window never holds that many")
        if self.score_scale <= self.surprise_floor:
            raise ValueError(f"score_scale ({self.score_scale}) must be above surprise_floor"
                             f" ({self.surprise_floor})")


class _RunningMean:
    """The mean of the last `size` values, by a ring and a running sum."""

    __slots__ = ("_next", "_ring", "_sum")

    def __init__(self, size: int) -> None:
        self._ring = array("d", [0.0]) * size
        self._next = 0
        self._sum = 0.0

    def push(self, value: float) -> float:
        """Add a value; return the mean of the last `size` (zeros before they came)."""
        ring = self._ring
        self._sum += value - ring[self._next]
        ring[self._next] = value
        self._next = (self._next + 1) % len(ring)
        return self._sum / len(ring)


class Detector:
    """Scores one series as it streams, from its past only.

    Each sample's deviation is measured in robust standard deviations (z) against the
    best of three expectations: the median of the recent window, the daily rhythm
    (level plus the usual offset at this time of day) once the series follows the
    clock, and the weekly rhythm (the daily rhythm corrected by what it usually misses
    at this hour of the week) once the week explains it better still. Three
    statistics of z (the sample's own, its mean over the last `short_mean` samples,
    over the last `long_mean`) are each judged against their own fading history
    (TailEstimator), and the surprises add up. A flat series therefore
    scores 0 and a periodic one close to it; a series that shifts to a new level scores
    high at the shift, and less as the window and the histories take the new level in.
    Two record breaks score 1 outright (RangeRecord, RunRecord): a value far beyond
    every value seen, and a value stuck for longer than ever.

    Non-finite samples are skipped (counted in `skipped`) and score 0. State is bounded
    by the settings: about 16 bytes per window slot, 8 per rhythm bucket and per
    histogram bin, whatever the stream's length.
    """

    __slots__ = ("_calibrated", "_error_recent", "_error_rhythm", "_error_week", "_first_ts",
                 "_fit_ts", "_long", "_long_tail", "_mean_abs", "_other_fit", "_point_tail",
                 "_quiet_left", "_range", "_rhythm", "_run", "_seen", "_short", "_short_tail",
                 "_week", "_week_fit", "_window", "score", "settings", "skipped")

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        self.settings = settings = settings or DetectorSettings()
        self._window = RollingWindow(settings.window)
        self._rhythm = Rhythm(buckets=settings.day_buckets, level_tau=settings.level_tau,
                              gamma=settings.season_gamma)
        self._week = Rhythm(buckets=settings.week_buckets, level_tau=settings.level_tau,
                            gamma=settings.week_gamma, period=WEEK_SECONDS)
        self._short = _RunningMean(settings.short_mean)
        self._long = _RunningMean(settings.long_mean)
        self._point_tail = self._tail()
        self._short_tail = self._tail()
        self._long_tail = self._tail()
        self._range = RangeRecord(settings.range_tolerance)
        self._run = RunRecord(settings.stuck_run)
        self._seen = 0
        self._calibrated = 0
        self._first_ts: float | None = None
        self._mean_abs = 0.0
        self._error_recent = 0.0
        self._error_rhythm = 0.0
        self._error_week = 0.0
        self._week_fit = 0.0
        self._other_fit = 0.0
        self._fit_ts = 0.0
        self._quiet_left = 0
        self.score = 0.0
        """The latest score."""
        self.skipped = 0
        """Non-finite samples ignored."""

    def _tail(self) -> TailEstimator:
        s = self.settings
        return TailEstimator(horizon=s.tail_horizon, bins=s.tail_bins, per_e=s.tail_bins_per_e,
                             prior=s.tail_prior, extrapolation=s.tail_extrapolation)

    def update(self, timestamp_s: float, value: float) -> float:
        """Take the next sample (seconds since the epoch, value) and return its anomaly
        score in [0, 1]: 0 while learning, near 0 for the expected, towards 1 for the
        more surprising. Timestamps should not go backwards; a late sample is still
        scored, against the time-of-day bucket of its own timestamp."""
        if not (math.isfinite(value) and math.isfinite(timestamp_s)):
            self.skipped += 1
            return 0.0
        self._seen += 1
        if self._first_ts is None:
            self._first_ts = timestamp_s
        bucket = self._rhythm.bucket(timestamp_s)
        week_bucket = self._week.bucket(timestamp_s)
        warm = len(self._window) >= self.settings.warmup
        z = self._deviation(timestamp_s, value, bucket, week_bucket) if warm else 0.0
        # Both records learn from the first sample (`|`, not `or`: each sees every value);
        # a range is trusted once a full window has shaped it, and only a calibrated
        # detector reports a break.
        full = len(self._window) >= self.settings.window
        record = (self._range.breaks(value) and full) | self._run.breaks(value)
        self._window.push(value)
        daily = self._rhythm.expected(bucket)
        if daily is not None:
            # The week learns what the day does not explain: the daily view's residual.
            self._week.learn(timestamp_s, week_bucket, value - daily)
        self._rhythm.learn(timestamp_s, bucket, value)
        score = self._surprise_score(z)
        if record and self._calibrated > self.settings.calibration:
            score = 1.0
        self.score = self._hold_repeats(score)
        return self.score

    def _deviation(self, timestamp_s: float, value: float, bucket: int,
                   week_bucket: int) -> float:
        """|value - expected| in robust standard deviations, against the best view
        trusted so far; updates the views' mean errors."""
        s = self.settings
        window = self._window
        median = window.median()
        scale = max(window.spread(), _SIGMA_PER_MEAN_ABS * self._mean_abs)
        error_recent = abs(value - median)
        z = _z(error_recent, scale)
        first_ts = self._first_ts if self._first_ts is not None else timestamp_s
        age = timestamp_s - first_ts
        alpha = s.error_alpha
        best_now = error_recent
        expected = self._rhythm.expected(bucket)
        if expected is not None:
            error_rhythm = abs(value - expected)
            old_recent, old_rhythm = self._error_recent, self._error_rhythm
            if (age > s.rhythm_after_days * 86_400.0
                    and old_rhythm < s.rhythm_advantage * old_recent):
                z = _z(error_rhythm, _SIGMA_PER_MEAN_ABS * old_rhythm)
                best_now = error_rhythm
            self._error_rhythm = old_rhythm + alpha * (_clipped(error_rhythm, old_rhythm)
                                                       - old_rhythm)
            self._error_recent = old_recent + alpha * (_clipped(error_recent, old_recent)
                                                       - old_recent)
        correction = self._week.expected(week_bucket)
        if expected is not None and correction is not None:
            error_week = abs(value - expected - correction)
            old_week, week_fit, other_fit = self._error_week, self._week_fit, self._other_fit
            if (age > s.week_after_days * 86_400.0 and old_week > 0.0
                    and week_fit < s.week_advantage * other_fit):
                z = _z(error_week, _SIGMA_PER_MEAN_ABS * old_week)
            self._error_week = old_week + alpha * (_clipped(error_week, old_week) - old_week)
            # Whether the week explains the series shows over days, not hours: a
            # weekday cycle fits the daily view all week and fails it at the weekend.
            slow = -math.expm1(-max(timestamp_s - self._fit_ts, 0.0) / _WEEK_FIT_TAU)
            self._week_fit = week_fit + slow * (_clipped(error_week, week_fit) - week_fit)
            self._other_fit = other_fit + slow * (_clipped(best_now, other_fit) - other_fit)
            self._fit_ts = timestamp_s
        self._mean_abs += s.spread_alpha * (error_recent - self._mean_abs)
        return z

    def _surprise_score(self, z: float) -> float:
        """The three statistics of z judged against their histories, as one score."""
        s = self.settings
        short = self._short.push(z)
        long = self._long.push(z)
        if self._seen <= s.warmup + s.short_mean:
            return 0.0
        self._calibrated += 1
        score = 0.0
        if self._calibrated > s.calibration:
            surprise = (self._point_tail.surprise(z) + self._short_tail.surprise(short)
                        + self._long_tail.surprise(long))
            excess = surprise - s.surprise_floor
            if excess > 0.0:
                score = excess / (excess + s.score_scale - s.surprise_floor)
        self._point_tail.add(z)
        self._short_tail.add(short)
        self._long_tail.add(long)
        return score

    def _hold_repeats(self, score: float) -> float:
        """After an alarm, keep scores below half the alarm score for a while: the
        event has been reported, and its later samples would only repeat it."""
        s = self.settings
        if self._quiet_left > 0:
            self._quiet_left -= 1
            return min(score, s.alarm_score) * 0.5
        if score >= s.alarm_score:
            self._quiet_left = s.quiet_samples
        return score

    @property
    def stored_values(self) -> int:
        """Numbers this detector holds: bounded by its settings, not by the stream."""
        s = self.settings
        return (2 * len(self._window) + self._rhythm.stored_values
                + self._week.stored_values + s.short_mean
                + s.long_mean + 3 * self._point_tail.stored_values + 16 + _RECORD_VALUES)


def _z(error: float, scale: float) -> float:
    if scale > 0.0:
        return min(error / scale, _Z_WITHOUT_SCALE)
    return 0.0 if error == 0.0 else _Z_WITHOUT_SCALE


def _clipped(error: float, average: float) -> float:
    """An error for averaging, clipped so one wild sample cannot swamp the average."""
    return min(error, _ERROR_CLIP * average) if average > 0.0 else error
