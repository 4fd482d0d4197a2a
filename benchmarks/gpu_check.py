"""Read a real GPU through GpuProbe: print every field and time reads, or record NVML.

Run from the repository root, on a machine with an NVIDIA GPU and driver:

    python benchmarks/gpu_check.py                    # one reading, then 100 timed reads
    python -m benchmarks.gpu_check --reads 1000 --no-per-process
    python benchmarks/gpu_check.py --record tests/probes/nvml_recordings/this_box.json

--record writes what PynvmlAdapter returns for every call GpuProbe makes, in the format
the tests replay (tests/probes/test_gpu.py, RecordedNvml), with each NVML error as
{"error": "NVML_ERROR_..."}.

The first read is timed on its own: it starts NVML and opens every device, which can take
a second or more where persistence mode is off. That and the steady reads are why
GpuProbe runs on a worker thread (`blocking = True`).

Exit status: 0 after measuring or recording, and also where there is nothing to read, after
printing "no GPU here: <reason>"; 1 when NVML started but a GPU could not be read.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ttamond.messages import MetricPoint
from ttamond.probes.base import ProbeError, ProbeUnavailable
from ttamond.probes.gpu import Clock, GpuProbe, Nvml, NvmlError, PynvmlAdapter


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=100, help="timed reads (default 100)")
    parser.add_argument("--no-per-process", dest="per_process", action="store_false",
                        help="leave out per-process memory, as per_process = false does")
    parser.add_argument("--record", type=Path, metavar="FILE",
                        help="write an NVML recording for the tests instead of timing")
    args = parser.parse_args(argv)
    if args.reads < 1:
        parser.error("--reads must be at least 1")
    try:
        adapter = PynvmlAdapter()
        if args.record is not None:
            return record(adapter, args.record)
        return check(GpuProbe(adapter, per_process=args.per_process), args.reads)
    except ProbeUnavailable as exc:
        print(f"no GPU here: {exc}")
        return 0
    except ProbeError as exc:
        print(f"gpu_check: {exc}", file=sys.stderr)
        return 1


def check(probe: GpuProbe, reads: int) -> int:
    """Print one reading and the time reads take. Raises ProbeUnavailable or ProbeError."""
    started = time.perf_counter_ns()
    points = probe.read()
    first_us = (time.perf_counter_ns() - started) / 1000
    try:
        print(_versions())
        for point in points:
            print(_format(point))
        for index, fields in sorted(probe.unsupported.items()):
            if fields:
                print(f"GPU {index} does not support: {', '.join(sorted(fields))}")
        samples = []
        for _ in range(reads):
            started = time.perf_counter_ns()
            probe.read()
            samples.append((time.perf_counter_ns() - started) / 1000)
    finally:
        probe.close()
    p99 = (statistics.quantiles(samples, n=100, method="inclusive")[98] if len(samples) > 1
           else samples[0])
    print(f"\n{len(points)} points from {len(_gpus(points))} GPU(s),"
          f" per_process={'on' if probe.per_process else 'off'}")
    print(f"first read (starts NVML, opens the devices): {first_us:,.0f} us")
    print(f"{reads} reads: median {statistics.median(samples):,.1f} us,"
          f" p99 {p99:,.1f} us, max {max(samples):,.1f} us")
    return 0


def _gpus(points: Sequence[MetricPoint]) -> set[str]:
    return {value for point in points for key, value in point.labels if key == "gpu"}


def record(adapter: Nvml, path: Path) -> int:
    """Write every reading GpuProbe asks for, as the tests' RecordedNvml replays it.

    Raises ProbeUnavailable when NVML cannot start, ProbeError when a device fails.
    """
    try:
        adapter.init()
    except NvmlError as exc:
        raise ProbeUnavailable(f"NVML unavailable: {exc}") from exc
    try:
        count = adapter.device_count()
        devices = []
        for index in range(count):
            handle = adapter.handle(index)
            clocks: dict[Clock, Any] = {clock: _recorded(adapter.clock_mhz, handle, clock)
                                        for clock in ("sm", "memory")}
            devices.append({
                "name": adapter.name(handle),
                "uuid": adapter.uuid(handle),
                "utilization": _recorded(lambda h: adapter.utilization(h)._asdict(), handle),
                "memory": _recorded(lambda h: adapter.memory(h)._asdict(), handle),
                "power_milliwatts": _recorded(adapter.power_milliwatts, handle),
                "energy_millijoules": _recorded(adapter.energy_millijoules, handle),
                "temperature_celsius": _recorded(adapter.temperature_celsius, handle),
                "clock_mhz": clocks,
                "compute_processes": _recorded(
                    lambda h: [p._asdict() for p in adapter.compute_processes(h)], handle),
                "graphics_processes": _recorded(
                    lambda h: [p._asdict() for p in adapter.graphics_processes(h)], handle),
            })
        driver, nvml_version = _driver_versions()
    except NvmlError as exc:
        raise ProbeError(f"cannot record: {exc}") from exc
    finally:
        adapter.shutdown()
    recording = {
        "description": f"{count} GPU(s): {', '.join(str(d['name']) for d in devices)}",
        "provenance": (f"Captured by benchmarks/gpu_check.py --record on {platform.node()},"
                       f" {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC."),
        "driver_version": driver,
        "nvml_version": nvml_version,
        "device_count": count,
        "devices": devices,
    }
    path.write_text(json.dumps(recording, indent=2) + "\n", encoding="utf-8")
    print(f"recorded {count} GPU(s) to {path}")
    return 0


def _recorded(call: Callable[..., Any], *args: Any) -> Any:
    """The call's value, or {"error": "NVML_ERROR_..."} as the recording holds errors."""
    try:
        return call(*args)
    except NvmlError as exc:
        return {"error": _error_name(exc.code)}


def _error_name(code: int) -> str:
    import pynvml

    names = {getattr(pynvml, name): name for name in dir(pynvml)
             if name.startswith("NVML_ERROR_")}
    return str(names.get(code, f"NVML_ERROR_{code}"))


def _driver_versions() -> tuple[str, str]:
    """The driver's and NVML's versions, or why they are unknown (NVML not started)."""
    import pynvml

    try:
        return str(pynvml.nvmlSystemGetDriverVersion()), str(pynvml.nvmlSystemGetNVMLVersion())
    except pynvml.NVMLError as exc:
        return f"unknown ({exc})", f"unknown ({exc})"


def _versions() -> str:
    driver, nvml_version = _driver_versions()
    return f"driver {driver}, NVML {nvml_version}"


def _format(point: MetricPoint) -> str:
    labels = ",".join(f'{key}="{value}"' for key, value in point.labels)
    unit = f" {point.unit}" if point.unit else ""
    return f"{point.name}{{{labels}}} {point.value:,}{unit} ({point.kind})"


if __name__ == "__main__":
    sys.exit(main())
