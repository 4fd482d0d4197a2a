"""The carbon actor: CodeCarbon's offline tracker for the host, on a worker thread, and
the per-operation sessions that share its energy."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import trio

from ttamond.bus import Bus
from ttamond.carbon.ledger import Energy, Ledger
from ttamond.config import CarbonConfig
from ttamond.messages import (
    CarbonSessionEnded,
    MetricBatch,
    MetricPoint,
    ProbeFailed,
    labels,
    now_ms,
)
from ttamond.probes.base import ProbeError
from ttamond.receipts import Ingested

if TYPE_CHECKING:
    from ttamond.probes.carbon import CarbonReading

log = logging.getLogger(__name__)

SOURCE = "carbon"
RETRY_UNAVAILABLE = 600.0


class CarbonActor:
    """Starts the tracker without holding up readiness (CodeCarbon's start takes about
    1.5 s and runs lscpu and friends), reads it every `measure_interval` on a worker
    thread, publishes the host's energy, power and emissions as series, and accounts
    the sessions' shares at every reading (see ttamond/carbon/ledger.py).

    A tracker that cannot start is reported once as a ProbeFailed and retried every
    ten minutes; sessions still open and close meanwhile, charged nothing.
    """

    def __init__(self, bus: Bus, config: CarbonConfig, *, workdir: Path) -> None:
        self.bus = bus
        self.config = config
        self.workdir = workdir
        self.ledger = Ledger(timeout_ms=int(config.session_timeout * 1000))
        self.reading: CarbonReading | None = None
        self.read_at = 0.0
        self.error = ""
        self._limiter = trio.CapacityLimiter(1)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Track until cancelled; the tracker is stopped on the way out (shielded), so
        CodeCarbon's timer threads end."""
        from ttamond.probes.carbon import CarbonProbe

        task_status.started()
        self.workdir.mkdir(parents=True, exist_ok=True)
        probe = CarbonProbe(country_iso_code=self.config.country_iso_code,
                            region=self.config.region or None,
                            measure_interval=self.config.measure_interval,
                            workdir=self.workdir)
        # Nothing signals that tracking became possible (a driver loaded, a file
        # appeared): try again now and then.
        while not await self._start(probe):  # noqa: ASYNC110
            await trio.sleep(RETRY_UNAVAILABLE)
        try:
            while True:
                reading = await trio.to_thread.run_sync(probe.read, limiter=self._limiter)
                await self._take(reading)
                await trio.sleep(self.config.measure_interval)
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await trio.to_thread.run_sync(probe.stop, limiter=self._limiter)
                except ProbeError as exc:
                    log.warning("carbon: stopping the tracker: %s", exc)

    async def _start(self, probe: Any) -> bool:
        try:
            await trio.to_thread.run_sync(probe.start, limiter=self._limiter)
        except ProbeError as exc:
            if str(exc) != self.error:
                log.warning("carbon tracking unavailable: %s", exc)
            self.error = str(exc)
            await self.bus.publish(ProbeFailed(source=SOURCE, timestamp_ms=now_ms(),
                                               error=self.error))
            return False
        self.error = ""
        return True

    async def _take(self, reading: CarbonReading) -> None:
        self.reading, self.read_at = reading, time.monotonic()
        self.ledger.method = method_text(reading.methods, reading.estimated)
        self._account()
        ended = self.ledger.expire(now_ms())
        for session in ended:
            log.warning("carbon session %s (%s) expired after %g s without a stop",
                        session.session_id, session.operation, self.config.session_timeout)
        await self.bus.publish(series(reading, open_sessions=len(self.ledger.sessions)))
        if ended:
            await self.bus.publish(Ingested(messages=tuple(ended)))

    def energy_now(self) -> Energy | None:
        """The host's cumulative energy now: the last reading carried forward at the
        power it measured."""
        reading = self.reading
        if reading is None:
            return None
        hours = (time.monotonic() - self.read_at) / 3600
        return Energy(cpu=reading.cpu_energy_kwh + reading.cpu_power_w * hours / 1000,
                      gpu=reading.gpu_energy_kwh + reading.gpu_power_w * hours / 1000,
                      ram=reading.ram_energy_kwh + reading.ram_power_w * hours / 1000)

    def _account(self) -> None:
        energy = self.energy_now()
        if energy is None or self.reading is None:
            return
        self.ledger.account(energy, busy_cpu_seconds(), self.reading.intensity_g_per_kwh,
                            process_cpu_seconds)

    def start_session(self, *, operation: str, component: str, model: str,
                      pid: int | None) -> dict[str, Any]:
        """Open a per-operation session; returns its id and start time."""
        self._account()
        session = self.ledger.start(operation=operation, component=component, model=model,
                                    pid=pid, now_ms=now_ms(), cpu_seconds=process_cpu_seconds)
        return {"session_id": session.session_id, "started_ms": session.started_ms}

    def stop_session(self, session_id: str) -> CarbonSessionEnded | None:
        """Close a session, charging it up to now; None when no such session is open."""
        self._account()
        return self.ledger.stop(session_id, now_ms())

    def status(self) -> dict[str, Any]:
        """The latest reading, how it was obtained, and the open sessions."""
        reading = self.reading
        return {
            "tracking": reading is not None,
            "error": self.error,
            "reading": reading,
            "method": self.ledger.method if reading is not None else "",
            "estimated": reading.estimated if reading is not None else None,
            "open_sessions": [
                {"session_id": s.session_id, "operation": s.operation,
                 "component": s.component, "model": s.model, "started_ms": s.started_ms,
                 "energy_kwh": s.energy_kwh, "emissions_kg": s.emissions_kg}
                for s in self.ledger.sessions.values()
            ],
        }


def method_text(methods: dict[str, str], estimated: bool) -> str:
    """`cpu=tdp-table, gpu=none, ram=constant (estimated)`."""
    text = ", ".join(f"{part}={how}" for part, how in sorted(methods.items()))
    return f"{text} (estimated)" if estimated else text


def series(reading: CarbonReading, *, open_sessions: int) -> MetricBatch:
    """The host's carbon figures as series."""
    points = [
        MetricPoint("ttamond_carbon_energy_kwh_total", reading.energy_kwh, (), "counter", "kWh"),
        MetricPoint("ttamond_carbon_emissions_kg_total", reading.emissions_kg, (), "counter",
                    "kg"),
        MetricPoint("ttamond_carbon_intensity_grams_per_kwh", reading.intensity_g_per_kwh, (),
                    "gauge", "g/kWh"),
        MetricPoint("ttamond_carbon_estimated", float(reading.estimated)),
        MetricPoint("ttamond_carbon_open_sessions", float(open_sessions)),
    ]
    for part, energy, power in (("cpu", reading.cpu_energy_kwh, reading.cpu_power_w),
                                ("gpu", reading.gpu_energy_kwh, reading.gpu_power_w),
                                ("ram", reading.ram_energy_kwh, reading.ram_power_w)):
        method = reading.methods.get(part, "none")
        points.append(MetricPoint("ttamond_carbon_part_energy_kwh_total", energy,
                                  labels(part=part, method=method), "counter", "kWh"))
        points.append(MetricPoint("ttamond_carbon_power_watts", power,
                                  labels(part=part, method=method), "gauge", "watts"))
    return MetricBatch(source=SOURCE, timestamp_ms=reading.timestamp_ms, points=tuple(points))


def busy_cpu_seconds() -> float:
    """CPU seconds the host has spent busy, all cores."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of one process (user and system), or None when it is gone."""
    try:
        times = psutil.Process(pid).cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return float(times.user + times.system)
