"""The notify actor on a real bus, with real receivers: channels kept apart."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec
import pytest
import trio

from tests.notify import notification
from tests.notify.receivers import HttpReceiver
from tests.probes.checks.servers import free_port
from ttamond.actors.notify import NotifyActor
from ttamond.bus import Bus, Overflow, Subscription
from ttamond.messages import ChannelHealthChanged, DeliveryAttempted, Notification
from ttamond.notify.errors import UnknownChannel
from ttamond.notify.settings import AnyChannel, LogChannel, WebhookChannel

Row = DeliveryAttempted | ChannelHealthChanged


class Rig:
    """A running actor, the bus it is on, and a mailbox of everything it publishes."""

    def __init__(self, actor: NotifyActor, bus: Bus, log: Subscription[Row]) -> None:
        self.actor, self.bus, self.log = actor, bus, log

    async def notify(self, sent: Notification) -> None:
        await self.bus.publish(sent)

    async def next(self, match: Callable[[Row], bool], within: float = 5.0) -> Row:
        """The next published message that `match` accepts (others are skipped)."""
        with trio.fail_after(within):
            while True:
                message = await self.log.receive()
                if match(message):
                    return message


async def start(nursery: trio.Nursery, channels: Sequence[AnyChannel],
                queue_capacity: int = 100) -> Rig:
    bus = Bus()
    mailbox = bus.subscribe("notify", (Notification,), policy=Overflow.BLOCK, capacity=16)
    log = bus.subscribe("log", (DeliveryAttempted, ChannelHealthChanged),
                        policy=Overflow.BLOCK, capacity=256)
    actor = NotifyActor(mailbox, bus, channels, queue_capacity=queue_capacity)
    await nursery.start(actor.run)
    return Rig(actor, bus, log)


def row_for(channel: str, outcome: str = "") -> Callable[[Row], bool]:
    return lambda m: (isinstance(m, DeliveryAttempted) and m.channel == channel
                      and (not outcome or m.outcome == outcome))


async def test_a_hung_channel_does_not_delay_a_healthy_one(nursery: trio.Nursery) -> None:
    hung, healthy = HttpReceiver(hang=True), HttpReceiver()
    hung_url, healthy_url = await hung.serve(nursery), await healthy.serve(nursery)
    rig = await start(nursery, [WebhookChannel(name="hung", url=hung_url, timeout=60),
                                WebhookChannel(name="healthy", url=healthy_url)])
    await rig.notify(notification(channel="hung", id="a"))
    with trio.fail_after(5):
        await hung.arrived.wait()
    await rig.notify(notification(channel="healthy", id="b"))
    sent = await rig.next(row_for("healthy"))
    assert isinstance(sent, DeliveryAttempted)
    assert (sent.notification_id, sent.outcome) == ("b", "sent")
    assert len(healthy.requests) == 1
    stats = rig.actor.stats()
    assert (stats["hung"].sent, stats["healthy"].sent) == (0, 1)


async def test_a_full_queue_drops_and_says_so(nursery: trio.Nursery) -> None:
    hung = HttpReceiver(hang=True)
    rig = await start(nursery, [WebhookChannel(name="hung", url=await hung.serve(nursery),
                                               timeout=60)], queue_capacity=1)
    await rig.notify(notification(channel="hung", id="n1"))
    with trio.fail_after(5):
        await hung.arrived.wait()
    await rig.notify(notification(channel="hung", id="n2"))
    await rig.notify(notification(channel="hung", id="n3"))
    dropped = await rig.next(row_for("hung"))
    assert isinstance(dropped, DeliveryAttempted)
    assert (dropped.notification_id, dropped.attempt, dropped.outcome, dropped.error) == (
        "n3", 0, "gave_up", "queue full (1 waiting): the channel is too slow")
    stats = rig.actor.stats()["hung"]
    assert (stats.dropped, stats.queued) == (1, 1)


async def test_a_channel_that_keeps_giving_up_is_reported_failing(nursery: trio.Nursery) -> None:
    dead = WebhookChannel(name="dead", url=f"http://127.0.0.1:{free_port()}/in",
                          max_attempts=1, fail_after=2)
    rig = await start(nursery, [dead])
    for number in (1, 2):
        await rig.notify(notification(channel="dead", id=f"n{number}"))
    rows = [await rig.next(lambda m: True) for _ in range(3)]
    assert [(type(m).__name__, getattr(m, "outcome", None)) for m in rows] == [
        ("DeliveryAttempted", "gave_up"), ("DeliveryAttempted", "gave_up"),
        ("ChannelHealthChanged", None)]
    health = rows[2]
    assert isinstance(health, ChannelHealthChanged)
    assert (health.channel, health.failing, health.consecutive_failures) == ("dead", True, 2)
    assert health.error.endswith(": connection refused")
    assert rig.actor.stats()["dead"].failing


async def test_the_rate_limit_is_counted_per_channel(nursery: trio.Nursery) -> None:
    rig = await start(nursery, [LogChannel(name="journal", rate_limit=1), LogChannel(name="b")])
    for number in (1, 2):
        await rig.notify(notification(channel="journal", id=f"n{number}"))
    await rig.notify(notification(channel="b", id="n3"))
    # The two channels' workers run side by side: their rows come in either order.
    rows = [await rig.next(lambda m: True) for _ in range(3)]
    assert sorted((m.channel, m.notification_id, m.outcome) for m in rows
                  if isinstance(m, DeliveryAttempted)) == [
        ("b", "n3", "sent"), ("journal", "n1", "sent"), ("journal", "n2", "rate_limited")]
    stats = rig.actor.stats()
    assert (stats["journal"].sent, stats["journal"].rate_limited) == (1, 1)
    assert (stats["b"].sent, stats["b"].rate_limited) == (1, 0)
    decoded = msgspec.json.decode(msgspec.json.encode(stats))
    assert decoded["journal"]["kind"] == "log"


async def test_a_test_is_sent_at_once_and_reports_its_outcome(nursery: trio.Nursery) -> None:
    receiver = HttpReceiver()
    rig = await start(nursery, [WebhookChannel(name="hook", url=await receiver.serve(nursery),
                                               rate_limit=1),
                                LogChannel(name="journal")])
    await rig.notify(notification(channel="hook", id="uses-the-limit"))
    await rig.next(row_for("hook", "sent"))
    result = await rig.actor.test("hook")
    assert (result.channel, result.reason, result.attempt, result.outcome) == (
        "hook", "test", 1, "sent")
    body = receiver.requests[-1].json()
    assert (body["reason"], body["alerts"][0]["labels"]["alertname"]) == ("test", "TtamondTest")
    published = await rig.next(row_for("hook"))
    assert published == result
    with pytest.raises(UnknownChannel, match=r"^unknown channel 'nope' \(known: hook, journal\)$"):
        await rig.actor.test("nope")


async def test_a_notification_for_no_such_channel_is_given_up_aloud(
        nursery: trio.Nursery) -> None:
    rig = await start(nursery, [LogChannel(name="journal")])
    await rig.notify(notification(channel="pager", id="lost"))
    row = await rig.next(row_for("pager"))
    assert isinstance(row, DeliveryAttempted)
    assert (row.notification_id, row.outcome, row.error) == (
        "lost", "gave_up", "unknown channel 'pager' (known: journal)")
    assert rig.actor.unknown == 1


def test_channels_named_twice_are_refused() -> None:
    bus = Bus()
    mailbox = bus.subscribe("notify", (Notification,), policy=Overflow.BLOCK, capacity=1)
    with pytest.raises(ValueError, match=r"^channel 'a': defined more than once$"):
        NotifyActor(mailbox, bus, [LogChannel(name="a"), LogChannel(name="a")])
