"""Typed publish/subscribe over bounded trio memory channels, with counted drops."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar, overload

import msgspec
import trio

from ttamond.messages import Message

M = TypeVar("M", bound=Message)
A = TypeVar("A", bound=Message)
B = TypeVar("B", bound=Message)
C = TypeVar("C", bound=Message)
D = TypeVar("D", bound=Message)
E = TypeVar("E", bound=Message)


class Overflow(enum.Enum):
    """What a full subscription does with a new message."""

    BLOCK = "block"
    """Back-pressure: the publisher waits. For anything that must not be lost."""
    DROP_OLDEST = "drop_oldest"
    """Live views: the oldest queued message is discarded and counted."""


class SubscriptionStats(msgspec.Struct, frozen=True):
    """A snapshot of one subscription, for status and self-metrics."""

    name: str
    policy: str
    capacity: int
    depth: int
    delivered: int
    dropped: int


class Subscription(Generic[M]):
    """One subscriber's mailbox. It outlives the actor that reads it, so messages
    wait in it while a supervisor restarts that actor."""

    def __init__(self, name: str, policy: Overflow, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"subscription {name!r}: capacity must be >= 1, got {capacity}")
        self.name = name
        self.policy = policy
        self.capacity = capacity
        self.delivered = 0
        self.dropped = 0
        self._send, self._receive = trio.open_memory_channel[M](capacity)

    async def receive(self) -> M:
        """Wait for the next message."""
        return await self._receive.receive()

    def receive_nowait(self) -> M:
        """The next message, or trio.WouldBlock when the mailbox is empty."""
        return self._receive.receive_nowait()

    def __aiter__(self) -> AsyncIterator[M]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[M]:
        while True:
            yield await self._receive.receive()

    @property
    def depth(self) -> int:
        """Messages queued and not yet received."""
        return self._send.statistics().current_buffer_used

    def stats(self) -> SubscriptionStats:
        """A snapshot of this subscription's counters."""
        return SubscriptionStats(
            name=self.name,
            policy=self.policy.value,
            capacity=self.capacity,
            depth=self.depth,
            delivered=self.delivered,
            dropped=self.dropped,
        )

    async def _deliver(self, message: M) -> None:
        if self.policy is Overflow.BLOCK:
            await self._send.send(message)
        else:
            self._put_dropping_oldest(message)
        self.delivered += 1

    def _deliver_nowait(self, message: M) -> bool:
        if self.policy is Overflow.BLOCK:
            try:
                self._send.send_nowait(message)
            except trio.WouldBlock:
                self.dropped += 1
                return False
        else:
            self._put_dropping_oldest(message)
        self.delivered += 1
        return True

    def _put_dropping_oldest(self, message: M) -> None:
        while True:
            try:
                self._send.send_nowait(message)
                return
            except trio.WouldBlock:
                self._receive.receive_nowait()
                self.dropped += 1


class Bus:
    """Routes each message to the subscriptions registered for its type."""

    def __init__(self) -> None:
        self._routes: dict[type[Message], list[Subscription[Message]]] = {}
        self._subscriptions: list[Subscription[Message]] = []
        self.unrouted = 0

    # One overload per arity, so a mailbox's type is the union of what it subscribes to.
    @overload
    def subscribe(self, name: str, types: tuple[type[A]], *, policy: Overflow,
                  capacity: int) -> Subscription[A]: ...
    @overload
    def subscribe(self, name: str, types: tuple[type[A], type[B]], *, policy: Overflow,
                  capacity: int) -> Subscription[A | B]: ...
    @overload
    def subscribe(self, name: str, types: tuple[type[A], type[B], type[C]], *,
                  policy: Overflow, capacity: int) -> Subscription[A | B | C]: ...
    @overload
    def subscribe(self, name: str, types: tuple[type[A], type[B], type[C], type[D]], *,
                  policy: Overflow, capacity: int) -> Subscription[A | B | C | D]: ...
    @overload
    def subscribe(self, name: str,
                  types: tuple[type[A], type[B], type[C], type[D], type[E]], *,
                  policy: Overflow, capacity: int) -> Subscription[A | B | C | D | E]: ...
    @overload
    def subscribe(self, name: str, types: tuple[type[Message], ...], *, policy: Overflow,
                  capacity: int) -> Subscription[Any]: ...

    def subscribe(
        self,
        name: str,
        types: tuple[type[Message], ...],
        *,
        policy: Overflow,
        capacity: int,
    ) -> Subscription[Any]:
        """Register a mailbox for messages of exactly these types."""
        if any(sub.name == name for sub in self._subscriptions):
            raise ValueError(f"subscription {name!r} already exists")
        subscription: Subscription[Message] = Subscription(name, policy, capacity)
        self._subscriptions.append(subscription)
        for message_type in dict.fromkeys(types):
            route = self._routes.setdefault(message_type, [])
            route.append(subscription)
            # Non-blocking mailboxes first: a full `block` mailbox then holds up only
            # the publisher and the `block` mailboxes after it, never a live view.
            route.sort(key=lambda sub: sub.policy is Overflow.BLOCK)
        return subscription

    async def publish(self, message: Message) -> None:
        """Deliver to every subscriber, waiting on full `block` mailboxes.

        Cancelled while waiting, the message may have reached some subscribers and
        not others: publishers of must-not-lose data are not cancelled mid-publish
        (the supervisor stops producers before the store).
        """
        subscribers = self._routes.get(type(message))
        if not subscribers:
            self.unrouted += 1
            return
        for subscription in subscribers:
            await subscription._deliver(message)

    def publish_nowait(self, message: Message) -> int:
        """Deliver without waiting; a full `block` mailbox counts a drop instead.

        For publishers that must never stall (the supervisor, log-like events).
        Returns how many subscribers took the message.
        """
        subscribers = self._routes.get(type(message))
        if not subscribers:
            self.unrouted += 1
            return 0
        return sum(subscription._deliver_nowait(message) for subscription in subscribers)

    def stats(self) -> list[SubscriptionStats]:
        """Every subscription's counters, in registration order."""
        return [subscription.stats() for subscription in self._subscriptions]
