"""Status page latency: the overview and a 7-day chart over 30 days of 200 series, 20 clients.

Run from the repository root, either way:

    python benchmarks/dashboard.py                       # about 1.5 min, 3 with --cold
    python -m benchmarks.dashboard --cold --repeat 3 --json dash.json
    python -m benchmarks.dashboard --database /tmp/dash.db --keep   # generate once, reuse

Generates a database (benchmarks/dashdata.py: raw samples for the last 48 h, 1-minute and
1-hour rollups before) into a temporary state folder, or takes `--database PATH`
(generated there first when the file does not exist), starts the real daemon on it
(`python -m ttamond run --config FILE`, web on a free loopback port, everything else as
shipped, its collectors included) and drives it with `--clients` concurrent clients,
closed loop: each sends its next request as soon as its last is answered. Per scenario,
`--warmup` untimed units, then timed ones until `--requests` have completed and
`--min-seconds` have passed (the page's cache is invalidated by every store commit, about
every 5 s, so a timed window must span a few of them):

- reference: `GET /healthz`, the web stack doing no work, on the same server in the same
  round; every other scenario's p50 and p99 are also given as a ratio to its.
- overview: `GET /`, then every panel the page did not bring with it (`data-panel="..."`
  with `aria-busy="true"`: the page inlines panels already rendered), fetched at once
  over up to 6 connections per client as the page's script does. One unit is the whole load;
  the shell and the panel requests are also reported on their own.
- chart-svg: `GET /charts/series.svg?selector=SEL&since=7d`.
- chart-api: `GET /api/v1/series/query?selector=SEL&since=7d&step=1h`.
- with `--cold`, the same three past the page's cache: `?_=N` on the shell and on every
  panel (the panel cache is keyed on the panel's parameters), and for the charts an
  extra matcher every series passes, `SEL{_cold!="N"}` (the chart cache is keyed on the
  selector; the API refuses unknown parameters). Always, before anything else, each
  scenario once on the idle server just started ("first request after start").

Target: p99 <= 50 ms per scenario. A scenario with a non-200 answer or a failed request
is never PASS; such answers are counted and listed by path and status.

The client is this process (asyncio and a minimal HTTP/1.1 keep-alive client: 0.08 ms of
CPU a request against httpx.AsyncClient's 0.6 ms, measured here, which would be counted
as server latency), on the same machine as the daemon: both share its CPUs, so the figures
include the client's share. Its CPU time per request is printed beside the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil

try:
    from benchmarks.dashdata import GeneratedStats, generate
except ModuleNotFoundError:  # run as `python benchmarks/dashboard.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.dashdata import GeneratedStats, generate
from benchmarks.httpclient import Browser, Connection, Reply

TARGET_P99_MS = 50.0
START_DEADLINE = 120.0
STOP_DEADLINE = 10.0
PANEL = re.compile(rb'data-panel="([^"]+)" aria-busy="true"')
MB = 1_000_000
# Variables that would make the daemon talk to a service manager or pick other paths.
_SERVICE_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID",
                "JOURNAL_STREAM", "STATE_DIRECTORY", "RUNTIME_DIRECTORY", "TTAMOND_CONFIG")


class BenchmarkError(Exception):
    """The benchmark could not measure; str() is the one line to show."""


# --- scenarios ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Unit:
    """One timed unit: a request, or an overview load and the requests it made."""

    seconds: float
    replies: list[Reply]


UnitFunction = Callable[[Browser, str], Awaitable[Unit]]


def _bust(target: str, token: str) -> str:
    """`target` with `_=token` added to its query string (unchanged without a token)."""
    if not token:
        return target
    return f"{target}{'&' if '?' in target else '?'}_={token}"


def busted_selector(selector: str, token: str) -> str:
    """`selector` with an extra matcher that every series passes (`_cold!="token"`: no
    series has that label), so it selects the same series under a new cache key."""
    if not token:
        return selector
    matcher = f'_cold!="{token}"'
    text = selector.strip()
    if not text.endswith("}"):
        return f"{text}{{{matcher}}}"
    inner = text[:-1].rstrip()
    return f"{inner}{matcher}}}" if inner.endswith("{") else f"{inner}, {matcher}}}"


def single(target: Callable[[str], str]) -> UnitFunction:
    """A unit that is one GET of `target(token)`."""
    async def unit(browser: Browser, token: str) -> Unit:
        reply = await browser.get(target(token))
        return Unit(reply.seconds, [replace(reply, body=b"")])
    return unit


def fixed(path: str) -> Callable[[str], str]:
    """`path`, with `_=token` added when a token is given."""
    return lambda token: _bust(path, token)


def panels_of(body: bytes) -> list[str]:
    """The panels an overview page left to load (`data-panel` still busy), in order."""
    return [html.unescape(found.decode()) for found in PANEL.findall(body)]


async def overview(browser: Browser, token: str) -> Unit:
    """The overview as a browser loads it: the shell, then all its panels at once."""
    began = time.perf_counter()
    shell = await browser.get(_bust("/", token))
    panels = panels_of(shell.body) if shell.status == 200 else []
    replies = await asyncio.gather(*(browser.get(_bust(panel, token)) for panel in panels))
    return Unit(time.perf_counter() - began,
                [replace(reply, body=b"") for reply in (shell, *replies)])


@dataclass(frozen=True)
class Scenario:
    """What a scenario measures and whether the target applies."""

    name: str
    unit: UnitFunction
    what: str
    targeted: bool = True
    cold: bool = False


@dataclass
class Figures:
    """Latency figures in ms over a set of timings, and a throughput."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float
    mean: float
    per_s: float

    @classmethod
    def of(cls, seconds: Sequence[float], wall: float) -> Figures:
        ms = sorted(s * 1000 for s in seconds)
        if not ms:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan, 0.0)
        cuts = [ms[0]] * 99 if len(ms) == 1 else statistics.quantiles(ms, n=100)
        return cls(len(ms), statistics.median(ms), cuts[89], cuts[98], ms[-1],
                   statistics.fmean(ms), len(ms) / wall if wall > 0 else 0.0)


@dataclass
class Row:
    """One line of the report: a scenario's units, or one kind of its requests."""

    scenario: str
    part: str
    what: str
    figures: Figures
    targeted: bool
    errors: dict[str, int]
    """'STATUS PATH' (0: no answer) -> how many, over the timed units."""
    ratio_p50: float = math.nan
    ratio_p99: float = math.nan

    @property
    def verdict(self) -> str:
        """PASS, MISS, or MISS with errors: a row with errors never passes."""
        if not self.targeted:
            return "(errors)" if self.errors else ""
        if self.errors or self.figures.count == 0:
            return "MISS (errors)" if self.errors else "MISS (nothing measured)"
        return "PASS" if self.figures.p99 <= TARGET_P99_MS else "MISS"


@dataclass
class Phase:
    """One scenario run: its rows, the CPU both sides spent per request, the daemon's RSS
    after it."""

    rows: list[Row]
    requests: int
    """Every request of the phase, untimed ones included (for the CPU figures)."""
    client_cpu_ms: float
    server_cpu_ms: float
    panels: int
    """Panels the overview page listed (overview scenarios only)."""
    seconds: float
    """From the first timed unit's start to the last one's end."""
    rss_after_mb: float = math.nan


@dataclass
class _Progress:
    """Shared by a phase's clients (one event loop: no locks)."""

    tickets: int = 0
    requests: int = 0
    stopping: bool = False
    timed_in_flight: int = 0
    first_timed: float = math.inf
    units: list[tuple[float, float, Unit]] = field(default_factory=list)
    """(start, end, unit) of every timed unit."""


async def drive(scenario: Scenario, *, host: str, port: int, clients: int, warmup: int,
                timed: int, min_seconds: float, server: psutil.Process) -> Phase:
    """Run `scenario` with `clients` closed-loop clients: `warmup` untimed units, then timed
    ones until at least `timed` have completed and `min_seconds` have passed since the
    first began. Units started after that are not timed, and clients go on sending them
    until the last timed one has completed, so every timed unit ran with all clients
    busy."""
    progress = _Progress()

    async def client(browser: Browser) -> None:
        while not (progress.stopping and progress.timed_in_flight == 0):
            ticket = progress.tickets
            progress.tickets += 1
            counted = ticket >= warmup and not progress.stopping
            token = str(ticket + 1) if scenario.cold else ""
            began = time.perf_counter()
            if counted:
                progress.timed_in_flight += 1
                progress.first_timed = min(progress.first_timed, began)
            unit = await scenario.unit(browser, token)
            ended = time.perf_counter()
            progress.requests += len(unit.replies)
            if counted:
                progress.timed_in_flight -= 1
                progress.units.append((began, ended, unit))
                if (len(progress.units) >= timed
                        and ended - progress.first_timed >= min_seconds):
                    progress.stopping = True

    browsers = [Browser(host, port) for _ in range(clients)]
    cpu_before = _cpu_seconds(server)
    process_before = time.process_time()
    try:
        await asyncio.gather(*(client(browser) for browser in browsers))
    finally:
        for browser in browsers:
            browser.close()
    client_cpu = time.process_time() - process_before
    server_cpu = _cpu_seconds(server) - cpu_before
    units = progress.units
    wall = max(end for _, end, _ in units) - min(start for start, _, _ in units)
    replies = [reply for _, _, unit in units for reply in unit.replies]
    rows = [Row(scenario.name, "load" if scenario.unit is overview else "request",
                scenario.what, Figures.of([unit.seconds for _, _, unit in units], wall),
                scenario.targeted, _errors(replies))]
    panels = 0
    if scenario.unit is overview:
        shells = [unit.replies[0] for _, _, unit in units]
        parts = [reply for _, _, unit in units for reply in unit.replies[1:]]
        panels = max((len(unit.replies) - 1 for _, _, unit in units), default=0)
        rows.append(Row(scenario.name, "shell", "GET /", Figures.of(
            [reply.seconds for reply in shells], wall), scenario.targeted, _errors(shells)))
        rows.append(Row(scenario.name, "panels", f"GET {panels} panels per load",
                        Figures.of([reply.seconds for reply in parts], wall),
                        scenario.targeted and panels > 0, _errors(parts)))
    requests = max(1, progress.requests)
    return Phase(rows, progress.requests, client_cpu * 1000 / requests,
                 server_cpu * 1000 / requests, panels, wall)


def _errors(replies: Sequence[Reply]) -> dict[str, int]:
    counted = Counter(f"{reply.status} {reply.path}" + (f" ({reply.error})" if reply.error
                                                        else "")
                      for reply in replies if reply.status != 200)
    return dict(sorted(counted.items()))


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


# --- the daemon -----------------------------------------------------------------------------

@dataclass
class Daemon:
    """The daemon under test."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    startup_s: float = 0.0

    def rss_mb(self) -> tuple[float, float]:
        """VmRSS and VmHWM (peak) from /proc/PID/status, in MB."""
        found = {}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    found[name] = int(value.split()[0]) * 1024 / MB
        return found.get("VmRSS", math.nan), found.get("VmHWM", math.nan)

    def tail(self, lines: int = 20) -> str:
        """The log's last lines, indented, for an error message."""
        try:
            text = self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\n  daemon log:\n" + "\n".join(f"    {line}" for line in text)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_config(root: Path, database: Path, port: int) -> Path:
    """A config that moves the daemon's files under `root` and onto `database`, web on
    127.0.0.1:`port`; every other setting as shipped."""
    (root / "state").mkdir(exist_ok=True)
    (root / "run").mkdir(exist_ok=True)
    config = root / "ttamond.toml"
    config.write_text(
        f"[paths]\nstate_dir = {json.dumps(str(root / 'state'))}\n"
        f"runtime_dir = {json.dumps(str(root / 'run'))}\n"
        f"database = {json.dumps(str(database))}\n\n"
        f"[web]\nbind = \"127.0.0.1:{port}\"\n", encoding="utf-8")
    return config


def start_daemon(root: Path, database: Path) -> Daemon:
    """Start `python -m ttamond run` on `database`; returns once /readyz answers 200.
    Raises BenchmarkError (the daemon is then stopped) when it does not within
    START_DEADLINE or exits."""
    port = _free_port()
    config = write_config(root, database, port)
    env = {name: value for name, value in os.environ.items() if name not in _SERVICE_ENV}
    log = root / "daemon.log"
    began = time.monotonic()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "ttamond", "run", "--config", str(config)],
            stdout=output, stderr=subprocess.STDOUT, env=env)
    daemon = Daemon(process, port, log)
    try:
        asyncio.run(_wait_ready(daemon))
    except BaseException:
        stop_daemon(daemon)
        raise
    daemon.startup_s = time.monotonic() - began
    return daemon


async def _wait_ready(daemon: Daemon) -> None:
    deadline = time.monotonic() + START_DEADLINE
    connection = Connection("127.0.0.1", daemon.port)
    while time.monotonic() < deadline:
        if daemon.process.poll() is not None:
            raise BenchmarkError(
                f"the daemon exited with status {daemon.process.returncode} while starting"
                + daemon.tail())
        reply = await connection.get("/readyz")
        if reply.status == 200:
            connection.close()
            return
        await asyncio.sleep(0.1)
    raise BenchmarkError(f"/readyz did not answer 200 within {START_DEADLINE:.0f} s"
                         + daemon.tail())


def stop_daemon(daemon: Daemon) -> int | None:
    """SIGTERM, then SIGKILL after STOP_DEADLINE; the exit status (None if killed)."""
    process = daemon.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return None
    return process.returncode


# --- the run --------------------------------------------------------------------------------

@dataclass
class Results:
    """Everything `--json` writes."""

    settings: dict[str, Any]
    environment: dict[str, Any]
    database: dict[str, Any]
    daemon: dict[str, Any] = field(default_factory=dict)
    first_requests: list[dict[str, Any]] = field(default_factory=list)
    rounds: list[list[dict[str, Any]]] = field(default_factory=list)
    """Per round, per scenario: its rows, CPU per request, RSS after it."""
    medians: list[dict[str, Any]] = field(default_factory=list)


def chart_urls(selector: str) -> tuple[Callable[[str], str], Callable[[str], str]]:
    """The 7-day chart's SVG and the series API's query of the same 7 days, as
    functions of the cache-busting token."""
    def svg(token: str) -> str:
        return (f"/charts/series.svg?selector={quote(busted_selector(selector, token), safe='')}"
                "&since=7d")

    def api(token: str) -> str:
        return (f"/api/v1/series/query?selector="
                f"{quote(busted_selector(selector, token), safe='')}&since=7d&step=1h")

    return svg, api


def scenarios(selector: str, *, cold: bool, extra_paths: Sequence[str]) -> list[Scenario]:
    """The reference first, then the measured scenarios, then the cold variants."""
    svg, api = chart_urls(selector)
    found = [
        Scenario("reference", single(fixed("/healthz")), "GET /healthz", targeted=False),
        Scenario("overview", overview, "GET / + its panels"),
        Scenario("chart-svg", single(svg), f"GET {svg('')}"),
        Scenario("chart-api", single(api), f"GET {api('')}"),
    ]
    found += [Scenario(f"GET {path}", single(fixed(path)), f"GET {path}", targeted=False)
              for path in extra_paths]
    if cold:
        found += [
            Scenario("overview cold", overview, "GET /?_=N + its panels with ?_=N (the panel"
                     " cache is keyed on the panel's parameters)", cold=True),
            Scenario("chart-svg cold", single(svg), f"GET {svg('N')} (the chart cache is keyed"
                     " on the selector)", cold=True),
            Scenario("chart-api cold", single(api), f"GET {api('N')} (the API refuses unknown"
                     " parameters such as _)", cold=True),
        ]
    return found


async def first_requests(port: int, selected: Sequence[Scenario]) -> list[dict[str, Any]]:
    """Each scenario's unit once, one at a time, on the idle server just started."""
    found = []
    browser = Browser("127.0.0.1", port)
    try:
        for scenario in selected:
            if scenario.cold:
                continue
            unit = await scenario.unit(browser, "")
            found.append({"scenario": scenario.name, "ms": unit.seconds * 1000,
                          "requests": [(reply.path, reply.status, reply.seconds * 1000)
                                       for reply in unit.replies]})
    finally:
        browser.close()
    return found


def run_round(selected: Sequence[Scenario], daemon: Daemon, *, clients: int, warmup: int,
              timed: int, min_seconds: float) -> list[Phase]:
    """Every scenario once, in order; each row's ratios against this round's reference."""
    server = psutil.Process(daemon.process.pid)
    phases = []
    for scenario in selected:
        print(f"  {scenario.name} ...", end="", flush=True)
        phase = asyncio.run(drive(scenario, host="127.0.0.1", port=daemon.port,
                                  clients=clients, warmup=warmup, timed=timed,
                                  min_seconds=min_seconds, server=server))
        if daemon.process.poll() is not None:
            raise BenchmarkError(f"the daemon exited with status {daemon.process.returncode}"
                                 f" during {scenario.name}" + daemon.tail())
        phase.rss_after_mb = daemon.rss_mb()[0]
        figures = phase.rows[0].figures
        print(f" {figures.count} units in {phase.seconds:.1f} s, p50 {figures.p50:.1f} ms,"
              f" p99 {figures.p99:.1f} ms", flush=True)
        phases.append(phase)
    reference = phases[0].rows[0].figures
    for phase in phases:
        for row in phase.rows:
            row.ratio_p50 = _ratio(row.figures.p50, reference.p50)
            row.ratio_p99 = _ratio(row.figures.p99, reference.p99)
    return phases


def _ratio(value: float, reference: float) -> float:
    return value / reference if reference > 0 and not math.isnan(value) else math.nan


def median_rows(rounds: Sequence[Sequence[Phase]]) -> list[Row]:
    """Per row: the median over rounds of each figure and ratio (max: the largest; n:
    the sum); errors summed."""
    flat = [[row for phase in run for row in phase.rows] for run in rounds]
    out = []
    for index, first in enumerate(flat[0]):
        same = [run[index] for run in flat]
        figures = [row.figures for row in same]

        def middle(name: str, figures: list[Figures] = figures) -> float:
            return statistics.median(float(getattr(f, name)) for f in figures)

        errors: Counter[str] = Counter()
        for row in same:
            errors.update(row.errors)
        out.append(Row(
            first.scenario, first.part, first.what,
            Figures(count=sum(f.count for f in figures), p50=middle("p50"), p90=middle("p90"),
                    p99=middle("p99"), max=max(f.max for f in figures), mean=middle("mean"),
                    per_s=middle("per_s")),
            any(row.targeted for row in same), dict(sorted(errors.items())),
            statistics.median(row.ratio_p50 for row in same),
            statistics.median(row.ratio_p99 for row in same)))
    return out


def _fmt(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def report(rows: Sequence[Row], rounds: Sequence[Sequence[Phase]]) -> list[str]:
    """The table, the CPU figures, and every error by path and status."""
    width = max(len(row.scenario) for row in rows)
    lines = [f"  {'scenario':<{width}} {'part':<7} {'n':>6} {'p50':>7} {'p90':>7} {'p99':>7}"
             f" {'max':>7} {'per s':>7} {'p50/ref':>8} {'p99/ref':>8}   target p99 <="
             f" {TARGET_P99_MS:g} ms"]
    for row in rows:
        f = row.figures
        ratios = ("" if row.scenario == "reference" else
                  f" {_fmt(row.ratio_p50, 2) + 'x':>8} {_fmt(row.ratio_p99, 2) + 'x':>8}")
        lines.append(f"  {row.scenario:<{width}} {row.part:<7} {f.count:>6} {_fmt(f.p50):>7}"
                     f" {_fmt(f.p90):>7} {_fmt(f.p99):>7} {_fmt(f.max):>7}"
                     f" {_fmt(f.per_s, 0):>7}{ratios:<18}   {row.verdict}")
    lines.append("  (ms; per s: units a second (shell, panels: requests) over the timed units;"
                 " p50/ref, p99/ref: against the reference in the same round)")
    lines.append("")
    lines.append("  CPU per request, untimed requests included (server: the whole daemon,"
                 " collectors too; client: this process):")
    for index, phase in enumerate(rounds[0]):
        client = statistics.median(run[index].client_cpu_ms for run in rounds)
        server = statistics.median(run[index].server_cpu_ms for run in rounds)
        lines.append(f"    {phase.rows[0].scenario:<{width}} server {server:6.2f} ms"
                     f"  client {client:5.2f} ms   daemon RSS after it in round 1"
                     f" {phase.rss_after_mb:6.1f} MB")
    errors = [(row, count, what) for row in rows for what, count in row.errors.items()]
    if errors:
        lines.append("")
        lines.append(f"  NON-200 ANSWERS: {sum(count for _, count, _ in errors)} in the timed"
                     " units; a scenario with any never passes:")
        lines += [f"    {row.scenario:<{width}} {row.part:<7} {count:>6} x {what}"
                  for row, count, what in errors]
    return lines


def run(args: argparse.Namespace) -> int:
    """The benchmark; returns the exit status."""
    temp = Path(tempfile.mkdtemp(prefix="ttamond-dash-"))
    results = Results(settings={k: str(v) if isinstance(v, Path) else v
                                for k, v in vars(args).items()},
                      environment={"python": platform.python_version(),
                                   "machine": platform.machine(),
                                   "cpus": psutil.cpu_count(), "platform": platform.platform()},
                      database={})
    daemon: Daemon | None = None
    try:
        database = args.database.resolve() if args.database else temp / "state" / "ttamond.db"
        if database.exists():
            size = database.stat().st_size
            print(f"database: {database}, {size / MB:.1f} MB, reused (not generated)")
            results.database = {"path": str(database), "bytes": size, "generated": False}
        else:
            print(f"generating {args.series} series x {args.days} days into {database} ...",
                  flush=True)
            stats: GeneratedStats = generate(database, series=args.series, days=args.days,
                                             raw_hours=args.raw_hours,
                                             raw_interval_s=args.raw_interval, seed=args.seed)
            print(stats.describe().split("\n  names")[0])
            results.database = {**{k: v for k, v in asdict(stats).items() if k != "database"},
                                "path": str(database), "generated": True}
        daemon = start_daemon(temp, database)
        rss_before, _ = daemon.rss_mb()
        print(f"daemon: pid {daemon.process.pid}, web on 127.0.0.1:{daemon.port}, ready in"
              f" {daemon.startup_s:.1f} s, RSS {rss_before:.1f} MB")
        selected = scenarios(args.selector, cold=args.cold, extra_paths=args.path)
        results.first_requests = asyncio.run(first_requests(daemon.port, selected))
        print(f"{args.clients} clients, closed loop (each sends its next request as soon as its"
              f" last is answered); per scenario {args.warmup} untimed units, then timed ones"
              f" until {args.requests} and {args.min_seconds:g} s; {args.repeat} round(s);"
              f" the client runs on the same {psutil.cpu_count()} CPUs as the daemon")
        rounds = []
        for number in range(args.repeat):
            print(f"round {number + 1}:", flush=True)
            rounds.append(run_round(selected, daemon, clients=args.clients,
                                    warmup=args.warmup, timed=args.requests,
                                    min_seconds=args.min_seconds))
            results.rounds.append([asdict(phase) for phase in rounds[-1]])
        rss_after, rss_peak = daemon.rss_mb()
        rows = median_rows(rounds)
        results.medians = [{**asdict(row), "verdict": row.verdict} for row in rows]
    except BenchmarkError as exc:
        print(f"dashboard benchmark: {exc}", file=sys.stderr)
        return 1
    finally:
        exit_code = stop_daemon(daemon) if daemon is not None else None
        if args.keep:
            print(f"kept {temp} (config, daemon log{', database' if not args.database else ''})")
        else:
            shutil.rmtree(temp, ignore_errors=True)

    print()
    title = f"medians of {args.repeat} rounds" if args.repeat > 1 else "results"
    print(f"{title}: selector {args.selector!r}")
    for line in report(rows, rounds):
        print(line)
    panels = rounds[0][1].panels if len(rounds[0]) > 1 else 0
    if panels == 0:
        print("\n  the overview page lists no data-panel URLs: a load is the shell alone")
    print("\n  first request after start (one at a time, idle server):")
    for first in results.first_requests:
        parts = ", ".join(f"{path} {status} {ms:.1f} ms" for path, status, ms in
                          first["requests"])
        print(f"    {first['scenario']:<18} {first['ms']:7.1f} ms  ({parts})")
    print(f"\n  daemon RSS: {rss_before:.1f} MB before, {rss_after:.1f} MB after"
          f" (peak {rss_peak:.1f} MB); exit status on SIGTERM: {exit_code}")
    results.daemon = {"pid": daemon.process.pid if daemon else None,
                      "startup_s": daemon.startup_s if daemon else None,
                      "rss_before_mb": rss_before, "rss_after_mb": rss_after,
                      "rss_peak_mb": rss_peak, "exit_status": exit_code}
    if args.json:
        args.json.write_text(json.dumps(asdict(results), indent=2, default=str) + "\n")
    return 0 if exit_code == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400,
                        help="timed units per scenario (an overview load is one)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed units first (default: 2 per client)")
    parser.add_argument("--min-seconds", type=float, default=12.0,
                        help="time each scenario for at least this long too, so the timed"
                             " units span a few of the page cache's 5-s generations"
                             " (0: stop at --requests units)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of every scenario; medians are reported")
    parser.add_argument("--cold", action="store_true",
                        help="also the targeted scenarios past the page's cache: ?_=N on the"
                             " overview, an always-true matcher on the charts' selector")
    parser.add_argument("--selector", default="host_cpu_percent",
                        help="series of the 7-day chart (default: the host CPU percent series)")
    parser.add_argument("--path", action="append", default=[],
                        help="also measure GET PATH, untargeted (repeatable)")
    parser.add_argument("--series", type=int, default=200, help="series to generate")
    parser.add_argument("--days", type=int, default=30, help="days of history to generate")
    parser.add_argument("--raw-hours", type=int, default=48, help="hours of raw samples")
    parser.add_argument("--raw-interval", type=float, default=10.0,
                        help="seconds between generated raw samples")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", type=Path,
                        help="use this database; generated there first if it does not exist"
                             " (the daemon writes into it while it runs)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary folder (config, log, generated database)")
    parser.add_argument("--json", type=Path, help="write every figure here as JSON")
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = 2 * args.clients
    if min(args.requests, args.clients, args.repeat) < 1 or args.warmup < 0:
        parser.error("--requests, --clients and --repeat must be at least 1")
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
