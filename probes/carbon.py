"""The host's energy and CO2 through CodeCarbon's offline tracker, quietened and lock-free."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import msgspec

from ttamond.messages import now_ms
from ttamond.probes.base import FieldInfo, ProbeError, ProbeUnavailable

log = logging.getLogger(__name__)

Part = Literal["cpu", "gpu", "ram"]

TESTED_CODECARBON = "3.3"
"""The CodeCarbon release line whose tracker internals this module reads (3.3.2 tested)."""

MEASURED = frozenset({"rapl", "powermetrics", "nvml", "amdsmi", "pmic"})
"""Methods that read a hardware counter or meter; any other makes a reading estimated."""

# CodeCarbon's CPU `_mode` values and how ttamond names them. Power Gadget and the
# Windows Energy Meter Interface both read the RAPL counters.
_CPU_MODES = {
    "intel_rapl": "rapl",
    "windows_emi": "rapl",
    "intel_power_gadget": "rapl",
    "cpu_load": "cpu-load-estimate",
    "constant": "constant",
}
_GPU_DEVICES = {"NvidiaGPUDevice": "nvml", "AMDGPUDevice": "amdsmi"}


def _f(kind: Literal["gauge", "counter"], unit: str, labels: tuple[str, ...],
       description: str) -> FieldInfo:
    return FieldInfo(kind=kind, unit=unit, labels=labels, description=description)


_PART = ("part", "method")

FIELDS: dict[str, FieldInfo] = {
    "ttamond_carbon_energy_kwh_total": _f(
        "counter", "kWh", (), "electricity the host used since the tracker started (CPU, GPU "
        "and RAM; other parts are not counted)"),
    "ttamond_carbon_part_energy_kwh_total": _f(
        "counter", "kWh", _PART, "electricity one part used since the tracker started; "
        "part=cpu|gpu|ram, method says how it was obtained (rapl, nvml, cpu-load-estimate, ...)"),
    "ttamond_carbon_emissions_kg_total": _f(
        "counter", "kg", (), "CO2-equivalent emitted for that electricity since the tracker "
        "started: energy times the grid intensity"),
    "ttamond_carbon_power_watts": _f(
        "gauge", "watts", _PART, "average power of one part over the latest measurement "
        "interval; part=cpu|gpu|ram"),
    "ttamond_carbon_intensity_grams_per_kwh": _f(
        "gauge", "g/kWh", (), "grid carbon intensity used (g CO2e per kWh), CodeCarbon's "
        "figure for the configured country and region"),
    "ttamond_carbon_estimated": _f(
        "gauge", "", (), "1 when any figure is a model (TDP, CPU load, RAM size) rather than "
        "a hardware counter, else 0"),
    "ttamond_carbon_open_sessions": _f(
        "gauge", "", (), "per-operation carbon sessions open now"),
}


class CarbonReading(msgspec.Struct, frozen=True, kw_only=True):
    """The host's figures since the tracker started (energies and emissions are
    cumulative; powers cover the latest measurement interval)."""

    timestamp_ms: int
    energy_kwh: float
    cpu_energy_kwh: float
    gpu_energy_kwh: float
    ram_energy_kwh: float
    emissions_kg: float
    cpu_power_w: float
    gpu_power_w: float
    ram_power_w: float
    intensity_g_per_kwh: float
    """Grid intensity used, g CO2e/kWh."""
    methods: dict[str, str]
    """For "cpu", "gpu" and "ram": rapl, powermetrics, nvml, amdsmi, pmic (hardware
    counters), cpu-load-estimate, constant, or none (no such part tracked)."""
    estimated: bool
    """True unless every tracked part is read from a hardware counter."""


class _Sink(logging.Filter):
    """Takes every record off CodeCarbon's logger before its own stderr handler sees it.

    CodeCarbon logs a dozen INFO lines per measurement, re-installs its stderr handler in
    every tracker constructor and turns propagation off; a filter on the logger outlives
    all that. Its errors come out as warnings of this module's logger, the rest as debug.
    Its `suppress` decorator swallows exceptions in the offline tracker's constructor,
    start, flush and stop and only logs them as warnings, so calls made inside
    `recording()` keep that thread's records to find them.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._recorders: dict[int | None, list[logging.LogRecord]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            recorder = self._recorders.get(record.thread)
        if recorder is not None:
            recorder.append(record)
        level = logging.WARNING if record.levelno >= logging.ERROR else logging.DEBUG
        log.log(level, "codecarbon: %s", record.getMessage(), exc_info=record.exc_info)
        return False

    @contextmanager
    def recording(self) -> Iterator[list[logging.LogRecord]]:
        """The records this thread logs through CodeCarbon meanwhile."""
        records: list[logging.LogRecord] = []
        thread = threading.get_ident()
        with self._lock:
            self._recorders[thread] = records
        try:
            yield records
        finally:
            with self._lock:
                del self._recorders[thread]


_sink = _Sink()


def _quieten_codecarbon() -> None:
    logger = logging.getLogger("codecarbon")
    if _sink not in logger.filters:
        logger.addFilter(_sink)


def _swallowed(records: list[logging.LogRecord]) -> BaseException | None:
    for record in records:
        if record.exc_info is not None and record.exc_info[1] is not None:
            return record.exc_info[1]
    return None


def _why(records: list[logging.LogRecord]) -> str:
    error = _swallowed(records)
    if error is not None:
        return f"{type(error).__name__}: {error}"
    warnings = [record.getMessage() for record in records if record.levelno >= logging.WARNING]
    return "; ".join(warnings) or "no reason given"


def _attribute(owner: object, path: str) -> Any:
    """`owner.a.b` for path "a.b"; a missing one means a CodeCarbon this module does not know."""
    value = owner
    for name in path.split("."):
        try:
            value = getattr(value, name)
        except AttributeError as exc:
            raise ProbeError(
                f"CodeCarbon {_codecarbon_version()} has no {type(owner).__name__}.{path}, "
                f"which ttamond reads (it was written for CodeCarbon {TESTED_CODECARBON}.x): "
                f"install codecarbon~={TESTED_CODECARBON}.0") from exc
    return value


def _codecarbon_version() -> str:
    import codecarbon

    return str(getattr(codecarbon, "__version__", "?"))


def _stop_abandoned(tracker: Any) -> None:
    # A probe dropped between start and stop (its actor crashed) must not leave
    # CodeCarbon's timers measuring for ever; tracker.stop swallows its own errors.
    tracker.stop()


class CarbonProbe:
    """CodeCarbon's OfflineEmissionsTracker for the whole host.

    Every method blocks (start about 1.5 s, it runs lscpu, nvidia-smi and a Python
    subprocess for cpuinfo) and must run on a worker thread, one call at a time.
    CodeCarbon is imported by `start`, never before: with its data tables it costs
    about 60 MB of resident memory. Nothing is sent anywhere and nothing is written to
    the working directory; files a backend needs (Power Gadget, powermetrics logs) go
    under `workdir`. No lock file is taken, so a crashed run never blocks the next.
    """

    def __init__(self, *, country_iso_code: str, region: str | None = None,
                 measure_interval: float = 15.0, workdir: Path) -> None:
        if not measure_interval > 0:
            raise ValueError(f"measure_interval must be above 0 s, got {measure_interval}")
        self.country_iso_code = country_iso_code
        self.region = region
        self.measure_interval = measure_interval
        self.workdir = workdir
        self._tracker: Any = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._intensity = 0.0
        self._methods: dict[str, str] = {}
        self._estimated = True

    def start(self) -> None:
        """Detect the hardware and start tracking.

        Raises ProbeUnavailable when CodeCarbon is not installed or cannot track this
        host, ProbeError when the country or region has no grid intensity, and
        RuntimeError when already started.
        """
        if self._tracker is not None:
            raise RuntimeError("CarbonProbe.start: already started")
        _quieten_codecarbon()
        try:
            from codecarbon import OfflineEmissionsTracker
        except ImportError as exc:
            raise ProbeUnavailable(
                f"CodeCarbon is not installed ({exc}): pip install 'codecarbon~="
                f"{TESTED_CODECARBON}.0', or turn [carbon] off") from exc
        intensity = self._grid_intensity()
        with _sink.recording() as records:
            # Every setting CodeCarbon would otherwise take from ~/.codecarbon.config,
            # ./.codecarbon.config or CODECARBON_* is given here, so that no such file
            # turns on an upload, a CSV or an Electricity Maps call. The intensity is
            # forced for the same reason: then no token can send it online.
            tracker: Any = OfflineEmissionsTracker(
                country_iso_code=self.country_iso_code, region=self.region,
                cloud_provider=None, cloud_region=None, country_2letter_iso_code=None,
                project_name="ttamond", measure_power_secs=self.measure_interval,
                output_dir=str(self.workdir), output_methods=[], output_handlers=[],
                emissions_endpoint=None, electricitymaps_api_token=None,
                force_carbon_intensity_g_co2e_kwh=intensity, tracking_mode="machine",
                # Warning, not error: CodeCarbon reports the exceptions it swallows
                # as warnings, and the sink needs them to say why a call failed.
                log_level="warning",
                # True creates no /tmp/.codecarbon.lock and installs no SIGINT/SIGTERM
                # handlers (its Lock does both); a stale lock left by any run is ignored.
                allow_multiple_runs=True,
                force_cpu_power=None, force_ram_power=None, force_mode_cpu_load=False,
                pue=1.0, wue=0.0, rapl_include_dram=False, rapl_prefer_psys=False,
            )
            if _swallowed(records) is None:
                tracker.start()
        if _swallowed(records) is not None or getattr(tracker, "_start_time", None) is None:
            tracker.stop()
            raise ProbeUnavailable(f"CodeCarbon cannot track this host: {_why(records)}")
        try:
            self._methods = _methods(tracker)
        except ProbeError:
            tracker.stop()
            raise
        self._estimated = any(method not in MEASURED and method != "none"
                              for method in self._methods.values())
        self._intensity = intensity
        self._tracker = tracker
        self._finalizer = weakref.finalize(self, _stop_abandoned, tracker)

    def read(self) -> CarbonReading:
        """Measure now; the figures since start. Raises ProbeError when CodeCarbon fails
        (or reads differently from 3.3), RuntimeError when not started."""
        tracker = self._running("read")
        with _sink.recording() as records:
            emissions = tracker.flush()
        if emissions is None:
            raise ProbeError(f"CodeCarbon could not measure: {_why(records)}")
        return self._reading(tracker, float(emissions))

    def stop(self) -> CarbonReading:
        """Measure a last time and stop CodeCarbon's timer threads; the probe can be
        started again. Raises ProbeError or RuntimeError as `read` does."""
        tracker = self._running("stop")
        self._tracker = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        with _sink.recording() as records:
            emissions = tracker.stop()
        if emissions is None:
            raise ProbeError(f"CodeCarbon could not stop cleanly: {_why(records)}")
        return self._reading(tracker, float(emissions))

    def _running(self, what: str) -> Any:
        if self._tracker is None:
            raise RuntimeError(f"CarbonProbe.{what}: not started")
        return self._tracker

    def _grid_intensity(self) -> float:
        """g CO2e/kWh for the country (and region), from CodeCarbon's offline tables."""
        from codecarbon.core.emissions import Emissions
        from codecarbon.core.units import Energy
        from codecarbon.external.geography import GeoMetadata
        from codecarbon.input import DataSource, DataSourceException

        data = DataSource()  # type: ignore[no-untyped-call]
        countries: dict[str, Any] = data.get_global_energy_mix_data()
        country = countries.get(self.country_iso_code)
        if country is None:
            raise ProbeError(
                f"CodeCarbon has no grid intensity for country_iso_code "
                f"{self.country_iso_code!r}: use an ISO 3166-1 alpha-3 code such as DEU, "
                f"FRA or USA")
        geo = GeoMetadata(country_iso_code=self.country_iso_code,
                          country_name=country.get("country_name"), region=self.region)
        engine = Emissions(data)
        one_kwh = Energy.from_energy(kWh=1)
        if self.region is None:
            return float(engine.get_country_emissions(one_kwh, geo)) * 1000
        try:
            return float(engine.get_region_emissions(one_kwh, geo)) * 1000
        except (ValueError, KeyError, DataSourceException) as exc:
            raise ProbeError(
                f"CodeCarbon has no grid intensity for region {self.region!r} of "
                f"{self.country_iso_code}: it has regions for US states, Canadian and Chinese "
                f"provinces and the Nordic zones SE1-SE4, NO1-NO5 and FI; leave region empty "
                f"for the country's figure") from exc

    def _reading(self, tracker: Any, emissions_kg: float) -> CarbonReading:
        # CodeCarbon has no public accessor for the per-part totals and powers.
        return CarbonReading(
            timestamp_ms=now_ms(),
            energy_kwh=float(_attribute(tracker, "_total_energy.kWh")),
            cpu_energy_kwh=float(_attribute(tracker, "_total_cpu_energy.kWh")),
            gpu_energy_kwh=float(_attribute(tracker, "_total_gpu_energy.kWh")),
            ram_energy_kwh=float(_attribute(tracker, "_total_ram_energy.kWh")),
            emissions_kg=emissions_kg,
            cpu_power_w=float(_attribute(tracker, "_cpu_power.W")),
            gpu_power_w=float(_attribute(tracker, "_gpu_power.W")),
            ram_power_w=float(_attribute(tracker, "_ram_power.W")),
            intensity_g_per_kwh=self._intensity,
            methods=dict(self._methods),
            estimated=self._estimated,
        )


def _methods(tracker: Any) -> dict[str, str]:
    """How CodeCarbon obtains each part's figures, from the hardware objects it set up.

    Classes are told apart by name, as CodeCarbon's own hardware cache does, so that a
    reloaded module still matches.
    """
    methods: dict[str, str] = {"cpu": "none", "gpu": "none", "ram": "none"}
    for hardware in _attribute(tracker, "_hardware"):
        kind = type(hardware).__name__
        if kind == "CPU":
            mode = _attribute(hardware, "_mode")
            if mode not in _CPU_MODES:
                raise ProbeError(f"CodeCarbon {_codecarbon_version()} tracks the CPU in mode "
                                 f"{mode!r}, which ttamond does not know (it was written for "
                                 f"CodeCarbon {TESTED_CODECARBON}.x)")
            methods["cpu"] = _CPU_MODES[mode]
        elif kind == "RAM":
            # Watts per DIMM times a DIMM count guessed from the memory size, or a
            # configured figure: constant either way.
            methods["ram"] = "constant"
        elif kind == "GPU":
            vendors = {_gpu_vendor(device) for device in _attribute(hardware, "devices.devices")}
            # Both vendors in one host is possible, if rare: say so rather than pick one.
            methods["gpu"] = "+".join(sorted(vendors)) or "none"
        elif kind == "AppleSiliconChip":
            methods[_part(_attribute(hardware, "chip_part"))] = "powermetrics"
        elif kind == "Raspberry":
            methods[_part(_attribute(hardware, "chip_part"))] = "pmic"
        else:
            raise ProbeError(f"CodeCarbon {_codecarbon_version()} tracks hardware of type "
                             f"{kind!r}, which ttamond does not know (it was written for "
                             f"CodeCarbon {TESTED_CODECARBON}.x)")
    return methods


def _gpu_vendor(device: object) -> str:
    kind = type(device).__name__
    if kind not in _GPU_DEVICES:
        raise ProbeError(f"CodeCarbon {_codecarbon_version()} reads a GPU through {kind!r}, "
                         f"which ttamond does not know (it was written for CodeCarbon "
                         f"{TESTED_CODECARBON}.x)")
    return _GPU_DEVICES[kind]


def _part(chip_part: object) -> Part:
    match str(chip_part).upper():
        case "CPU" | "PROCESSOR":
            return "cpu"
        case "GPU":
            return "gpu"
        case "RAM":
            return "ram"
    raise ProbeError(f"CodeCarbon reports a chip part {chip_part!r} that ttamond does not know")
