"""The Alertmanager sender: a sync of alerts posted to every configured Alertmanager."""

from __future__ import annotations

import msgspec
import trio

from ttamond.messages import Notification
from ttamond.notify._http import post_json, show_url
from ttamond.notify.errors import DeliveryFailed
from ttamond.notify.payloads import alertmanager_alerts
from ttamond.notify.settings import AlertmanagerChannel

API_PATH = "/api/v2/alerts"


async def send_alertmanager(channel: AlertmanagerChannel, notification: Notification, *,
                            now_ms: int) -> None:
    """POST the notification's alerts to `<url>/api/v2/alerts` of every URL at once.

    Alertmanagers in a cluster share silences and what they notified, not alerts, so
    each must hear of every alert. Returns when all accepted. Otherwise raises
    DeliveryFailed naming each URL that did not, with `retry` narrowed to those worth
    another try (so an Alertmanager that took it is not sent it again) and `partial`
    set when at least one accepted it; permanent when none is worth another try.
    """
    body = alertmanager_alerts(notification, now_ms=now_ms, resend_every=channel.resend_every)
    if not body:
        return
    errors: dict[str, DeliveryFailed] = {}

    async def post(url: str) -> None:
        target = f"alertmanager {show_url(url)}"
        try:
            await post_json(target, url.rstrip("/") + API_PATH, body, timeout=channel.timeout)
        except DeliveryFailed as exc:
            errors[url] = exc

    async with trio.open_nursery() as nursery:
        for url in channel.urls:
            nursery.start_soon(post, url)
    if not errors:
        return
    accepted = len(channel.urls) - len(errors)
    retry = [url for url in channel.urls if url in errors and not errors[url].permanent]
    message = "; ".join(errors[url].message for url in channel.urls if url in errors)
    if len(channel.urls) > 1:
        message += f" ({accepted} of {len(channel.urls)} accepted)"
    raise DeliveryFailed(
        message,
        permanent=not retry,
        retry=msgspec.structs.replace(channel, urls=retry) if retry else None,
        partial=accepted > 0,
    )
