"""Small statistics for engagement analytics: rank correlation, bootstrap intervals and
Laplace noise, each deterministic given a seeded `random.Random`."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Final

Statistic = Callable[[Sequence[float], Sequence[float]], float]
"""A statistic of paired samples, such as `spearman`; NaN where it is undefined."""

_MIN_BOOTSTRAP_PAIRS: Final = 3


def ranks(values: Sequence[float]) -> list[float]:
    """The 1-based rank of each value; tied values share the mean of their ranks
    (``[10, 20, 20, 30]`` ranks ``[1, 2.5, 2.5, 4]``). Raises ValueError for NaN/None."""
    _check(values)
    order = sorted(range(len(values)), key=values.__getitem__)
    result = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        shared = (start + end) / 2 + 1
        for position in range(start, end + 1):
            result[order[position]] = shared
        start = end + 1
    return result


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson's correlation of paired samples; NaN when either side is constant.
    Raises ValueError for unequal lengths, fewer than 2 pairs, NaN or None."""
    _check_pairs(xs, ys)
    n = len(xs)
    mean_x = math.fsum(xs) / n
    mean_y = math.fsum(ys) / n
    dx = [x - mean_x for x in xs]
    dy = [y - mean_y for y in ys]
    sxx = math.fsum(d * d for d in dx)
    syy = math.fsum(d * d for d in dy)
    if sxx == 0 or syy == 0:
        return math.nan
    sxy = math.fsum(a * b for a, b in zip(dx, dy, strict=True))
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman's rank correlation: Pearson's correlation of the ranks, ties given their
    average rank. NaN when either side is constant (the correlation is undefined).

    Raises ValueError for unequal lengths, fewer than 2 pairs, NaN or None.
    """
    _check_pairs(xs, ys)
    return pearson(ranks(xs), ranks(ys))


def bootstrap_ci(
    xs: Sequence[float],
    ys: Sequence[float],
    statistic: Statistic,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    rng: random.Random,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over pairs ``(xs[i], ys[i])``.

    Draws ``resamples`` samples of n pairs with replacement, computes the statistic on
    each, and returns the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles
    (linear interpolation between order statistics). Resamples where the statistic is
    NaN (a constant side) are left out; ``(nan, nan)`` when fewer than 3 pairs or no
    resample gives a number. Raises ValueError for bad inputs or parameters.
    """
    _check_pairs(xs, ys)
    if resamples < 1:
        raise ValueError("bootstrap: resamples must be at least 1")
    if not 0 < confidence < 1:
        raise ValueError("bootstrap: confidence must lie between 0 and 1")
    n = len(xs)
    if n < _MIN_BOOTSTRAP_PAIRS:
        return (math.nan, math.nan)
    indices = range(n)
    estimates: list[float] = []
    for _ in range(resamples):
        chosen = rng.choices(indices, k=n)
        value = statistic([xs[i] for i in chosen], [ys[i] for i in chosen])
        if not math.isnan(value):
            estimates.append(value)
    if not estimates:
        return (math.nan, math.nan)
    estimates.sort()
    tail = (1 - confidence) / 2
    return (quantile(estimates, tail), quantile(estimates, 1 - tail))


def quantile(ordered: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile of sorted values, interpolating linearly between the
    order statistics at ``fraction * (n - 1)``. Raises ValueError when empty."""
    if not ordered:
        raise ValueError("quantile of no values")
    position = fraction * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    weight = position - below
    return ordered[below] + (ordered[above] - ordered[below]) * weight


def laplace_noise(count: float, epsilon: float, rng: random.Random) -> float:
    """``count`` plus Laplace noise of scale ``1 / epsilon`` (a count's sensitivity is 1).

    Sampled by inverting the Laplace CDF at a uniform draw ``u`` in (0, 1): ``b ln(2u)``
    below one half, ``-b ln(2 - 2u)`` above. Floating-point noise is not the exact
    mechanism (its gaps can leak in theory); round the result, as `anonymity` does.
    Raises ValueError unless epsilon is positive and finite.
    """
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ValueError("laplace noise: epsilon must be a positive number")
    scale = 1.0 / epsilon
    uniform = rng.random()
    while uniform == 0.0:
        uniform = rng.random()
    if uniform < 0.5:
        return count + scale * math.log(2 * uniform)
    return count - scale * math.log(2 - 2 * uniform)


def _check(values: Sequence[float]) -> None:
    for value in values:
        # Typed as float, but rows come from JSON and SQLite: refuse None loudly.
        if value is None or math.isnan(value):
            raise ValueError("statistics: a value is NaN or None; drop or impute it first")


def _check_pairs(xs: Sequence[float], ys: Sequence[float]) -> None:
    if len(xs) != len(ys):
        raise ValueError(f"statistics: {len(xs)} x values but {len(ys)} y values")
    if len(xs) < 2:
        raise ValueError("statistics: a correlation needs at least 2 pairs")
    _check(xs)
    _check(ys)
