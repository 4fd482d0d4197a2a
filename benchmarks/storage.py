"""Storage: bytes on disk per raw sample, end-to-end ingest rate, and query latency.

Run from the repository root:

    python benchmarks/storage.py            # all three
    python benchmarks/storage.py --hours 6 --series 80

1. Bytes per sample: `--series` host-like series (counters, one-decimal percentages,
   byte gauges, load averages) at 1 Hz for `--hours` hours go through the store's write
   path; finished hours are compacted into chunks, then SQLite's `dbstat` gives the bytes
   of every table. Reported with and without the head of uncompacted rows.
2. Ingest: MetricBatches of 1000 points published on the bus to a real StoreActor on a
   real file, until all are committed; beside `executemany` into a bare table in the
   same run, the reference the issue names.
3. Query: 7 days of one series at 1 Hz, then `query(step=1m)` over the 7 days, 50 times.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import trio

from ttamond.actors.store import StoreActor, StoreInput
from ttamond.bus import Bus, Overflow, Subscription
from ttamond.config import StoreConfig
from ttamond.messages import (
    ActorStateChanged,
    AnyMessage,
    MetricBatch,
    MetricPoint,
    ProbeFailed,
    StoreEvent,
    labels,
)
from ttamond.receipts import Ingested
from ttamond.selector import parse_selector
from ttamond.store.database import HOUR_MS, Database
from ttamond.store.queries import Reader, Retention
from ttamond.store.stats import StoreStats

DAY_MS = 24 * HOUR_MS
RETENTION = Retention(raw_ms=48 * HOUR_MS, minute_ms=30 * DAY_MS, hour_ms=400 * DAY_MS)


class HostLike:
    """Series that move like a host's: counters, percentages, byte gauges, loads."""

    def __init__(self, series: int, rng: random.Random) -> None:
        self.rng = rng
        self.kinds = [index % 4 for index in range(series)]
        self.state = [rng.uniform(0, 1e9) if kind in (0, 2) else rng.uniform(0, 50)
                      for kind in self.kinds]

    def points(self) -> tuple[MetricPoint, ...]:
        out = []
        for index, kind in enumerate(self.kinds):
            if kind == 0:  # a byte counter
                self.state[index] += self.rng.randint(0, 200_000)
                value = float(int(self.state[index]))
            elif kind == 1:  # a percentage, one decimal, as psutil gives it
                value = round(min(100.0, max(0.0, self.state[index] + self.rng.gauss(0, 3))), 1)
                self.state[index] = value
            elif kind == 2:  # a byte gauge moving in pages
                self.state[index] += self.rng.randint(-50, 50) * 4096
                value = float(int(self.state[index]))
            else:  # a load average (binary fractions of 1/2048)
                self.state[index] = max(0.0, self.state[index] + self.rng.gauss(0, 0.05))
                value = round(self.state[index] * 2048) / 2048
            out.append(MetricPoint(f"m{kind}", value, labels(i=str(index))))
        return tuple(out)


def bytes_per_sample(series: int, hours: float, folder: Path) -> None:
    """Write, compact, and measure with dbstat."""
    rng = random.Random(1)
    source = HostLike(series, rng)
    database = Database(folder / "size.db", busy_timeout=5, synchronous="off")
    database.open()
    start = 1_800_000_000_000 - 1_800_000_000_000 % HOUR_MS
    seconds = int(hours * 3600)
    batch: list[AnyMessage] = []
    for second in range(seconds):
        batch.append(MetricBatch(source="host", timestamp_ms=start + second * 1000
                                 + rng.randint(0, 4), points=source.points()))
        if len(batch) == 60:
            database.write(f"b{second}", batch, origin="live")
            batch = []
    if batch:
        database.write("last", batch, origin="live")
    database.compact_all(before_ms=start + seconds * 1000 - 120_000)
    database.close()
    samples = series * seconds
    conn = sqlite3.connect(folder / "size.db")
    conn.execute("VACUUM")
    tables = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
    head_rows = conn.execute("SELECT count(*) FROM samples").fetchone()[0]
    conn.close()
    total = sum(tables.values())
    head = tables.get("samples", 0)
    print(f"bytes per sample: {series} series x {hours:g} h at 1 Hz = {samples} samples")
    for name, size in sorted(tables.items(), key=lambda item: -item[1])[:8]:
        print(f"  {name:<28} {size / 1e6:8.2f} MB  {size / samples:6.2f} B/sample")
    compacted = samples - head_rows
    print(f"  whole database: {total / samples:.2f} B/sample; "
          f"chunks alone: {tables.get('chunks', 0) / max(compacted, 1):.2f} B per compacted"
          " sample; "
          f"without the uncompacted head ({head_rows} rows): "
          f"{(total - head) / max(compacted, 1):.2f} B/sample")


async def _ingest(folder: Path, batches: int, points: int) -> float:
    bus = Bus()
    mailbox: Subscription[StoreInput] = bus.subscribe(
        "store", (MetricBatch, ProbeFailed, ActorStateChanged, StoreEvent, Ingested),
        policy=Overflow.BLOCK, capacity=64)
    stats_holder = StoreStats()
    actor = StoreActor(StoreConfig(batch_max_rows=20_000, batch_max_age=0.5), database=folder
                       / "ingest.db", spool=folder / "ingest.db.spool", mailbox=mailbox,
                       stats=stats_holder)
    payload = [tuple(MetricPoint("m", float(i), labels(i=str(i))) for i in range(points))]
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        began = time.perf_counter()
        for index in range(batches):
            await bus.publish(MetricBatch(source="bench", timestamp_ms=1_800_000_000_000 + index,
                                          points=payload[0]))
        # The store's counters change on its worker thread: poll them.
        while stats_holder.points_committed < batches * points:  # noqa: ASYNC110
            await trio.sleep(0.01)
        elapsed = time.perf_counter() - began
        nursery.cancel_scope.cancel()
    return batches * points / elapsed


def ingest(folder: Path, batches: int, points: int) -> None:
    """Samples per second through the bus and the store actor, beside bare executemany."""
    rate = trio.run(_ingest, folder, batches, points)
    conn = sqlite3.connect(folder / "bare.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (series_id INTEGER, ts INTEGER, value REAL)")
    rows = [(i % points, i // points, float(i)) for i in range(batches * points)]
    began = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    conn.execute("COMMIT")
    bare = len(rows) / (time.perf_counter() - began)
    conn.close()
    print(f"ingest: {rate:,.0f} samples/s end to end (bus -> store actor -> SQLite, "
          f"rollups included); bare executemany {bare:,.0f} rows/s; ratio {rate / bare:.0%}")


def query_latency(folder: Path, runs: int) -> None:
    """7 days of one series at 1 Hz, queried at 1-minute steps."""
    database = Database(folder / "query.db", busy_timeout=5, synchronous="off")
    database.open()
    end = 1_800_000_000_000
    start = end - 7 * DAY_MS
    rng = random.Random(2)
    batch: list[AnyMessage] = []
    for second in range(7 * 86_400):
        batch.append(MetricBatch(source="q", timestamp_ms=start + second * 1000, points=(
            MetricPoint("cpu", round(rng.uniform(0, 100), 1), labels(cpu="total")),)))
        if len(batch) == 3600:
            database.write(f"q{second}", batch, origin="live")
            batch = []
    database.close()
    reader = Reader(folder / "query.db")
    selector = parse_selector('cpu{cpu="total"}')
    timings = []
    points = 0
    for _ in range(runs):
        began = time.perf_counter()
        result = reader.query(selector, start_ms=start, end_ms=end, step_ms=60_000,
                              aggregate="avg", retention=RETENTION, now_ms=end)
        timings.append((time.perf_counter() - began) * 1000)
        points = len(result.series[0].points)
    reader.close()
    timings.sort()
    print(f"query: 7 days of one series at 1 m steps ({points} points, tier {result.tier}): "
          f"median {statistics.median(timings):.1f} ms, p95 {timings[int(len(timings) * 0.95)]:.1f}"
          f" ms over {runs} runs")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the three measurements; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--series", type=int, default=80)
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ttamond-storage-") as folder:
        root = Path(folder)
        bytes_per_sample(args.series, args.hours, root)
        ingest(root, args.batches, args.points)
        query_latency(root, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
