"""What anomaly detection costs: µs per sample, and % of a core for 500 series at 1 Hz.

Run from the repository root, either way:

    python benchmarks/anomaly_cost.py
    python -m benchmarks.anomaly_cost --series 500 --rounds 200 --repeat 7

Builds `--series` detectors (default settings) and as many reference objects, feeds
each a realistic host series at 1 Hz (a daily cycle, noise, a burst now and then, a
level shift) until their windows are full and their histories calibrated, then times
`--rounds` rounds of one sample per series, round-robin as the actor sees them. The
reference is a bare loop keeping a running mean and variance per series (Welford), the
least a per-series statistic can cost in Python; the ratio is detector / reference.
Medians of `--repeat` timed runs; the targets are 20 µs per sample and under 2 % of
one core for 500 series at 1 Hz. Also reports the detector's memory per series
(tracemalloc, after warm-up).
"""

from __future__ import annotations

import argparse
import math
import platform
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Protocol

from ttamond.analytics.detector import Detector

TARGET_US = 20.0
TARGET_CORE_PERCENT = 2.0
START_S = 1_767_225_600.0  # 2026-01-01 00:00 UTC


class Updatable(Protocol):
    def update(self, timestamp_s: float, value: float) -> float: ...


class RunningStats:
    """The reference: Welford's running mean and variance, and a z-score per sample."""

    __slots__ = ("count", "mean", "squares")

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self.squares = 0.0

    def update(self, timestamp_s: float, value: float) -> float:
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.squares += delta * (value - self.mean)
        variance = self.squares / self.count
        return abs(value - self.mean) / math.sqrt(variance) if variance > 0 else 0.0


def host_series(seed: int, samples: int) -> list[float]:
    """A CPU-percent-like series at 1 Hz: a daily cycle, noise, bursts, a level shift."""
    rng = random.Random(seed)
    phase = rng.uniform(0, 2 * math.pi)
    values = []
    shift = 0.0
    for i in range(samples):
        if rng.random() < 1e-4:
            shift = rng.uniform(-5, 5)
        value = 30 + 10 * math.sin(2 * math.pi * i / 86_400 + phase) + shift + rng.gauss(0, 2)
        if rng.random() < 1e-3:
            value += rng.uniform(20, 50)
        values.append(min(max(value, 0.0), 100.0))
    return values


def feed(objects: Sequence[Updatable], series: Sequence[Sequence[float]], first: int,
         rounds: int) -> float:
    """Round-robin `rounds` samples into every object; seconds taken."""
    updates = [obj.update for obj in objects]
    started = time.perf_counter()
    for i in range(first, first + rounds):
        ts = START_S + i
        for update, values in zip(updates, series, strict=True):
            update(ts, values[i])
    return time.perf_counter() - started


def measure(make: Callable[[], Updatable], series: Sequence[Sequence[float]], warm: int,
            rounds: int, repeat: int) -> list[float]:
    """µs per sample of each timed run, after `warm` untimed rounds."""
    objects = [make() for _ in series]
    feed(objects, series, 0, warm)
    runs = []
    for run in range(repeat):
        seconds = feed(objects, series, warm + run * rounds, rounds)
        runs.append(seconds / (rounds * len(series)) * 1e6)
    return runs


def bytes_per_detector(series: Sequence[float], warm: int) -> float:
    """Memory one warmed-up detector holds, from tracemalloc."""
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    detector = Detector()
    for i in range(warm):
        detector.update(START_S + i, series[i])
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    size = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    del detector
    return float(size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--warm", type=int, default=1200,
                        help="untimed samples per series first (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=200,
                        help="timed samples per series per run (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    if min(args.series, args.warm, args.rounds, args.repeat) < 1:
        print("anomaly_cost: every count must be at least 1", file=sys.stderr)
        return 1
    samples = args.warm + args.rounds * args.repeat
    series = [host_series(seed, samples) for seed in range(args.series)]

    detector_runs = measure(Detector, series, args.warm, args.rounds, args.repeat)
    reference_runs = measure(RunningStats, series, args.warm, args.rounds, args.repeat)
    detector_us = statistics.median(detector_runs)
    reference_us = statistics.median(reference_runs)
    core = args.series * detector_us / 1e6 * 100
    reference_core = args.series * reference_us / 1e6 * 100
    memory = bytes_per_detector(series[0], args.warm)

    print(f"{args.series} series at 1 Hz, {args.warm} warm-up samples each, medians of"
          f" {args.repeat} runs of {args.rounds} rounds; Python {platform.python_version()}")
    print(f"  detector   {detector_us:6.2f} µs/sample  (runs {min(detector_runs):.2f}"
          f"..{max(detector_runs):.2f})  {core:5.2f} % of a core")
    print(f"  reference  {reference_us:6.2f} µs/sample  (runs {min(reference_runs):.2f}"
          f"..{max(reference_runs):.2f})  {reference_core:5.2f} % of a core")
    print(f"  ratio      {detector_us / reference_us:.1f}x the running mean/variance loop")
    print(f"  memory     {memory / 1024:.1f} KiB per detector after warm-up")
    print(f"targets: <= {TARGET_US:g} µs/sample: {detector_us:.2f}"
          f" {'met' if detector_us <= TARGET_US else 'MISSED'};"
          f" < {TARGET_CORE_PERCENT:g} % of a core: {core:.2f} %"
          f" {'met' if core < TARGET_CORE_PERCENT else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
