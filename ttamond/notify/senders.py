"""The registry of senders: which function delivers to which kind of channel."""

from __future__ import annotations

from typing import Protocol

from ttamond.messages import Notification
from ttamond.notify.command import send_command
from ttamond.notify.log import send_log
from ttamond.notify.settings import (
    AlertmanagerChannel,
    AnyChannel,
    CommandChannel,
    EmailChannel,
    LogChannel,
    SlackChannel,
    WebhookChannel,
)
from ttamond.notify.smtp import send_email


class Sender(Protocol):
    """Delivers one notification to one channel in one try, or raises DeliveryFailed."""

    async def __call__(self, channel: AnyChannel, notification: Notification, *,
                       now_ms: int) -> None: ...


async def send(channel: AnyChannel, notification: Notification, *, now_ms: int) -> None:
    """One try to deliver `notification` to `channel` with the sender of its kind.
    Raises DeliveryFailed (see each sender for what counts as permanent).

    The HTTP senders are imported on first use: httpx costs a daemon that only logs
    its notifications about 8 MB it should not pay."""
    match channel:
        case LogChannel():
            await send_log(channel, notification, now_ms=now_ms)
        case WebhookChannel():
            from ttamond.notify.webhook import send_webhook

            await send_webhook(channel, notification, now_ms=now_ms)
        case SlackChannel():
            from ttamond.notify.webhook import send_slack

            await send_slack(channel, notification, now_ms=now_ms)
        case EmailChannel():
            await send_email(channel, notification, now_ms=now_ms)
        case AlertmanagerChannel():
            from ttamond.notify.alertmanager import send_alertmanager

            await send_alertmanager(channel, notification, now_ms=now_ms)
        case CommandChannel():
            await send_command(channel, notification, now_ms=now_ms)
        case _:
            raise TypeError(f"no sender for channel kind {type(channel).__name__}")
