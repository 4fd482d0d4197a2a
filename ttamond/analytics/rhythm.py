"""A series' daily rhythm: its level and its usual offset at each time of day."""

from __future__ import annotations

import math
from array import array

DAY_SECONDS = 86_400.0


class DailyRhythm:
    """Additive seasonal smoothing in the manner of Holt-Winters, with the season cut
    into buckets of clock time rather than of sample counts: samples that come late, in
    bursts or with gaps still land in the bucket of their time of day.

    The level follows the de-seasonalised value with a time constant (`level_tau`
    seconds, so it does not depend on the sampling rate); each bucket's offset moves a
    share `gamma` of the way towards the latest value's distance from the level.
    """

    __slots__ = ("_bucket_seconds", "_gamma", "_last_ts", "_level_tau", "_offsets", "level")

    def __init__(self, *, buckets: int, level_tau: float, gamma: float) -> None:
        if buckets < 1:
            raise ValueError(f"a daily rhythm needs at least one bucket, got {buckets}")
        self._bucket_seconds = DAY_SECONDS / buckets
        self._level_tau = level_tau
        self._gamma = gamma
        # NaN marks a time of day not seen yet; an array keeps it 8 bytes a bucket.
        self._offsets = array("d", [math.nan]) * buckets
        self.level: float | None = None
        self._last_ts = 0.0

    def bucket(self, timestamp_s: float) -> int:
        """The bucket of this instant's time of day (UTC)."""
        return int((timestamp_s % DAY_SECONDS) / self._bucket_seconds)

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
        else:
            elapsed = max(timestamp_s - self._last_ts, 0.0)
            share = 1.0 - math.exp(-elapsed / self._level_tau)
            self.level += share * ((value - (offset if seen else 0.0)) - self.level)
        deviation = value - self.level
        offsets[bucket] = offset + self._gamma * (deviation - offset) if seen else deviation
        self._last_ts = timestamp_s

    @property
    def stored_values(self) -> int:
        """Numbers held, for bounding the state."""
        return len(self._offsets) + 2
