"""k-anonymity: groups under k distinct people are held back and counted."""

from __future__ import annotations

import random

import pytest

from ttamond.engagement.anonymity import GroupAggregate, Noise, aggregate, suppress


def test_suppress_sets_and_counts() -> None:
    groups: dict[str, set[str] | int] = {
        "big": {"p1", "p2", "p3"},
        "small": {"p1", "p2"},
        "counted": 5,
        "tiny": 1,
    }
    kept, suppressed = suppress(groups, 3)
    assert kept == {"big": {"p1", "p2", "p3"}, "counted": 5}
    assert suppressed == 2


def test_suppress_counts_distinct_pseudonyms_of_a_list() -> None:
    kept, suppressed = suppress({"g": ["p1", "p1", "p1"]}, 2)
    assert kept == {}
    assert suppressed == 1


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_suppress_refuses_bad_k(k: int) -> None:
    with pytest.raises(ValueError, match="k must be a whole number of at least 1"):
        suppress({"g": 3}, k)


def test_aggregate_releases_only_groups_of_k_people() -> None:
    rows = [
        ("chapter 1", "p1", 10.0), ("chapter 1", "p1", 20.0), ("chapter 1", "p2", 30.0),
        ("chapter 2", "p1", 5.0), ("chapter 2", "p1", 7.0),  # one person, two rows
        ("chapter 3", "p3", 1.0), ("chapter 3", "p4", 2.0), ("chapter 3", "p5", 6.0),
    ]
    released = aggregate(rows, k=2)
    assert released.groups == [
        GroupAggregate("chapter 1", people=2, rows=3, total=60.0, mean=20.0),
        GroupAggregate("chapter 3", people=3, rows=3, total=9.0, mean=3.0),
    ]
    assert released.suppressed == 1
    assert aggregate(rows, k=3).groups == [released.groups[1]]


def test_noise_on_counts_is_seeded_rounded_and_never_negative() -> None:
    rows = [(group, f"p{person}", 1.0) for group in "ab" for person in range(40)]

    def noisy(seed: int) -> list[GroupAggregate[str]]:
        return aggregate(rows, k=5, noise=Noise(epsilon=0.1, rng=random.Random(seed))).groups

    first = noisy(1)
    assert first == noisy(1)
    assert [group.key for group in first] == ["a", "b"]
    assert all(isinstance(group.people, int) and group.people >= 0 for group in first)
    assert {group.mean for group in first} == {1.0}
    # With epsilon 0.1 (scale 10) some count moves over a handful of seeds.
    assert any(group.people != 40 for seed in range(5) for group in noisy(seed))
    assert Noise(epsilon=1.0, rng=random.Random(0)).count(0) >= 0


def test_noise_refuses_bad_epsilon() -> None:
    with pytest.raises(ValueError, match="epsilon must be a positive number"):
        Noise(epsilon=0.0, rng=random.Random(0))
