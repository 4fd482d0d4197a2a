"""The alerts actor on a real bus: timing under trio's autojump clock, and alert state
kept across a restart through a real store and SQLite file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
import trio.testing

from ttamond.actors.alerts import ALERTS_INPUTS, AlertsActor
from ttamond.actors.store import StoreActor, StoreInput
from ttamond.alerts.escalator import Escalator
from ttamond.alerts.rules import MetricRule
from ttamond.alerts.settings import (
    AlertsConfig,
    EscalationLevel,
    EscalationPolicy,
    GroupingConfig,
)
from ttamond.bus import Bus, Overflow, Subscription
from ttamond.config import StoreConfig
from ttamond.messages import (
    ChannelHealthChanged,
    DeliveryAttempted,
    MetricBatch,
    MetricPoint,
    Notification,
    labels,
    now_ms,
)
from ttamond.receipts import Ingested
from ttamond.store.alerts import load_alert_state
from ttamond.store.stats import StoreStats

T0 = 1_700_000_000_000


def settings(**overrides: Any) -> AlertsConfig:
    base: dict[str, Any] = {
        "rules": [MetricRule(name="CpuHigh", series="cpu", aggregate="last", window=60,
                             threshold=90, for_=60)],
        "escalations": [EscalationPolicy(name="default", levels=[
            EscalationLevel(channels=["chat"]),
            EscalationLevel(after_minutes=15, channels=["pager"])])],
        "grouping": GroupingConfig(group_wait=30, group_interval=300, repeat_interval=3600),
        "evaluate_every": 5.0,
    }
    base.update(overrides)
    return AlertsConfig(**base)


def clock() -> int:
    return T0 + int(trio.current_time() * 1000)


class Rig:
    """A bus, the alerts actor, a recorder of notifications, and a store stand-in that
    settles receipts at once (the real store is in the restart test)."""

    def __init__(self, config: AlertsConfig) -> None:
        self.bus = Bus()
        self.mailbox = self.bus.subscribe("alerts", ALERTS_INPUTS, policy=Overflow.BLOCK,
                                          capacity=256)
        self.notes = self.bus.subscribe("notify", (Notification,), policy=Overflow.BLOCK,
                                        capacity=256)
        self.stored = self.bus.subscribe("store", (Ingested,), policy=Overflow.BLOCK,
                                         capacity=256)
        self.escalator = Escalator(config, host="h1", alertmanagers={},
                                   channels=["chat", "pager"], started_ms=T0)
        self.actor = AlertsActor(self.escalator, self.mailbox, self.bus,
                                 evaluate_every=config.evaluate_every, clock=clock)
        self.sent: list[tuple[float, str, str]] = []

    async def run(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._settle)
        nursery.start_soon(self._record)
        await nursery.start(self.actor.run)

    async def _settle(self) -> None:
        async for message in self.stored:
            if message.receipt is not None:
                message.receipt.settle()

    async def _record(self) -> None:
        async for note in self.notes:
            self.sent.append((trio.current_time(), note.channel, note.reason))

    async def cpu(self, value: float) -> None:
        await self.bus.publish(MetricBatch(source="test", timestamp_ms=clock(), points=(
            MetricPoint("cpu", value, labels(host="a")),)))


async def feed_for(rig: Rig, seconds: float, value: float, every: float = 5.0) -> None:
    end = trio.current_time() + seconds
    while trio.current_time() < end:
        await rig.cpu(value)
        await trio.sleep(every)


async def test_for_group_wait_and_escalation_on_the_clock(
        autojump_clock: trio.testing.MockClock) -> None:
    rig = Rig(settings())
    async with trio.open_nursery() as nursery:
        await rig.run(nursery)
        await feed_for(rig, 20 * 60, 95)
        nursery.cancel_scope.cancel()
    # Pending 60 s, then firing; the chat group waits 30 s; the pager level comes 15
    # minutes after firing, plus its own group wait.
    assert [(channel, reason) for _, channel, reason in rig.sent] == [
        ("chat", "firing"), ("pager", "escalation")]
    (chat_at, _, _), (pager_at, _, _) = rig.sent
    assert 90 <= chat_at <= 100
    assert 60 + 15 * 60 + 30 <= pager_at <= 60 + 15 * 60 + 40


async def test_repeat_interval_and_resolution_on_the_clock(
        autojump_clock: trio.testing.MockClock) -> None:
    rig = Rig(settings(escalations=[EscalationPolicy(
        name="default", levels=[EscalationLevel(channels=["chat"])])]))
    async with trio.open_nursery() as nursery:
        await rig.run(nursery)
        await feed_for(rig, 2 * 3600, 95, every=30)
        await feed_for(rig, 600, 10, every=30)
        nursery.cancel_scope.cancel()
    assert [reason for _, _, reason in rig.sent] == ["firing", "repeat", "resolved"]
    assert 3600 + 90 <= rig.sent[1][0] <= 3600 + 130


async def test_a_failing_channel_alert_goes_out_at_once_through_the_others(
        autojump_clock: trio.testing.MockClock) -> None:
    rig = Rig(settings(grouping=GroupingConfig(group_wait=0)))
    async with trio.open_nursery() as nursery:
        await rig.run(nursery)
        await trio.sleep(1)
        await rig.bus.publish(ChannelHealthChanged(channel="pager", failing=True,
                                                   consecutive_failures=3, error="HTTP 500",
                                                   timestamp_ms=clock()))
        await trio.sleep(0.5)
        nursery.cancel_scope.cancel()
    assert [(channel, reason) for _, channel, reason in rig.sent] == [("chat", "firing")]
    assert rig.sent[0][0] < 2


RESTART_CONFIG = settings(
    rules=[MetricRule(name="CpuHigh", series="cpu", aggregate="last", window=60, threshold=90)],
    grouping=GroupingConfig(group_wait=0, group_interval=0.1), evaluate_every=0.05,
    escalations=[EscalationPolicy(name="default", levels=[EscalationLevel(channels=["chat"])])])


async def lifetime(folder: Path, value: float, seconds: float, *,
                   deliver: bool = True) -> list[Notification]:
    """One run of the escalator over a real store in `folder`, from the state stored
    before, feeding `cpu` = `value`; returns what it asked to notify. With `deliver`,
    each notification is reported delivered, as the notifier does."""
    database = folder / "ttamond.db"
    bus = Bus()
    store_mailbox: Subscription[StoreInput] = bus.subscribe(
        "store", (MetricBatch, Ingested, DeliveryAttempted), policy=Overflow.BLOCK,
        capacity=256)
    mailbox = bus.subscribe("alerts", ALERTS_INPUTS, policy=Overflow.BLOCK, capacity=256)
    notes = bus.subscribe("notify", (Notification,), policy=Overflow.BLOCK, capacity=256)
    escalator = Escalator(RESTART_CONFIG, host="h1", alertmanagers={}, channels=["chat"],
                          started_ms=now_ms())
    state = load_alert_state(database)
    escalator.restore(state.records, state.silences, state.groups, state.counters,
                      state.outbox)
    store = StoreActor(StoreConfig(), database=database, spool=folder / "spool",
                       mailbox=store_mailbox, stats=StoreStats())
    actor = AlertsActor(escalator, mailbox, bus, evaluate_every=0.05)
    sent: list[Notification] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        await nursery.start(actor.run)
        with trio.move_on_after(seconds):
            while True:
                await bus.publish(MetricBatch(source="t", timestamp_ms=now_ms(), points=(
                    MetricPoint("cpu", value, labels(host="a")),)))
                await trio.sleep(0.05)
                while notes.depth:
                    note = notes.receive_nowait()
                    sent.append(note)
                    if deliver:
                        await bus.publish(DeliveryAttempted(
                            notification_id=note.id, channel=note.channel,
                            reason=note.reason, group_key=note.group_key, attempt=1,
                            outcome="sent", timestamp_ms=now_ms()))
        nursery.cancel_scope.cancel()
    return sent


async def test_state_survives_a_restart_without_renotifying_or_losing_the_recovery(
        tmp_path: Path) -> None:
    first = await lifetime(tmp_path, 95, 1.0)
    assert [n.reason for n in first] == ["firing"]
    stored = load_alert_state(tmp_path / "ttamond.db")
    assert [r.state for r in stored.records] == ["firing"]
    assert [g.notified for g in stored.groups] == [[stored.records[0].fingerprint]]
    # Restarted while still firing: nothing new to say.
    assert await lifetime(tmp_path, 95, 1.0) == []
    # Restarted, and the CPU is back: the recovery is notified once.
    third = await lifetime(tmp_path, 10, 1.0)
    assert [n.reason for n in third] == ["resolved"]
    assert await lifetime(tmp_path, 10, 0.5) == []
    assert load_alert_state(tmp_path / "ttamond.db").outbox == []


async def test_a_notification_decided_but_not_delivered_goes_out_after_a_restart(
        tmp_path: Path) -> None:
    first = await lifetime(tmp_path, 95, 0.6, deliver=False)
    assert [n.reason for n in first] == ["firing"]
    # The crash came between the decision and the delivery: the same notification
    # (same id) goes out after the restart, once.
    second = await lifetime(tmp_path, 95, 0.6)
    assert [n.id for n in second] == [first[0].id]
    assert await lifetime(tmp_path, 95, 0.6) == []


async def test_a_silence_holds_notifications_until_it_ends_on_the_clock(
        autojump_clock: trio.testing.MockClock) -> None:
    from ttamond.alerts.operations import silence

    rig = Rig(settings(escalations=[EscalationPolicy(
        name="default", levels=[EscalationLevel(channels=["chat"])])]))
    _, saves = silence(rig.escalator, "CpuHigh", duration_s=1800, author="sam",
                       comment="maintenance window", now_ms=clock())
    async with trio.open_nursery() as nursery:
        await rig.run(nursery)
        await rig.actor.persist(saves)
        await feed_for(rig, 45 * 60, 95, every=30)
        nursery.cancel_scope.cancel()
    # Firing from 60 s on, silenced for 30 minutes: the first notification comes once
    # the silence ends (plus the group wait).
    (at, channel, reason), = rig.sent
    assert (channel, reason) == ("chat", "firing")
    assert 1800 <= at <= 1800 + 30 + 35
    assert rig.escalator.counters["suppressed_silence"] == 1
