"""The report's time window and stored series read over it in buckets (count, sum,
min, max), from which both the window's totals and the charts' points follow."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Final

import msgspec

from ttamond.selector import parse_selector
from ttamond.store.queries import Reader, Retention

CHART_POINTS: Final = 200
CHUNK_BUCKETS: Final = 10_000
"""Buckets read per query at most (the store refuses more than MAX_POINTS)."""
_S, _MIN, _H, _DAY = 1000, 60_000, 3_600_000, 86_400_000
STEPS: Final = (_S, 2 * _S, 5 * _S, 10 * _S, 15 * _S, 20 * _S, 30 * _S, _MIN, 2 * _MIN,
                3 * _MIN, 5 * _MIN, 10 * _MIN, 15 * _MIN, 20 * _MIN, 30 * _MIN, _H, 2 * _H,
                3 * _H, 4 * _H, 6 * _H, 8 * _H, 12 * _H, _DAY, 2 * _DAY, 7 * _DAY)
"""Bucket widths a report reads at: round ones, so chart points fall on round times."""


class Window(msgspec.Struct, frozen=True, kw_only=True):
    """[since_ms, until_ms], the present (which decides the tiers that still hold raw
    samples) and the store's retention."""

    since_ms: int
    until_ms: int
    now_ms: int
    retention: Retention

    def __post_init__(self) -> None:
        if self.until_ms <= self.since_ms:
            raise ValueError(f"the window ends ({self.until_ms}) before it starts"
                             f" ({self.since_ms})")

    @property
    def seconds(self) -> float:
        """The window's length in seconds."""
        return (self.until_ms - self.since_ms) / 1000

    @property
    def step_ms(self) -> int:
        """The smallest round bucket width giving at most CHART_POINTS buckets. Widths
        under a minute read raw samples, a minute or more the 1-minute rollups, an hour
        or more the 1-hour rollups (store/queries.py picks the tier)."""
        wanted = math.ceil((self.until_ms - self.since_ms) / CHART_POINTS)
        return next((step for step in STEPS if step >= wanted),
                    math.ceil(wanted / _DAY) * _DAY)


class Bucket(msgspec.Struct, frozen=True, array_like=True):
    """The samples of one series in one bucket."""

    ts: int
    count: int
    total: float
    low: float
    high: float

    @property
    def mean(self) -> float:
        """The mean of the bucket's samples."""
        return self.total / self.count


class SeriesBuckets(msgspec.Struct, frozen=True):
    """One series' buckets over the window, oldest first (buckets without samples are
    absent)."""

    name: str
    labels: dict[str, str]
    buckets: list[Bucket]


def read_buckets(reader: Reader, selector: str, window: Window, *,
                 step_ms: int | None = None) -> list[SeriesBuckets]:
    """Every series `selector` names, in buckets of `step_ms` (default
    `window.step_ms`); a window of more than CHUNK_BUCKETS buckets is read in parts.

    The rollup tiers answer in whole minutes or hours, so a window read from them
    includes the samples of the minute (or hour) it starts in and of the one it ends
    in. Raises QueryError or SelectorError, and sqlite3.Error when the database cannot
    be read.
    """
    parsed = parse_selector(selector)
    step = step_ms or window.step_ms
    found: dict[tuple[str, str], SeriesBuckets] = {}
    # Parts end just before a whole hour, so no bucket or rollup is read twice.
    part_ms = max(_H, CHUNK_BUCKETS * step // _H * _H)
    start = window.since_ms
    while start <= window.until_ms:
        next_start = start - start % _H + part_ms
        end = min(window.until_ms, next_start - 1)
        answers = [reader.query(parsed, start_ms=start, end_ms=end, step_ms=step,
                                aggregate=aggregate, retention=window.retention,
                                now_ms=window.now_ms)
                   for aggregate in ("count", "sum", "min", "max")]
        for counts, sums, lows, highs in zip(*(answer.series for answer in answers),
                                             strict=True):
            key = (counts.name, json.dumps(counts.labels, sort_keys=True))
            series = found.setdefault(key, SeriesBuckets(counts.name, counts.labels, []))
            series.buckets.extend(
                Bucket(ts, int(count), total, low, high)
                for (ts, count), (_, total), (_, low), (_, high)
                in zip(counts.points, sums.points, lows.points, highs.points, strict=True)
                if count > 0)
        start = next_start
    return list(found.values())


class Totals(msgspec.Struct):
    """Samples folded over several buckets or series."""

    count: int = 0
    total: float = 0.0
    high: float = -math.inf

    def add(self, buckets: Iterable[Bucket]) -> None:
        """Fold in `buckets`."""
        for bucket in buckets:
            self.count += bucket.count
            self.total += bucket.total
            self.high = max(self.high, bucket.high)

    @property
    def mean(self) -> float | None:
        """The mean of every sample folded in; None without samples."""
        return self.total / self.count if self.count else None

    @property
    def peak(self) -> float | None:
        """The highest sample; None without samples."""
        return self.high if self.count else None


def mean_points(series: Iterable[SeriesBuckets]) -> list[tuple[int, float]]:
    """Per bucket, the mean of the samples of all `series` together, oldest first."""
    sums: dict[int, list[float]] = {}
    for one in series:
        for bucket in one.buckets:
            found = sums.setdefault(bucket.ts, [0.0, 0.0])
            found[0] += bucket.total
            found[1] += bucket.count
    return [(ts, total / count) for ts, (total, count) in sorted(sums.items())]
