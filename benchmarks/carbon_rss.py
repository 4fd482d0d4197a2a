"""The daemon's resident memory with carbon tracking off and on, in the same run.

    python benchmarks/carbon_rss.py [--settle 20] [--repeat 3]

Starts `python -m ttamond run` on its defaults (a fresh state folder each time), once
with `[carbon] enabled = false` and once with it on, waits `--settle` seconds, reads
VmRSS, and looks in /proc/PID/maps for pandas's compiled modules (CodeCarbon imports
pandas; with carbon off it must not be loaded). Prints medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """
[paths]
state_dir = "{state}"
runtime_dir = "{run}"

[web]
bind = "127.0.0.1:0"

[carbon]
enabled = {enabled}
measure_interval = 5.0
"""


def measure(enabled: bool, settle: float) -> tuple[float, bool]:
    """RSS in MB after `settle` seconds, and whether pandas is loaded."""
    with tempfile.TemporaryDirectory(prefix="ttamond-rss-") as tmp:
        folder = Path(tmp)
        config = folder / "ttamond.toml"
        config.write_text(CONFIG.format(state=folder / "state", run=folder / "run",
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
            pandas = "/pandas/" in Path(f"/proc/{process.pid}/maps").read_text()
        finally:
            process.terminate()
            process.wait(timeout=30)
    return rss_kb / 1024, pandas


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settle", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for enabled in (False, True):
        runs = [measure(enabled, args.settle) for _ in range(args.repeat)]
        rss = statistics.median(r[0] for r in runs)
        pandas = {r[1] for r in runs}
        print(f"carbon {'on ' if enabled else 'off'}: RSS median {rss:.1f} MB"
              f" (runs: {', '.join(f'{r[0]:.1f}' for r in runs)}); pandas loaded: {pandas}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
