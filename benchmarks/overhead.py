"""Daemon overhead: ttamond's CPU and RSS next to a bare psutil loop doing the same reads.

Run from the repository root, either way:

    python benchmarks/overhead.py --seconds 60
    python -m benchmarks.overhead --repeat 3 --seconds 40 --json overhead.json

See benchmarks/README.md for what is measured and how to read the output.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ttamond.config import HostCollectorConfig, ProcessCollectorConfig

MB = 1_000_000
CPU_RATIO_TARGET = 1.5
RSS_TARGET_MB = 40.0
STARTUP_DEADLINE = 30.0
STOP_DEADLINE = 5.0
SAMPLE_EVERY = 1.0
# Variables that would make the daemon talk to a service manager or pick other paths.
_SERVICE_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID",
                "JOURNAL_STREAM", "STATE_DIRECTORY", "RUNTIME_DIRECTORY", "TTAMOND_CONFIG")
_REFERENCE_IMPORTS = (
    ("python alone", "pass"),
    ("import trio, psutil, msgspec, sqlite3", "import trio, psutil, msgspec, sqlite3"),
    ("import codecarbon", "import codecarbon"),
    ("both together", "import trio, psutil, msgspec, sqlite3, codecarbon"),
)


class BenchmarkError(Exception):
    """The benchmark could not measure; str() is the one line to show."""


def bare_loop(seconds: float, interval: float, mounts_refresh: float,
              exclude_fstypes: list[str], process_interval: float = 0.0,
              top_n: int = 10) -> None:
    """Do HostProbe.read()'s psutil reads on the collector's fixed schedule, and, when
    `process_interval` is set, ProcessProbe.read()'s process scan at that interval
    (every process's name, CPU and RSS; threads, fds and I/O of the top N by CPU and
    by RSS); build nothing.

    Runs in a child process from its own source text (see `_bare_command`), so the child
    imports only os, sys, time and psutil; it refuses to run if ttamond or trio got in.
    Stops after `seconds`, so a child orphaned by a killed benchmark does not linger.
    """
    import os
    import sys
    import time

    import psutil

    if {"ttamond", "trio"} & set(sys.modules):
        raise SystemExit("bare loop: ttamond or trio is imported; the baseline would be unfair")
    excluded = frozenset(exclude_fstypes)
    mounts: list[str] = []
    mounts_read_at = float("-inf")
    psutil.cpu_percent(percpu=True)
    tracked: dict[int, psutil.Process] = {}
    scanned_at = float("-inf")
    start = next_tick = time.monotonic()
    while next_tick - start < seconds:
        if process_interval and time.monotonic() - scanned_at >= process_interval - 1e-3:
            scanned_at = time.monotonic()
            seen: list[tuple[float, int, psutil.Process]] = []
            pids = set(psutil.pids())
            for gone in set(tracked) - pids:
                del tracked[gone]
            for pid in pids:
                try:
                    process = tracked.get(pid) or tracked.setdefault(pid, psutil.Process(pid))
                    with process.oneshot():
                        process.name()
                        cpu = process.cpu_percent()
                        rss = process.memory_info().rss
                    seen.append((cpu, rss, process))
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    tracked.pop(pid, None)
            top = {id(p): p for _, _, p in sorted(seen, key=lambda s: -s[0])[:top_n]}
            top.update({id(p): p for _, _, p in sorted(seen, key=lambda s: -s[1])[:top_n]})
            for process in top.values():
                try:
                    with process.oneshot():
                        process.num_threads()
                        process.num_fds()
                        process.io_counters()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
        psutil.cpu_percent(percpu=True)
        os.getloadavg()
        psutil.virtual_memory()
        psutil.swap_memory()
        now = time.monotonic()
        if now - mounts_read_at >= mounts_refresh:
            mounts = sorted({part.mountpoint for part in psutil.disk_partitions(all=False)
                             if part.fstype not in excluded})
            mounts_read_at = now
        for mount in mounts:
            try:
                psutil.disk_usage(mount)
            except OSError:
                mounts_read_at = float("-inf")
        psutil.disk_io_counters(perdisk=True)
        psutil.net_io_counters(pernic=True)
        next_tick += interval
        now = time.monotonic()
        if next_tick <= now:
            next_tick += (int((now - next_tick) // interval) + 1) * interval
        time.sleep(max(0.0, next_tick - time.monotonic()))


@dataclass
class Usage:
    """One process over the steady window."""

    cpu_percent: float
    rss_median_mb: float
    rss_max_mb: float
    rss_growth_mb: float
    wakeups_per_s: float
    samples: int


@dataclass
class Run:
    """One daemon-and-bare-loop run."""

    startup_s: float
    warmup_s: float
    steady_s: float
    daemon: Usage
    bare: Usage
    cpu_ratio: float
    rss_ratio: float
    daemon_exit: int | None
    daemon_state: str
    points_committed: int


@dataclass
class Results:
    """Everything written by --json."""

    seconds: float
    repeat: int
    runs: list[Run] = field(default_factory=list)
    medians: dict[str, float] = field(default_factory=dict)
    targets: dict[str, Any] = field(default_factory=dict)
    reference_rss_mb: dict[str, float | str] = field(default_factory=dict)
    carbon: str = "off"
    environment: dict[str, Any] = field(default_factory=dict)


def measure_run(seconds: float, warmup: float, log_tail: int = 20, *,
                host_only: bool = False) -> Run:
    """Start the daemon and the bare loop together, sample both, stop both.

    `host_only` turns the daemon's process, cgroup and GPU collectors off and the bare
    loop's process scan with them. Raises BenchmarkError when the daemon does not come
    up, dies, or cannot be queried.
    """
    host = HostCollectorConfig()
    scan = ProcessCollectorConfig()
    with tempfile.TemporaryDirectory(prefix="ttamond-bench-") as temp:
        root = Path(temp)
        config = _write_config(root, host_only=host_only)
        log_path = root / "daemon.log"
        processes: list[subprocess.Popen[bytes]] = []
        try:
            bare = subprocess.Popen(_bare_command(
                seconds + STARTUP_DEADLINE + 30, host, 0.0 if host_only else scan.interval,
                scan.top_n))
            processes.append(bare)
            launched = time.monotonic()
            with log_path.open("wb") as log:
                daemon = subprocess.Popen(
                    [sys.executable, "-m", "ttamond", "run", "--config", str(config)],
                    stdout=log, stderr=subprocess.STDOUT, env=_daemon_env(),
                )
            processes.append(daemon)
            _wait_ready(daemon, config, root / "run" / "control.sock")
            ready = time.monotonic()
            samples = _sample(daemon, bare, start=ready + warmup, end=ready + seconds)
            final = _status(config)
            exit_code = _stop(daemon)
        except BenchmarkError as exc:
            raise BenchmarkError(f"{exc}{_tail(log_path, log_tail)}") from exc
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    daemon_usage, bare_usage = samples
    store = final.get("store", {}) if final else {}
    return Run(
        startup_s=ready - launched,
        warmup_s=warmup,
        steady_s=seconds - warmup,
        daemon=daemon_usage,
        bare=bare_usage,
        cpu_ratio=_ratio(daemon_usage.cpu_percent, bare_usage.cpu_percent),
        rss_ratio=_ratio(daemon_usage.rss_median_mb, bare_usage.rss_median_mb),
        daemon_exit=exit_code,
        daemon_state=str(final.get("state", "unknown")) if final else "unknown",
        points_committed=int(store.get("points_committed", 0)),
    )


def _write_config(root: Path, *, host_only: bool) -> Path:
    (root / "state").mkdir()
    (root / "run").mkdir()
    config = root / "ttamond.toml"
    text = (f"[paths]\nstate_dir = {json.dumps(str(root / 'state'))}\n"
            f"runtime_dir = {json.dumps(str(root / 'run'))}\n")
    if host_only:
        text += "".join(f"[collectors.{name}]\nenabled = false\n"
                        for name in ("process", "cgroup", "gpu", "docker"))
    config.write_text(text, encoding="utf-8")
    return config


def _daemon_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in _SERVICE_ENV:
        env.pop(name, None)
    return env


def _bare_command(seconds: float, host: HostCollectorConfig, process_interval: float,
                  top_n: int) -> list[str]:
    call = (f"bare_loop({seconds!r}, {host.interval!r}, {host.mounts_refresh!r},"
            f" {list(host.exclude_fstypes)!r}, {process_interval!r}, {top_n!r})")
    return [sys.executable, "-c", f"{inspect.getsource(bare_loop)}\n{call}\n"]


def _wait_ready(daemon: subprocess.Popen[bytes], config: Path, socket: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise BenchmarkError(f"the daemon exited with {daemon.returncode} during start-up")
        # Each status call is a whole Python process; spare the CPU until the socket exists.
        if socket.exists() and _status(config) is not None:
            return
        time.sleep(0.05)
    raise BenchmarkError(f"`ttamond status` did not succeed within {STARTUP_DEADLINE:.0f} s")


def _status(config: Path) -> dict[str, Any] | None:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ttamond", "status", "--config", str(config), "--json"],
            capture_output=True, timeout=10, env=_daemon_env(), check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        return None
    try:
        reply: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise BenchmarkError(f"`ttamond status --json` printed something else: {exc}") from exc
    return reply


def _sample(daemon: subprocess.Popen[bytes], bare: subprocess.Popen[bytes], *, start: float,
            end: float) -> tuple[Usage, Usage]:
    watched = {"daemon": daemon, "bare loop": bare}
    handles = {name: psutil.Process(process.pid) for name, process in watched.items()}
    clocks = {name: SchedulerClock(process.pid) for name, process in watched.items()}
    series: dict[str, list[tuple[float, float, int, int]]] = {name: [] for name in watched}
    tick = start
    while tick <= end + 1e-6:
        while (now := time.monotonic()) < tick:
            for name, process in watched.items():
                if process.poll() is not None:
                    raise BenchmarkError(f"the {name} exited with {process.returncode}")
            time.sleep(min(SAMPLE_EVERY, tick - now))
        for name, handle in handles.items():
            with handle.oneshot():
                times = handle.cpu_times()
                rss = handle.memory_info().rss
                switches = handle.num_ctx_switches().voluntary
            cpu = clocks[name].seconds()
            if cpu is None:
                cpu = times.user + times.system
            series[name].append((time.monotonic(), cpu, rss, switches))
        tick += SAMPLE_EVERY
    return _usage(series["daemon"]), _usage(series["bare loop"])


class SchedulerClock:
    """CPU time of every thread of one process from /proc/PID/task/*/schedstat.

    The scheduler counts run time in nanoseconds; cpu_times() counts 10 ms clock ticks,
    which for a process using ~1 % of a core leaves tens of ticks in a 30 s window and
    makes the ratio swing by tens of percent between runs. Threads come and go (trio's
    worker threads retire after 10 s idle), so run time is accumulated per thread id:
    a thread that exits loses at most what it ran since the previous sample.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._last: dict[int, int] = {}
        self._total_ns = 0

    def seconds(self) -> float | None:
        """Accumulated CPU seconds, or None where schedstat cannot be read."""
        try:
            tasks = list(Path(f"/proc/{self.pid}/task").iterdir())
            now = {int(task.name): int((task / "schedstat").read_text().split()[0])
                   for task in tasks}
        except (OSError, ValueError, IndexError):
            return None
        for tid, ns in now.items():
            self._total_ns += ns - self._last.get(tid, 0)
        self._last = now
        return self._total_ns / 1e9


def _usage(series: list[tuple[float, float, int, int]]) -> Usage:
    if len(series) < 2:
        raise BenchmarkError("the steady window is too short for two samples")
    (t0, cpu0, rss0, switches0), (t1, cpu1, rss1, switches1) = series[0], series[-1]
    rss = [sample[2] for sample in series]
    return Usage(
        cpu_percent=100 * (cpu1 - cpu0) / (t1 - t0),
        rss_median_mb=statistics.median(rss) / MB,
        rss_max_mb=max(rss) / MB,
        rss_growth_mb=(rss1 - rss0) / MB,
        wakeups_per_s=(switches1 - switches0) / (t1 - t0),
        samples=len(series),
    )


def _stop(daemon: subprocess.Popen[bytes]) -> int | None:
    daemon.send_signal(signal.SIGTERM)
    try:
        return daemon.wait(timeout=STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()
        return None


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n--- daemon log ---\n" + "\n".join(text) if text else ""


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("inf")


def reference_rss() -> dict[str, float | str]:
    """RSS (MB) of a fresh Python after each set of imports, read from /proc/self/status."""
    results: dict[str, float | str] = {}
    for label, statement in _REFERENCE_IMPORTS:
        code = (f"{statement}\nfor line in open('/proc/self/status'):\n"
                "    if line.startswith('VmRSS:'):\n        print(int(line.split()[1]) * 1024)\n")
        try:
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  timeout=120, check=False)
        except subprocess.TimeoutExpired:
            results[label] = "timed out"
            continue
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            results[label] = f"failed: {last}"
            continue
        results[label] = int(done.stdout.split()[-1]) / MB
    return results


def _medians(runs: Sequence[Run]) -> dict[str, float]:
    def med(values: Sequence[float]) -> float:
        return float(statistics.median(values))

    return {
        "startup_s": med([r.startup_s for r in runs]),
        "daemon_cpu_percent": med([r.daemon.cpu_percent for r in runs]),
        "daemon_rss_median_mb": med([r.daemon.rss_median_mb for r in runs]),
        "daemon_rss_max_mb": med([r.daemon.rss_max_mb for r in runs]),
        "bare_cpu_percent": med([r.bare.cpu_percent for r in runs]),
        "bare_rss_median_mb": med([r.bare.rss_median_mb for r in runs]),
        "bare_rss_max_mb": med([r.bare.rss_max_mb for r in runs]),
        "cpu_ratio": med([r.cpu_ratio for r in runs]),
        "rss_ratio": med([r.rss_ratio for r in runs]),
        "daemon_wakeups_per_s": med([r.daemon.wakeups_per_s for r in runs]),
        "bare_wakeups_per_s": med([r.bare.wakeups_per_s for r in runs]),
    }


def _line(daemon_cpu: float, daemon_rss: float, daemon_max: float, bare_cpu: float,
          bare_rss: float, bare_max: float, cpu_ratio: float, rss_ratio: float) -> str:
    return (f"daemon  cpu {daemon_cpu:.2f} % of a core  rss median {daemon_rss:.1f} MB"
            f" (max {daemon_max:.1f})  | bare psutil  cpu {bare_cpu:.2f} %  rss {bare_rss:.1f} MB"
            f" (max {bare_max:.1f})  | ratio cpu {cpu_ratio:.2f}x rss {rss_ratio:.1f}x")


def _print_run(index: int, total: int, run: Run) -> None:
    exit_text = ("none within 5 s, killed" if run.daemon_exit is None
                 else str(run.daemon_exit))
    print(f"run {index}/{total}: start-up {run.startup_s:.2f} s to first status,"
          f" warm-up {run.warmup_s:.0f} s, steady window {run.steady_s:.0f} s"
          f" ({run.daemon.samples} samples), daemon {run.daemon_state},"
          f" {run.points_committed} points stored, exit after SIGTERM: {exit_text}")
    print("  " + _line(run.daemon.cpu_percent, run.daemon.rss_median_mb, run.daemon.rss_max_mb,
                       run.bare.cpu_percent, run.bare.rss_median_mb, run.bare.rss_max_mb,
                       run.cpu_ratio, run.rss_ratio))
    print(f"  rss growth over the window: daemon {run.daemon.rss_growth_mb:+.2f} MB,"
          f" bare {run.bare.rss_growth_mb:+.2f} MB;  main-thread wakeups/s:"
          f" daemon {run.daemon.wakeups_per_s:.1f}, bare {run.bare.wakeups_per_s:.1f}")


def _targets(medians: dict[str, float]) -> dict[str, Any]:
    cpu_ratio, rss = medians["cpu_ratio"], medians["daemon_rss_median_mb"]
    return {
        "cpu_ratio": {"target": CPU_RATIO_TARGET, "measured": cpu_ratio,
                      "met": cpu_ratio <= CPU_RATIO_TARGET},
        "rss_mb_carbon_off": {"target": RSS_TARGET_MB, "measured": rss,
                              "met": rss <= RSS_TARGET_MB},
    }


def _print_summary(results: Results) -> None:
    m = results.medians
    if results.repeat > 1:
        print(f"\nmedians of {results.repeat} runs: start-up {m['startup_s']:.2f} s")
        print("  " + _line(m["daemon_cpu_percent"], m["daemon_rss_median_mb"],
                           m["daemon_rss_max_mb"], m["bare_cpu_percent"], m["bare_rss_median_mb"],
                           m["bare_rss_max_mb"], m["cpu_ratio"], m["rss_ratio"]))
        print(f"  main-thread wakeups/s: daemon {m['daemon_wakeups_per_s']:.1f},"
              f" bare {m['bare_wakeups_per_s']:.1f}")
    cpu, rss = results.targets["cpu_ratio"], results.targets["rss_mb_carbon_off"]
    print("\ntargets (carbon off):")
    print(f"  cpu <= {CPU_RATIO_TARGET}x the bare loop: {cpu['measured']:.2f}x"
          f"  {'met' if cpu['met'] else 'MISSED'}")
    print(f"  rss <= {RSS_TARGET_MB:.0f} MB (steady median): {rss['measured']:.1f} MB"
          f"  {'met' if rss['met'] else 'MISSED'}")
    if results.reference_rss_mb:
        print("\nreference: RSS of a fresh python after imports (no daemon, no tracker running)")
        for label, value in results.reference_rss_mb.items():
            shown = f"{value:6.1f} MB" if isinstance(value, float) else value
            print(f"  {label:<40} {shown}")
        ref = results.reference_rss_mb
        stack, both = ref.get("import trio, psutil, msgspec, sqlite3"), ref.get("both together")
        if isinstance(stack, float) and isinstance(both, float):
            extra = both - stack
            print(f"  importing codecarbon on top of the daemon's stack adds {extra:.1f} MB;"
                  f" daemon with carbon on >= {m['daemon_rss_median_mb'] + extra:.1f} MB"
                  " (import cost only)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="run length after the daemon is ready, warm-up included (default 60)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds skipped before sampling (default: the larger of 10 s and"
                        " 1/6 of --seconds, at most half of it)")
    parser.add_argument("--repeat", type=int, default=1, help="runs; medians are reported")
    parser.add_argument("--host-only", action="store_true",
                        help="only the host collector (process, cgroup, GPU, Docker off), "
                        "against a bare loop without the process scan")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results here")
    parser.add_argument("--carbon", action="store_true",
                        help="measure with the carbon tracker on (not possible yet)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns 0, or 1 when it could not measure or the daemon did not
    exit 0 on SIGTERM."""
    args = _parser().parse_args(argv)
    if args.seconds <= 0 or args.repeat < 1:
        print("overhead: --seconds must be > 0 and --repeat >= 1", file=sys.stderr)
        return 1
    warmup = args.warmup if args.warmup is not None else min(max(10.0, args.seconds / 6),
                                                             args.seconds / 2)
    if not 0 <= warmup < args.seconds:
        print("overhead: --warmup must be >= 0 and shorter than --seconds", file=sys.stderr)
        return 1
    results = Results(seconds=args.seconds, repeat=args.repeat, environment={
        "python": platform.python_version(), "psutil": psutil.__version__,
        "cpus": os.cpu_count(), "machine": platform.machine(), "kernel": platform.release(),
    })
    if args.carbon:
        results.carbon = "unavailable: no carbon tracker actor in ttamond yet"
        print("--carbon: the carbon tracker actor does not exist yet, so the daemon's RSS with"
              " carbon on cannot be measured; measuring with carbon off, and see the codecarbon"
              " import reference below")
    try:
        for index in range(1, args.repeat + 1):
            run = measure_run(args.seconds, warmup, host_only=args.host_only)
            results.runs.append(run)
            _print_run(index, args.repeat, run)
    except BenchmarkError as exc:
        print(f"overhead: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("overhead: interrupted; the daemon and the bare loop were killed", file=sys.stderr)
        return 130
    results.medians = _medians(results.runs)
    results.targets = _targets(results.medians)
    results.reference_rss_mb = reference_rss()
    _print_summary(results)
    if args.json:
        args.json.write_text(json.dumps(asdict(results), indent=2) + "\n", encoding="utf-8")
        print(f"\nresults written to {args.json}")
    return 0 if all(run.daemon_exit == 0 for run in results.runs) else 1


if __name__ == "__main__":
    sys.exit(main())
