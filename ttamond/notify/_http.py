"""Posting JSON over HTTP for the webhook, Slack and Alertmanager senders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from ttamond.notify.errors import DeliveryFailed, describe

RETRIED_STATUSES = frozenset({408, 425, 429})
"""4xx answers that say "later", not "never": retried like 5xx."""

BODY_EXCERPT = 200
"""Characters of an error answer's body quoted in the error."""


def show_url(url: str, *, secret_path: bool = False) -> str:
    """`url` fit for logs: no user info, no query; with `secret_path` (a Slack webhook,
    whose path is its key) no path either."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    path = "/…" if secret_path and parts.path not in ("", "/") else parts.path
    return f"{parts.scheme}://{host}{path}"


async def post_json(target: str, url: str, body: Any, *,
                    timeout: float,  # noqa: ASYNC109 - a slow server is a failed try, with its own message
                    headers: Mapping[str, str] | None = None) -> None:
    """POST `body` as JSON to `url`; return on any 2xx answer.

    Raises DeliveryFailed naming `target` ("webhook http://h/hook"): permanent for an
    answer that retrying cannot change (3xx: redirects are not followed, since a POST
    would be replayed elsewhere; 4xx other than 408, 425 and 429); transient for 5xx,
    those three, timeouts and network errors.
    """
    content = msgspec.json.encode(body)
    request_headers = {"Content-Type": "application/json", "User-Agent": "ttamond"}
    request_headers.update(headers or {})
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            response = await client.post(url, content=content, headers=request_headers)
    except httpx.TimeoutException:
        raise DeliveryFailed(f"{target}: no answer within {timeout:g} s") from None
    except httpx.TransportError as exc:
        raise DeliveryFailed(f"{target}: {describe(exc)}") from None
    if response.is_success:
        return
    status = response.status_code
    message = f"{target}: HTTP {status} {response.reason_phrase}".rstrip()
    excerpt = " ".join(response.text.split())[:BODY_EXCERPT]
    if excerpt:
        message += f": {excerpt}"
    if response.is_redirect:
        message += " (redirects are not followed: configure the final URL)"
    retried = status >= 500 or status in RETRIED_STATUSES
    raise DeliveryFailed(message, permanent=not retried)
