"""Anomaly scores into alerts: the analytics actor and the alerts actor on one real bus."""

from __future__ import annotations

import math

import trio
import trio.testing

from tests.alerts.test_alerts_actor import T0, Rig, settings
from ttamond.actors.analytics import AnalyticsActor
from ttamond.alerts.rules import AnomalyRule
from ttamond.alerts.settings import GroupingConfig
from ttamond.analytics.settings import AnalyticsSettings
from ttamond.bus import Overflow
from ttamond.messages import MetricBatch, MetricPoint, labels
from ttamond.receipts import Ingested


def wobble(i: int) -> float:
    """A deterministic, noisy-looking load between 20 and 30."""
    return 25 + 5 * math.sin(i * 2.7) * math.cos(i * 0.31)


async def test_a_spike_scored_by_the_detector_fires_an_anomaly_alert(
        autojump_clock: trio.testing.MockClock) -> None:
    rig = Rig(settings(rules=[AnomalyRule(name="LoadAnomaly", target="load", above=0.5,
                                          samples=1)],
                       grouping=GroupingConfig(group_wait=0), evaluate_every=1.0))
    mailbox = rig.bus.subscribe("analytics", (MetricBatch, Ingested),
                                policy=Overflow.DROP_OLDEST, capacity=10_000)
    analytics = AnalyticsActor(mailbox, rig.bus, AnalyticsSettings(series=["load"],
                                                                       step_seconds=0))
    async with trio.open_nursery() as nursery:
        await rig.run(nursery)
        await nursery.start(analytics.run)
        for i in range(600):
            value = 400.0 if i >= 590 else wobble(i)
            await rig.bus.publish(MetricBatch(source="t", timestamp_ms=T0 + i * 1000, points=(
                MetricPoint("load", value, labels(host="a")),)))
            await trio.sleep(1)
            if i == 585:
                assert rig.sent == [], "no alarm on ordinary load"
        nursery.cancel_scope.cancel()
    assert [(channel, reason) for _, channel, reason in rig.sent] == [("chat", "firing")]
    (record,) = rig.escalator.records.values()
    assert record.labels["series"] == "load" and record.labels["host"] == "a"
