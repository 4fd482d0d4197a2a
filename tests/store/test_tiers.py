"""Rollups, compaction, retention and range queries on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ttamond.messages import EngagementRecorded, MetricBatch, MetricPoint, labels
from ttamond.selector import SelectorError, parse_selector
from ttamond.store.database import CHUNK_MS, HOUR_MS, MINUTE_MS, Cutoffs, Database
from ttamond.store.queries import QueryError, Reader, Retention, run_query

DAY_MS = 24 * HOUR_MS
T0 = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS  # an hour boundary
RETENTION = Retention(raw_ms=48 * HOUR_MS, minute_ms=30 * DAY_MS, hour_ms=400 * DAY_MS)


def _write(db: Database, key: str, samples: list[tuple[int, float]], *, cpu: str = "0") -> None:
    batches = [MetricBatch(source="t", timestamp_ms=ts, points=(
        MetricPoint("cpu", value, labels(cpu=cpu), "gauge", "percent"),)) for ts, value in samples]
    assert db.write(key, batches, origin="live")


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(tmp_path / "t.db", busy_timeout=1, synchronous="normal")
    database.open()
    return database


def test_rollups_are_incremental_and_take_late_samples(db: Database) -> None:
    _write(db, "a", [(T0 + 1000, 5.0), (T0 + 2000, 1.0)])
    _write(db, "b", [(T0 + 3000, 9.0), (T0 + MINUTE_MS, 2.0)])
    _write(db, "late", [(T0 + 500, 3.0)])  # older than what the minute has seen
    minute = _rows(db.path, "SELECT ts, vmin, vmax, vsum, vcount, vlast, last_ts FROM rollup_1m"
                            " ORDER BY ts")
    assert minute == [(T0, 1.0, 9.0, 18.0, 4, 9.0, T0 + 3000),
                      (T0 + MINUTE_MS, 2.0, 2.0, 2.0, 1, 2.0, T0 + MINUTE_MS)]
    hour = _rows(db.path, "SELECT ts, vmin, vmax, vsum, vcount, vlast FROM rollup_1h")
    assert hour == [(T0, 1.0, 9.0, 20.0, 5, 2.0)]


def test_compaction_moves_finished_hours_into_chunks_and_merges_late_samples(
    db: Database,
) -> None:
    first_hour = [(T0 + i * 1000, float(i % 7)) for i in range(3600)]
    _write(db, "a", [*first_hour, (T0 + HOUR_MS + 1000, 1.5)])
    assert db.compact_all(before_ms=T0 + HOUR_MS) == 3600
    assert _rows(db.path, "SELECT count(*) FROM samples") == [(1,)]
    assert _rows(db.path, "SELECT start_ts, end_ts, count FROM chunks ORDER BY start_ts") == [
        (T0 + w * CHUNK_MS, T0 + (w + 1) * CHUNK_MS - 1000, 600) for w in range(6)
    ]
    _write(db, "late", [(T0 + 500, 42.0)])  # a late sample for a compacted window
    assert db.compact_all(before_ms=T0 + HOUR_MS) == 1
    assert _rows(db.path, "SELECT count FROM chunks ORDER BY start_ts")[0] == (601,)

    reader = Reader(db.path)
    result = reader.query(parse_selector('cpu{cpu="0"}'), start_ms=T0, end_ms=T0 + 2 * HOUR_MS,
                          step_ms=0, aggregate="avg", retention=RETENTION, now_ms=T0 + HOUR_MS)
    points = result.series[0].points
    assert result.tier == "raw" and len(points) == 3602
    assert points[0] == (T0, 0.0) and points[1] == (T0 + 500, 42.0)
    assert points[-1] == (T0 + HOUR_MS + 1000, 1.5)
    reader.close()


def test_retention_per_tier(db: Database) -> None:
    _write(db, "a", [(T0 - 10 * DAY_MS, 1.0), (T0 - 3 * DAY_MS, 2.0), (T0, 3.0)])
    ids = db.series_ids()
    db.compact_all(before_ms=T0 - HOUR_MS)
    cutoffs = Cutoffs(raw_ms=T0 - 2 * DAY_MS, minute_ms=T0 - 5 * DAY_MS, hour_ms=T0 - 20 * DAY_MS,
                      events_ms=T0)
    assert db.apply_retention(ids, cutoffs) == 2  # the two raw samples older than 2 days
    assert _rows(db.path, "SELECT count(*) FROM chunks") == [(0,)]
    assert _rows(db.path, "SELECT ts FROM samples") == [(T0,)]
    assert [r[0] for r in _rows(db.path, "SELECT ts FROM rollup_1m ORDER BY ts")] == [
        T0 - 3 * DAY_MS, T0]
    assert len(_rows(db.path, "SELECT ts FROM rollup_1h")) == 3


def test_queries_pick_the_coarsest_tier_and_aggregate(db: Database) -> None:
    samples = [(T0 + i * 10_000, float(i)) for i in range(360)]  # one hour every 10 s
    _write(db, "a", samples)
    _write(db, "b", [(T0, 100.0)], cpu="1")
    reader = Reader(db.path)

    def ask(**kwargs: Any) -> Any:
        options: dict[str, Any] = {"start_ms": T0, "end_ms": T0 + HOUR_MS - 1, "step_ms": 0,
                                   "aggregate": "avg", "retention": RETENTION,
                                   "now_ms": T0 + HOUR_MS}
        options.update(kwargs)
        return reader.query(parse_selector('cpu{cpu="0"}'), **options)

    assert ask().tier == "raw"
    per_minute = ask(step_ms=MINUTE_MS)
    assert per_minute.tier == "1m" and len(per_minute.series[0].points) == 60
    assert per_minute.series[0].points[0] == (T0, 2.5)  # mean of 0..5
    assert ask(step_ms=5 * MINUTE_MS, aggregate="max").series[0].points[0] == (T0, 29.0)
    assert ask(step_ms=HOUR_MS, aggregate="count").series[0].points == [(T0, 360.0)]
    assert ask(step_ms=HOUR_MS).tier == "1h"
    assert ask(step_ms=30_000, aggregate="last").series[0].points[1] == (T0 + 30_000, 5.0)
    old = ask(start_ms=T0 - 3 * DAY_MS, step_ms=30_000)
    assert old.tier == "1m"  # raw does not reach back three days
    with pytest.raises(QueryError, match="raw samples older than 48 h are gone; give a step"):
        ask(start_ms=T0 - 3 * DAY_MS)
    with pytest.raises(QueryError, match="unknown aggregate 'median'"):
        ask(aggregate="median")
    with pytest.raises(QueryError, match="more than 11000 points per series"):
        ask(start_ms=T0 - DAY_MS, step_ms=1)
    both = reader.query(parse_selector("cpu"), start_ms=T0, end_ms=T0 + 1, step_ms=0,
                        aggregate="avg", retention=RETENTION, now_ms=T0)
    assert [s.labels for s in both.series] == [{"cpu": "0"}, {"cpu": "1"}]
    reader.close()


def test_run_query_validates_socket_arguments(db: Database) -> None:
    _write(db, "a", [(T0, 1.0)])
    result = run_query({"selector": "cpu", "since_ms": 1000, "end_ms": T0}, db.path, RETENTION,
                       T0)
    assert result.series[0].points == [(T0, 1.0)]
    with pytest.raises(QueryError, match=r"query: Expected `int`, got `str` - at `\$.step_ms`"):
        run_query({"selector": "cpu", "step_ms": "1m"}, db.path, RETENTION, T0)
    with pytest.raises(QueryError, match=r"query: Object contains unknown field `stepp`"):
        run_query({"selector": "cpu", "stepp": 1}, db.path, RETENTION, T0)


@pytest.mark.parametrize(
    ("text", "name", "matchers"),
    [
        ("cpu", "cpu", []),
        ('cpu{cpu="0"}', "cpu", [("cpu", "=", "0")]),
        ('x{a!="b", c=~"d.*",e!~"f|g"}', "x", [("a", "!=", "b"), ("c", "=~", "d.*"),
                                                ("e", "!~", "f|g")]),
        ('{__name__=~"host_.*"}', None, [("__name__", "=~", "host_.*")]),
        ('m{path="a\\"b"}', "m", [("path", "=", 'a"b')]),
    ],
)
def test_selectors_parse(text: str, name: str | None, matchers: list[tuple[str, str, str]]) -> None:
    selector = parse_selector(text)
    assert selector.name == name
    assert [(m.label, m.op, m.value) for m in selector.matchers] == matchers


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "give a metric name or a label matcher"),
        ("cpu{cpu=0}", "cannot read a label matcher at 'cpu=0'"),
        ('cpu{a="1" b="2"}', "expected ',' at 'b=\"2\"'"),
        ('cpu{a=~"("}', "regex '\\(': missing \\)"),
        ("1cpu", "expected name"),
    ],
)
def test_bad_selectors_say_where(text: str, message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        parse_selector(text)


def test_selector_matching() -> None:
    selector = parse_selector('host_disk_percent{mount!~"/boot.*", device=~"/dev/.*"}')
    assert selector.matches("host_disk_percent", {"mount": "/", "device": "/dev/vda"})
    assert not selector.matches("host_disk_percent", {"mount": "/boot/efi", "device": "/dev/a"})
    assert not selector.matches("host_disk_used_bytes", {"mount": "/", "device": "/dev/vda"})


def test_engagement_rows_have_their_own_retention(db: Database) -> None:
    rows = [EngagementRecorded(component="narrative", environment="prod", timestamp_ms=ts,
                               event="interaction", pseudonym="p1:abc", session=None)
            for ts in (T0 - 100 * DAY_MS, T0 - 10 * DAY_MS, T0)]
    assert db.write("e", rows, origin="live")
    db.expire_events(Cutoffs(raw_ms=0, minute_ms=0, hour_ms=0, events_ms=0,
                             engagement_ms=T0 - 90 * DAY_MS))
    assert _rows(db.path, "SELECT ts FROM engagement_events ORDER BY ts") == [
        (T0 - 10 * DAY_MS,), (T0,)]
