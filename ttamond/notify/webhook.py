"""Senders that POST one JSON body to one URL: generic webhooks and Slack."""

from __future__ import annotations

from pathlib import Path

from ttamond.messages import Notification
from ttamond.notify._http import post_json, show_url
from ttamond.notify.errors import DeliveryFailed
from ttamond.notify.payloads import alertmanager_webhook, generic_json, slack_message
from ttamond.notify.settings import SlackChannel, WebhookChannel


async def send_webhook(channel: WebhookChannel, notification: Notification, *,
                       now_ms: int) -> None:
    """POST the notification in the channel's format, with its headers and, when it has
    a token file, a bearer token read from it now. Raises DeliveryFailed."""
    target = f"webhook {show_url(channel.url)}"
    headers = dict(channel.headers)
    if channel.token_file:
        headers["Authorization"] = f"Bearer {_read_token(target, channel.token_file)}"
    body = (alertmanager_webhook(notification) if channel.format == "alertmanager"
            else generic_json(notification))
    await post_json(target, channel.url, body, timeout=channel.timeout, headers=headers)


async def send_slack(channel: SlackChannel, notification: Notification, *, now_ms: int) -> None:
    """POST a Slack message to the incoming webhook. Raises DeliveryFailed, naming only
    the webhook's host: its path is its secret."""
    target = f"slack {show_url(channel.url, secret_path=True)}"
    body = slack_message(notification, channel=channel.channel, username=channel.username)
    await post_json(target, channel.url, body, timeout=channel.timeout)


def _read_token(target: str, path: str) -> str:
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        # A missing or unreadable secret will not appear between two tries.
        raise DeliveryFailed(f"{target}: cannot read token_file {path}: {exc.strerror}",
                             permanent=True) from None
    if not token or any(c in token for c in "\r\n"):
        raise DeliveryFailed(f"{target}: token_file {path} must hold one non-empty line",
                             permanent=True)
    return token
