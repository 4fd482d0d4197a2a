"""The collector actor: reads one probe on a fixed schedule and publishes its readings."""

from __future__ import annotations

import logging

import trio

from ttamond.bus import Bus
from ttamond.looplag import LagMeter
from ttamond.messages import MetricBatch, ProbeFailed, now_ms
from ttamond.probes.base import Probe, ProbeError, ProbeUnavailable

log = logging.getLogger(__name__)


class CollectorActor:
    """Samples `probe` every `interval` seconds.

    Ticks follow a fixed grid; a tick missed because the loop was late is skipped and
    counted in `missed_ticks`, never bunched up. A ProbeError becomes a ProbeFailed
    message (stored and shown) every time, but is logged only when the probe starts
    failing, when its error changes and when it recovers. A ProbeUnavailable (nothing
    to read: no driver, no engine) is published and logged once, then the probe is
    tried again every `unavailable_retry` seconds. Any other exception crashes the
    actor for the supervisor to restart. Probes marked `blocking` run on a worker
    thread; the others are quick reads of /proc and run on the loop.
    """

    def __init__(
        self,
        name: str,
        probe: Probe,
        bus: Bus,
        *,
        interval: float,
        lag: LagMeter | None = None,
        unavailable_retry: float = 300.0,
    ) -> None:
        self.name = name
        self.lag = lag
        self.probe = probe
        self.bus = bus
        self.interval = interval
        self.unavailable_retry = unavailable_retry
        self.missed_ticks = 0
        self.failures = 0
        self.unavailable = False
        self._last_error = ""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Publish a reading every interval until cancelled."""
        task_status.started()
        next_tick = trio.current_time()
        while True:
            await self.collect_once()
            if self.unavailable:
                await trio.sleep(self.unavailable_retry)
                next_tick = trio.current_time()
                continue
            next_tick += self.interval
            now = trio.current_time()
            if next_tick <= now:
                behind = int((now - next_tick) // self.interval) + 1
                self.missed_ticks += behind
                next_tick += behind * self.interval
            await trio.sleep_until(next_tick)
            if self.lag is not None:
                self.lag.observe(next_tick)

    async def collect_once(self) -> None:
        """Read the probe once and publish the result."""
        timestamp = now_ms()
        try:
            if self.probe.blocking:
                points = await trio.to_thread.run_sync(self.probe.read)
            else:
                points = self.probe.read()
        except ProbeUnavailable as exc:
            self.failures += 1
            if not self.unavailable or str(exc) != self._last_error:
                log.warning("collector %s unavailable: %s (retrying every %g s)",
                            self.name, exc, self.unavailable_retry)
                await self._failed(timestamp, f"unavailable: {exc}")
            self.unavailable = True
            self._last_error = str(exc)
            return
        except ProbeError as exc:
            self.failures += 1
            if str(exc) != self._last_error:
                log.warning("collector %s: %s", self.name, exc)
            self._last_error = str(exc)
            self.unavailable = False
            await self._failed(timestamp, str(exc))
            return
        if self._last_error:
            log.info("collector %s recovered after %d failed reads", self.name, self.failures)
            self._last_error = ""
        self.unavailable = False
        await self.bus.publish(MetricBatch(source=self.name, timestamp_ms=timestamp,
                                           points=tuple(points)))

    async def _failed(self, timestamp: int, error: str) -> None:
        await self.bus.publish(ProbeFailed(source=self.name, timestamp_ms=timestamp, error=error))
