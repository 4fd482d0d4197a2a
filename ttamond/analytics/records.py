"""Record breaks: a value beyond every value seen, or one held longer than ever before."""

from __future__ import annotations

import math


class RangeRecord:
    """Flags a value that leaves the range of all values seen so far by more than a
    share (`tolerance`) of that range: Numenta's "spatial anomaly" rule. Deviations
    measured against a recent window miss such a value when the window is noisy or has
    just widened; a break of the all-time range is rare by construction.

    A series that has only ever held one value has no range, so any other value breaks
    it. State: two doubles.
    """

    __slots__ = ("_high", "_low", "tolerance")

    def __init__(self, tolerance: float) -> None:
        if tolerance < 0.0:
            raise ValueError(f"a range tolerance cannot be negative, got {tolerance}")
        self.tolerance = tolerance
        self._low = math.inf
        self._high = -math.inf

    def breaks(self, value: float) -> bool:
        """Whether this finite value leaves the range seen so far (False for the first),
        then take it into the range."""
        low, high = self._low, self._high
        margin = self.tolerance * (high - low)
        broken = high >= low and (value > high + margin or value < low - margin)
        if value < low:
            self._low = value
        if value > high:
            self._high = value
        return broken


class RunRecord:
    """Flags a value repeated, sample after sample, longer than any run of one value
    that has ended so far: a stuck sensor or a stalled counter in a series that used to
    move. Only ended runs set the record, so a series that has never changed (a flat
    line) never breaks it, and one that changes on a fixed rhythm (a square wave) only
    matches it. A run breaks the record at its `shortest`-th sample at the earliest,
    so short repeats of a coarse series do not count. State: a double and two counters.
    """

    __slots__ = ("_length", "_record", "_value", "shortest")

    def __init__(self, shortest: int) -> None:
        if shortest < 2:
            raise ValueError(f"a stuck run is at least 2 samples long, got {shortest}")
        self.shortest = shortest
        self._value = math.nan
        self._length = 0
        self._record = 0

    def breaks(self, value: float) -> bool:
        """Whether this finite value makes the current run longer than the record and
        at least `shortest` (true once per run, at the sample that first does)."""
        if value == self._value:
            self._length += 1
            return self._record > 0 and self._length == max(self._record + 1, self.shortest)
        self._record = max(self._record, self._length)
        self._value = value
        self._length = 1
        return False
