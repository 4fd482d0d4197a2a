"""The store actor on real SQLite files: batching, spooling on failure, exactly-once replay."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from ttamond.actors.store import StoreActor, StoreInput
from ttamond.bus import Bus, Overflow, Subscription
from ttamond.config import StoreConfig
from ttamond.messages import (
    ActorStateChanged,
    MetricBatch,
    MetricPoint,
    ProbeFailed,
    StoreEvent,
    labels,
    now_ms,
)
from ttamond.receipts import Ingested
from ttamond.store.database import Database, is_transient
from ttamond.store.schema import SCHEMA_VERSION, SchemaTooNew, migrate
from ttamond.store.stats import StoreStats

# Recent timestamps: the store compacts finished hours and applies retention at start.
BASE_MS = now_ms()
FAST = StoreConfig(batch_max_age=0.05, retry_interval=0.05, busy_timeout=0.05)


def _batch(tick: int, series: int = 3) -> MetricBatch:
    return MetricBatch(
        source="test",
        timestamp_ms=BASE_MS + tick,
        points=tuple(MetricPoint(f"m{i}", float(tick), labels(i=str(i))) for i in range(series)),
    )


class Harness:
    """A store actor with its own bus and mailbox, on files under `root`."""

    def __init__(self, root: Path, config: StoreConfig = FAST) -> None:
        self.database = root / "t.db"
        self.spool = root / "t.db.spool"
        self.bus = Bus()
        self.mailbox: Subscription[StoreInput] = self.bus.subscribe(
            "store", (MetricBatch, ProbeFailed, StoreEvent, ActorStateChanged, Ingested),
            policy=Overflow.BLOCK, capacity=64,
        )
        self.stats = StoreStats()
        self.config = config

    def actor(self) -> StoreActor:
        return StoreActor(self.config, database=self.database, spool=self.spool,
                          mailbox=self.mailbox, stats=self.stats, shutdown_grace=2.0)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.database)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()


async def _until(condition: Callable[[], bool]) -> None:
    # The store's counters change on its worker thread, which no trio.Event sees:
    # poll the condition, under a deadline.
    with trio.fail_after(10):
        while not condition():  # noqa: ASYNC110
            await trio.sleep(0.01)


async def test_batches_commit_and_cancellation_flushes(tmp_path: Path) -> None:
    harness = Harness(tmp_path, StoreConfig(batch_max_age=60, batch_max_rows=6))
    async with trio.open_nursery() as nursery:
        await nursery.start(harness.actor().run)
        for tick in range(2):
            await harness.bus.publish(_batch(tick))  # 6 points: one full batch
        await _until(lambda: harness.stats.batches_committed == 1)
        await harness.bus.publish(_batch(2))
        await harness.bus.publish(ProbeFailed(source="p", timestamp_ms=5, error="boom"))
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()  # pending: 3 points and an event, flushed on the way out
    assert harness.rows("SELECT count(*) FROM samples") == [(9,)]
    assert harness.rows("SELECT kind, source, detail FROM events") == [("probe_failed", "p", "boom")]
    assert harness.rows("SELECT points, events, origin FROM batches ORDER BY id") == [
        (6, 0, "live"), (3, 1, "live")
    ]
    assert harness.rows("SELECT name, labels, kind FROM series ORDER BY id")[0] == (
        "m0", '{"i":"0"}', "gauge"
    )


async def test_locked_database_spools_and_replays_each_sample_exactly_once(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(harness.actor().run)
        await harness.bus.publish(_batch(0))
        await _until(lambda: harness.stats.batches_committed == 1)

        blocker = sqlite3.connect(harness.database, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        for tick in range(1, 21):
            await harness.bus.publish(_batch(tick))
            await trio.sleep(0.01)
        await _until(lambda: harness.stats.spooled_batches >= 2)
        await _until(lambda: harness.mailbox.depth == 0)
        await trio.sleep(0.1)  # let the last age-triggered batch reach the spool
        assert harness.stats.mode == "spooling"
        assert harness.stats.spool_bytes > 0
        assert "SQLITE_BUSY" in harness.stats.last_error
        blocker.execute("ROLLBACK")
        blocker.close()

        await _until(lambda: harness.stats.mode == "live")
        await harness.bus.publish(_batch(21))
        await _until(lambda: harness.stats.points_committed == 22 * 3)
        nursery.cancel_scope.cancel()

    ticks = [row[0] for row in harness.rows(
        f"SELECT ts - {BASE_MS} FROM samples JOIN series ON series.id = series_id"
        " WHERE name = 'm0' ORDER BY ts")]
    assert ticks == list(range(22))
    assert harness.rows("SELECT count(*) FROM samples") == [(66,)]
    assert harness.rows("SELECT count(*) FROM batches WHERE origin = 'spool'")[0][0] >= 1
    assert harness.spool.stat().st_size == 0
    assert harness.stats.spool_dropped_batches == 0


async def test_replay_after_restart_skips_frames_already_committed(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    # A previous run spooled two batches and died after committing the first of them
    # during a replay but before emptying the spool.
    from ttamond.actors.store import SpoolFrame, _frame_encoder
    from ttamond.store.spool import Spool

    spool = Spool(harness.spool, max_bytes=1 << 20)
    spool.open()
    for key, tick in (("old-1", 1), ("old-2", 2)):
        spool.append(_frame_encoder.encode(SpoolFrame(batch_key=key, messages=[_batch(tick)])))
    database = Database(harness.database, busy_timeout=1, synchronous="normal")
    database.open()
    assert database.write("old-1", [_batch(1)], origin="spool")
    database.close()

    async with trio.open_nursery() as nursery:
        await nursery.start(harness.actor().run)
        await _until(lambda: harness.stats.mode == "live")
        nursery.cancel_scope.cancel()
    assert harness.rows("SELECT batch_key FROM batches ORDER BY id") == [("old-1",), ("old-2",)]
    assert harness.rows("SELECT count(*) FROM samples") == [(6,)]
    assert harness.stats.replayed_batches == 2
    assert harness.stats.batches_committed == 1


async def test_torn_spool_tail_is_reported_as_an_event(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.spool.write_bytes(b"\x00\x00\x01\x00garbage")
    async with trio.open_nursery() as nursery:
        await nursery.start(harness.actor().run)
        await harness.bus.publish(_batch(0))
        await _until(lambda: harness.stats.batches_committed == 1)
        nursery.cancel_scope.cancel()
    assert harness.stats.spool_torn_tails == 1
    (detail,) = harness.rows("SELECT detail FROM events WHERE kind = 'spool_damaged'")[0]
    assert "cut a torn tail of 11 bytes" in str(detail)


async def test_full_spool_drops_and_counts(tmp_path: Path) -> None:
    harness = Harness(tmp_path, StoreConfig(batch_max_age=0.01, retry_interval=60,
                                            busy_timeout=0.01, spool_max_bytes=200))
    async with trio.open_nursery() as nursery:
        await nursery.start(harness.actor().run)
        blocker = sqlite3.connect(harness.database, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        for tick in range(10):
            await harness.bus.publish(_batch(tick))
            await _until(lambda: harness.mailbox.depth == 0)
            await trio.sleep(0.03)
        blocker.execute("ROLLBACK")
        blocker.close()
        nursery.cancel_scope.cancel()
    assert harness.stats.spool_dropped_batches > 0
    assert harness.stats.spool_dropped_points == 3 * harness.stats.spool_dropped_batches
    assert "spool is full (200 bytes)" in harness.stats.last_error


def test_full_disk_is_a_transient_error(tmp_path: Path) -> None:
    database = Database(tmp_path / "t.db", busy_timeout=1, synchronous="normal")
    database.open()
    conn = database._connection()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk is full"
    many = [_batch(tick, series=50) for tick in range(50)]
    with pytest.raises(sqlite3.OperationalError, match="full") as caught:
        database.write("k", many, origin="live")
    assert caught.value.sqlite_errorname == "SQLITE_FULL"
    assert is_transient(caught.value)
    conn.execute("PRAGMA max_page_count = 1073741823")
    assert database.write("k", many, origin="live")  # nothing of the failed try remained
    database.close()


def test_corrupt_database_is_moved_aside_not_deleted(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    database = Database(path, busy_timeout=1, synchronous="normal")
    database.open()
    database.write("k", [_batch(0, series=200)], origin="live")
    database.close()
    data = bytearray(path.read_bytes())
    data[4096 * 2 : 4096 * 2 + 200] = b"\xAB" * 200  # scribble over a b-tree page
    path.write_bytes(bytes(data))

    events = Database(path, busy_timeout=1, synchronous="normal").open()
    assert [event.kind for event in events] == ["database_recovered"]
    assert "failed its check" in events[0].detail
    moved = [p for p in tmp_path.glob("t.db.corrupt-*") if not p.name.endswith(("-wal", "-shm"))]
    assert len(moved) == 1 and moved[0].read_bytes() == bytes(data)
    assert path.exists() and path.read_bytes() != bytes(data)  # a fresh database


def test_migrations_are_numbered_and_refuse_a_newer_schema(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    assert migrate(conn) == 0
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert migrate(conn) == SCHEMA_VERSION
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer = rf"schema version {SCHEMA_VERSION + 1} is newer than this ttamond \({SCHEMA_VERSION}\)"
    with pytest.raises(SchemaTooNew, match=newer):
        migrate(conn)
    conn.close()
