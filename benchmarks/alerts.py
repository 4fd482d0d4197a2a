"""What the alert escalator costs: per sample taken in, and per evaluation round.

    python benchmarks/alerts.py [--series 1000] [--rules 100] [--repeat 5]

Builds an escalator with `--rules` metric rules (avg over 300 s, each selecting
series/rules series by a label) plus the default rules, over `--series` series that
have a full 300 s window at 1 Hz. Measures, median of `--repeat` runs:

- the cost of taking one sample in (`Windows.add`), beside the least any per-series
  window can cost in Python (a dict lookup and a deque append, no selection, no
  trimming): reported as a ratio;
- the cost of one evaluation round, and the share of one core that is at the default
  `evaluate_every` of 5 s, with and without alerts firing.

    python benchmarks/alerts.py --rss [--settle 20]

instead starts the daemon on its defaults with `[alerts] enabled` false and true
(alternating, `--repeat` times each, fresh state folders) and prints the median
resident memory of each after `--settle` seconds: what the escalator and notifier add.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from ttamond.alerts.escalator import Escalator
from ttamond.alerts.rules import MetricRule, default_rules
from ttamond.alerts.settings import AlertsConfig
from ttamond.messages import Labels

T0 = 1_700_000_000_000
WINDOW_S = 300


def build(series: int, rules: int, threshold: float) -> tuple[Escalator, list[Labels]]:
    per_rule = max(1, series // rules)
    config = AlertsConfig(rules=[
        *[MetricRule(name=f"Bench{r}", series=f'bench_value{{group="{r}"}}', aggregate="avg",
                     window=WINDOW_S, threshold=threshold) for r in range(rules)],
        *default_rules()])
    escalator = Escalator(config, host="bench", alertmanagers={}, channels=["log"],
                          started_ms=T0)
    keys: list[Labels] = [(("group", str(i // per_rule)), ("i", str(i))) for i in range(series)]
    return escalator, keys


def fill(escalator: Escalator, keys: list[Labels], seconds: int) -> float:
    """Feed `seconds` of 1 Hz samples to every series; returns µs per sample."""
    started = time.perf_counter()
    for second in range(seconds):
        ts = T0 + second * 1000
        for key in keys:
            escalator.windows.add("bench_value", key, ts, 50.0 + (second % 7))
    return (time.perf_counter() - started) / (seconds * len(keys)) * 1e6


def unselected(escalator: Escalator, keys: list[Labels], seconds: int) -> float:
    """µs per sample of a series no rule selects (most series, on a real host)."""
    started = time.perf_counter()
    for second in range(seconds):
        ts = T0 + second * 1000
        for key in keys:
            escalator.windows.add("other_value", key, ts, 1.0)
    return (time.perf_counter() - started) / (seconds * len(keys)) * 1e6


def reference(keys: list[Labels], seconds: int) -> float:
    """The floor: a dict lookup and a bounded deque append per sample."""
    windows: dict[tuple[str, Labels], deque[tuple[int, float]]] = {
        ("bench_value", key): deque(maxlen=WINDOW_S) for key in keys}
    started = time.perf_counter()
    for second in range(seconds):
        ts = T0 + second * 1000
        for key in keys:
            windows[("bench_value", key)].append((ts, 50.0 + (second % 7)))
    return (time.perf_counter() - started) / (seconds * len(keys)) * 1e6


def round_ms(escalator: Escalator, rounds: int = 5) -> float:
    """Median wall time of one evaluation round, in ms."""
    times = []
    for index in range(rounds):
        now = T0 + (WINDOW_S + index) * 1000
        started = time.perf_counter()
        escalator.evaluate(now)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


DAEMON_CONFIG = """
[paths]
state_dir = "{state}"
runtime_dir = "{run}"

[web]
bind = "127.0.0.1:0"

[alerts]
enabled = {enabled}
"""


def daemon_rss(enabled: bool, settle: float) -> float:
    """The daemon's VmRSS in MB after `settle` seconds."""
    with tempfile.TemporaryDirectory(prefix="ttamond-alerts-") as tmp:
        folder = Path(tmp)
        config = folder / "ttamond.toml"
        config.write_text(DAEMON_CONFIG.format(state=folder / "state", run=folder / "run",
                                               enabled=str(enabled).lower()))
        process = subprocess.Popen([sys.executable, "-m", "ttamond", "run", "-c", str(config)],
                                   cwd=folder, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            time.sleep(settle)
            if process.poll() is not None:
                raise SystemExit(f"the daemon exited with {process.returncode}")
            status = Path(f"/proc/{process.pid}/status").read_text()
            rss_kb = next(int(line.split()[1]) for line in status.splitlines()
                          if line.startswith("VmRSS:"))
        finally:
            process.terminate()
            process.wait(timeout=30)
    return rss_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rss", action="store_true", help="the daemon's memory instead")
    parser.add_argument("--settle", type=float, default=20.0)
    args = parser.parse_args()
    if args.rss:
        runs: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeat):
            for enabled in (False, True):
                runs[enabled].append(daemon_rss(enabled, args.settle))
        for enabled, values in runs.items():
            print(f"alerts {'on ' if enabled else 'off'}: RSS median"
                  f" {statistics.median(values):.1f} MB (runs: "
                  f"{', '.join(f'{v:.1f}' for v in values)})")
        return
    add, floor, quiet, firing, other = [], [], [], [], []
    for _ in range(args.repeat):
        escalator, keys = build(args.series, args.rules, threshold=1000)
        add.append(fill(escalator, keys, WINDOW_S))
        floor.append(reference(keys, WINDOW_S))
        other.append(unselected(escalator, keys, 60))
        quiet.append(round_ms(escalator))
        escalator, keys = build(args.series, args.rules, threshold=0)
        fill(escalator, keys, WINDOW_S)
        round_ms(escalator, rounds=1)  # the firing transitions themselves
        firing.append(round_ms(escalator))
    every = AlertsConfig().evaluate_every
    print(f"{args.series} series at 1 Hz with full {WINDOW_S} s windows, {args.rules} metric"
          f" rules + {len(default_rules())} default rules; medians of {args.repeat}")
    print(f"take a sample:  {statistics.median(add):.2f} µs"
          f"  (floor {statistics.median(floor):.2f} µs, ratio"
          f" {statistics.median(add) / statistics.median(floor):.1f}x);"
          f" {statistics.median(add) * args.series / 1e4:.2f} % of a core at 1 Hz")
    print(f"a sample no rule selects: {statistics.median(other):.2f} µs")
    for name, values in (("quiet", quiet), ("all firing", firing)):
        ms = statistics.median(values)
        print(f"round, {name}: {ms:.1f} ms = {ms / (every * 1000) * 100:.2f} % of a core"
              f" every {every:g} s")


if __name__ == "__main__":
    main()
