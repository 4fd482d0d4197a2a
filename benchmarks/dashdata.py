"""A ttamond database holding weeks of history, for the dashboard benchmark and its tests.

Run from the repository root, either way:

    python -m benchmarks.dashdata /tmp/dash.db                  # 200 series, 30 days
    python benchmarks/dashdata.py /tmp/small.db --series 20 --days 3 --force

`generate()` writes what the daemon's store would hold after running that long on a
busy host: the project's own schema (`ttamond.store.schema.migrate`), a `series`
catalogue with the names and labels the host, process, health and self-monitoring
collectors and the ingest converter produce, raw samples for the last `raw_hours` as
compressed ten-minute chunks (`chunks.encode`, one chunk per series and window, the
windows the store compacts) with the newest, not yet compacted window in the `samples`
head, and 1-minute and 1-hour rollups (min, max, sum, count, last) over the whole span.

Every series is one stream of raw values at `raw_interval_s` over the whole span
(daily rhythm, noise, the occasional spike; counters count up), deterministic by seed;
the rollups aggregate that stream exactly as the store does, so raw and rolled-up tiers
agree where both exist. Values are computed with numpy (installed with the project: it
comes with CodeCarbon's pandas); the chunk codec is the store's own pure-Python code.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ttamond.actors.store import COMPACT_GRACE_MS
from ttamond.store import chunks
from ttamond.store.database import CHUNK_MS, HOUR_MS, MINUTE_MS
from ttamond.store.schema import migrate

DAY_MS = 24 * HOUR_MS
JITTER_MS = 200
"""Collection is not exactly on the grid: each tick is 0 to this many ms late (never
early, so every tick stays in its minute and the point counts per bucket are exact)."""

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Shape:
    """How one series' raw values behave. Heights are in the series' own unit."""

    base: float
    daily: float = 0.0
    """Amplitude of the daily rhythm (peak at 15:00 UTC, trough at 03:00)."""
    noise: float = 0.0
    """Standard deviation of the noise added to every sample."""
    spikes_per_day: float = 0.0
    spike: float = 0.0
    """Height of a spike (times 0.5 to 1.5); a spike lasts 1 to 15 minutes."""
    low: float = 0.0
    high: float = math.inf
    decimals: int | None = 1
    """Rounding of each stored value (psutil's percentages have one decimal, byte
    counts none); None keeps full float precision (durations)."""
    counter: bool = False
    """`base` etc. describe a rate per second; the stored value is its running total."""
    start: float = 0.0
    """A counter's value at the start of the span."""
    trend: float = 0.0
    """Growth per day (a filling disk)."""


@dataclass(frozen=True)
class SeriesSpec:
    """One series as the store's catalogue holds it, and how its values behave."""

    name: str
    labels: dict[str, str]
    kind: str
    unit: str
    shape: Shape

    @property
    def labels_json(self) -> str:
        """The `series.labels` column, encoded as `Database._series_id` does."""
        return json.dumps(self.labels, sort_keys=True, separators=(",", ":"))


@dataclass
class GeneratedStats:
    """What `generate` wrote, and how long each part took."""

    database: Path
    series: int
    names: list[str]
    start_ms: int
    end_ms: int
    raw_start_ms: int
    chunks: int
    chunk_points: int
    head_points: int
    rollup_1m_rows: int
    rollup_1h_rows: int
    file_bytes: int
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds per phase: values (numpy), rollups (aggregation), encode (chunks),
    insert (SQLite), finish (WAL switch, file sync)."""

    @property
    def raw_points(self) -> int:
        """Raw samples stored: in chunks and in the head."""
        return self.chunk_points + self.head_points

    def describe(self) -> str:
        """A few lines for humans."""
        days = (self.end_ms - self.start_ms) / DAY_MS
        phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.phases.items())
        return (
            f"{self.database}: {self.series} series over {days:.1f} days,"
            f" {self.file_bytes / 1e6:.1f} MB, generated in {self.seconds:.1f} s ({phases})\n"
            f"  raw: {self.raw_points:,} points ({self.chunks:,} chunks holding"
            f" {self.chunk_points:,}, {self.head_points:,} in the head) since"
            f" {(self.end_ms - self.raw_start_ms) / HOUR_MS:.1f} h ago\n"
            f"  rollups: {self.rollup_1m_rows:,} 1-minute rows, {self.rollup_1h_rows:,}"
            f" 1-hour rows\n"
            f"  names ({len(self.names)}): {', '.join(self.names)}"
        )


# --- the catalogue --------------------------------------------------------------------

CPUS = 8
MOUNTS = (("/", "/dev/nvme0n1p2", "ext4", 41.0), ("/boot", "/dev/nvme0n1p1", "vfat", 22.0),
          ("/srv", "/dev/sda1", "xfs", 63.0))
DISKS = ("nvme0n1", "sda")
INTERFACES = (("eth0", 1.0), ("docker0", 0.3), ("lo", 0.1))
COMPONENTS = ("narrative", "agents", "world", "player-experience", "api-gateway",
              "persistence")
ENVIRONMENT = "prod"
PROCESSES = (("python3", "narrative"), ("java", "neo4j"), ("redis-server", "redis"),
             ("postgres", "postgres"), ("python3", "agents"), ("nginx", "nginx"),
             ("ttamond", "ttamond"), ("node", "player-experience"))
GIB = 1024**3


def _gauge(name: str, labels: dict[str, str], unit: str, shape: Shape) -> SeriesSpec:
    return SeriesSpec(name, labels, "gauge", unit, shape)


def _counter(name: str, labels: dict[str, str], unit: str, shape: Shape) -> SeriesSpec:
    return SeriesSpec(name, labels, "counter", unit, replace(shape, counter=True, decimals=0))


def _percent(base: float, daily: float, noise: float, spikes: float = 0.0,
             spike: float = 0.0) -> Shape:
    return Shape(base, daily, noise, spikes, spike, 0.0, 100.0, 1)


def _host() -> Iterator[SeriesSpec]:
    """The host collector's series (probes/host.py), most looked-at first."""
    cpu = "host_cpu_percent"
    yield _gauge(cpu, {"cpu": "total"}, "percent", _percent(35, 20, 4, 3, 45))
    yield _counter("host_net_received_bytes_total", {"interface": "eth0"}, "bytes",
                   Shape(4e6, 2.5e6, 6e5, 4, 3e7, start=7.3e11))
    yield _gauge("host_memory_percent", {}, "percent", _percent(58, 8, 1.5, 1, 15))
    mount, device, fstype, used = MOUNTS[0]
    disk = {"device": device, "fstype": fstype, "mount": mount}
    yield _gauge("host_disk_percent", disk, "percent", Shape(used, 0, 0.05, trend=0.1,
                                                             high=100, decimals=1))
    yield _counter("host_net_sent_bytes_total", {"interface": "eth0"}, "bytes",
                   Shape(2e6, 1.2e6, 3e5, 4, 2e7, start=3.1e11))
    yield _gauge("host_load_average", {"period": "1m"}, "", Shape(2.8, 1.6, 0.4, 3, 6, 0,
                                                                   decimals=2))
    for index in range(CPUS):
        yield _gauge(cpu, {"cpu": str(index)}, "percent",
                     _percent(30 + 2 * index, 22, 9, 3, 55))
    yield _gauge("host_load_average", {"period": "5m"}, "", Shape(2.8, 1.5, 0.2, decimals=2))
    yield _gauge("host_load_average", {"period": "15m"}, "", Shape(2.8, 1.4, 0.1, decimals=2))
    yield _gauge("host_memory_total_bytes", {}, "bytes", Shape(64 * GIB, decimals=0))
    yield _gauge("host_memory_available_bytes", {}, "bytes",
                 Shape(27 * GIB, -5 * GIB, 0.4 * GIB, 1, -9 * GIB, decimals=0))
    yield _gauge("host_memory_used_bytes", {}, "bytes",
                 Shape(33 * GIB, 5 * GIB, 0.4 * GIB, 1, 9 * GIB, decimals=0))
    yield _gauge("host_swap_total_bytes", {}, "bytes", Shape(8 * GIB, decimals=0))
    yield _gauge("host_swap_used_bytes", {}, "bytes", Shape(0.2 * GIB, 0.05 * GIB, 1e6,
                                                            decimals=0))
    for mount, device, fstype, used in MOUNTS:
        disk = {"device": device, "fstype": fstype, "mount": mount}
        size = 500 * GIB if mount != "/boot" else 0.5 * GIB
        trend = 0.1 if mount != "/boot" else 0.0
        yield _gauge("host_disk_total_bytes", disk, "bytes", Shape(size, decimals=0))
        yield _gauge("host_disk_used_bytes", disk, "bytes",
                     Shape(size * used / 100, 0, 2e6, trend=size * trend / 100, decimals=0))
        yield _gauge("host_disk_free_bytes", disk, "bytes",
                     Shape(size * (95 - used) / 100, 0, 2e6, trend=-size * trend / 100,
                           decimals=0))
        if mount != "/":
            yield _gauge("host_disk_percent", disk, "percent",
                         Shape(used, 0, 0.05, trend=trend, high=100, decimals=1))
        yield _gauge("host_disk_inodes_percent", disk, "percent",
                     Shape(used / 4, 0, 0.01, trend=trend / 4, high=100, decimals=1))
    yield _gauge("host_fds_allocated", {}, "", Shape(9800, 1500, 120, 2, 4000, decimals=0))
    yield _gauge("host_fds_percent", {}, "percent", Shape(0.1, 0.02, 0.002, decimals=1))
    for number, disk_name in enumerate(DISKS):
        scale = 1.0 / (1 + number)
        io = {"disk": disk_name}
        yield _counter("host_disk_read_bytes_total", io, "bytes",
                       Shape(3e6 * scale, 2e6 * scale, 1e6 * scale, 3, 8e7, start=2e12))
        yield _counter("host_disk_written_bytes_total", io, "bytes",
                       Shape(6e6 * scale, 3e6 * scale, 2e6 * scale, 3, 1e8, start=5e12))
        yield _counter("host_disk_reads_total", io, "",
                       Shape(120 * scale, 80 * scale, 30 * scale, 3, 3000, start=4e8))
        yield _counter("host_disk_writes_total", io, "",
                       Shape(300 * scale, 150 * scale, 60 * scale, 3, 4000, start=9e8))
    for interface, scale in INTERFACES:
        net = {"interface": interface}
        if interface != "eth0":
            yield _counter("host_net_received_bytes_total", net, "bytes",
                           Shape(4e6 * scale, 2.5e6 * scale, 6e5 * scale, 2, 3e7 * scale,
                                 start=7e11 * scale))
            yield _counter("host_net_sent_bytes_total", net, "bytes",
                           Shape(2e6 * scale, 1.2e6 * scale, 3e5 * scale, 2, 2e7 * scale,
                                 start=3e11 * scale))
        yield _counter("host_net_received_packets_total", net, "",
                       Shape(3500 * scale, 2000 * scale, 400 * scale, 2, 2e4, start=9e8))
        yield _counter("host_net_sent_packets_total", net, "",
                       Shape(2500 * scale, 1500 * scale, 300 * scale, 2, 1.5e4, start=7e8))
        yield _counter("host_net_receive_errors_total", net, "", Shape(0, spikes_per_day=0.2,
                                                                        spike=0.5))
        yield _counter("host_net_transmit_errors_total", net, "", Shape(0))
        yield _counter("host_net_receive_drops_total", net, "", Shape(0.01, spikes_per_day=0.5,
                                                                       spike=2))
        yield _counter("host_net_transmit_drops_total", net, "", Shape(0))


def _component(component: str, number: int) -> Iterator[SeriesSpec]:
    """What one TTA component reports (ingest/convert.py's series and the client
    library's counters and gauges) and its health (actors/health.py, actors/check.py)."""
    load = 1.0 / (1 + number * 0.4)
    base = {"component": component, "environment": ENVIRONMENT}
    http = {**base, "endpoint": f"/api/{component}", "protocol": "http"}
    yield _gauge("tta_network_latency_seconds", http, "seconds",
                 Shape(0.045 + 0.01 * number, 0.015, 0.008, 3, 0.6, 0.001, decimals=None))
    yield _counter("tta_requests_total", base, "",
                   Shape(40 * load, 30 * load, 6 * load, 2, 120 * load, start=2e7 * load))
    yield _counter("tta_errors_total", base, "",
                   Shape(0.05 * load, 0.03 * load, 0.02, 3, 4, start=1e4))
    yield _gauge("ttamond_component_health", {"component": component}, "",
                 Shape(0, spikes_per_day=0.3, spike=1.4, high=2, decimals=0))
    yield _gauge("tta_network_sent_bytes", http, "bytes",
                 Shape(18_000, 6_000, 4_000, 2, 200_000, 200, decimals=0))
    yield _gauge("tta_network_received_bytes", http, "bytes",
                 Shape(2_500, 800, 600, 2, 50_000, 100, decimals=0))
    db = {**base, "database": "neo4j" if number % 2 == 0 else "redis", "operation": "match"}
    yield _gauge("tta_db_operation_duration_seconds", db, "seconds",
                 Shape(0.012, 0.004, 0.003, 3, 0.4, 0.0002, decimals=None))
    yield _gauge("tta_db_operation_rows", db, "", Shape(25, 10, 8, 1, 500, decimals=0))
    yield _gauge("tta_db_operation_failed", db, "", Shape(0, spikes_per_day=1, spike=1.5,
                                                           high=1, decimals=0))
    ai = {**base, "model": "llama-3-8b", "operation": "generate"}
    yield _gauge("tta_ai_inference_duration_seconds", ai, "seconds",
                 Shape(1.8, 0.6, 0.35, 2, 6, 0.05, decimals=None))
    yield _gauge("tta_ai_tokens_in", ai, "tokens", Shape(900, 200, 150, 1, 3000, 1, decimals=0))
    yield _gauge("tta_ai_tokens_out", ai, "tokens", Shape(320, 80, 90, 1, 900, 1, decimals=0))
    yield _gauge("tta_ai_inference_failed", ai, "", Shape(0, spikes_per_day=1, spike=1.5,
                                                           high=1, decimals=0))
    ws = {**base, "endpoint": "/ws", "protocol": "websocket"}
    yield _gauge("tta_network_websocket_connections", ws, "",
                 Shape(140 * load, 110 * load, 8, 1, 200, decimals=0))
    check = {"check": f"{component}-http", "component": component}
    yield _gauge("ttamond_check_latency_seconds", check, "seconds",
                 Shape(0.004, 0.001, 0.001, 2, 0.2, 0.0003, decimals=None))
    yield _gauge("ttamond_check_status", check, "", Shape(0, spikes_per_day=0.3, spike=1.5,
                                                          high=2, decimals=0))
    if component == "narrative":
        yield _gauge("tta_active_players", {**base, "world": "forest"}, "",
                     Shape(180, 150, 10, 1, 300, decimals=0))


def _daemon() -> Iterator[SeriesSpec]:
    """The process collector's series (probes/process.py) and selfmon's."""
    yield _gauge("process_count", {}, "", Shape(412, 30, 6, 1, 200, decimals=0))
    yield _gauge("ttamond_health_overall", {}, "", Shape(0, spikes_per_day=0.5, spike=1.4,
                                                         high=3, decimals=0))
    yield _gauge("ttamond_loop_lag_seconds", {}, "seconds",
                 Shape(0.002, 0.0005, 0.0008, 4, 0.05, 0.0001, decimals=None))
    yield _gauge("ttamond_store_database_bytes", {}, "bytes",
                 Shape(6e8, 0, 1e6, trend=2e6, decimals=0))
    yield _gauge("ttamond_store_batch_seconds", {}, "seconds",
                 Shape(0.003, 0.001, 0.001, 2, 0.05, 0.0002, decimals=None))
    pid = 1200
    for round_ in itertools.count():
        for number, (name, watch) in enumerate(PROCESSES):
            labels = {"name": name, "pid": str(pid), "watch": watch if round_ == 0 else ""}
            pid += 7 + number
            yield _gauge("process_cpu_percent", labels, "percent",
                         Shape(25 / (1 + number), 15 / (1 + number), 5, 2, 80, high=800))
            yield _gauge("process_resident_bytes", labels, "bytes",
                         Shape(2 * GIB / (1 + number), 0.2 * GIB / (1 + number), 1e7, 1, 5e8,
                               decimals=0))
            yield _gauge("process_threads", labels, "", Shape(24 + 4 * number, 4, 1, decimals=0))
            yield _gauge("process_open_fds", labels, "", Shape(90 + 20 * number, 20, 5,
                                                               decimals=0))


def catalogue(count: int) -> list[SeriesSpec]:
    """The first `count` series, most looked-at first: total CPU, eth0's received bytes,
    the first component's response time and memory lead, so even a handful makes a
    dashboard. Then the rest of the host, six components, selfmon, and the process
    collector's series, as many as asked."""
    fixed = [*_host(), *(spec for number, name in enumerate(COMPONENTS)
                         for spec in _component(name, number))]
    host = sum(1 for _ in _host())
    fixed.insert(2, fixed.pop(host))  # the first component's response time, third
    return list(itertools.islice(itertools.chain(fixed, _daemon()), count))


# --- values ---------------------------------------------------------------------------

def _values(shape: Shape, hours: Floats, days: Floats, interval_s: float,
            rng: np.random.Generator) -> Floats:
    """One series' raw stream: level + rhythm + trend + noise + spikes, clipped, rounded."""
    n = len(hours)
    level: Floats = shape.base + shape.trend * days
    if shape.daily:
        level = level + shape.daily * np.sin((hours - 9.0) * (2 * math.pi / 24))
    if shape.noise:
        level = level + rng.normal(0.0, shape.noise, n)
    if shape.spikes_per_day and shape.spike:
        count = int(rng.poisson(shape.spikes_per_day * float(days[-1] - days[0] + 1e-9)))
        longest = max(1, int(15 * 60 / interval_s))
        for start, length, height in zip(
            rng.integers(0, n, count), rng.integers(1, longest + 1, count),
            rng.uniform(0.5, 1.5, count), strict=True,
        ):
            level[start : start + length] += shape.spike * height
    values: Floats = np.clip(level, shape.low, shape.high)
    if shape.counter:
        values = shape.start + np.cumsum(values * interval_s)
    if shape.decimals is not None:
        values = np.round(values, shape.decimals)
    return values


@dataclass
class _Buckets:
    """Where each bucket of a sorted time axis starts, and its per-bucket constants."""

    starts: Ints
    ends: Ints
    ts: list[int]
    counts: list[int]
    last_ts: list[int]

    @classmethod
    def of(cls, timestamps: Ints, width: int) -> _Buckets:
        bucket = timestamps - timestamps % width
        starts: Ints = np.concatenate(([0], np.flatnonzero(np.diff(bucket)) + 1)).astype(np.int64)
        ends: Ints = np.append(starts[1:], len(timestamps)).astype(np.int64)
        return cls(starts, ends, bucket[starts].tolist(), (ends - starts).tolist(),
                   timestamps[ends - 1].tolist())

    def rows(self, series_id: int, values: Floats) -> Iterator[tuple[object, ...]]:
        """(series_id, ts, vmin, vmax, vsum, vcount, vlast, last_ts) per bucket, as the
        store's `_upsert_rollups` computes them."""
        return zip(itertools.repeat(series_id, len(self.ts)), self.ts,
                   np.minimum.reduceat(values, self.starts).tolist(),
                   np.maximum.reduceat(values, self.starts).tolist(),
                   np.add.reduceat(values, self.starts).tolist(),
                   self.counts, values[self.ends - 1].tolist(), self.last_ts, strict=True)


def _timeline(start_ms: int, end_ms: int, interval_ms: int, seed: int) -> Ints:
    grid: Ints = np.arange(start_ms, end_ms + 1, interval_ms, dtype=np.int64)
    jitter = np.random.default_rng([seed, 0]).integers(
        0, min(JITTER_MS, interval_ms // 5) + 1, len(grid))
    jittered: Ints = grid + jitter
    return jittered


# --- writing --------------------------------------------------------------------------

def generate(database: Path, *, series: int = 200, days: int = 30, raw_hours: int = 48,
             raw_interval_s: float = 10.0, seed: int = 1,
             end_ms: int | None = None) -> GeneratedStats:
    """Write a database of `series` series over `days` days ending at `end_ms` (default:
    now) into `database`, which must not exist. Raw samples every `raw_interval_s` for the
    last `raw_hours` (whole ten-minute chunk windows, as retention leaves them), 1-minute
    and 1-hour rollups over the whole span. Deterministic for a given seed and end.

    Raises FileExistsError, ValueError for impossible arguments, sqlite3.Error."""
    if database.exists():
        raise FileExistsError(f"{database} exists; generate() writes a new file only")
    interval_ms = round(raw_interval_s * 1000)
    if interval_ms < 10 or series < 1 or days < 1 or raw_hours < 0:
        raise ValueError("need series >= 1, days >= 1, raw_hours >= 0, raw_interval_s >= 0.01")
    if raw_hours > days * 24:
        raise ValueError("raw_hours reaches further back than days")
    began = time.perf_counter()
    phases = dict.fromkeys(("values", "rollups", "encode", "insert", "finish"), 0.0)
    specs = catalogue(series)
    end = (time.time_ns() // 1_000_000 if end_ms is None else end_ms)
    end -= end % interval_ms
    start = end - days * DAY_MS
    start += -start % MINUTE_MS  # the span starts on a minute
    timestamps = _timeline(start, end, interval_ms, seed)
    hours: Floats = (timestamps % DAY_MS) / HOUR_MS
    elapsed_days: Floats = (timestamps - start) / DAY_MS
    minutes = _Buckets.of(timestamps, MINUTE_MS)
    hourly = _Buckets.of(timestamps, HOUR_MS)
    # Raw data: whole chunk windows back to the one holding end - raw_hours (retention
    # drops a chunk only once all of it is past the cutoff). Windows that ended before
    # the store's compaction grace are chunks; the rest is the head.
    raw_start = end - raw_hours * HOUR_MS
    raw_start -= raw_start % CHUNK_MS
    head_start = end - COMPACT_GRACE_MS
    head_start -= head_start % CHUNK_MS
    first_raw = int(np.searchsorted(timestamps, raw_start))
    first_head = int(np.searchsorted(timestamps, head_start))
    windows = _Buckets.of(timestamps[first_raw:first_head], CHUNK_MS) \
        if first_head > first_raw else None
    raw_ts: list[int] = timestamps[first_raw:].tolist()
    head_rows: list[tuple[int, int, float]] = []
    stats = GeneratedStats(database=database, series=len(specs),
                           names=sorted({spec.name for spec in specs}), start_ms=start,
                           end_ms=end, raw_start_ms=raw_start, chunks=0, chunk_points=0,
                           head_points=0, rollup_1m_rows=0, rollup_1h_rows=0, file_bytes=0,
                           seconds=0.0, phases=phases)

    database.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        migrate(conn)
    finally:
        conn.close()
    # A fresh connection: on the one that migrated, switching to WAL at the end leaves
    # it unable to checkpoint ("database table is locked", after migration 2's DROP).
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        # A new file that nothing else reads: no journal while loading, WAL (as the
        # store keeps it) once done. Losing the half-written file costs only a rerun.
        conn.execute("PRAGMA journal_mode = OFF").fetchall()
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("BEGIN")
        for series_id, spec in enumerate(specs, start=1):
            mark = time.perf_counter()
            rng = np.random.default_rng([seed, series_id])
            values = _values(spec.shape, hours, elapsed_days, interval_ms / 1000, rng)
            phases["values"] += time.perf_counter() - mark

            mark = time.perf_counter()
            conn.execute("INSERT INTO series (id, name, labels, kind, unit, created_ms)"
                         " VALUES (?, ?, ?, ?, ?, ?)",
                         (series_id, spec.name, spec.labels_json, spec.kind, spec.unit, start))
            minute_rows = minutes.rows(series_id, values)
            hour_rows = hourly.rows(series_id, values)
            phases["rollups"] += time.perf_counter() - mark

            mark = time.perf_counter()
            conn.executemany("INSERT INTO rollup_1m VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             minute_rows)
            conn.executemany("INSERT INTO rollup_1h VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             hour_rows)
            phases["insert"] += time.perf_counter() - mark

            mark = time.perf_counter()
            raw_values: list[float] = values[first_raw:].tolist()
            blobs: list[tuple[int, int, int, int, bytes]] = []
            if windows is not None:
                for window, low, high in zip(windows.ts, windows.starts.tolist(),
                                             windows.ends.tolist(), strict=True):
                    times = raw_ts[low:high]
                    blobs.append((series_id, window, times[-1], len(times),
                                  chunks.encode(times, raw_values[low:high])))
            head = first_head - first_raw
            head_rows += zip(itertools.repeat(series_id, len(raw_ts) - head), raw_ts[head:],
                             raw_values[head:],
                             strict=True)
            phases["encode"] += time.perf_counter() - mark

            mark = time.perf_counter()
            conn.executemany("INSERT INTO chunks (series_id, start_ts, end_ts, count, data)"
                             " VALUES (?, ?, ?, ?, ?)", blobs)
            phases["insert"] += time.perf_counter() - mark
            stats.chunks += len(blobs)
            stats.chunk_points += sum(blob[3] for blob in blobs)
            stats.rollup_1m_rows += len(minutes.ts)
            stats.rollup_1h_rows += len(hourly.ts)
        mark = time.perf_counter()
        # The head is append-only in arrival order: by time, series within a tick.
        head_rows.sort(key=lambda row: (row[1], row[0]))
        conn.executemany("INSERT INTO samples VALUES (?, ?, ?)", head_rows)
        stats.head_points = len(head_rows)
        conn.execute("COMMIT")
        phases["insert"] += time.perf_counter() - mark
        mark = time.perf_counter()
        conn.execute("PRAGMA journal_mode = WAL").fetchall()
        conn.execute("PRAGMA synchronous = NORMAL")
        phases["finish"] += time.perf_counter() - mark
    except BaseException:
        conn.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            database.with_name(database.name + suffix).unlink(missing_ok=True)
        raise
    conn.close()
    stats.file_bytes = sum(path.stat().st_size for path in (
        database.with_name(database.name + suffix) for suffix in ("", "-wal"))
        if path.exists())
    stats.seconds = time.perf_counter() - began
    return stats


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", type=Path, help="the file to write")
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--raw-hours", type=int, default=48)
    parser.add_argument("--raw-interval", type=float, default=10.0,
                        help="seconds between raw samples (the host collector's default is 1)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    args = parser.parse_args(argv)
    if args.force:
        for suffix in ("", "-wal", "-shm"):
            args.database.with_name(args.database.name + suffix).unlink(missing_ok=True)
    try:
        stats = generate(args.database, series=args.series, days=args.days,
                         raw_hours=args.raw_hours, raw_interval_s=args.raw_interval,
                         seed=args.seed)
    except (FileExistsError, ValueError, sqlite3.Error) as exc:
        print(f"dashdata: {exc}", file=sys.stderr)
        return 1
    print(stats.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
