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


class Windows:
    """Keeps, for every series some rule selects, the samples within the longest
    window any selecting rule needs. Series nobody selects cost one dict lookup."""

    def __init__(self, wanted: Sequence[tuple[Selector, int]] = (), *,
                 max_series: int = MAX_SERIES) -> None:
        self.max_series = max_series
        self.dropped_series = 0
        """Series not tracked because `max_series` were already (counted, shown)."""
        self._wanted = list(wanted)
        self._horizon: dict[SeriesKey, int] = {}
        self._points: dict[SeriesKey, deque[tuple[int, float]]] = {}

    def configure(self, wanted: Sequence[tuple[Selector, int]]) -> None:
        """Watch these (selector, horizon in ms); keeps the samples of series still
        selected."""
        self._wanted = list(wanted)
        self._horizon.clear()
        for key in list(self._points):
            if self._horizon_of(key) == 0:
                del self._points[key]

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
            points = self._points[key] = deque()
        if points and timestamp_ms < points[-1][0]:
            return  # out of order: rules read the newest state, and late data is stored anyway
        if points and timestamp_ms - points[-1][0] < horizon // POINTS_PER_WINDOW:
            points[-1] = (timestamp_ms, value)
        else:
            points.append((timestamp_ms, value))
        cutoff = timestamp_ms - horizon
        while points and points[0][0] < cutoff:
            points.popleft()

    def select(self, selector: Selector) -> Iterator[tuple[str, Labels, deque[tuple[int, float]]]]:
        """Series the selector matches, with their samples."""
        for (name, labels), points in self._points.items():
            if selector.matches(name, dict(labels)):
                yield name, labels, points

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
    values = [(ts, v) for ts, v in points if ts >= since_ms]
    if not values:
        return None
    if how == "last":
        return values[-1][1]
    if how == "avg":
        return sum(v for _, v in values) / len(values)
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
