"""What the status page shows, gathered from the daemon's live state, its control
commands and the store: plain data, no HTML, cached per panel."""

from __future__ import annotations

import itertools
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import trio

from ttamond.actors.latest import LatestValue
from ttamond.messages import now_ms
from ttamond.selector import parse_selector
from ttamond.store.database import HOUR_MS, MINUTE_MS
from ttamond.store.queries import QueryError, QueryResult, Reader, Retention
from ttamond.web.cache import DashboardCache
from ttamond.web.svg import ChartSeries

Command = Callable[[dict[str, Any]], Awaitable[Any]]

_UNITS_MS = {"m": MINUTE_MS, "h": HOUR_MS, "d": 24 * HOUR_MS, "w": 7 * 24 * HOUR_MS}
CHART_POINTS = 240
"""About one point per two or three pixels of a 640-wide chart."""


class Unavailable(Exception):
    """A panel's source is not there (alerting off, no database yet); str() says why."""


def parse_range(text: str) -> int:
    """`30m`, `6h`, `7d`, `2w` in milliseconds. Raises ValueError naming the value."""
    number, unit = text[:-1], text[-1:]
    if unit not in _UNITS_MS or not re.fullmatch(r"[1-9][0-9]{0,4}", number):
        raise ValueError(f"bad range {text!r}: use a whole number (1 to 99999) and m, h, d"
                         " or w, e.g. 7d")
    return int(number) * _UNITS_MS[unit]


STEPS_MS = tuple(n * MINUTE_MS for n in (1, 2, 5, 10, 15, 30)) + tuple(
    n * HOUR_MS for n in (1, 2, 3, 6, 12, 24))


def chart_step(span_ms: int) -> int:
    """The smallest round step giving at most about CHART_POINTS points. Past half an
    hour the steps are whole hours, so long charts read the hourly rollups (a 7-day
    chart: 168 hourly rows per series rather than 10,080 minute rows)."""
    wanted = span_ms / CHART_POINTS
    for step in STEPS_MS:
        if step >= wanted:
            return step
    return -(-int(wanted) // (24 * HOUR_MS)) * 24 * HOUR_MS


class Sources(msgspec.Struct):
    """The daemon's parts the page reads. Callables run on the event loop: quick."""

    commands: Mapping[str, Command]
    status: Callable[[], dict[str, Any]]
    latest: Callable[[], list[LatestValue]]
    database: Path | None = None
    retention: Retention | None = None
    generation: Callable[[], Hashable] | None = None
    loop_lag: Callable[[], float] | None = None
    """The event loop's lag in seconds: how busy the daemon is."""


class Dashboard:
    """Panel data over `Sources`, through one cache shared by every browser."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.cache = DashboardCache(sources.generation or (lambda: now_ms() // 5000))
        self._cpu = CpuShare()
        self.alerts_section: Callable[[], Awaitable[str]] | None = None
        """The alerts section with its forms, when the escalator runs."""
        self.csrf: str | None = None
        """The token the page's forms carry (none: the page offers no buttons)."""

    async def command(self, name: str, args: dict[str, Any] | None = None) -> Any:
        """A control command's reply. Raises Unavailable when the part is off, and
        CommandError as the command raises it."""
        handler = self.sources.commands.get(name)
        if handler is None:
            raise Unavailable(f"{name.split('_')[0]} is not running on this daemon")
        # Handlers answer with structs for the socket's encoder; panels want plain data.
        return msgspec.to_builtins(await handler(dict(args or {})), enc_hook=str)

    def status(self) -> dict[str, Any]:
        """What `ttamond status` shows, as plain data (its parts are structs)."""
        found: dict[str, Any] = msgspec.to_builtins(self.sources.status(), enc_hook=str)
        return found

    async def cached(self, key: Hashable, render: Callable[[], Awaitable[str]]) -> str:
        """`render()`'s HTML or SVG, shared until new data arrives."""
        found = await self.cache.get(key, render)
        return found if isinstance(found, str) else found.decode()

    async def query(self, selector: str, *, span_ms: int, step_ms: int | None = None,
                    aggregate: str = "avg", end_ms: int | None = None) -> QueryResult:
        """Points of the selected series over the last `span_ms` (in a worker thread).
        Raises Unavailable without a database, QueryError or SelectorError on bad input."""
        database, retention = self.sources.database, self.sources.retention
        if database is None or retention is None:
            raise Unavailable("this daemon has no database to chart from")
        parsed = parse_selector(selector)
        end = end_ms if end_ms is not None else now_ms()
        step = chart_step(span_ms) if step_ms is None else step_ms

        def run() -> QueryResult:
            try:
                reader = Reader(database)
            except sqlite3.OperationalError as exc:
                raise QueryError(f"cannot open {database}: {exc}") from None
            try:
                return reader.query(parsed, start_ms=end - span_ms, end_ms=end, step_ms=step,
                                    aggregate=aggregate, retention=retention, now_ms=now_ms())
            finally:
                reader.close()

        return await trio.to_thread.run_sync(run)

    async def chart(self, selector: str, *, span_ms: int, label_by: Sequence[str] = (),
                    rate: bool = False, limit: int = 8) -> tuple[list[ChartSeries], str, int]:
        """Chart series for `selector` (per-second rates of counters when `rate`), their
        unit, and the step. Callers cache what they render from it."""
        result = await self.query(selector, span_ms=span_ms, aggregate="last" if rate else "avg")
        unit = result.series[0].unit if result.series else ""
        found = []
        for series in result.series[:limit]:
            points = per_second(series.points) if rate else series.points
            found.append(ChartSeries(label=series_label(series.name, series.labels, label_by),
                                     points=points))
        if rate and unit:
            unit = f"{unit}/s"
        return found, unit, result.step_ms

    async def sparklines(self, name: str, label: str, *, span_ms: int = 6 * HOUR_MS,
                         ) -> dict[str, list[tuple[int, float]]]:
        """`name`'s series over the span keyed by the value of `label`."""
        try:
            result = await self.query(name, span_ms=span_ms, aggregate="max")
        except (Unavailable, QueryError):
            return {}
        return {s.labels.get(label, ""): list(s.points) for s in result.series}

    def latest(self, prefix: str) -> list[LatestValue]:
        """The newest value of each series whose name starts with `prefix`."""
        return [value for value in self.sources.latest() if value.name.startswith(prefix)]

    def refresh_seconds(self, *, firing: bool) -> int:
        """How long a panel waits before reloading itself: sooner while an alert fires,
        later while the daemon is busy (its event loop lags, or it spends most of a
        core)."""
        lag = self.sources.loop_lag() if self.sources.loop_lag is not None else 0.0
        cpu = self._cpu.share()
        if lag > 0.25 or cpu > 0.8:
            return 60
        if lag > 0.05 or cpu > 0.5:
            return 30
        return 5 if firing else 15


class CpuShare:
    """The share of one core this process used, over at least the last few seconds."""

    def __init__(self, *, every: float = 5.0) -> None:
        self.every = every
        self._since = (time.monotonic(), time.process_time())
        self._share = 0.0

    def share(self) -> float:
        """The latest share (0.0 to the number of cores), remeasured every `every` s."""
        wall, cpu = time.monotonic(), time.process_time()
        if wall - self._since[0] >= self.every:
            self._share = (cpu - self._since[1]) / (wall - self._since[0])
            self._since = (wall, cpu)
        return self._share


def per_second(points: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    """A counter's per-second rate between consecutive points; a reset (the counter
    going down) starts again rather than charting a negative rate."""
    rates = []
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t1 > t0 and v1 >= v0:
            rates.append((t1, (v1 - v0) * 1000 / (t1 - t0)))
    return rates


def series_label(name: str, labels: Mapping[str, str], label_by: Sequence[str]) -> str:
    """A legend entry: the chosen labels' values, or the name and every label."""
    chosen = [labels[key] for key in label_by if key in labels]
    if chosen:
        return " ".join(chosen)
    inner = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}" if inner else name

