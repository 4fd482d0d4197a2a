"""The GPU probe: NVML readings replayed from recordings, and the real library's failure path.

No GPU exists on the machines these tests run on, so GpuProbe is fed a RecordedNvml that
replays JSON recordings of NVML readings (tests/probes/nvml_recordings/, in the format
`benchmarks/gpu_check.py --record` writes) through the same Nvml interface the real
PynvmlAdapter implements. The real adapter is tested here only where no GPU is needed:
its "no library" failure. benchmarks/gpu_check.py reads a real GPU where there is one.
"""

from __future__ import annotations

import ast
import ctypes
import json
import logging
import subprocess
import sys
import types
from collections import Counter
from pathlib import Path
from typing import Any

import pynvml
import pytest

from benchmarks.gpu_check import check, record
from ttamond.messages import MetricPoint
from ttamond.probes.base import Probe, ProbeError, ProbeUnavailable
from ttamond.probes.gpu import (
    FIELDS,
    NVML_ERROR_FUNCTION_NOT_FOUND,
    NVML_ERROR_NOT_SUPPORTED,
    Clock,
    GpuProbe,
    MemoryInfo,
    NvmlError,
    ProcessMemory,
    PynvmlAdapter,
    Utilization,
)

RECORDINGS = Path(__file__).parent / "nvml_recordings"
H100_UUID = "GPU-5d3f0e0c-8a71-2c4e-9b1f-3e6a7c2d9f41"
GTX_UUIDS = ("GPU-0b6c1f2e-7d44-9a3e-51c8-e2f9a06d3b17", "GPU-9e2a47d0-3c15-6b8f-a0d2-71c5e8f4b926")


def load(name: str) -> dict[str, Any]:
    recording: dict[str, Any] = json.loads((RECORDINGS / f"{name}.json").read_text())
    return recording


def nvml_error(name: str) -> NvmlError:
    """The error PynvmlAdapter raises for NVML's `name`, with pynvml's own text."""
    code = int(getattr(pynvml, name))
    return NvmlError(code, str(pynvml.NVMLError(code)))


class RecordedNvml:
    """Replays one recording: each Nvml call returns the recorded value or raises the
    recorded {"error": "NVML_ERROR_..."}. Like NVML, it counts init/shutdown and refuses
    device calls while not initialised. `calls` counts every call by name."""

    def __init__(self, recording: dict[str, Any]) -> None:
        self.recording = recording
        self.calls: Counter[str] = Counter()
        self.refcount = 0

    def _replay(self, call: str, value: Any) -> Any:
        self.calls[call] += 1
        if isinstance(value, dict) and "error" in value:
            raise nvml_error(value["error"])
        return value

    def _device(self, call: str, handle: object) -> Any:
        if self.refcount == 0:
            raise nvml_error("NVML_ERROR_UNINITIALIZED")
        if not isinstance(handle, int):
            raise nvml_error("NVML_ERROR_INVALID_ARGUMENT")
        return self._replay(call, self.recording["devices"][handle][call])

    def init(self) -> None:
        self._replay("init", self.recording.get("init"))
        self.refcount += 1

    def shutdown(self) -> None:
        self.calls["shutdown"] += 1
        if self.refcount == 0:
            raise nvml_error("NVML_ERROR_UNINITIALIZED")
        self.refcount -= 1

    def device_count(self) -> int:
        return int(self._replay("device_count", self.recording["device_count"]))

    def handle(self, index: int) -> object:
        self._replay("handle", self.recording["devices"][index].get("handle"))
        return index

    def name(self, handle: object) -> str:
        return str(self._device("name", handle))

    def uuid(self, handle: object) -> str:
        return str(self._device("uuid", handle))

    def utilization(self, handle: object) -> Utilization:
        return Utilization(**self._device("utilization", handle))

    def memory(self, handle: object) -> MemoryInfo:
        return MemoryInfo(**self._device("memory", handle))

    def power_milliwatts(self, handle: object) -> int:
        return int(self._device("power_milliwatts", handle))

    def energy_millijoules(self, handle: object) -> int:
        return int(self._device("energy_millijoules", handle))

    def temperature_celsius(self, handle: object) -> int:
        return int(self._device("temperature_celsius", handle))

    def clock_mhz(self, handle: object, clock: Clock) -> int:
        clocks = self._device("clock_mhz", handle)
        return int(self._replay(f"clock_mhz:{clock}", clocks[clock]))

    def compute_processes(self, handle: object) -> list[ProcessMemory]:
        return [ProcessMemory(**entry) for entry in self._device("compute_processes", handle)]

    def graphics_processes(self, handle: object) -> list[ProcessMemory]:
        return [ProcessMemory(**entry) for entry in self._device("graphics_processes", handle)]


def h100_labels(**extra: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"gpu": "0", "name": "NVIDIA H100 80GB HBM3", "uuid": H100_UUID,
                         **extra}.items()))


def test_h100_recording_gives_every_field_in_base_units() -> None:
    probe = GpuProbe(RecordedNvml(load("h100_two_processes")))
    device = h100_labels()
    assert probe.read() == [
        MetricPoint("gpu_utilization_percent", 97, device, "gauge", "percent"),
        MetricPoint("gpu_memory_utilization_percent", 58, device, "gauge", "percent"),
        MetricPoint("gpu_memory_used_bytes", 64990740480, device, "gauge", "bytes"),
        MetricPoint("gpu_memory_total_bytes", 85520809984, device, "gauge", "bytes"),
        MetricPoint("gpu_power_watts", 612.845, device, "gauge", "watts"),
        MetricPoint("gpu_energy_joules_total", 2761943068.112, device, "counter", "joules"),
        MetricPoint("gpu_temperature_celsius", 61, device, "gauge", "celsius"),
        MetricPoint("gpu_clock_hertz", 1_980_000_000, h100_labels(clock="sm"), "gauge", "hertz"),
        MetricPoint("gpu_clock_hertz", 2_619_000_000, h100_labels(clock="memory"), "gauge",
                    "hertz"),
        MetricPoint("gpu_process_memory_bytes", 42949672960, (("gpu", "0"), ("pid", "48213")),
                    "gauge", "bytes"),
        MetricPoint("gpu_process_memory_bytes", 21474836480, (("gpu", "0"), ("pid", "48377")),
                    "gauge", "bytes"),
    ]
    assert probe.unsupported == {0: frozenset()}


@pytest.mark.parametrize("name", ["h100_two_processes", "gtx1080ti_no_energy_no_processes"])
def test_every_point_is_a_declared_field_with_its_labels_and_unit(name: str) -> None:
    points = GpuProbe(RecordedNvml(load(name))).read()
    assert points
    for point in points:
        field = FIELDS[point.name]
        assert tuple(key for key, _ in point.labels) == tuple(sorted(field.labels))
        assert (point.kind, point.unit) == (field.kind, field.unit)


def test_nvml_is_started_once_and_reused() -> None:
    nvml = RecordedNvml(load("h100_two_processes"))
    probe = GpuProbe(nvml)
    first = probe.read()
    assert probe.read() == first
    assert (nvml.calls["init"], nvml.calls["handle"], nvml.calls["uuid"]) == (1, 1, 1)
    assert nvml.calls["power_milliwatts"] == 2


def test_unsupported_fields_are_skipped_logged_once_and_not_asked_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nvml = RecordedNvml(load("gtx1080ti_no_energy_no_processes"))
    probe = GpuProbe(nvml)
    with caplog.at_level(logging.INFO, logger="ttamond.probes.gpu"):
        points = probe.read()
        assert probe.read() == points
    names = Counter(point.name for point in points)
    assert "gpu_energy_joules_total" not in names
    assert "gpu_process_memory_bytes" not in names
    assert names["gpu_power_watts"] == 2
    assert names["gpu_clock_hertz"] == 4
    by_gpu = {(dict(p.labels)["uuid"], p.name, dict(p.labels).get("clock")): p.value
              for p in points}
    assert by_gpu[(GTX_UUIDS[0], "gpu_power_watts", None)] == 187.342
    assert by_gpu[(GTX_UUIDS[1], "gpu_power_watts", None)] == 9.214
    assert by_gpu[(GTX_UUIDS[1], "gpu_clock_hertz", "sm")] == 139_000_000
    assert by_gpu[(GTX_UUIDS[1], "gpu_clock_hertz", "memory")] == 405_000_000
    assert by_gpu[(GTX_UUIDS[0], "gpu_memory_total_bytes", None)] == 11720982528
    skipped = frozenset({"energy", "compute processes", "graphics processes"})
    assert probe.unsupported == {0: skipped, 1: skipped}
    assert nvml.calls["energy_millijoules"] == 2
    assert nvml.calls["compute_processes"] == 2
    assert nvml.calls["power_milliwatts"] == 4
    assert [r.getMessage() for r in caplog.records] == [
        "GPU 0 (GeForce GTX 1080 Ti): energy: Not Supported; not read again",
        "GPU 0 (GeForce GTX 1080 Ti): compute processes: Not Supported; not read again",
        "GPU 0 (GeForce GTX 1080 Ti): graphics processes: Not Supported; not read again",
        "GPU 1 (GeForce GTX 1080 Ti): energy: Not Supported; not read again",
        "GPU 1 (GeForce GTX 1080 Ti): compute processes: Not Supported; not read again",
        "GPU 1 (GeForce GTX 1080 Ti): graphics processes: Not Supported; not read again",
    ]


def test_a_call_the_driver_lacks_is_skipped_like_not_supported() -> None:
    recording = load("h100_two_processes")
    recording["devices"][0]["temperature_celsius"] = {"error": "NVML_ERROR_FUNCTION_NOT_FOUND"}
    probe = GpuProbe(RecordedNvml(recording))
    assert "gpu_temperature_celsius" not in {point.name for point in probe.read()}
    assert probe.unsupported == {0: frozenset({"temperature"})}


def test_per_process_off_asks_for_no_processes() -> None:
    nvml = RecordedNvml(load("h100_two_processes"))
    points = GpuProbe(nvml, per_process=False).read()
    assert "gpu_process_memory_bytes" not in {point.name for point in points}
    assert len(points) == 9
    assert nvml.calls["compute_processes"] == nvml.calls["graphics_processes"] == 0


def test_processes_in_both_lists_count_once_and_withheld_figures_are_skipped() -> None:
    recording = load("h100_two_processes")
    recording["devices"][0]["graphics_processes"] = [
        {"pid": 48213, "used_bytes": 42949672960},
        {"pid": 5120, "used_bytes": None},
        {"pid": 2210, "used_bytes": 16777216},
    ]
    points = GpuProbe(RecordedNvml(recording)).read()
    processes = {dict(p.labels)["pid"]: p.value for p in points
                 if p.name == "gpu_process_memory_bytes"}
    assert processes == {"2210": 16777216, "48213": 42949672960, "48377": 21474836480}


@pytest.mark.parametrize(("error", "message"), [
    ("NVML_ERROR_LIBRARY_NOT_FOUND", "NVML unavailable: NVML Shared Library Not Found"),
    ("NVML_ERROR_DRIVER_NOT_LOADED", "NVML unavailable: Driver Not Loaded"),
    ("NVML_ERROR_NO_PERMISSION", "NVML unavailable: Insufficient Permissions"),
])
def test_nvml_that_cannot_start_is_unavailable_and_started_again_next_read(
    error: str, message: str,
) -> None:
    recording = load("h100_two_processes")
    recording["init"] = {"error": error}
    nvml = RecordedNvml(recording)
    probe = GpuProbe(nvml)
    with pytest.raises(ProbeUnavailable, match=f"^{message}$"):
        probe.read()
    with pytest.raises(ProbeUnavailable, match=f"^{message}$"):
        probe.read()
    assert nvml.calls["init"] == 2
    del recording["init"]  # the driver got installed
    assert len(probe.read()) == 11


def test_no_gpu_listed_is_unavailable_and_nvml_is_shut_down() -> None:
    recording = load("h100_two_processes")
    recording["device_count"] = 0
    nvml = RecordedNvml(recording)
    with pytest.raises(ProbeUnavailable,
                       match=r"^NVML unavailable: the driver is loaded but lists no GPU$"):
        GpuProbe(nvml).read()
    assert nvml.refcount == 0


def test_gpu_lost_mid_read_is_an_error_naming_the_device_and_nvml_restarts() -> None:
    recording = load("gtx1080ti_no_energy_no_processes")
    healthy = recording["devices"][1]["power_milliwatts"]
    recording["devices"][1]["power_milliwatts"] = {"error": "NVML_ERROR_GPU_IS_LOST"}
    nvml = RecordedNvml(recording)
    probe = GpuProbe(nvml)
    with pytest.raises(ProbeError, match=(
        r"^GPU 1 \(GeForce GTX 1080 Ti, GPU-9e2a47d0-3c15-6b8f-a0d2-71c5e8f4b926\): "
        r"cannot read power: GPU is lost$"
    )) as raised:
        probe.read()
    assert not isinstance(raised.value, ProbeUnavailable)
    assert isinstance(raised.value.__cause__, NvmlError)
    assert nvml.refcount == 0
    recording["devices"][1]["power_milliwatts"] = healthy  # the GPU was reset
    assert len(probe.read()) == 16
    assert nvml.calls["init"] == 2
    # What was learnt unsupported survives the restart: not asked again, not logged again.
    assert nvml.calls["energy_millijoules"] == 2


def test_gpu_lost_before_it_could_be_opened_names_the_index() -> None:
    recording = load("h100_two_processes")
    recording["devices"][0]["handle"] = {"error": "NVML_ERROR_GPU_IS_LOST"}
    nvml = RecordedNvml(recording)
    with pytest.raises(ProbeError, match=r"^GPU 0: cannot open it: GPU is lost$"):
        GpuProbe(nvml).read()
    assert nvml.refcount == 0


def test_close_shuts_nvml_down_once_and_a_later_read_starts_it_again() -> None:
    nvml = RecordedNvml(load("h100_two_processes"))
    probe = GpuProbe(nvml)
    probe.close()
    assert nvml.calls["shutdown"] == 0
    probe.read()
    probe.close()
    probe.close()
    assert (nvml.calls["shutdown"], nvml.refcount) == (1, 0)
    probe.read()
    assert (nvml.calls["init"], nvml.refcount) == (2, 1)


def test_a_failing_shutdown_is_a_probe_error() -> None:
    nvml = RecordedNvml(load("h100_two_processes"))
    probe = GpuProbe(nvml)
    probe.read()
    nvml.refcount = 0  # NVML was shut down behind the probe's back
    with pytest.raises(ProbeError, match=r"^NVML shutdown failed: Uninitialized$"):
        probe.close()


def test_gpu_probe_is_a_probe_that_runs_on_a_worker_thread() -> None:
    probe: Probe = GpuProbe(RecordedNvml(load("h100_two_processes")))
    assert probe.blocking is True
    assert set(probe.fields) == {point.name for point in probe.read()}


@pytest.mark.parametrize("name", ["h100_two_processes", "gtx1080ti_no_energy_no_processes"])
def test_gpu_check_records_in_the_format_the_tests_replay(name: str, tmp_path: Path) -> None:
    # What `gpu_check.py --record` writes on a real GPU must feed these tests unchanged.
    path = tmp_path / "recording.json"
    assert record(RecordedNvml(load(name)), path) == 0
    recorded = json.loads(path.read_text())
    assert recorded["devices"] == load(name)["devices"]
    assert GpuProbe(RecordedNvml(recorded)).read() == GpuProbe(RecordedNvml(load(name))).read()


def _nvml_library_present() -> bool:
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


@pytest.mark.skipif(_nvml_library_present(),
                    reason="this machine has NVML; benchmarks/gpu_check.py reads its GPU")
def test_real_pynvml_without_a_driver_is_unavailable() -> None:
    probe = GpuProbe(PynvmlAdapter())
    with pytest.raises(ProbeUnavailable,
                       match=r"^NVML unavailable: NVML Shared Library Not Found$") as raised:
        probe.read()
    assert isinstance(raised.value.__cause__, NvmlError)
    assert isinstance(raised.value.__cause__.__cause__, pynvml.NVMLError_LibraryNotFound)
    with pytest.raises(ProbeUnavailable, match="Shared Library Not Found"):
        probe.read()
    probe.close()  # never started: nothing to shut down


def test_importing_the_probe_does_not_import_pynvml() -> None:
    code = "import sys, ttamond.probes.gpu; print('pynvml' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"


def test_every_pynvml_name_the_adapter_uses_exists() -> None:
    # The adapter's getters cannot run without a GPU; at least no name in it is misspelt.
    source = ast.parse((Path(__file__).parents[2] / "probes" / "gpu.py").read_text())
    names = {node.attr for node in ast.walk(source)
             if isinstance(node, ast.Attribute) and (
                 (isinstance(node.value, ast.Attribute) and node.value.attr == "_pynvml")
                 or (isinstance(node.value, ast.Name) and node.value.id == "pynvml"))}
    names |= {node.value for node in ast.walk(source)
              if isinstance(node, ast.Constant) and isinstance(node.value, str)
              and node.value.startswith("nvmlDevice")}
    assert {"nvmlInit", "nvmlShutdown", "NVML_CLOCK_SM", "nvmlDeviceGetTotalEnergyConsumption",
            "nvmlDeviceGetGraphicsRunningProcesses_v2"} <= names
    assert sorted(name for name in names if not hasattr(pynvml, name)) == []
    assert NVML_ERROR_NOT_SUPPORTED == pynvml.NVML_ERROR_NOT_SUPPORTED
    assert NVML_ERROR_FUNCTION_NOT_FOUND == pynvml.NVML_ERROR_FUNCTION_NOT_FOUND


def test_adapter_falls_back_to_an_older_call_once_and_translates_errors() -> None:
    # Stand-ins for pynvml's functions, since none of them can run without a GPU; they
    # raise pynvml's real exception classes, which is what the adapter has to handle.
    asked: Counter[str] = Counter()

    def newest(handle: object, sensor: int) -> int:
        asked["newest"] += 1
        raise pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)

    def older(handle: object, sensor: int) -> int:
        asked["older"] += 1
        return 55

    def lost(handle: object) -> int:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)

    adapter = PynvmlAdapter()
    adapter._pynvml = types.SimpleNamespace(
        NVMLError=pynvml.NVMLError, NVML_TEMPERATURE_GPU=0, nvmlDeviceGetPowerUsage=lost,
        nvmlDeviceGetTemperatureV=newest, nvmlDeviceGetTemperature=older,
    )
    adapter._temperature = adapter._newest("nvmlDeviceGetTemperatureV",
                                           "nvmlDeviceGetTemperature")
    assert adapter.temperature_celsius(object()) == 55
    assert adapter.temperature_celsius(object()) == 55
    assert asked == {"newest": 1, "older": 2}
    with pytest.raises(NvmlError, match=r"^GPU is lost$") as raised:
        adapter.power_milliwatts(object())
    assert raised.value.code == pynvml.NVML_ERROR_GPU_IS_LOST
    missing = adapter._newest("nvmlDeviceGetNothing")
    with pytest.raises(NvmlError, match=r"^Function Not Found"):
        missing(object())


def test_gpu_check_prints_every_field_and_the_read_times(
    capsys: pytest.CaptureFixture[str],
) -> None:
    nvml = RecordedNvml(load("gtx1080ti_no_energy_no_processes"))
    assert check(GpuProbe(nvml), reads=5) == 0
    out = capsys.readouterr().out
    assert ('gpu_power_watts{gpu="1",name="GeForce GTX 1080 Ti",'
            'uuid="GPU-9e2a47d0-3c15-6b8f-a0d2-71c5e8f4b926"} 9.214 watts (gauge)') in out
    assert "GPU 0 does not support: compute processes, energy, graphics processes" in out
    assert "16 points from 2 GPU(s), per_process=on" in out
    assert "5 reads: median " in out
    assert nvml.refcount == 0


@pytest.mark.skipif(_nvml_library_present(), reason="this machine has NVML")
def test_gpu_check_without_a_gpu_says_so_and_exits_0() -> None:
    script = Path(__file__).parents[2] / "benchmarks" / "gpu_check.py"
    done = subprocess.run([sys.executable, str(script), "--reads", "3"], capture_output=True,
                          text=True, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "no GPU here: NVML unavailable: NVML Shared Library Not Found\n", "")
