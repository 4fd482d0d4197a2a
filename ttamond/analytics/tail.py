"""How surprising a statistic is against its own fading history: an empirical tail."""

from __future__ import annotations

import math
from array import array

# Counts grow by a factor each sample instead of all decaying (one update, not `bins`);
# they are scaled back down long before a double could overflow.
_RESCALE_ABOVE = 1e100


class TailEstimator:
    """The surprise of a non-negative statistic: -ln of the share of its history that
    was at least as large, the history fading with a time constant of `horizon`
    samples. This is Numenta's "anomaly likelihood" idea (judge a raw score against its
    own past) with a log-binned histogram in place of their normal distribution, so
    heavy-tailed statistics are judged fairly.

    `prior` pseudo-samples sit in the tail, so a short history cannot claim certainty.
    Beyond the largest value seen, the surprise keeps growing, `extrapolation` nats per
    e-fold of excess, so records are ranked by how far they break the record.
    State: `bins` doubles and a few counters.
    """

    __slots__ = ("_counts", "_extrapolation", "_grow", "_horizon", "_keep_n", "_per_e",
                 "_prior", "_top", "_total", "_weight")

    def __init__(self, *, horizon: float, bins: int, per_e: float, prior: float,
                 extrapolation: float) -> None:
        if horizon <= 1.0:
            raise ValueError(f"a tail horizon must be more than one sample, got {horizon}")
        if bins < 2 or per_e <= 0:
            raise ValueError("a tail histogram needs at least 2 bins and a positive resolution")
        self._horizon = horizon
        self._per_e = per_e
        self._prior = prior
        self._extrapolation = extrapolation
        self._counts = array("d", [0.0]) * bins
        self._grow = 1.0 / (1.0 - 1.0 / horizon)
        self._weight = 1.0
        self._total = 0.0
        self._keep_n = 1.0
        """(1 - 1/horizon) ** samples: what is left of a weight given at the start."""
        self._top = -1

    def _bin(self, value: float) -> int:
        return min(len(self._counts) - 1, int(math.log1p(value) * self._per_e))

    def surprise(self, value: float) -> float:
        """-ln P(statistic >= value) under the history so far; 0 before any history."""
        if self._total <= 0.0:
            return 0.0
        effective = self._horizon * (1.0 - self._keep_n)
        prior = self._prior
        index = self._bin(value)
        if index > self._top:
            edge = math.expm1((self._top + 1) / self._per_e) if self._top >= 0 else 0.0
            return (math.log((effective + prior) / prior)
                    + self._extrapolation * math.log((1.0 + value) / (1.0 + edge)))
        counts = self._counts
        # Half of the value's own bin counts as above it: the bins are coarse.
        above = (sum(counts[index + 1:]) + 0.5 * counts[index]) / self._total * effective
        return math.log((effective + prior) / (above + prior))

    def add(self, value: float) -> None:
        """Take one value into the history."""
        index = self._bin(value)
        self._counts[index] += self._weight
        self._total += self._weight
        if index > self._top:
            self._top = index
        self._keep_n *= 1.0 - 1.0 / self._horizon
        self._weight *= self._grow
        if self._weight > _RESCALE_ABOVE:
            self._rescale()

    def _rescale(self) -> None:
        factor = 1.0 / self._weight
        counts = self._counts
        for index in range(len(counts)):
            counts[index] *= factor
        self._total *= factor
        self._weight = 1.0
        # A bin whose samples have all faded no longer marks the largest value seen.
        while self._top >= 0 and counts[self._top] < 1e-12 * self._total:
            self._top -= 1

    @property
    def stored_values(self) -> int:
        """Numbers held, for bounding the state."""
        return len(self._counts) + 5
