"""The dashboard benchmark's generated database, read back by the store's own code."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from benchmarks.dashdata import GeneratedStats, generate
from ttamond.messages import MetricBatch, MetricPoint, labels
from ttamond.selector import parse_selector
from ttamond.store.database import CHUNK_MS, HOUR_MS, MINUTE_MS, Database
from ttamond.store.queries import QueryResult, Reader, Retention
from ttamond.store.schema import SCHEMA_VERSION, migrate

DAY_MS = 24 * HOUR_MS
T = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS  # an hour boundary
END = T + 25 * MINUTE_MS  # the data ends 25 minutes into the hour
RETENTION = Retention(raw_ms=2 * HOUR_MS, minute_ms=30 * DAY_MS, hour_ms=400 * DAY_MS)
CPU = 'host_cpu_percent{cpu="total"}'
RECEIVED = 'host_net_received_bytes_total{interface="eth0"}'
LATENCY = "tta_network_latency_seconds"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> GeneratedStats:
    path = tmp_path_factory.mktemp("dash") / "ttamond.db"
    return generate(path, series=3, days=2, raw_hours=2, raw_interval_s=10.0, seed=7,
                    end_ms=END)


def _query(stats: GeneratedStats, selector: str, start: int, end: int, step: int,
           aggregate: str = "avg") -> QueryResult:
    reader = Reader(stats.database)
    try:
        return reader.query(parse_selector(selector), start_ms=start, end_ms=end, step_ms=step,
                            aggregate=aggregate, retention=RETENTION, now_ms=END)
    finally:
        reader.close()


def _values(result: QueryResult) -> list[float]:
    [series] = result.series
    return [value for _, value in series.points]


def test_counts_cover_the_span(generated: GeneratedStats) -> None:
    start = END - 2 * DAY_MS
    assert (generated.series, generated.start_ms, generated.end_ms) == (3, start, END)
    assert generated.names == ["host_cpu_percent", "host_net_received_bytes_total",
                               "tta_network_latency_seconds"]
    # Every 10 s over two days, first and last included; six per minute.
    assert generated.rollup_1m_rows == 3 * 2 * 24 * 60 + 3
    assert generated.rollup_1h_rows == 3 * (2 * 24 + 1)
    # Raw from the chunk window holding END - 2 h; the window from END - 2 min on is
    # not compacted yet: 20:00 to 25:00, 31 points a series.
    raw_start = END - 2 * HOUR_MS - (END - 2 * HOUR_MS) % CHUNK_MS
    assert generated.raw_start_ms == raw_start
    assert generated.head_points == 3 * 31
    assert generated.raw_points == 3 * ((END - raw_start) // 10_000 + 1)
    assert generated.chunks == 3 * (T + 20 * MINUTE_MS - raw_start) // CHUNK_MS
    conn = sqlite3.connect(generated.database)
    try:
        windows = conn.execute("SELECT start_ts, end_ts, count FROM chunks").fetchall()
        assert all(start % CHUNK_MS == 0 and start <= end < start + CHUNK_MS and count == 60
                   for start, end, count in windows)
        assert conn.execute("SELECT min(ts) FROM samples").fetchone()[0] >= T + 20 * MINUTE_MS
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_the_raw_tier_answers_from_chunks_and_head(generated: GeneratedStats) -> None:
    # Two compacted windows and the head: 10 s apart from T to END, both included.
    result = _query(generated, CPU, T, END + 1000, 0)
    assert result.tier == "raw"
    cpu = _values(result)
    assert len(cpu) == 151
    assert all(0 <= value <= 100 and round(value, 1) == value for value in cpu)
    assert len(set(cpu)) > 20  # it moves
    received = _values(_query(generated, RECEIVED, T, END + 1000, 0))
    assert len(received) == 151
    assert received == sorted(received) and received[-1] > received[0] > 1e11
    latency = _values(_query(generated, LATENCY, T, END + 1000, 0))
    assert len(latency) == 151 and all(0.001 <= value < 2 for value in latency)


def test_minute_rollups_aggregate_the_raw_points(generated: GeneratedStats) -> None:
    start = T - HOUR_MS
    per_minute = _query(generated, CPU, start, start + HOUR_MS - 1, MINUTE_MS)
    assert per_minute.tier == "1m"
    averages = _values(per_minute)
    assert len(averages) == 60
    counts = _values(_query(generated, CPU, start, start + HOUR_MS - 1, MINUTE_MS, "count"))
    assert counts == [6.0] * 60
    raw = _query(generated, CPU, start, start + HOUR_MS - 1, 0).series[0].points
    assert len(raw) == 360
    by_minute = [[value for ts, value in raw if ts - ts % MINUTE_MS == start + m * MINUTE_MS]
                 for m in range(60)]
    assert averages == pytest.approx([sum(values) / len(values) for values in by_minute])
    # A day back, before the raw tier: minutes still answer.
    day = _query(generated, CPU, END - DAY_MS, END - DAY_MS + 2 * HOUR_MS - 1, MINUTE_MS)
    assert day.tier == "1m" and len(_values(day)) == 120


def test_hour_rollups_cover_both_days(generated: GeneratedStats) -> None:
    start = T - 40 * HOUR_MS
    result = _query(generated, LATENCY, start, T - 1, HOUR_MS)
    assert result.tier == "1h"
    latency = _values(result)
    assert len(latency) == 40 and all(0.001 <= value < 1 for value in latency)
    counts = _values(_query(generated, LATENCY, start, T - 1, HOUR_MS, "count"))
    assert counts == [360.0] * 40
    received = _values(_query(generated, RECEIVED, start, T - 1, HOUR_MS, "last"))
    assert received == sorted(received)


def test_the_daemons_database_opens_it_without_migrating(generated: GeneratedStats) -> None:
    conn = sqlite3.connect(generated.database)
    try:
        assert migrate(conn) == SCHEMA_VERSION  # found current: nothing to do
    finally:
        conn.close()
    db = Database(generated.database, busy_timeout=1, synchronous="normal")
    assert db.open(quick_check=True) == []  # passes the store's check, not moved aside
    try:
        # A live point lands in the generated series: same name and label encoding.
        batch = MetricBatch(source="t", timestamp_ms=END + 10_000, points=(
            MetricPoint("host_cpu_percent", 12.5, labels(cpu="total"), "gauge", "percent"),))
        assert db.write("after-generation", [batch], origin="live")
        assert len(db.series_ids()) == 3
    finally:
        db.close()


def test_the_same_seed_gives_the_same_data(tmp_path: Path) -> None:
    def digest(path: Path) -> list[tuple[float, ...]]:
        conn = sqlite3.connect(path)
        try:
            return conn.execute("SELECT series_id, count(*), sum(vsum), max(vmax) FROM rollup_1m"
                                " GROUP BY series_id").fetchall()
        finally:
            conn.close()

    runs = [generate(tmp_path / f"{n}.db", series=3, days=1, raw_hours=1, end_ms=END, seed=s)
            for n, s in ((1, 5), (2, 5), (3, 6))]
    first, again, other = (digest(run.database) for run in runs)
    assert first == again and first != other
    with pytest.raises(FileExistsError):
        generate(runs[0].database, series=3, days=1, raw_hours=1, end_ms=END)
