"""NVIDIA GPUs through NVML: utilisation, memory, power, energy, temperature, clocks, processes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Literal, NamedTuple, Protocol, TypeVar

from ttamond.messages import Labels, MetricPoint
from ttamond.probes.base import FieldInfo, ProbeError, ProbeUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

Clock = Literal["sm", "memory"]

# NVML return codes (nvml.h) that mean "this device or driver cannot give that reading".
# The field is skipped for that device from then on; every other code is an error.
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_FUNCTION_NOT_FOUND = 13
_SKIPPED_CODES = frozenset({NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_FUNCTION_NOT_FOUND})


class NvmlError(Exception):
    """An NVML call failed: `code` is NVML's return code (NVML_ERROR_*), str() its text."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Utilization(NamedTuple):
    """Busy shares over the driver's last sample period, in percent."""

    gpu: int
    memory: int


class MemoryInfo(NamedTuple):
    """Device memory in bytes."""

    total: int
    used: int


class ProcessMemory(NamedTuple):
    """A process with a context on the device; `used_bytes` is None where NVML withholds it."""

    pid: int
    used_bytes: int | None


class Nvml(Protocol):
    """The NVML calls GpuProbe makes, in NVML's own units. Every call raises NvmlError.

    Handles are opaque: whatever `handle()` returned goes back in unchanged.
    """

    def init(self) -> None: ...
    def shutdown(self) -> None: ...
    def device_count(self) -> int: ...
    def handle(self, index: int) -> object: ...
    def name(self, handle: object) -> str: ...
    def uuid(self, handle: object) -> str: ...
    def utilization(self, handle: object) -> Utilization: ...
    def memory(self, handle: object) -> MemoryInfo: ...
    def power_milliwatts(self, handle: object) -> int: ...
    def energy_millijoules(self, handle: object) -> int: ...
    def temperature_celsius(self, handle: object) -> int: ...
    def clock_mhz(self, handle: object, clock: Clock) -> int: ...
    def compute_processes(self, handle: object) -> list[ProcessMemory]: ...
    def graphics_processes(self, handle: object) -> list[ProcessMemory]: ...


class PynvmlAdapter:
    """Nvml through NVIDIA's `pynvml` module (the nvidia-ml-py distribution).

    pynvml is imported here, not at module level, so importing this module costs nothing
    when the GPU collector is off. Calls that NVML has versioned try the newest first and
    fall back, once and for good, where the driver is too old to have it.
    """

    def __init__(self) -> None:
        import pynvml

        self._pynvml: Any = pynvml
        self._clocks: dict[Clock, int] = {"sm": pynvml.NVML_CLOCK_SM,
                                          "memory": pynvml.NVML_CLOCK_MEM}
        self._temperature = self._newest("nvmlDeviceGetTemperatureV", "nvmlDeviceGetTemperature")
        # The unversioned process calls raise NVMLLibraryMismatchError, not an NVMLError,
        # on drivers without _v3; name the versions instead.
        self._compute = self._newest("nvmlDeviceGetComputeRunningProcesses_v3",
                                     "nvmlDeviceGetComputeRunningProcesses_v2")
        self._graphics = self._newest("nvmlDeviceGetGraphicsRunningProcesses_v3",
                                      "nvmlDeviceGetGraphicsRunningProcesses_v2")

    def init(self) -> None:
        self._call(self._pynvml.nvmlInit)

    def shutdown(self) -> None:
        self._call(self._pynvml.nvmlShutdown)

    def device_count(self) -> int:
        return int(self._call(self._pynvml.nvmlDeviceGetCount))

    def handle(self, index: int) -> object:
        return self._call(self._pynvml.nvmlDeviceGetHandleByIndex, index)

    def name(self, handle: object) -> str:
        return str(self._call(self._pynvml.nvmlDeviceGetName, handle))

    def uuid(self, handle: object) -> str:
        return str(self._call(self._pynvml.nvmlDeviceGetUUID, handle))

    def utilization(self, handle: object) -> Utilization:
        rates = self._call(self._pynvml.nvmlDeviceGetUtilizationRates, handle)
        return Utilization(int(rates.gpu), int(rates.memory))

    def memory(self, handle: object) -> MemoryInfo:
        info = self._call(self._pynvml.nvmlDeviceGetMemoryInfo, handle)
        return MemoryInfo(int(info.total), int(info.used))

    def power_milliwatts(self, handle: object) -> int:
        return int(self._call(self._pynvml.nvmlDeviceGetPowerUsage, handle))

    def energy_millijoules(self, handle: object) -> int:
        return int(self._call(self._pynvml.nvmlDeviceGetTotalEnergyConsumption, handle))

    def temperature_celsius(self, handle: object) -> int:
        return int(self._temperature(handle, self._pynvml.NVML_TEMPERATURE_GPU))

    def clock_mhz(self, handle: object, clock: Clock) -> int:
        return int(self._call(self._pynvml.nvmlDeviceGetClockInfo, handle, self._clocks[clock]))

    def compute_processes(self, handle: object) -> list[ProcessMemory]:
        return [_process(entry) for entry in self._compute(handle)]

    def graphics_processes(self, handle: object) -> list[ProcessMemory]:
        return [_process(entry) for entry in self._graphics(handle)]

    def _call(self, function: Callable[..., Any], *args: object) -> Any:
        try:
            return function(*args)
        except self._pynvml.NVMLError as exc:
            raise NvmlError(int(exc.value), str(exc)) from exc

    def _newest(self, *names: str) -> Callable[..., Any]:
        """Call the first of `names` this driver has; forget the others once one is missing."""
        candidates = [getattr(self._pynvml, name) for name in names
                      if hasattr(self._pynvml, name)]

        def call(*args: object) -> Any:
            while True:
                if not candidates:
                    raise NvmlError(NVML_ERROR_FUNCTION_NOT_FOUND,
                                    f"Function Not Found (none of {', '.join(names)})")
                try:
                    return self._call(candidates[0], *args)
                except NvmlError as exc:
                    if exc.code != NVML_ERROR_FUNCTION_NOT_FOUND or len(candidates) == 1:
                        raise
                    candidates.pop(0)

        return call


def _process(entry: Any) -> ProcessMemory:
    used = entry.usedGpuMemory
    return ProcessMemory(int(entry.pid), None if used is None else int(used))


def _f(kind: Literal["gauge", "counter"], unit: str, labels: tuple[str, ...],
       description: str) -> FieldInfo:
    return FieldInfo(kind=kind, unit=unit, labels=labels, description=description)


_DEVICE = ("gpu", "name", "uuid")

FIELDS: dict[str, FieldInfo] = {
    "gpu_utilization_percent": _f("gauge", "percent", _DEVICE,
                                  "share of the driver's last sample period with a kernel running"),
    "gpu_memory_utilization_percent": _f(
        "gauge", "percent", _DEVICE,
        "share of the driver's last sample period with device memory being read or written"),
    "gpu_memory_used_bytes": _f("gauge", "bytes", _DEVICE,
                                "device memory in use, driver reservations included"),
    "gpu_memory_total_bytes": _f("gauge", "bytes", _DEVICE, "device memory"),
    "gpu_power_watts": _f("gauge", "watts", _DEVICE,
                          "board power draw: a 1 s average from Ampere on (A100 excepted), "
                          "instantaneous before"),
    "gpu_energy_joules_total": _f("counter", "joules", _DEVICE,
                                  "energy used since the driver was loaded (Volta and later)"),
    "gpu_temperature_celsius": _f("gauge", "celsius", _DEVICE, "GPU core temperature"),
    "gpu_clock_hertz": _f("gauge", "hertz", ("clock", *_DEVICE),
                          "current clock; clock=sm (streaming multiprocessors) or memory"),
    "gpu_process_memory_bytes": _f(
        "gauge", "bytes", ("gpu", "pid"),
        "device memory used by one process (compute and graphics contexts); the pid as the "
        "host's PID namespace sees it"),
}


@dataclass(slots=True)
class _Device:
    index: int
    handle: object
    name: str
    uuid: str
    labels: Labels
    clock_labels: dict[Clock, Labels]
    unsupported: set[str]


class _DeviceFailed(Exception):
    def __init__(self, device: _Device, what: str, error: NvmlError) -> None:
        super().__init__(f"GPU {device.index} ({device.name}, {device.uuid}): "
                         f"cannot read {what}: {error}")


class GpuProbe:
    """Reads every GPU NVML lists.

    NVML is started on the first read and kept for the next ones; after a failed start
    or a device error it is shut down and started again on the next read. Raises
    ProbeUnavailable when NVML cannot start (no library, no driver, no permission) or
    lists no GPU, and ProbeError naming the device when one fails mid-read (GPU lost).
    A reading a device does not support (NVML's NOT_SUPPORTED, or a call the driver is
    too old to have) is logged once and skipped for that device from then on.
    """

    fields: ClassVar[Mapping[str, FieldInfo]] = FIELDS
    # A steady read is about a dozen ioctls per GPU and should be quick, but nvmlInit
    # loads the driver state of every GPU where persistence mode is off (up to seconds),
    # and a GPU falling off the bus can make NVML calls hang. On the event loop that
    # would stall the web, the control socket and the systemd watchdog; a worker thread
    # costs one thread hop per read. benchmarks/gpu_check.py times the first read and
    # the steady ones on a real GPU (not yet run: no GPU where this was written).
    blocking: ClassVar[bool] = True

    def __init__(self, nvml: Nvml | None = None, *, per_process: bool = True) -> None:
        self.nvml: Nvml = nvml if nvml is not None else PynvmlAdapter()
        self.per_process = per_process
        self._started = False
        self._devices: list[_Device] = []
        # Keyed by UUID so that a restart of NVML does not forget (and log) them again.
        self._unsupported: dict[str, set[str]] = {}

    @property
    def unsupported(self) -> dict[int, frozenset[str]]:
        """Fields skipped per GPU index because the device or driver lacks them."""
        return {device.index: frozenset(device.unsupported) for device in self._devices}

    def read(self) -> list[MetricPoint]:
        """One reading of every field of every GPU. Raises ProbeUnavailable or ProbeError."""
        if not self._started:
            self._start()
        points: list[MetricPoint] = []
        try:
            for device in self._devices:
                self._read_device(device, points)
        except _DeviceFailed as exc:
            self._restart_later()
            raise ProbeError(str(exc)) from exc.__cause__
        return points

    def close(self) -> None:
        """Shut NVML down if this probe started it; a later read starts it again.

        Raises ProbeError when NVML refuses to shut down.
        """
        if not self._started:
            return
        self._started = False
        self._devices = []
        try:
            self.nvml.shutdown()
        except NvmlError as exc:
            raise ProbeError(f"NVML shutdown failed: {exc}") from exc

    def _start(self) -> None:
        try:
            self.nvml.init()
        except NvmlError as exc:
            raise ProbeUnavailable(f"NVML unavailable: {exc}") from exc
        self._started = True
        try:
            count = self.nvml.device_count()
        except NvmlError as exc:
            self._restart_later()
            raise ProbeUnavailable(f"NVML unavailable: cannot count GPUs: {exc}") from exc
        if count == 0:
            self._restart_later()
            raise ProbeUnavailable("NVML unavailable: the driver is loaded but lists no GPU")
        devices: list[_Device] = []
        for index in range(count):
            try:
                handle = self.nvml.handle(index)
                name, uuid = self.nvml.name(handle), self.nvml.uuid(handle)
            except NvmlError as exc:
                self._restart_later()
                raise ProbeError(f"GPU {index}: cannot open it: {exc}") from exc
            device_labels = (("gpu", str(index)), ("name", name), ("uuid", uuid))
            devices.append(_Device(
                index=index, handle=handle, name=name, uuid=uuid, labels=device_labels,
                clock_labels={clock: (("clock", clock), *device_labels)
                              for clock in ("sm", "memory")},
                unsupported=self._unsupported.setdefault(uuid, set()),
            ))
        self._devices = devices

    def _restart_later(self) -> None:
        try:
            self.close()
        except ProbeError as exc:
            log.warning("%s", exc)

    def _read_device(self, device: _Device, points: list[MetricPoint]) -> None:
        nvml, handle, labels = self.nvml, device.handle, device.labels
        rates = self._get(device, "utilization", partial(nvml.utilization, handle))
        if rates is not None:
            points += [
                MetricPoint("gpu_utilization_percent", rates.gpu, labels, "gauge", "percent"),
                MetricPoint("gpu_memory_utilization_percent", rates.memory, labels, "gauge",
                            "percent"),
            ]
        memory = self._get(device, "memory", partial(nvml.memory, handle))
        if memory is not None:
            points += [
                MetricPoint("gpu_memory_used_bytes", memory.used, labels, "gauge", "bytes"),
                MetricPoint("gpu_memory_total_bytes", memory.total, labels, "gauge", "bytes"),
            ]
        power = self._get(device, "power", partial(nvml.power_milliwatts, handle))
        if power is not None:
            points.append(MetricPoint("gpu_power_watts", power / 1000, labels, "gauge", "watts"))
        energy = self._get(device, "energy", partial(nvml.energy_millijoules, handle))
        if energy is not None:
            points.append(MetricPoint("gpu_energy_joules_total", energy / 1000, labels,
                                      "counter", "joules"))
        temperature = self._get(device, "temperature", partial(nvml.temperature_celsius, handle))
        if temperature is not None:
            points.append(MetricPoint("gpu_temperature_celsius", temperature, labels, "gauge",
                                      "celsius"))
        for clock, clock_labels in device.clock_labels.items():
            mhz = self._get(device, f"{clock} clock", partial(nvml.clock_mhz, handle, clock))
            if mhz is not None:
                points.append(MetricPoint("gpu_clock_hertz", mhz * 1_000_000, clock_labels,
                                          "gauge", "hertz"))
        if self.per_process:
            self._processes(device, points)

    def _processes(self, device: _Device, points: list[MetricPoint]) -> None:
        nvml, handle = self.nvml, device.handle
        used: dict[int, int] = {}
        for kind, call in (("compute processes", nvml.compute_processes),
                           ("graphics processes", nvml.graphics_processes)):
            for process in self._get(device, kind, partial(call, handle)) or ():
                # A process with both kinds of context is listed twice with the same figure.
                if process.used_bytes is not None:
                    used[process.pid] = max(used.get(process.pid, 0), process.used_bytes)
        gpu = str(device.index)
        for pid, used_bytes in sorted(used.items()):
            points.append(MetricPoint("gpu_process_memory_bytes", used_bytes,
                                      (("gpu", gpu), ("pid", str(pid))), "gauge", "bytes"))

    def _get(self, device: _Device, what: str, call: Callable[[], T]) -> T | None:
        if what in device.unsupported:
            return None
        try:
            return call()
        except NvmlError as exc:
            if exc.code not in _SKIPPED_CODES:
                raise _DeviceFailed(device, what, exc) from exc
            device.unsupported.add(what)
            log.info("GPU %d (%s): %s: %s; not read again", device.index, device.name, what, exc)
            return None
