"""The notify actor: delivers each notification to its channel, every channel apart."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import trio

from ttamond.bus import Bus, Subscription
from ttamond.messages import DeliveryAttempted, Notification, now_ms
from ttamond.notify import senders
from ttamond.notify.delivery import ChannelDelivery, ChannelStats, not_tried
from ttamond.notify.errors import UnknownChannel
from ttamond.notify.payloads import trial_notification
from ttamond.notify.settings import AnyChannel, validate_channels

QUEUE_CAPACITY = 100
"""Notifications waiting per channel. A full queue drops (counted, logged, published):
a channel that far behind is not delivering anyway, and waiting on it would hold up
every other channel."""


@dataclass
class _Lane:
    """One channel: its delivery state and the queue its worker reads."""

    delivery: ChannelDelivery
    send: trio.MemorySendChannel[Notification]
    receive: trio.MemoryReceiveChannel[Notification]


class NotifyActor:
    """Routes each Notification from its mailbox to its channel's queue, where a worker
    task per channel delivers them in order (with that channel's retries and rate
    limit), so a slow or dead channel delays only itself.

    Every outcome is published: DeliveryAttempted for each try, for a notification
    dropped on a full queue and for one addressed to no configured channel, and
    ChannelHealthChanged when a channel starts or stops failing. A sender's
    DeliveryFailed is an outcome; any other exception is a bug and ends the actor, for
    the supervisor to restart (the queues are kept, so what waits is not lost).
    """

    def __init__(self, mailbox: Subscription[Notification], bus: Bus,
                 channels: Sequence[AnyChannel], *, queue_capacity: int = QUEUE_CAPACITY,
                 send: senders.Sender = senders.send) -> None:
        problems = validate_channels(channels)
        if problems:
            raise ValueError(problems[0])
        if queue_capacity < 1:
            raise ValueError(f"queue_capacity must be >= 1, got {queue_capacity}")
        self.mailbox = mailbox
        self.bus = bus
        self.queue_capacity = queue_capacity
        self.unknown = 0
        """Notifications addressed to no configured channel."""
        self._lanes: dict[str, _Lane] = {}
        for channel in channels:
            queue_send, queue_receive = trio.open_memory_channel[Notification](queue_capacity)
            self._lanes[channel.name] = _Lane(
                ChannelDelivery(channel, bus.publish, send=send), queue_send, queue_receive)

    @property
    def channel_names(self) -> list[str]:
        """The configured channels, in configuration order."""
        return list(self._lanes)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start a worker per channel, then route the mailbox until cancelled."""
        async with trio.open_nursery() as nursery:
            for lane in self._lanes.values():
                nursery.start_soon(self._work, lane)
            task_status.started()
            async for message in self.mailbox:
                await self.dispatch(message)

    async def dispatch(self, message: Notification) -> None:
        """Queue `message` for its channel; publish `gave_up` when there is no such
        channel or its queue is full."""
        match message:
            case Notification(channel=name):
                lane = self._lanes.get(name)
                if lane is None:
                    self.unknown += 1
                    error = str(UnknownChannel(name, self.channel_names))
                    await self.bus.publish(not_tried(message, "gave_up", error))
                    return
                try:
                    lane.send.send_nowait(message)
                except trio.WouldBlock:
                    await lane.delivery.drop(message, f"queue full ({self.queue_capacity}"
                                                      " waiting): the channel is too slow")
            case _:
                raise TypeError(f"notify actor cannot take {type(message).__name__}")

    async def test(self, channel_name: str) -> DeliveryAttempted:
        """Send a test notification to `channel_name` now, past its queue and its rate
        limit, in one try; return its outcome (`sent` or `gave_up`, with the error).
        Raises UnknownChannel, listing the configured channels."""
        lane = self._lanes.get(channel_name)
        if lane is None:
            raise UnknownChannel(channel_name, self.channel_names)
        notification = trial_notification(
            channel_name, notification_id=f"test-{uuid.uuid4().hex}", now_ms=now_ms(),
            host=socket.gethostname())
        return await lane.delivery.deliver_once(notification)

    def stats(self) -> dict[str, ChannelStats]:
        """Each channel's counters, by name, in configuration order."""
        return {
            name: lane.delivery.stats(queued=lane.send.statistics().current_buffer_used)
            for name, lane in self._lanes.items()
        }

    @staticmethod
    async def _work(lane: _Lane) -> None:
        async for notification in lane.receive:
            await lane.delivery.deliver(notification)
