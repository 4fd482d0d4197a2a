"""Rank correlation, bootstrap intervals and Laplace noise on known cases."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from ttamond.engagement.stats import bootstrap_ci, laplace_noise, quantile, ranks, spearman


def test_ranks_average_ties() -> None:
    assert ranks([10, 20, 20, 30]) == [1, 2.5, 2.5, 4]
    assert ranks([3, 1, 3, 3]) == [3, 1, 3, 3]


def test_spearman_perfect_and_reversed() -> None:
    xs = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert spearman(xs, [2.0, 4.0, 8.0, 16.0, 1000.0]) == pytest.approx(1.0)
    assert spearman(xs, [5.0, 4.0, 3.0, 2.0, -7.0]) == pytest.approx(-1.0)


def test_spearman_without_ties_matches_the_textbook_formula() -> None:
    # x ranks 1..5, y ranks 2 1 4 3 5: d^2 = 1+1+1+1+0 = 4; 1 - 6*4 / (5*24) = 0.8.
    assert spearman([1, 2, 3, 4, 5], [20, 10, 40, 30, 50]) == pytest.approx(0.8)


def test_spearman_with_ties() -> None:
    # x ranks 1.5 1.5 3 4, y ranks 1 2 3 4: centred x -1 -1 .5 1.5, y -1.5 -.5 .5 1.5.
    # sxy = 1.5 + .5 + .25 + 2.25 = 4.5; sxx = 4.5; syy = 5; rho = 4.5 / sqrt(22.5).
    assert spearman([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(22.5))


def test_spearman_constant_side_is_nan() -> None:
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


@pytest.mark.parametrize(
    ("xs", "ys", "message"),
    [
        ([1.0, math.nan], [1.0, 2.0], "NaN or None"),
        ([1.0, 2.0], [None, 2.0], "NaN or None"),
        ([1.0, 2.0, 3.0], [1.0, 2.0], "3 x values but 2 y values"),
        ([1.0], [1.0], "at least 2 pairs"),
    ],
)
def test_spearman_refuses_bad_input(xs: list[float], ys: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spearman(xs, ys)


def test_quantile_interpolates() -> None:
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.0) == 1.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 1.0) == 4.0


def test_bootstrap_ci_contains_estimate_and_is_seeded() -> None:
    rng = random.Random(42)
    xs = [float(i) for i in range(30)]
    ys = [x + rng.gauss(0, 6) for x in xs]
    estimate = spearman(xs, ys)
    low, high = bootstrap_ci(xs, ys, spearman, resamples=500, rng=random.Random(1))
    assert low < estimate < high
    assert low > 0 and high <= 1
    again = bootstrap_ci(xs, ys, spearman, resamples=500, rng=random.Random(1))
    assert again == (low, high)
    other = bootstrap_ci(xs, ys, spearman, resamples=500, rng=random.Random(2))
    assert other != (low, high)
    narrower = bootstrap_ci(xs, ys, spearman, resamples=500, confidence=0.5,
                            rng=random.Random(1))
    assert low < narrower[0] < narrower[1] < high


def test_bootstrap_ci_of_too_few_pairs_is_nan() -> None:
    low, high = bootstrap_ci([1, 2], [2, 1], spearman, rng=random.Random(0))
    assert math.isnan(low) and math.isnan(high)


def test_bootstrap_ci_refuses_bad_parameters() -> None:
    with pytest.raises(ValueError, match="confidence must lie between 0 and 1"):
        bootstrap_ci([1, 2, 3], [1, 2, 3], spearman, confidence=1.0, rng=random.Random(0))
    with pytest.raises(ValueError, match="resamples must be at least 1"):
        bootstrap_ci([1, 2, 3], [1, 2, 3], spearman, resamples=0, rng=random.Random(0))


def test_laplace_noise_mean_and_scale() -> None:
    # Laplace(0, b): mean 0, mean absolute deviation b, variance 2 b^2. With 20,000 draws
    # the standard error of the mean is sqrt(2) b / 141 = 0.02 b; the bounds are loose.
    rng = random.Random(2026)
    epsilon = 0.5
    scale = 1 / epsilon
    draws = [laplace_noise(10, epsilon, rng) - 10 for _ in range(20_000)]
    assert abs(statistics.fmean(draws)) < 0.1 * scale
    assert statistics.fmean(abs(draw) for draw in draws) == pytest.approx(scale, rel=0.05)
    assert statistics.pvariance(draws) == pytest.approx(2 * scale**2, rel=0.1)
    # P(|X| > b ln 20) = 5 %.
    beyond = sum(abs(draw) > scale * math.log(20) for draw in draws) / len(draws)
    assert beyond == pytest.approx(0.05, abs=0.01)


def test_laplace_noise_is_seeded_and_refuses_bad_epsilon() -> None:
    assert laplace_noise(5, 1.0, random.Random(3)) == laplace_noise(5, 1.0, random.Random(3))
    for epsilon in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="epsilon must be a positive number"):
            laplace_noise(5, epsilon, random.Random(3))
