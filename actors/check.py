"""A check actor: runs one configured health check on its interval and publishes each
result, as a message for the health actor and as series."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

from ttamond.bus import Bus
from ttamond.health.settings import CheckBase
from ttamond.messages import CheckCompleted, MetricBatch, MetricPoint, labels, now_ms

if TYPE_CHECKING:
    from ttamond.probes.checks import CheckResult

log = logging.getLogger(__name__)

STATUS_VALUE = {"ok": 0.0, "warn": 1.0, "crit": 2.0}
FIRST_RUN_SPREAD = 0.1
"""The first run waits up to this share of the interval, so many checks configured
together do not all run in the same instant, ever after."""


class CheckActor:
    """Runs `check` every `spec.interval` seconds on a drift-free schedule (a run that
    overruns skips the missed slots rather than running back to back). A check reports
    the world being bad as a result; an exception from it is a bug, and the supervisor
    restarts the actor."""

    def __init__(self, spec: CheckBase, bus: Bus,
                 check: Callable[[], Awaitable[CheckResult]]) -> None:
        self.spec = spec
        self.bus = bus
        self.check = check
        self.runs = 0
        self._labels = labels(check=spec.name, component=spec.component_name)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Check until cancelled."""
        task_status.started()
        interval = self.spec.interval
        await trio.sleep(random.uniform(0, interval * FIRST_RUN_SPREAD))
        deadline = trio.current_time()
        while True:
            await self.run_once()
            deadline += interval
            now = trio.current_time()
            if deadline < now:
                deadline = now + interval - (now - deadline) % interval
            await trio.sleep_until(deadline)

    async def run_once(self) -> CheckCompleted:
        """One run: check, publish the result and its series, return the result."""
        result = await self.check()
        self.runs += 1
        completed = CheckCompleted(
            check=self.spec.name, component=self.spec.component_name, status=result.status,
            latency_ms=result.latency_ms, message=result.message, timestamp_ms=now_ms(),
            values=dict(result.values),
        )
        points = [
            MetricPoint("ttamond_check_status", STATUS_VALUE[result.status], self._labels),
            MetricPoint("ttamond_check_latency_seconds", result.latency_ms / 1000, self._labels,
                        "gauge", "seconds"),
        ]
        points += [MetricPoint("ttamond_check_value", value,
                               tuple(sorted((*self._labels, ("field", name)))))
                   for name, value in result.values.items()]
        await self.bus.publish(completed)
        await self.bus.publish(MetricBatch(source=f"check:{self.spec.name}",
                                           timestamp_ms=completed.timestamp_ms,
                                           points=tuple(points)))
        return completed
