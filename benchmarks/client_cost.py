"""Client cost: what one recording call costs the application's thread, in microseconds.

Run from the repository root, either way:

    python benchmarks/client_cost.py
    python -m benchmarks.client_cost --calls 200000 --runs 9

Each run builds a fresh Monitor whose buffer holds every call of the run, with its
sender thread running and, by default, no daemon to send to (the sender backs off, so
the cost is the recording call alone). `--socket PATH` aims it at a running daemon
instead, so the sender encodes and sends while the calls are timed. Prints the median,
fastest and slowest run per call kind; the target is 5 µs per recorded sample.
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ttamond.client import Monitor

TARGET_US = 5.0

Operation = Callable[[Monitor], Callable[[], None]]


def _gauge(monitor: Monitor) -> Callable[[], None]:
    gauge = monitor.gauge

    def call() -> None:
        gauge("queue_depth", 3.0, queue="narrative")

    return call


def _counter(monitor: Monitor) -> Callable[[], None]:
    counter = monitor.counter

    def call() -> None:
        counter("requests_total", 42.0, route="/play")

    return call


def _record(monitor: Monitor) -> Callable[[], None]:
    record = monitor.record
    labels = {"route": "/play"}

    def call() -> None:
        record("latency", 0.25, labels=labels, unit="seconds")

    return call


def _increment(monitor: Monitor) -> Callable[[], None]:
    increment = monitor.increment

    def call() -> None:
        increment("requests_total", 1.0, route="/play")

    return call


def _timer(monitor: Monitor) -> Callable[[], None]:
    timer = monitor.timer

    def call() -> None:
        with timer("render_seconds", scene="forest"):
            pass

    return call


def _track_inference(monitor: Monitor) -> Callable[[], None]:
    track = monitor.track_inference

    def call() -> None:
        with track("llama", operation="chat") as inference:
            inference.tokens_in = 12
            inference.tokens_out = 30

    return call


OPERATIONS: dict[str, Operation] = {
    "gauge": _gauge,
    "counter": _counter,
    "record": _record,
    "increment": _increment,
    "timer": _timer,
    "track_inference": _track_inference,
}


def _loop_overhead(calls: int) -> float:
    def nothing() -> None:
        pass

    started = time.perf_counter()
    for _ in range(calls):
        nothing()
    return time.perf_counter() - started


def measure(kind: str, *, calls: int, runs: int, socket_path: Path) -> list[float]:
    """Microseconds per call of each run, the empty loop's cost taken out."""
    results = []
    for _ in range(runs):
        monitor = Monitor("bench", socket_path=socket_path, capacity=calls + 10)
        try:
            call = OPERATIONS[kind](monitor)
            empty = _loop_overhead(calls)
            started = time.perf_counter()
            for _ in range(calls):
                call()
            elapsed = time.perf_counter() - started
            results.append(max(0.0, elapsed - empty) / calls * 1e6)
        finally:
            monitor.close(timeout=0.1 if socket_path.name == "absent.sock" else 10.0)
    return results


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table; exit 1 when a call kind misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000, help="calls per run")
    parser.add_argument("--runs", type=int, default=7, help="runs per call kind")
    parser.add_argument("--socket", type=Path, help="a running daemon's control socket")
    options = parser.parse_args(argv)
    # Nothing to deliver to is expected here: keep the client's warnings off the table.
    logging.getLogger("ttamond.client").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as scratch:
        socket_path = options.socket or Path(scratch) / "absent.sock"
        where = f"daemon at {options.socket}" if options.socket else "no daemon"
        print(f"ttamond.client cost per call: Python {platform.python_version()}, "
              f"{options.runs} runs of {options.calls} calls, {where}")
        print(f"{'call':<16} {'median µs':>10} {'min µs':>8} {'max µs':>8}")
        missed = False
        for kind in OPERATIONS:
            per_call = measure(kind, calls=options.calls, runs=options.runs,
                               socket_path=socket_path)
            median = statistics.median(per_call)
            missed |= median > TARGET_US
            print(f"{kind:<16} {median:>10.2f} {min(per_call):>8.2f} {max(per_call):>8.2f}")
    print(f"target: {TARGET_US:g} µs per call: {'missed' if missed else 'met'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
