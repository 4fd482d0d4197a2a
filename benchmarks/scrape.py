"""/metrics scrape latency: ttamond's WebActor serving ~500 series, next to node_exporter.

Run from the repository root, either way:

    python benchmarks/scrape.py
    python -m benchmarks.scrape --series 500 --requests 1000 --json scrape.json

The web actor runs in a child process (this file with --serve) on 127.0.0.1:0 over a
fixed list of synthetic latest values shaped like the host collector's. This process
scrapes it sequentially over one keep-alive connection with httpx, as Prometheus does,
and reports the median and p99 latency per scrape and the server's CPU time per scrape.
When `prometheus-node-exporter` is on PATH (Debian package), it is started on a free
loopback port and measured the same way in the same run. Both are asked for plain,
uncompressed text (`Accept-Encoding: identity`), so the figures compare serving, not gzip.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil
import trio

from ttamond.actors.latest import LatestValue
from ttamond.actors.web import WebActor
from ttamond.probes.host import FIELDS
from ttamond.web.app import create_app
from ttamond.web.metrics import LatestCollector

NODE_EXPORTER = "prometheus-node-exporter"
HEADERS = {"Accept": "text/plain;version=0.0.4", "Accept-Encoding": "identity"}
START_DEADLINE = 15.0


class BenchmarkError(Exception):
    """The benchmark could not measure; str() is the one line to show."""


@dataclass
class Result:
    """One server's figures."""

    server: str
    series: int
    body_bytes: int
    requests: int
    median_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    server_cpu_ms_per_scrape: float


def synthetic_values(count: int) -> list[LatestValue]:
    """`count` series shaped like the host collector's: its names, kinds, units, labels."""
    values: list[LatestValue] = []
    round_ = 0
    while len(values) < count:
        for name, info in FIELDS.items():
            if round_ and not info.labels:
                continue  # an unlabelled series exists once
            labels = {label: f"{label}{round_}" for label in info.labels}
            number = 1_234_567_890.0 + round_ if info.kind == "counter" else 12.345678 + round_
            values.append(LatestValue(name=name, labels=labels, value=number, kind=info.kind,
                                      unit=info.unit, timestamp_ms=1_764_000_000_000,
                                      source="collector:host"))
            if len(values) == count:
                break
        round_ += 1
    return values


async def serve(count: int) -> None:
    """Child mode: serve `count` synthetic series, print the port, run until killed."""
    values = synthetic_values(count)
    app = create_app(latest=lambda: values, status=lambda: {"state": "running"},
                     ready=lambda: True)
    actor = WebActor("127.0.0.1:0", app)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        print(f"PORT {actor.port}", flush=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_serving(client: httpx.Client, url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkError(f"{url}: server exited with status {process.returncode}")
        try:
            if client.get(url, headers=HEADERS).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise BenchmarkError(f"{url}: no answer within {START_DEADLINE:.0f} s")


def scrape(name: str, url: str, process: subprocess.Popen[bytes], *, requests: int,
           warmup: int) -> Result:
    """Scrape `url` `warmup` + `requests` times over one connection; time the last ones."""
    server = psutil.Process(process.pid)
    with httpx.Client(timeout=10.0) as client:
        _wait_until_serving(client, url, process)
        for _ in range(warmup):
            client.get(url, headers=HEADERS).raise_for_status()
        body = client.get(url, headers=HEADERS).content
        cpu_before = sum(server.cpu_times()[:2])
        latencies: list[float] = []
        for _ in range(requests):
            began = time.perf_counter()
            response = client.get(url, headers=HEADERS)
            latencies.append((time.perf_counter() - began) * 1000)
            response.raise_for_status()
        cpu_after = sum(server.cpu_times()[:2])
    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    return Result(
        server=name, series=series, body_bytes=len(body), requests=requests,
        median_ms=statistics.median(latencies),
        p99_ms=statistics.quantiles(latencies, n=100)[98],
        mean_ms=statistics.fmean(latencies), max_ms=max(latencies),
        server_cpu_ms_per_scrape=(cpu_after - cpu_before) * 1000 / requests,
    )


def render_only(count: int, repeats: int) -> float:
    """Median milliseconds of LatestCollector.render() alone, in this process."""
    values = synthetic_values(count)
    collector = LatestCollector(lambda: values)
    times: list[float] = []
    for _ in range(repeats):
        began = time.perf_counter()
        collector.render()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure_ttamond(count: int, requests: int, warmup: int) -> Result:
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve", "--series", str(count)],
        stdout=subprocess.PIPE,
    )
    try:
        if process.stdout is None:
            raise BenchmarkError("no pipe to the ttamond server")
        line = process.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "PORT":
            raise BenchmarkError(f"ttamond server did not report its port (got {line})")
        url = f"http://127.0.0.1:{line[1]}/metrics"
        return scrape("ttamond", url, process, requests=requests, warmup=warmup)
    finally:
        _stop(process)


def measure_node_exporter(requests: int, warmup: int) -> Result | None:
    binary = shutil.which(NODE_EXPORTER)
    if binary is None:
        print(f"{NODE_EXPORTER} not on PATH (Debian package prometheus-node-exporter): "
              "measuring ttamond alone")
        return None
    port = _free_port()
    process = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}", "--log.level=error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        return scrape("node_exporter", f"http://127.0.0.1:{port}/metrics", process,
                      requests=requests, warmup=warmup)
    finally:
        _stop(process)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=500, help="series ttamond serves")
    parser.add_argument("--requests", type=int, default=1000, help="timed scrapes per server")
    parser.add_argument("--warmup", type=int, default=50, help="untimed scrapes first")
    parser.add_argument("--no-node-exporter", action="store_true",
                        help="measure ttamond alone")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        trio.run(serve, args.series)
        return 0
    try:
        results = [measure_ttamond(args.series, args.requests, args.warmup)]
        if not args.no_node_exporter and (node := measure_node_exporter(args.requests,
                                                                       args.warmup)):
            results.append(node)
    except BenchmarkError as exc:
        print(f"scrape benchmark: {exc}", file=sys.stderr)
        return 1
    render_ms = render_only(args.series, repeats=200)

    print(f"{args.requests} sequential scrapes over one keep-alive connection, "
          f"after {args.warmup} untimed")
    for r in results:
        print(f"  {r.server:<14} {r.series:>5} series {r.body_bytes / 1000:>6.1f} kB  "
              f"median {r.median_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms  "
              f"(mean {r.mean_ms:.2f}, max {r.max_ms:.2f})  "
              f"server cpu {r.server_cpu_ms_per_scrape:.2f} ms/scrape")
    print(f"  ttamond render alone (LatestCollector.render, {args.series} values): "
          f"median {render_ms:.2f} ms")
    if args.json:
        args.json.write_text(json.dumps({
            "python": platform.python_version(), "machine": platform.machine(),
            "cpus": psutil.cpu_count(), "render_ms": render_ms,
            "results": [asdict(r) for r in results],
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
