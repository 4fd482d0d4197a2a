"""A series' rhythm over a day or a week: its level and its usual offset at each
time of the period."""

from __future__ import annotations

import math
from array import array

DAY_SECONDS = 86_400.0
WEEK_SECONDS = 7 * DAY_SECONDS
_EPOCH_TO_MONDAY = 3 * DAY_SECONDS
"""1970-01-01 was a Thursday: shifted by three days, every Monday 00:00 UTC falls on a
whole number of weeks."""


class Rhythm:
    """Additive seasonal smoothing in the manner of Holt-Winters, with the season cut
    into buckets of clock time rather than of sample counts: samples that come late, in
    bursts or with gaps still land in the bucket of their time of day (of the week,
    with `period=WEEK_SECONDS`: weeks are counted from Monday 00:00 UTC).

    Neither depends on the sampling rate. The level follows the de-seasonalised value
    with a time constant (`level_tau` seconds); each bucket's offset moves towards the
    values' distance from the level, a share `gamma` of the way per pass through the
    bucket, each sample by its share of the bucket's time (the time since the previous
    sample, at most the bucket's length, so the first sample after a gap counts for
    the whole bucket).
    """

    __slots__ = ("_bucket_seconds", "_gamma", "_keep", "_last_ts", "_level_tau", "_offsets",
                 "_period", "level")

    def __init__(self, *, buckets: int, level_tau: float, gamma: float,
                 period: float = DAY_SECONDS) -> None:
        if buckets < 1:
            raise ValueError(f"a rhythm needs at least one bucket, got {buckets}")
        self._period = period
        self._bucket_seconds = period / buckets
        self._level_tau = level_tau
        self._gamma = gamma
        self._keep = 1.0 - gamma
        # NaN marks a time of day not seen yet; an array keeps it 8 bytes a bucket.
        self._offsets = array("d", [math.nan]) * buckets
        self.level: float | None = None
        self._last_ts = 0.0

    def bucket(self, timestamp_s: float) -> int:
        """The bucket of this instant's time of the period (UTC; the epoch was a
        Thursday, so weeks are shifted to start on Mondays)."""
        since = timestamp_s + _EPOCH_TO_MONDAY if self._period == WEEK_SECONDS else timestamp_s
        return int((since % self._period) / self._bucket_seconds)

    def expected(self, bucket: int) -> float | None:
        """What the rhythm expects in this bucket, or None before it has seen it."""
        offset = self._offsets[bucket]
        if self.level is None or offset != offset:
            return None
        return self.level + offset

    def learn(self, timestamp_s: float, bucket: int, value: float) -> None:
        """Take one sample into the level and its bucket's offset."""
        offsets = self._offsets
        offset = offsets[bucket]
        seen = offset == offset
        if self.level is None:
            self.level = value
            elapsed = self._bucket_seconds
        else:
            elapsed = max(timestamp_s - self._last_ts, 0.0)
            share = 1.0 - math.exp(-elapsed / self._level_tau)
            self.level += share * ((value - (offset if seen else 0.0)) - self.level)
        deviation = value - self.level
        if seen:
            # A pass through the bucket moves its offset `gamma` of the way, however
            # many samples the pass holds: each moves it by its share of the bucket.
            share = 1.0 - self._keep ** min(elapsed / self._bucket_seconds, 1.0)
            offsets[bucket] = offset + share * (deviation - offset)
        else:
            offsets[bucket] = deviation
        self._last_ts = timestamp_s

    @property
    def stored_values(self) -> int:
        """Numbers held, for bounding the state."""
        return len(self._offsets) + 2
