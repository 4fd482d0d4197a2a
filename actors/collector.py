"""The collector actor: reads one probe on a fixed schedule and publishes its readings."""

from __future__ import annotations

import logging

import trio

from ttamond.bus import Bus
from ttamond.looplag import LagMeter
from ttamond.messages import MetricBatch, ProbeFailed, now_ms
from ttamond.probes.base import Probe, ProbeError

log = logging.getLogger(__name__)


class CollectorActor:
    """Samples `probe` every `interval` seconds.

    Ticks follow a fixed grid; a tick missed because the loop was late is skipped and
    counted in `missed_ticks`, never bunched up. A ProbeError becomes a ProbeFailed
    message (stored and shown); any other exception crashes the actor for the
    supervisor to restart. Probes are quick reads of /proc, so they run on the loop.
    """

    def __init__(
        self, name: str, probe: Probe, bus: Bus, *, interval: float, lag: LagMeter | None = None
    ) -> None:
        self.name = name
        self.lag = lag
        self.probe = probe
        self.bus = bus
        self.interval = interval
        self.missed_ticks = 0
        self.failures = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Publish a reading every interval until cancelled."""
        task_status.started()
        next_tick = trio.current_time()
        while True:
            await self.collect_once()
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
            points = self.probe.read()
        except ProbeError as exc:
            self.failures += 1
            log.warning("collector %s: %s", self.name, exc)
            await self.bus.publish(ProbeFailed(source=self.name, timestamp_ms=timestamp,
                                               error=str(exc)))
            return
        await self.bus.publish(MetricBatch(source=self.name, timestamp_ms=timestamp,
                                           points=tuple(points)))
