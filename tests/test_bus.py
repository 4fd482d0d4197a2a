"""Bus: routing by exact type, back-pressure, drop-oldest, counted drops and stats."""

from __future__ import annotations

from typing import TypeVar

import pytest
import trio
import trio.testing

from ttamond.bus import Bus, Overflow, Subscription, SubscriptionStats
from ttamond.messages import ActorStateChanged, Message, MetricBatch, MetricPoint, ProbeFailed


def batch(n: int) -> MetricBatch:
    return MetricBatch(source="host", timestamp_ms=n, points=(MetricPoint("cpu", float(n)),))


def failure(n: int) -> ProbeFailed:
    return ProbeFailed(source="gpu", timestamp_ms=n, error=f"nvml error {n}")


M = TypeVar("M", bound=Message)


def drain(subscription: Subscription[M]) -> list[M]:
    messages: list[M] = []
    while True:
        try:
            messages.append(subscription.receive_nowait())
        except trio.WouldBlock:
            return messages


async def test_messages_reach_only_subscribers_of_their_type() -> None:
    bus = Bus()
    metrics = bus.subscribe("metrics", (MetricBatch,), policy=Overflow.BLOCK, capacity=4)
    failures = bus.subscribe("failures", (ProbeFailed,), policy=Overflow.BLOCK, capacity=4)
    both = bus.subscribe(
        "both", (MetricBatch, ProbeFailed), policy=Overflow.DROP_OLDEST, capacity=4
    )

    await bus.publish(batch(1))
    assert bus.publish_nowait(failure(2)) == 2
    await bus.publish(batch(3))

    assert [metrics.receive_nowait(), metrics.receive_nowait()] == [batch(1), batch(3)]
    assert failures.receive_nowait() == failure(2)
    assert [await both.receive() for _ in range(3)] == [batch(1), failure(2), batch(3)]
    for subscription in (metrics, failures, both):
        with pytest.raises(trio.WouldBlock):
            subscription.receive_nowait()
    assert bus.unrouted == 0


async def test_routing_is_by_exact_type_not_by_base_class() -> None:
    bus = Bus()
    everything = bus.subscribe("everything", (Message,), policy=Overflow.BLOCK, capacity=4)

    await bus.publish(batch(1))
    assert bus.publish_nowait(failure(2)) == 0

    with pytest.raises(trio.WouldBlock):
        everything.receive_nowait()
    assert bus.unrouted == 2


async def test_unrouted_messages_are_counted() -> None:
    bus = Bus()
    metrics = bus.subscribe("metrics", (MetricBatch,), policy=Overflow.BLOCK, capacity=4)
    state = ActorStateChanged(actor="a", state="running", restarts=0, timestamp_ms=1)

    await bus.publish(failure(1))
    assert bus.publish_nowait(state) == 0
    await bus.publish(batch(2))

    assert bus.unrouted == 2
    assert drain(metrics) == [batch(2)]
    assert bus.stats()[0].delivered == 1


async def test_block_policy_makes_the_publisher_wait_for_room() -> None:
    bus = Bus()
    mailbox = bus.subscribe("store", (MetricBatch,), policy=Overflow.BLOCK, capacity=2)
    await bus.publish(batch(1))
    await bus.publish(batch(2))
    published = trio.Event()

    async def publish_third() -> None:
        await bus.publish(batch(3))
        published.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(publish_third)
        await trio.testing.wait_all_tasks_blocked()
        # full: the publisher is parked, nothing was dropped or counted as delivered
        assert not published.is_set()
        assert (mailbox.depth, mailbox.delivered, mailbox.dropped) == (2, 2, 0)

        assert await mailbox.receive() == batch(1)
        await trio.testing.wait_all_tasks_blocked()
        assert published.is_set()

    assert (mailbox.depth, mailbox.delivered, mailbox.dropped) == (2, 3, 0)
    assert drain(mailbox) == [batch(2), batch(3)]


async def test_drop_oldest_keeps_the_newest_messages_and_counts_drops() -> None:
    bus = Bus()
    live = bus.subscribe("live", (MetricBatch,), policy=Overflow.DROP_OLDEST, capacity=3)

    for n in range(1, 5):
        await bus.publish(batch(n))  # never waits, even when full
    assert bus.publish_nowait(batch(5)) == 1
    assert bus.publish_nowait(batch(6)) == 1

    assert (live.depth, live.delivered, live.dropped) == (3, 6, 3)
    assert drain(live) == [batch(4), batch(5), batch(6)]


async def test_drop_oldest_hands_a_message_straight_to_a_waiting_receiver() -> None:
    bus = Bus()
    live = bus.subscribe("live", (MetricBatch,), policy=Overflow.DROP_OLDEST, capacity=1)
    received: list[MetricBatch] = []

    async def receive_two() -> None:
        async for message in live:
            received.append(message)
            if len(received) == 2:
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(receive_two)
        await trio.testing.wait_all_tasks_blocked()
        bus.publish_nowait(batch(1))
        await trio.testing.wait_all_tasks_blocked()
        bus.publish_nowait(batch(2))

    assert received == [batch(1), batch(2)]
    assert live.dropped == 0


async def test_publish_nowait_counts_a_drop_on_a_full_block_mailbox() -> None:
    bus = Bus()
    store = bus.subscribe("store", (ProbeFailed,), policy=Overflow.BLOCK, capacity=1)
    live = bus.subscribe("live", (ProbeFailed,), policy=Overflow.DROP_OLDEST, capacity=1)

    assert bus.publish_nowait(failure(1)) == 2
    # the block mailbox refuses, the drop_oldest one takes it
    assert bus.publish_nowait(failure(2)) == 1

    assert (store.depth, store.delivered, store.dropped) == (1, 1, 1)
    assert (live.depth, live.delivered, live.dropped) == (1, 2, 1)
    assert drain(store) == [failure(1)]
    assert drain(live) == [failure(2)]


async def test_stats_report_every_subscription_in_registration_order() -> None:
    bus = Bus()
    store = bus.subscribe("store", (MetricBatch, ProbeFailed), policy=Overflow.BLOCK, capacity=2)
    bus.subscribe("latest", (MetricBatch,), policy=Overflow.DROP_OLDEST, capacity=1)
    assert bus.stats() == [
        SubscriptionStats(
            name="store", policy="block", capacity=2, depth=0, delivered=0, dropped=0
        ),
        SubscriptionStats(
            name="latest", policy="drop_oldest", capacity=1, depth=0, delivered=0, dropped=0
        ),
    ]

    await bus.publish(batch(1))
    bus.publish_nowait(failure(2))
    bus.publish_nowait(batch(3))  # store is full: dropped there
    assert await store.receive() == batch(1)

    assert bus.stats() == [
        SubscriptionStats(
            name="store", policy="block", capacity=2, depth=1, delivered=2, dropped=1
        ),
        SubscriptionStats(
            name="latest", policy="drop_oldest", capacity=1, depth=1, delivered=2, dropped=1
        ),
    ]
    assert store.stats() == bus.stats()[0]


def test_a_duplicate_subscription_name_is_refused() -> None:
    bus = Bus()
    first = bus.subscribe("store", (MetricBatch,), policy=Overflow.BLOCK, capacity=1)
    with pytest.raises(ValueError, match=r"^subscription 'store' already exists$"):
        bus.subscribe("store", (ProbeFailed,), policy=Overflow.DROP_OLDEST, capacity=1)

    # the refused one left no route behind
    assert bus.publish_nowait(failure(1)) == 0
    assert bus.unrouted == 1
    assert [s.name for s in bus.stats()] == ["store"]
    assert bus.publish_nowait(batch(1)) == 1
    assert first.receive_nowait() == batch(1)


@pytest.mark.parametrize("capacity", [0, -1])
def test_capacity_below_one_is_refused(capacity: int) -> None:
    bus = Bus()
    with pytest.raises(
        ValueError, match=rf"^subscription 'latest': capacity must be >= 1, got {capacity}$"
    ):
        bus.subscribe("latest", (MetricBatch,), policy=Overflow.DROP_OLDEST, capacity=capacity)
    assert bus.stats() == []
    assert bus.publish_nowait(batch(1)) == 0
    assert bus.unrouted == 1


async def test_a_type_listed_twice_is_delivered_once() -> None:
    bus = Bus()
    mailbox = bus.subscribe("twice", (MetricBatch, MetricBatch), policy=Overflow.BLOCK,
                            capacity=4)
    await bus.publish(MetricBatch(source="s", timestamp_ms=1, points=()))
    assert mailbox.depth == 1


async def test_a_full_block_mailbox_does_not_hold_up_live_views() -> None:
    bus = Bus()
    store = bus.subscribe("store", (MetricBatch,), policy=Overflow.BLOCK, capacity=1)
    view = bus.subscribe("view", (MetricBatch,), policy=Overflow.DROP_OLDEST, capacity=4)
    await bus.publish(MetricBatch(source="s", timestamp_ms=1, points=()))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(bus.publish, MetricBatch(source="s", timestamp_ms=2, points=()))
        await trio.testing.wait_all_tasks_blocked()
        assert view.depth == 2  # the view already has the second batch
        assert store.depth == 1  # the store's publisher is still waiting for room
        await store.receive()
    assert store.depth == 1
