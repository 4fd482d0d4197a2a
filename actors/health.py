"""The health actor: check results into states, components and their dependencies into
health levels, state changes into events; predictions on a timer."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping

import trio

from ttamond.bus import Bus, Subscription
from ttamond.config import HealthConfig
from ttamond.health.components import (
    ComponentHealth,
    ComponentSpec,
    evaluate,
    inhibited,
    merge_specs,
    overall,
)
from ttamond.health.states import CheckSnapshot, CheckState, Transition
from ttamond.messages import (
    CheckCompleted,
    MetricBatch,
    MetricPoint,
    StoreEvent,
    labels,
    now_ms,
)

log = logging.getLogger(__name__)

LEVEL_VALUE = {"ok": 0.0, "degraded": 1.0, "critical": 2.0, "unknown": 3.0}


class HealthActor:
    """Keeps one CheckState per configured check and evaluates the components every
    `evaluate_every` seconds: stale checks become unknown, silent heartbeats make
    their component critical, a component whose dependency is down is degraded, not a
    second root cause. Every change is a stored event; levels are series."""

    def __init__(self, mailbox: Subscription[CheckCompleted], bus: Bus, config: HealthConfig,
                 *, heartbeats: Callable[[], Mapping[str, str]],
                 predict: Callable[[], Awaitable[None]] | None = None,
                 clock: Callable[[], int] = now_ms) -> None:
        self.mailbox = mailbox
        self.bus = bus
        self.config = config
        self.heartbeats = heartbeats
        self.predict = predict
        self.clock = clock
        """Milliseconds, the timebase of the results' timestamps (tests pass trio's)."""
        self.intervals = {check.name: check.interval for check in config.checks}
        self.states = {
            check.name: CheckState(check.name, fail_after=check.fail_after,
                                   recover_after=check.recover_after)
            for check in config.checks
        }
        declared = [ComponentSpec(c.name, list(c.checks), list(c.depends_on), c.heartbeat)
                    for c in config.components]
        self.specs = merge_specs(declared, {c.name: c.component_name for c in config.checks})
        self.components: dict[str, ComponentHealth] = {}
        self.level = "unknown"

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Take results and evaluate on a timer until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._evaluate_every)
            if self.predict is not None:
                nursery.start_soon(self._predict_every)
            task_status.started()
            async for completed in self.mailbox:
                await self.take(completed)

    async def take(self, completed: CheckCompleted) -> None:
        """Apply one check result; a changed state is stored and the components are
        evaluated again at once."""
        state = self.states.get(completed.check)
        if state is None:
            return  # a check removed by a reload; its last results still drain
        transition = state.update(completed.status, completed.timestamp_ms, completed.message)
        if transition is not None:
            await self._record(transition)
            await self.evaluate()

    async def evaluate(self) -> None:
        """Components from the checks' states and the heartbeats; changes stored."""
        now = self.clock()
        for name, state in self.states.items():
            transition = state.stale(now, self.intervals[name])
            if transition is not None:
                await self._record(transition)
        check_states = {name: state.state for name, state in self.states.items()}
        healths = evaluate(self.specs, check_states, self.heartbeats())
        for name, health in healths.items():
            before = self.components.get(name)
            if before is None or before.describe() != health.describe():
                await self.bus.publish(StoreEvent(
                    kind="component_health", timestamp_ms=now, source=name,
                    detail=json.dumps({"level": health.level, "reason": health.reason,
                                       "root_cause": health.root_cause,
                                       "previous": before.level if before else None}),
                ))
                if before is not None:
                    log.info("component %s: %s", name, health.describe())
        self.components = healths
        self.level = overall(healths) if healths else "unknown"
        points = [MetricPoint("ttamond_component_health", LEVEL_VALUE[h.level],
                              labels(component=name)) for name, h in healths.items()]
        points.append(MetricPoint("ttamond_health_overall", LEVEL_VALUE[self.level]))
        await self.bus.publish(MetricBatch(source="health", timestamp_ms=now,
                                           points=tuple(points)))

    def checks(self) -> list[CheckSnapshot]:
        """Every check's state, by name."""
        return [self.states[name].snapshot() for name in sorted(self.states)]

    def summary(self) -> dict[str, object]:
        """Overall level, each component (level, reason, root cause), the checks, and
        the components whose problems are derived (for inhibiting their alerts)."""
        return {
            "overall": self.level,
            "components": {name: {"level": h.level, "status": h.describe(),
                                  "reason": h.reason, "root_cause": h.root_cause,
                                  "failing_checks": h.failing_checks,
                                  "down_dependencies": h.down_dependencies}
                           for name, h in sorted(self.components.items())},
            "inhibited": sorted(inhibited(self.components)),
            "checks": self.checks(),
        }

    async def _record(self, transition: Transition) -> None:
        if transition.state_changed:
            log.info("check %s: %s -> %s (%s)", transition.check, transition.from_state,
                     transition.to_state, transition.message)
        await self.bus.publish(StoreEvent(
            kind="check_state", timestamp_ms=transition.ts_ms, source=transition.check,
            detail=json.dumps({"from": transition.from_state, "to": transition.to_state,
                               "flapping": transition.flapping,
                               "message": transition.message}),
        ))

    async def _evaluate_every(self) -> None:
        if not self.states and not self.specs:
            return  # nothing configured: nothing to evaluate, no reason to wake
        while True:
            await self.evaluate()
            await trio.sleep(self.config.evaluate_every)

    async def _predict_every(self) -> None:
        if self.predict is None:
            return
        while True:
            await trio.sleep(self.config.predict_every)
            await self.predict()
