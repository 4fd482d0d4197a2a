"""Recent samples of the series alert rules watch, and the aggregates rules take of them."""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterator, Sequence

from ttamond.messages import Labels
from ttamond.selector import Selector

SeriesKey = tuple[str, Labels]
POINTS_PER_WINDOW = 1000
"""At most this many points per series: samples closer than horizon/POINTS_PER_WINDOW
replace the newest, so a day-long window at 1 Hz stays small."""
MAX_SERIES = 20_000


class Samples(deque[tuple[int, float]]):
    """One series' recent (timestamp ms, value) pairs, oldest first, with their running
    sum so an average over the whole window costs nothing."""

    __slots__ = ("total",)

    def __init__(self) -> None:
        super().__init__()
        self.total = 0.0


class Windows:
    """Keeps, for every series some rule selects, the samples within the longest
    window any selecting rule needs. Series nobody selects cost one dict lookup; each
    selector's series are indexed when a series first appears, so a rule's round
    visits only its own series."""

    def __init__(self, wanted: Sequence[tuple[Selector, int]] = (), *,
                 max_series: int = MAX_SERIES) -> None:
        self.max_series = max_series
        self.dropped_series = 0
        """Series not tracked because `max_series` were already (counted, shown)."""
        self._wanted = list(wanted)
        self._horizon: dict[SeriesKey, int] = {}
        self._points: dict[SeriesKey, Samples] = {}
        self._index: dict[Selector, dict[SeriesKey, None]] = {}

    def configure(self, wanted: Sequence[tuple[Selector, int]]) -> None:
        """Watch these (selector, horizon in ms); keeps the samples of series still
        selected."""
        self._wanted = list(wanted)
        self._horizon.clear()
        self._index = {selector: {} for selector, _ in self._wanted}
        for key in list(self._points):
            if self._horizon_of(key) == 0:
                del self._points[key]
            else:
                self._join(key)

    def add(self, name: str, labels: Labels, timestamp_ms: int, value: float) -> None:
        """Take one sample; ignored unless a rule selects its series."""
        key = (name, labels)
        horizon = self._horizon.get(key)
        if horizon is None:
            horizon = self._horizon_of(key)
        if horizon == 0 or math.isnan(value):
            return
        points = self._points.get(key)
        if points is None:
            if len(self._points) >= self.max_series:
                self.dropped_series += 1
                return
            points = self._points[key] = Samples()
            self._join(key)
        if points and timestamp_ms < points[-1][0]:
            return  # out of order: rules read the newest state, and late data is stored anyway
        if points and timestamp_ms - points[-1][0] < horizon // POINTS_PER_WINDOW:
            points.total += value - points[-1][1]
            points[-1] = (timestamp_ms, value)
        else:
            points.append((timestamp_ms, value))
            points.total += value
        cutoff = timestamp_ms - horizon
        while points and points[0][0] < cutoff:
            points.total -= points.popleft()[1]

    def select(self, selector: Selector) -> Iterator[tuple[str, Labels, Samples]]:
        """Series the selector matches, with their samples."""
        index = self._index.get(selector)
        if index is None:
            index = self._index[selector] = {}
            for key in self._points:
                if selector.matches(key[0], dict(key[1])):
                    index[key] = None
        for key in index:
            points = self._points.get(key)
            if points is not None:
                yield key[0], key[1], points

    def _join(self, key: SeriesKey) -> None:
        as_dict = dict(key[1])
        for selector, members in self._index.items():
            if selector.matches(key[0], as_dict):
                members[key] = None

    @property
    def wanted(self) -> list[tuple[Selector, int]]:
        """The (selector, horizon ms) pairs watched."""
        return list(self._wanted)

    @property
    def series(self) -> int:
        """Series tracked now."""
        return len(self._points)

    def _horizon_of(self, key: SeriesKey) -> int:
        name, labels = key
        as_dict = dict(labels)
        horizon = max((h for selector, h in self._wanted if selector.matches(name, as_dict)),
                      default=0)
        if len(self._horizon) < self.max_series * 4:
            self._horizon[key] = horizon
        return horizon


def aggregate(points: Sequence[tuple[int, float]], how: str, *, since_ms: int) -> float | None:
    """`avg`, `min`, `max`, `last`, `increase` or `rate` (per second) of the points at or
    after `since_ms`; None without points (or, for a counter, with fewer than two)."""
    if not points or points[-1][0] < since_ms:
        return None
    if how == "last":
        return points[-1][1]
    # Points are in time order and trimmed to the longest window: only a few at the
    # front can be older than this rule's window. Skip those, not scan everything.
    skip, skipped_sum = 0, 0.0
    for ts, value in points:
        if ts >= since_ms:
            break
        skip += 1
        skipped_sum += value
    count = len(points) - skip
    if how == "avg" and isinstance(points, Samples):
        return (points.total - skipped_sum) / count
    values = list(itertools.islice(points, skip, None))
    if how == "avg":
        return sum(v for _, v in values) / count
    if how == "min":
        return min(v for _, v in values)
    if how == "max":
        return max(v for _, v in values)
    if len(values) < 2:
        return None
    increase = 0.0
    for (_, before), (_, after) in itertools.pairwise(values):
        # A counter that went down was reset: count from zero, as Prometheus does.
        increase += after - before if after >= before else after
    if how == "increase":
        return increase
    seconds = (values[-1][0] - values[0][0]) / 1000
    return increase / seconds if seconds > 0 else None
