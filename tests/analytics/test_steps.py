"""StepMean: samples averaged over clock-aligned steps before they are judged."""

from __future__ import annotations

import math

import pytest

from ttamond.analytics.steps import StepMean


def test_a_step_is_closed_by_the_first_sample_of_a_later_one() -> None:
    steps = StepMean(60.0)
    assert steps.add(120.0, 1.0) is None  # opens [120, 180)
    assert steps.add(150.0, 2.0) is None
    assert steps.add(179.9, 6.0) is None
    assert steps.add(180.0, 10.0) == (180.0, 3.0)  # closes [120, 180) with its mean
    # A gap: the open step is closed whenever the series comes back.
    assert steps.add(1000.0, 4.0) == (240.0, 10.0)  # opens [960, 1020)
    assert steps.add(1010.0, 8.0) is None
    assert steps.add(1020.0, 0.0) == (1020.0, 6.0)


def test_a_late_sample_counts_in_the_open_step() -> None:
    steps = StepMean(10.0)
    assert steps.add(25.0, 1.0) is None
    assert steps.add(5.0, 3.0) is None  # time went backwards: not lost
    assert steps.add(30.0, 0.0) == (30.0, 2.0)


def test_a_step_of_zero_passes_every_sample_through() -> None:
    steps = StepMean(0.0)
    assert steps.add(1.0, 5.0) == (1.0, 5.0)
    assert steps.add(1.0, 7.0) == (1.0, 7.0)


@pytest.mark.parametrize("step", [-1.0, math.nan, math.inf])
def test_a_step_must_be_a_finite_number_of_seconds(step: float) -> None:
    with pytest.raises(ValueError, match="a step is a finite number of seconds >= 0"):
        StepMean(step)
