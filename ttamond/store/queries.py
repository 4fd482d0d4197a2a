"""Range queries over a read-only connection, from the coarsest tier that answers."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from ttamond.config import StoreConfig
from ttamond.selector import Selector, parse_selector
from ttamond.store import chunks
from ttamond.store.database import HOUR_MS, MINUTE_MS

Aggregate = Literal["avg", "min", "max", "sum", "count", "last"]
AGGREGATES: tuple[str, ...] = ("avg", "min", "max", "sum", "count", "last")
MAX_POINTS = 11_000


class QueryError(ValueError):
    """A query that cannot be answered as asked; str() says why."""


class Retention(msgspec.Struct, frozen=True):
    """How far back each tier reaches, in ms (from the store config)."""

    raw_ms: int
    minute_ms: int
    hour_ms: int


def retention_of(config: StoreConfig) -> Retention:
    """The tiers' reach, from the [store] settings."""
    return Retention(
        raw_ms=config.raw_retention_hours * HOUR_MS,
        minute_ms=config.minute_retention_days * 24 * HOUR_MS,
        hour_ms=config.hour_retention_days * 24 * HOUR_MS,
    )


class SeriesResult(msgspec.Struct, frozen=True):
    """One series' points: [timestamp_ms, value] pairs, oldest first."""

    name: str
    labels: dict[str, str]
    kind: str
    unit: str
    points: list[tuple[int, float]]


class QueryResult(msgspec.Struct, frozen=True):
    """What `query` returns."""

    tier: str
    step_ms: int
    aggregate: str
    start_ms: int
    end_ms: int
    series: list[SeriesResult]


class Reader:
    """A read-only connection for queries; readers never block the store's writer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._conn.execute("PRAGMA query_only = 1")

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def query(
        self,
        selector: Selector,
        *,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        aggregate: str,
        retention: Retention,
        now_ms: int,
    ) -> QueryResult:
        """Points of every selected series in [start_ms, end_ms].

        `step_ms` 0 means raw points. The tier is the coarsest whose resolution fits the
        step and whose retention reaches `start_ms`. Raises QueryError.
        """
        if aggregate not in AGGREGATES:
            raise QueryError(f"unknown aggregate {aggregate!r} (one of: {', '.join(AGGREGATES)})")
        if end_ms < start_ms:
            raise QueryError("end is before start")
        if step_ms < 0:
            raise QueryError("step must not be negative")
        tier = _tier(start_ms, step_ms, retention, now_ms)
        if step_ms == 0 and tier != "raw":
            raise QueryError(
                f"raw samples older than {retention.raw_ms // HOUR_MS} h are gone; give a step"
            )
        if step_ms and (end_ms - start_ms) // step_ms > MAX_POINTS:
            raise QueryError(f"more than {MAX_POINTS} points per series; give a larger step")
        results = []
        for series_id, name, labels, kind, unit in self._series(selector):
            if tier == "raw":
                raw = self._raw(series_id, start_ms, end_ms)
                if not step_ms and len(raw) > MAX_POINTS:
                    raise QueryError(
                        f"{name} has {len(raw)} raw points in range; give a step"
                    )
                points = _bucket_raw(raw, step_ms, aggregate) if step_ms else raw
            else:
                rows = self._rollup(tier, series_id, start_ms, end_ms)
                points = _bucket_rollups(rows, step_ms, aggregate)
            results.append(SeriesResult(name=name, labels=labels, kind=kind, unit=unit,
                                        points=points))
        return QueryResult(tier=tier, step_ms=step_ms, aggregate=aggregate, start_ms=start_ms,
                           end_ms=end_ms, series=results)

    def series_list(self, selector: Selector, *, limit: int) -> list[dict[str, Any]]:
        """The stored series the selector matches (name, labels, kind, unit), by name."""
        found = []
        for _, name, labels, kind, unit in self._series(selector):
            found.append({"name": name, "labels": labels, "kind": kind, "unit": unit})
            if len(found) >= limit:
                break
        return found

    def _series(self, selector: Selector) -> Iterator[tuple[int, str, dict[str, str], str, str]]:
        if selector.name is not None:
            rows = self._conn.execute(
                "SELECT id, name, labels, kind, unit FROM series WHERE name = ? ORDER BY labels",
                (selector.name,),
            )
        else:
            rows = self._conn.execute(
                "SELECT id, name, labels, kind, unit FROM series ORDER BY name, labels"
            )
        for series_id, name, encoded, kind, unit in rows.fetchall():
            labels: dict[str, str] = json.loads(encoded)
            if selector.matches(name, labels):
                yield series_id, name, labels, kind, unit

    def _raw(self, series_id: int, start_ms: int, end_ms: int) -> list[tuple[int, float]]:
        merged: dict[int, float] = {}
        for (blob,) in self._conn.execute(
            "SELECT data FROM chunks WHERE series_id = ? AND start_ts <= ? AND end_ts >= ?"
            " ORDER BY start_ts",
            (series_id, end_ms, start_ms),
        ):
            for ts, value in zip(*chunks.decode(blob), strict=True):
                if start_ms <= ts <= end_ms:
                    merged[ts] = value
        for ts, value in self._conn.execute(
            "SELECT ts, value FROM samples WHERE series_id = ? AND ts BETWEEN ? AND ?",
            (series_id, start_ms, end_ms),
        ):
            merged[ts] = value
        return sorted(merged.items())

    def _rollup(
        self, tier: str, series_id: int, start_ms: int, end_ms: int
    ) -> list[tuple[int, float, float, float, int, float]]:
        table = "rollup_1m" if tier == "1m" else "rollup_1h"
        width = MINUTE_MS if tier == "1m" else HOUR_MS
        rows: list[tuple[int, float, float, float, int, float]] = self._conn.execute(
            f"SELECT ts, vmin, vmax, vsum, vcount, vlast FROM {table}"
            " WHERE series_id = ? AND ts BETWEEN ? AND ? ORDER BY ts",
            (series_id, start_ms - start_ms % width, end_ms),
        ).fetchall()
        return rows


def _tier(start_ms: int, step_ms: int, retention: Retention, now_ms: int) -> str:
    if step_ms >= HOUR_MS or start_ms < now_ms - retention.minute_ms:
        return "1h"
    if step_ms >= MINUTE_MS or start_ms < now_ms - retention.raw_ms:
        return "1m"
    return "raw"


def _bucket_raw(
    points: list[tuple[int, float]], step_ms: int, aggregate: str
) -> list[tuple[int, float]]:
    rollups = [(ts, value, value, value, 1, value) for ts, value in points]
    return _bucket_rollups(rollups, step_ms, aggregate)


def _bucket_rollups(
    rows: list[tuple[int, float, float, float, int, float]], step_ms: int, aggregate: str
) -> list[tuple[int, float]]:
    """Fold (ts, min, max, sum, count, last) rows, oldest first, into step buckets."""
    out: list[tuple[int, float]] = []
    bucket_start = None
    vmin = vmax = vsum = vlast = 0.0
    count = 0
    for ts, row_min, row_max, row_sum, row_count, row_last in rows:
        start = ts - ts % step_ms if step_ms else ts
        if start != bucket_start:
            if bucket_start is not None:
                out.append((bucket_start, _pick(aggregate, vmin, vmax, vsum, count, vlast)))
            bucket_start, vmin, vmax, vsum, count = start, row_min, row_max, 0.0, 0
        vmin = min(vmin, row_min)
        vmax = max(vmax, row_max)
        vsum += row_sum
        count += row_count
        vlast = row_last
    if bucket_start is not None:
        out.append((bucket_start, _pick(aggregate, vmin, vmax, vsum, count, vlast)))
    return out


def _pick(aggregate: str, vmin: float, vmax: float, vsum: float, count: int,
          vlast: float) -> float:
    if aggregate == "avg":
        return vsum / count if count else 0.0
    if aggregate == "min":
        return vmin
    if aggregate == "max":
        return vmax
    if aggregate == "sum":
        return vsum
    if aggregate == "count":
        return float(count)
    return vlast


class QueryArgs(msgspec.Struct, forbid_unknown_fields=True):
    """The `query` command's arguments on the control socket."""

    selector: str
    start_ms: int | None = None
    end_ms: int | None = None
    since_ms: Annotated[int, msgspec.Meta(gt=0)] = HOUR_MS
    step_ms: Annotated[int, msgspec.Meta(ge=0)] = 0
    aggregate: str = "avg"


def run_query(args: dict[str, Any], database: Path, retention: Retention,
              now_ms: int) -> QueryResult:
    """Validate control-socket arguments and answer them (blocking: call it from a
    worker thread). Raises QueryError, SelectorError, or sqlite3.Error."""
    try:
        request = msgspec.convert(args, QueryArgs)
    except msgspec.ValidationError as exc:
        raise QueryError(f"query: {exc}") from None
    selector = parse_selector(request.selector)
    end = request.end_ms if request.end_ms is not None else now_ms
    start = request.start_ms if request.start_ms is not None else end - request.since_ms
    reader = Reader(database)
    try:
        return reader.query(selector, start_ms=start, end_ms=end, step_ms=request.step_ms,
                            aggregate=request.aggregate, retention=retention, now_ms=now_ms)
    finally:
        reader.close()
