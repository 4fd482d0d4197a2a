"""Ingestion end to end: samples and error events over the Unix socket into SQLite.

Runs the real daemon (`python -m ttamond run`) on a temporary state directory and, in
the same run, the reference: the same samples written by a bare `executemany` into a
table of the same shape. Reports samples/s with durable acknowledgement, the p50/p99
acknowledgement latency at half the measured load, and error events/s (scrubbing,
fingerprinting and grouping included).

    python benchmarks/ingest.py [--seconds 10] [--batch 1000] [--latency-batch 1000]
                                [--connections 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CONFIG = """
[paths]
state_dir = "{state}"
runtime_dir = "{run}"

[collectors.host]
interval = 5.0

[web]
enabled = false
"""


class Connection:
    """One control-socket connection sending pre-encoded request lines."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.stream = self.sock.makefile("rb")

    def call(self, line: bytes) -> dict[str, Any]:
        self.sock.sendall(line)
        reply: dict[str, Any] = json.loads(self.stream.readline())
        if not reply.get("ok"):
            raise RuntimeError(f"daemon refused: {reply.get('error')}")
        return reply

    def close(self) -> None:
        self.stream.close()
        self.sock.close()


def sample_lines(batch: int, variants: int = 64) -> list[bytes]:
    """Request lines of `batch` samples over 100 series, each line with its own times."""
    now = int(time.time() * 1000)
    lines = []
    for variant in range(variants):
        samples = [{"name": f"bench_metric_{i % 100}", "value": float(i),
                    "timestamp_ms": now + variant * batch + i, "labels": {"shard": "a"}}
                   for i in range(batch)]
        message = {"type": "metrics", "component": "bench", "environment": "dev",
                   "samples": samples}
        lines.append(json.dumps({"version": 1, "command": "ingest",
                                 "args": {"messages": [message], "ack": "durable"}}).encode()
                     + b"\n")
    return lines


def error_lines(batch: int, variants: int = 16) -> list[bytes]:
    """Request lines of `batch` error events from 20 code paths, with personal data."""
    lines = []
    for variant in range(variants):
        events = [{
            "type": "error", "component": "narrative", "environment": "prod",
            "error_type": f"LookupError{i % 20}",
            "message": f"player {variant * batch + i} (jo{i}@example.org) has no slot {i * 3}",
            "user_session_id": f"session-{i % 50}",
            "stack": [{"module": "narrative.engine", "function": f"step_{i % 20}",
                       "lineno": i}, {"module": "redis.client", "function": "get",
                                      "in_app": False}],
            "context": {"chapter": i % 7, "token": "Bearer abcdef0123456789"},
        } for i in range(batch)]
        lines.append(json.dumps({"version": 1, "command": "ingest",
                                 "args": {"messages": events}}).encode() + b"\n")
    return lines


def sustained(path: Path, lines: list[bytes], per_line: int, seconds: float,
              connections: int) -> float:
    """Items acknowledged per second with `connections` clients sending flat out."""
    done = [0] * connections
    stop = time.monotonic() + seconds

    def client(slot: int) -> None:
        conn = Connection(path)
        try:
            index = slot
            while time.monotonic() < stop:
                conn.call(lines[index % len(lines)])
                done[slot] += per_line
                index += connections
        finally:
            conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(slot,)) for slot in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.monotonic() - started)


def paced_latency(path: Path, lines: list[bytes], rate_lines: float,
                  seconds: float) -> list[float]:
    """Acknowledgement latencies (ms) sending lines at a fixed rate on one connection."""
    conn = Connection(path)
    latencies = []
    interval = 1 / rate_lines
    next_at = time.monotonic()
    end = next_at + seconds
    index = 0
    try:
        while next_at < end:
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            started = time.perf_counter()
            conn.call(lines[index % len(lines)])
            latencies.append((time.perf_counter() - started) * 1000)
            index += 1
            next_at += interval
    finally:
        conn.close()
    return latencies


def reference(batch: int, seconds: float, folder: Path) -> float:
    """Bare executemany of the same rows into a WAL database: samples/s."""
    conn = sqlite3.connect(folder / "reference.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE samples (series_id INTEGER, ts INTEGER, value REAL)")
    rows = [(i % 100, i, float(i)) for i in range(batch)]
    written = 0
    stop = time.monotonic() + seconds
    started = time.monotonic()
    while time.monotonic() < stop:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO samples VALUES (?, ?, ?)", rows)
        conn.execute("COMMIT")
        written += batch
    elapsed = time.monotonic() - started
    conn.close()
    return written / elapsed


def start_daemon(folder: Path) -> tuple[subprocess.Popen[bytes], Path]:
    state, run = folder / "state", folder / "run"
    config = folder / "ttamond.toml"
    config.write_text(CONFIG.format(state=state, run=run))
    process = subprocess.Popen([sys.executable, "-m", "ttamond", "run", "-c", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path = run / "control.sock"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = Connection(path)
            conn.call(b'{"version": 1, "command": "ping"}\n')
            conn.close()
            return process, path
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the daemon did not come up within 30 s")


def one_run(args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="ttamond-ingest-") as tmp:
        folder = Path(tmp)
        process, path = start_daemon(folder)
        try:
            samples = sample_lines(args.batch)
            rate = sustained(path, samples, args.batch, args.seconds, args.connections)
            same = args.latency_batch == args.batch
            paced = samples if same else sample_lines(args.latency_batch)
            half_rate_lines = rate / 2 / args.latency_batch
            latencies = sorted(paced_latency(path, paced, half_rate_lines, args.seconds))
            errors = error_lines(args.error_batch)
            error_rate = sustained(path, errors, args.error_batch, args.seconds,
                                   args.connections)
            stored = sqlite3.connect(folder / "state" / "ttamond.db")
            grouped = stored.execute("SELECT count(*), sum(count) FROM error_groups").fetchone()
            stored.close()
        finally:
            process.terminate()
            process.wait(timeout=30)
        bare = reference(args.batch, args.seconds, folder)
    return {
        "samples_per_s": rate,
        "ack_p50_ms": statistics.median(latencies),
        "ack_p99_ms": latencies[int(len(latencies) * 0.99) - 1] if len(latencies) > 1 else 0.0,
        "ack_requests": float(len(latencies)),
        "errors_per_s": error_rate,
        "error_groups": float(grouped[0]),
        "reference_samples_per_s": bare,
        "ratio_to_reference": rate / bare,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=1000, help="samples per request")
    parser.add_argument("--latency-batch", type=int, default=1000,
                        help="samples per request while measuring latency at half load")
    parser.add_argument("--error-batch", type=int, default=200, help="error events per request")
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    runs = [one_run(args) for _ in range(args.repeat)]
    medians = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    print(f"cpu: {os.cpu_count()} cores; {args.repeat} runs of {args.seconds:g} s;"
          f" {args.batch} samples ({args.latency_batch} at half load) or"
          f" {args.error_batch} errors per request,"
          f" {args.connections} connections")
    print(f"{'':<28}{'median':>12}   runs")
    for key, value in medians.items():
        print(f"{key:<28}{value:>12.2f}   " + " ".join(f"{run[key]:.1f}" for run in runs))
    print("targets: >= 100000 samples/s durable; p99 ack <= 10 ms at half load;"
          " >= 10000 error events/s")
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "medians": medians}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
