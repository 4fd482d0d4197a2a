"""The health actor under trio's autojump clock: the N-of-M rule, dependency derivation,
stale checks and flapping, from results on a real bus."""

from __future__ import annotations

import json

import trio
import trio.testing

from ttamond.actors.health import HealthActor
from ttamond.bus import Bus, Overflow
from ttamond.config import parse_config
from ttamond.messages import CheckCompleted, CheckStatus, StoreEvent

CONFIG = """
[health]
evaluate_every = 1.0

[[health.checks]]
name = "redis"
kind = "tcp"
port = 6379
interval = 10.0
fail_after = [2, 3]

[[health.components]]
name = "narrative"
depends_on = ["redis"]
"""


def clock_ms() -> int:
    return int(trio.current_time() * 1000)


async def test_n_of_m_dependencies_staleness_and_flapping(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = Bus()
    mailbox = bus.subscribe("health", (CheckCompleted,), policy=Overflow.BLOCK, capacity=64)
    events = bus.subscribe("store", (StoreEvent,), policy=Overflow.BLOCK, capacity=1024)
    config = parse_config(CONFIG).health
    actor = HealthActor(mailbox, bus, config, heartbeats=dict, clock=clock_ms)

    def level(component: str) -> str:
        return actor.components[component].level

    def state(check: str) -> str:
        return actor.states[check].state

    async def result(status: CheckStatus) -> None:
        await actor.take(CheckCompleted(check="redis", component="redis", status=status,
                                        latency_ms=1.0, message=f"tcp {status}",
                                        timestamp_ms=clock_ms()))
        await trio.sleep(10)

    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await result("ok")
        assert level("redis") == "ok"
        await result("crit")  # one failure of three: not yet
        assert level("redis") == "ok"
        await result("crit")  # two of the last three: down
        assert level("redis") == "critical"
        narrative = actor.components["narrative"]
        assert narrative.describe() == "degraded (dependency redis down)"
        assert not narrative.root_cause and actor.level == "critical"

        await trio.sleep(31)  # more than three intervals without a result
        assert state("redis") == "unknown"
        assert level("redis") == "unknown"

        for _ in range(12):  # ok, crit, ok, crit, ...: flapping, not changing every run
            await result("ok")
            await result("crit")
        assert actor.states["redis"].flapping
        assert state("redis") == "crit"
        nursery.cancel_scope.cancel()

    stored = []
    while True:
        try:
            stored.append(events.receive_nowait())
        except trio.WouldBlock:
            break
    changes = [json.loads(e.detail) for e in stored if e.kind == "check_state"]
    assert {"from": "ok", "to": "crit"} in [{k: c[k] for k in ("from", "to")} for c in changes]
    assert any(c["flapping"] for c in changes)
    narrative_changes = [json.loads(e.detail)["level"] for e in stored
                         if e.kind == "component_health" and e.source == "narrative"]
    assert "degraded" in narrative_changes
