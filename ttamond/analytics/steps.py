"""Samples averaged into steps of clock time before a detector judges them."""

from __future__ import annotations

import math


class StepMean:
    """The mean of each series' samples over consecutive steps of `step` seconds,
    aligned to the clock (a 60 s step runs from one minute to the next).

    The detector's parameters count samples, and were tuned on the Numenta Anomaly
    Benchmark, whose series have one sample every five minutes. Fed a 1 Hz collector
    directly, its 960-sample window would span 16 minutes and an alarm's hold 85
    seconds; fed one mean a minute, they span 16 hours and 85 minutes, and a second's
    jitter is averaged away. A step is closed by the first sample of a later step, so
    its mean is judged as soon as the series moves on, and nothing depends on a timer.

    A step of 0 passes every sample through. A sample older than the open step (time
    going backwards) is counted in that step rather than lost. State: three numbers.
    """

    __slots__ = ("_count", "_index", "_sum", "step")

    def __init__(self, step: float) -> None:
        if not (step >= 0.0 and math.isfinite(step)):
            raise ValueError(f"a step is a finite number of seconds >= 0, got {step}")
        self.step = step
        self._index: int | None = None
        self._sum = 0.0
        self._count = 0

    def add(self, seconds: float, value: float) -> tuple[float, float] | None:
        """Take one finite sample; return (the end of the step it closed, that step's
        mean) when it is the first of a later step, else None. With a step of 0,
        the sample itself."""
        if self.step == 0.0:
            return seconds, value
        index = math.floor(seconds / self.step)
        closed: tuple[float, float] | None = None
        if self._index is None:
            self._index = index
        elif index > self._index:
            closed = ((self._index + 1) * self.step, self._sum / self._count)
            self._index, self._sum, self._count = index, 0.0, 0
        self._sum += value
        self._count += 1
        return closed
