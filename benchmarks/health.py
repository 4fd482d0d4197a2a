"""What health checks cost the daemon: CPU with N checks against the same daemon with none.

    python benchmarks/health.py [--checks 200] [--interval 10] [--seconds 60] [--repeat 2]

Runs `python -m ttamond run` twice per repeat on a fresh state folder: once with no
checks, once with `--checks` TCP checks (every `--interval` seconds) against a listener
this script holds open on loopback, plus one disk check. Reads the daemon's CPU time
(user + system, /proc) over `--seconds` after a warm-up, and reports the difference in
% of one core, the figure issue 5 asks about (target: small next to the daemon itself).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

CONFIG = """
[paths]
state_dir = "{state}"
runtime_dir = "{run}"

[web]
bind = "127.0.0.1:0"
"""


def listener() -> tuple[int, threading.Event]:
    """A loopback listener that accepts and closes every connection, until stopped."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4096)
    server.settimeout(0.5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            connection.close()
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    return int(server.getsockname()[1]), stop


def checks_config(count: int, port: int, interval: float, state: Path) -> str:
    tables = [f'[[health.checks]]\nname = "tcp-{n}"\nkind = "tcp"\nport = {port}\n'
              f"interval = {interval}\n" for n in range(count)]
    tables.append(f'[[health.checks]]\nname = "disk"\nkind = "disk"\npath = "{state}"\n'
                  f"interval = {interval}\n")
    return "\n".join(tables)


def cpu_percent(extra: str, seconds: float, warmup: float) -> float:
    """The daemon's CPU over `seconds`, in % of one core."""
    with tempfile.TemporaryDirectory(prefix="ttamond-health-") as tmp:
        folder = Path(tmp)
        config = folder / "ttamond.toml"
        config.write_text(CONFIG.format(state=folder / "state", run=folder / "run") + extra)
        process = subprocess.Popen([sys.executable, "-m", "ttamond", "run", "-c", str(config)],
                                   cwd=folder, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            time.sleep(warmup)
            if process.poll() is not None:
                raise SystemExit(f"the daemon exited with {process.returncode}")
            watched = psutil.Process(process.pid)
            before = sum(watched.cpu_times()[:2])
            time.sleep(seconds)
            after = sum(watched.cpu_times()[:2])
        finally:
            process.terminate()
            process.wait(timeout=30)
    return float(after - before) / seconds * 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checks", type=int, default=200)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    port, stop = listener()
    try:
        without, with_checks = [], []
        for _ in range(args.repeat):
            without.append(cpu_percent("", args.seconds, args.warmup))
            extra = checks_config(args.checks, port, args.interval, Path(tempfile.gettempdir()))
            with_checks.append(cpu_percent(extra, args.seconds, args.warmup))
    finally:
        stop.set()
    base, loaded = statistics.median(without), statistics.median(with_checks)
    print(f"daemon CPU without checks: {base:.2f} % of one core (runs: "
          f"{', '.join(f'{v:.2f}' for v in without)})")
    print(f"daemon CPU with {args.checks} TCP checks + 1 disk check every {args.interval:g} s:"
          f" {loaded:.2f} % (runs: {', '.join(f'{v:.2f}' for v in with_checks)})")
    runs_per_second = (args.checks + 1) / args.interval
    per_run_ms = (loaded - base) / 100 / runs_per_second * 1000
    print(f"added by the checks: {loaded - base:.2f} % of one core"
          f" ({per_run_ms:.2f} ms CPU per check run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
