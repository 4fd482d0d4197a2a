"""k-anonymity for engagement outputs: a group is shown only when at least k distinct
people are in it, and its people count may carry Laplace noise."""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

import msgspec

from ttamond.engagement.stats import laplace_noise

K = TypeVar("K", bound=Hashable)
V = TypeVar("V", bound=Collection[str] | int)


class Noise(msgspec.Struct, frozen=True):
    """Laplace noise on released people counts: ``epsilon`` per count, drawn from ``rng``.

    One person can be in many groups, so what one report spends is ``epsilon`` times the
    most groups a person is counted in (sequential composition)."""

    epsilon: float
    rng: random.Random

    def __post_init__(self) -> None:
        if not (math.isfinite(self.epsilon) and self.epsilon > 0):
            raise ValueError("privacy: epsilon must be a positive number (or off)")

    def count(self, true_count: int) -> int:
        """``true_count`` with noise, rounded, and never below zero (both are
        post-processing, which costs no privacy)."""
        return max(0, round(laplace_noise(true_count, self.epsilon, self.rng)))


class GroupAggregate(msgspec.Struct, Generic[K], frozen=True):
    """One released group: ``people`` distinct pseudonyms and ``rows`` values (both noisy
    when noise is on), and the exact ``total`` and ``mean`` of the values. Noise on
    ``people`` protects a person; on ``rows`` it protects one row, not a person who has
    many (their rows are unbounded). Totals and means rest on k alone."""

    key: K
    people: int
    rows: int
    total: float
    mean: float


class Released(msgspec.Struct, Generic[K], frozen=True):
    """Groups with at least k people, in key order of first appearance, and how many
    groups were held back for having fewer."""

    groups: list[GroupAggregate[K]]
    suppressed: int


def check_k(k: int) -> None:
    """Raise ValueError unless ``k`` is a whole number of at least 1."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"privacy: k must be a whole number of at least 1 (got {k!r})")


def distinct(value: Collection[str] | int) -> int:
    """The number of people a group value stands for: a count as it is, or the size of
    a collection of pseudonyms (a set; a list is deduplicated)."""
    if isinstance(value, int):
        return value
    return len(value) if isinstance(value, set | frozenset) else len(set(value))


def suppress(groups: Mapping[K, V], k: int) -> tuple[dict[K, V], int]:
    """Keep the groups with at least ``k`` distinct pseudonyms; each value is a
    collection of pseudonyms or their count. Returns the kept groups (values as given)
    and how many were suppressed. Raises ValueError for a bad ``k``."""
    check_k(k)
    kept = {key: value for key, value in groups.items() if distinct(value) >= k}
    return kept, len(groups) - len(kept)


def aggregate(
    rows: Iterable[tuple[K, str, float]], *, k: int, noise: Noise | None = None
) -> Released[K]:
    """Group ``(key, pseudonym, value)`` rows by key and release the groups with at least
    ``k`` distinct pseudonyms: their people and row counts (noisy with ``noise``), total
    and mean. The decision to release uses the true count, so k-anonymity holds
    whatever the noise. Raises ValueError for a bad ``k``."""
    check_k(k)
    people: dict[K, set[str]] = {}
    sums: dict[K, list[float]] = {}
    for key, pseudonym, value in rows:
        people.setdefault(key, set()).add(pseudonym)
        sums.setdefault(key, []).append(value)
    kept, suppressed = suppress(people, k)
    released = [
        GroupAggregate(
            key=key,
            people=len(members) if noise is None else noise.count(len(members)),
            rows=len(sums[key]) if noise is None else noise.count(len(sums[key])),
            total=math.fsum(sums[key]),
            mean=math.fsum(sums[key]) / len(sums[key]),
        )
        for key, members in kept.items()
    ]
    return Released(groups=released, suppressed=suppressed)
