"""After a restart, rule windows are refilled from the database the store wrote."""

from __future__ import annotations

from pathlib import Path

import trio

from ttamond.actors.store import StoreActor, StoreInput
from ttamond.alerts.escalator import Escalator
from ttamond.alerts.rules import CarbonRule, MetricRule
from ttamond.alerts.seed import seed_windows
from ttamond.alerts.settings import AlertsConfig
from ttamond.bus import Bus, Overflow, Subscription
from ttamond.config import StoreConfig
from ttamond.messages import MetricBatch, MetricPoint, labels, now_ms
from ttamond.store.queries import retention_of
from ttamond.store.stats import StoreStats


async def test_a_day_of_emissions_and_an_hour_of_cpu_come_back(tmp_path: Path) -> None:
    database = tmp_path / "ttamond.db"
    bus = Bus()
    mailbox: Subscription[StoreInput] = bus.subscribe(
        "store", (MetricBatch,), policy=Overflow.BLOCK, capacity=64)
    store = StoreActor(StoreConfig(), database=database, spool=tmp_path / "spool",
                       mailbox=mailbox, stats=StoreStats())
    now = now_ms()
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        # 20 hours of a counter at 1 per minute (1.2 kg), and an hour of CPU at 95 %.
        for minute in range(20 * 60):
            ts = now - (20 * 60 - minute) * 60_000
            points = [MetricPoint("ttamond_carbon_emissions_kg_total", minute / 1000, (),
                                  "counter", "kg")]
            if minute >= 19 * 60:
                points.append(MetricPoint("cpu", 95.0, labels(host="a")))
            await bus.publish(MetricBatch(source="t", timestamp_ms=ts, points=tuple(points)))
        nursery.cancel_scope.cancel()
    config = AlertsConfig(rules=[
        CarbonRule(name="CarbonBudget", budget_kg_per_day=1.0),
        MetricRule(name="CpuHigh", series="cpu", aggregate="avg", window=3600, threshold=90)])
    escalator = Escalator(config, host="h", alertmanagers={}, channels=["log"],
                          started_ms=now)
    added = seed_windows(escalator.windows, database, now_ms=now,
                         retention=retention_of(StoreConfig()))
    assert added > 0
    escalator.evaluate(now)
    firing = sorted(r.labels["alertname"] for r in escalator.records.values()
                    if r.state == "firing")
    assert firing == ["CarbonBudget", "CpuHigh"]
    carbon = next(r for r in escalator.records.values()
                  if r.labels["alertname"] == "CarbonBudget")
    assert carbon.value is not None and 1.1 < carbon.value < 1.3


def test_a_missing_database_seeds_nothing(tmp_path: Path) -> None:
    escalator = Escalator(AlertsConfig(), host="h", alertmanagers={}, channels=["log"],
                          started_ms=0)
    assert seed_windows(escalator.windows, tmp_path / "none.db", now_ms=now_ms(),
                        retention=retention_of(StoreConfig())) == 0
