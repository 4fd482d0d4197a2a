"""The carbon probe around CodeCarbon's real offline tracker on this machine.

No GPU and no readable RAPL here, so CodeCarbon estimates: the CPU from its load, the
RAM from its size. CodeCarbon caches what it detected per process, so only the first
start in a pytest run is a cold one (lscpu, cpuinfo's subprocess, pandas); the loop-lag
test comes first to see it.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
import trio

from ttamond.actors.carbon import series
from ttamond.probes.base import ProbeError, ProbeUnavailable
from ttamond.probes.carbon import FIELDS, MEASURED, CarbonProbe, CarbonReading

pytest.importorskip("codecarbon")

METHODS = MEASURED | {"cpu-load-estimate", "constant", "none"}


def probe(workdir: Path, country: str = "DEU", region: str | None = None, *,
          measure_interval: float = 15.0) -> CarbonProbe:
    return CarbonProbe(country_iso_code=country, region=region,
                       measure_interval=measure_interval, workdir=workdir)


def codecarbon_timers() -> set[threading.Thread]:
    """CodeCarbon's schedulers run on threading.Timer threads, a new one each period."""
    return {thread for thread in threading.enumerate() if isinstance(thread, threading.Timer)}


def assert_timers_end(timers: set[threading.Thread]) -> None:
    for timer in timers:
        timer.join(timeout=5)
    assert not any(timer.is_alive() for timer in timers)
    # A chain that re-arms itself never ends; one an earlier test stopped ends soon.
    deadline = time.monotonic() + 5
    while codecarbon_timers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not codecarbon_timers()


def burn(seconds: float) -> None:
    """Busy CPU in another thread, as a workload would."""
    def spin() -> None:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            pass

    worker = threading.Thread(target=spin)
    worker.start()
    worker.join()


# What a CodeCarbon user may have lying around: a config in the working directory asking
# for a CSV, an upload and a lock, and variables asking for the same plus an Electricity
# Maps token and debug logging. The probe must override them all.
HOSTILE_CONFIG = ("[codecarbon]\nsave_to_file = true\noutput_methods = csv\n"
                  "emissions_endpoint = http://127.0.0.1:9/\nallow_multiple_runs = false\n")
HOSTILE_ENVIRONMENT = {
    "CODECARBON_OUTPUT_METHODS": "csv,api",
    "CODECARBON_EMISSIONS_ENDPOINT": "http://127.0.0.1:9/",
    "CODECARBON_ELECTRICITYMAPS_API_TOKEN": "not-a-token",
    "CODECARBON_CO2_SIGNAL_API_TOKEN": "not-a-token",  # read even when the new one is None
    "CODECARBON_LOG_LEVEL": "debug",
}


@pytest.fixture
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory holding only HOSTILE_CONFIG, under HOSTILE_ENVIRONMENT."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / ".codecarbon.config").write_text(HOSTILE_CONFIG)
    monkeypatch.chdir(cwd)
    for name, value in HOSTILE_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    yield cwd


async def test_start_read_and_stop_on_a_worker_thread_keep_the_loop_responsive(
        tmp_path: Path) -> None:
    carbon = probe(tmp_path, measure_interval=1.0)
    worst = 0.0
    # Late in a full run this pytest process holds the heap of hundreds of earlier
    # tests, and a full collection triggered by pandas's imports walks all of it with
    # the GIL held (65 ms seen). The daemon's heap is small: freeze pytest's, so this
    # measures CodeCarbon. (tests/carbon checks the daemon's own loop lag as well.)
    gc.collect()
    gc.freeze()

    async def watch_lag() -> None:
        nonlocal worst
        while True:
            before = trio.current_time()
            await trio.sleep(0.01)
            worst = max(worst, trio.current_time() - before - 0.01)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_lag)
            await trio.to_thread.run_sync(carbon.start)
            for _ in range(3):
                await trio.sleep(0.5)  # across a 1 s measurement of CodeCarbon's own timer
                await trio.to_thread.run_sync(carbon.read)
            await trio.to_thread.run_sync(carbon.stop)
            nursery.cancel_scope.cancel()
    finally:
        gc.unfreeze()
    assert worst < 0.05, f"the loop waited {worst * 1000:.1f} ms"


def test_the_real_tracker_measures_cpu_work_and_writes_nothing(
        tmp_path: Path, empty_cwd: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    carbon = probe(workdir)
    carbon.start()
    readings = [carbon.read()]
    for _ in range(2):
        burn(1.0)
        readings.append(carbon.read())
    readings.append(carbon.stop())

    first, *_, last = readings
    for before, after in pairwise(readings[:-1]):
        assert after.energy_kwh > before.energy_kwh
        assert after.cpu_energy_kwh > before.cpu_energy_kwh
        assert after.ram_energy_kwh > before.ram_energy_kwh
        assert after.emissions_kg > before.emissions_kg
    assert last.energy_kwh >= readings[-2].energy_kwh > 0
    for reading in readings:
        assert reading.energy_kwh == pytest.approx(
            reading.cpu_energy_kwh + reading.gpu_energy_kwh + reading.ram_energy_kwh)
        assert reading.emissions_kg == pytest.approx(
            reading.energy_kwh * reading.intensity_g_per_kwh / 1000)
        assert reading.intensity_g_per_kwh > 0
        assert reading.cpu_power_w > 0 and reading.ram_power_w > 0
        assert set(reading.methods) == {"cpu", "gpu", "ram"}
        assert set(reading.methods.values()) <= METHODS
        assert reading.estimated == any(method not in MEASURED | {"none"}
                                        for method in reading.methods.values())
    assert last.timestamp_ms >= first.timestamp_ms > 0
    if shutil.which("nvidia-smi") is None and shutil.which("rocm-smi") is None:
        assert last.methods["gpu"] == "none"
        assert last.gpu_energy_kwh == 0 and last.gpu_power_w == 0
    if not Path("/sys/class/powercap/intel-rapl").exists():
        assert last.methods["cpu"] == "cpu-load-estimate"
        assert last.estimated
    assert last.methods["ram"] == "constant"

    assert sorted(path.name for path in empty_cwd.iterdir()) == [".codecarbon.config"]
    assert not list(workdir.iterdir())


def test_stop_ends_codecarbons_threads_and_the_probe_starts_again(tmp_path: Path) -> None:
    carbon = probe(tmp_path, measure_interval=1.0)
    carbon.start()
    timers = codecarbon_timers()
    assert timers
    carbon.stop()
    assert_timers_end(timers)
    carbon.start()
    assert carbon.read().energy_kwh >= 0
    timers = codecarbon_timers()
    carbon.stop()
    assert_timers_end(timers)


def test_a_probe_left_running_blocks_no_other_and_ends_when_dropped(tmp_path: Path) -> None:
    from codecarbon.lock import LOCKFILE

    forgotten = probe(tmp_path)
    forgotten.start()
    assert not Path(LOCKFILE).exists()  # no lock is taken at all
    second = probe(tmp_path)
    second.start()
    assert second.read().energy_kwh >= 0
    second.stop()
    timers = codecarbon_timers()
    # Its actor crashed: nobody calls stop. The probe's finalizer stops the tracker.
    del forgotten
    assert_timers_end(timers)


def test_a_stale_codecarbon_lock_file_does_not_stop_a_start(tmp_path: Path) -> None:
    from codecarbon.lock import LOCKFILE

    lock = Path(LOCKFILE)
    ours = not lock.exists()
    if ours:
        lock.touch()  # what a killed `allow_multiple_runs=False` run leaves behind
    try:
        carbon = probe(tmp_path)
        carbon.start()
        assert carbon.stop().energy_kwh >= 0
    finally:
        if ours:
            lock.unlink()


def test_starting_on_the_main_thread_leaves_signal_handlers_alone(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    carbon = probe(tmp_path)
    carbon.start()
    carbon.stop()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_region_sets_its_own_grid_intensity(tmp_path: Path) -> None:
    country = probe(tmp_path, "USA")
    country.start()
    california = probe(tmp_path, "USA", "california")
    california.start()
    try:
        assert 0 < california.read().intensity_g_per_kwh < country.read().intensity_g_per_kwh
    finally:
        country.stop()
        california.stop()


@pytest.mark.parametrize(("country", "region", "message"), [
    ("XYZ", None, r"^CodeCarbon has no grid intensity for country_iso_code 'XYZ': use an "
                  r"ISO 3166-1 alpha-3 code such as DEU"),
    ("DEU", "bavaria", r"^CodeCarbon has no grid intensity for region 'bavaria' of DEU: it "
                       r"has regions for US states"),
    ("USA", "atlantis", r"^CodeCarbon has no grid intensity for region 'atlantis' of USA"),
])
def test_an_unknown_place_is_an_error_a_person_can_act_on(
        tmp_path: Path, country: str, region: str | None, message: str) -> None:
    carbon = probe(tmp_path, country, region)
    # Only this start's timers count: an earlier test's may still be ending.
    before = codecarbon_timers()
    with pytest.raises(ProbeError, match=message):
        carbon.start()
    assert not codecarbon_timers() - before


def test_what_codecarbon_swallows_becomes_probe_unavailable(tmp_path: Path) -> None:
    # CodeCarbon's constructor checks the output folder and only logs the OSError.
    carbon = probe(tmp_path / "missing")
    before = codecarbon_timers()
    with pytest.raises(ProbeUnavailable, match=r"^CodeCarbon cannot track this host: "
                                               r"OSError: Folder '.*missing' doesn't exist"):
        carbon.start()
    assert not codecarbon_timers() - before


def test_misuse_raises() -> None:
    carbon = probe(Path("/nonexistent"))
    with pytest.raises(RuntimeError, match="not started"):
        carbon.read()
    with pytest.raises(RuntimeError, match="not started"):
        carbon.stop()
    with pytest.raises(ValueError, match="measure_interval must be above 0 s"):
        probe(Path("."), measure_interval=0)


def test_fields_describe_every_series_the_actor_publishes() -> None:
    reading = CarbonReading(
        timestamp_ms=1, energy_kwh=3.0, cpu_energy_kwh=1.0, gpu_energy_kwh=0.0,
        ram_energy_kwh=2.0, emissions_kg=1.2, cpu_power_w=10.0, gpu_power_w=0.0,
        ram_power_w=5.0, intensity_g_per_kwh=400.0,
        methods={"cpu": "cpu-load-estimate", "gpu": "none", "ram": "constant"}, estimated=True)
    points = series(reading, open_sessions=0).points
    assert {point.name for point in points} == set(FIELDS)
    for point in points:
        field = FIELDS[point.name]
        assert (point.kind, point.unit) == (field.kind, field.unit)
        assert tuple(sorted(key for key, _ in point.labels)) == tuple(sorted(field.labels))


# Run in a fresh interpreter: a cold start (hardware detection, data tables), and the
# only place where CodeCarbon's import-time stderr handler can be caught writing.
COLD_RUN = """
import json, sys
from pathlib import Path

network = []
def audit(event, args):
    if event in ("socket.connect", "socket.getaddrinfo"):
        network.append(f"{event} {args!r}")
sys.addaudithook(audit)

from ttamond.probes.carbon import CarbonProbe
probe = CarbonProbe(country_iso_code="DEU", region=None, workdir=Path(sys.argv[1]))
probe.start()
reading = probe.read()
probe.stop()
json.dump({"network": network, "energy_kwh": reading.energy_kwh}, sys.stdout)
"""


def test_a_cold_run_prints_nothing_connects_nowhere_and_writes_nothing(tmp_path: Path) -> None:
    from codecarbon.lock import LOCKFILE

    cwd, workdir = tmp_path / "cwd", tmp_path / "work"
    cwd.mkdir()
    workdir.mkdir()
    (cwd / ".codecarbon.config").write_text(HOSTILE_CONFIG)
    lock_before = Path(LOCKFILE).exists()
    done = subprocess.run([sys.executable, "-c", COLD_RUN, str(workdir)], cwd=cwd,
                          env={**os.environ, **HOSTILE_ENVIRONMENT}, capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    result = json.loads(done.stdout)  # nothing else on stdout either
    assert result["network"] == []
    assert result["energy_kwh"] > 0
    assert [path.name for path in cwd.iterdir()] == [".codecarbon.config"]
    assert not list(workdir.iterdir())
    assert Path(LOCKFILE).exists() == lock_before


def test_importing_the_probe_imports_neither_codecarbon_nor_pandas() -> None:
    code = ("import sys, ttamond.probes.carbon; "
            "print(sorted(m for m in ('codecarbon', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
