"""Notification channel settings: one table per channel, tagged by `kind`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec

ChannelName = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
]
Positive = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
Count = Annotated[int, msgspec.Meta(ge=0)]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]

HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An HTTP header name: an RFC 9110 token."""


def check_url(channel: str, field: str, url: str) -> None:
    """Raise ValueError unless `url` is an http or https URL with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"channel {channel!r}: {field} must be an http:// or https:// URL"
                         f" with a host, got {url!r}")
    try:
        # Reading the port validates it: "http://h:99999" fails only here.
        parts.port  # noqa: B018
    except ValueError:
        raise ValueError(f"channel {channel!r}: {field} has a bad port: {url!r}") from None


class ChannelBase(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True,
                  tag_field="kind"):
    """What every channel has: a name, how hard to try, how often it may notify, and
    when it counts as failing."""

    name: ChannelName
    timeout: Positive = 10.0
    """Seconds one try may take."""
    max_attempts: PositiveInt = 5
    """Tries per notification, the first included."""
    backoff_initial: Positive = 1.0
    """Seconds before the second try; each later wait doubles, with jitter."""
    backoff_max: Positive = 60.0
    rate_limit: Count = 30
    """Notifications per `rate_period`; 0: unlimited. Over it, a notification is not
    sent and counted as rate limited (tests, resolutions and Alertmanager syncs are
    exempt: see ttamond.notify.delivery)."""
    rate_period: Positive = 3600.0
    """Seconds of the sliding window `rate_limit` counts in."""
    fail_after: PositiveInt = 3
    """Notifications given up in a row before the channel counts as failing."""

    def __post_init__(self) -> None:
        if self.backoff_max < self.backoff_initial:
            raise ValueError(f"channel {self.name!r}: backoff_max must be >= backoff_initial")

    @property
    def kind(self) -> str:
        """The channel's kind, as its table says it."""
        return str(type(self).__struct_config__.tag)


class LogChannel(ChannelBase, frozen=True, kw_only=True, tag="log"):
    """Writes each notification as one line to the daemon's log (the journal)."""

    level: Literal["info", "warning", "error"] = "warning"


class WebhookChannel(ChannelBase, frozen=True, kw_only=True, tag="webhook"):
    """POSTs JSON to a URL: ttamond's own format, or Alertmanager's webhook format for
    receivers written for Alertmanager."""

    url: str
    format: Literal["json", "alertmanager"] = "json"
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    token_file: str = ""
    """A file holding a bearer token, read at each send (so a rotated secret is picked
    up) and sent as `Authorization: Bearer <token>`."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_url(self.name, "url", self.url)
        for header, value in self.headers.items():
            if not HEADER_NAME.fullmatch(header) or any(c in value for c in "\r\n\0"):
                raise ValueError(f"channel {self.name!r}: bad HTTP header {header!r}")
        if self.token_file and any(k.lower() == "authorization" for k in self.headers):
            raise ValueError(f"channel {self.name!r}: give token_file or an Authorization"
                             " header, not both")


class SlackChannel(ChannelBase, frozen=True, kw_only=True, tag="slack"):
    """A Slack incoming webhook (or a Mattermost or Rocket.Chat one, which take the
    same JSON). The URL is a secret: errors and logs show only its host."""

    url: str
    channel: str = ""
    """Empty: the webhook's own channel."""
    username: str = "ttamond"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_url(self.name, "url", self.url)


class EmailChannel(ChannelBase, frozen=True, kw_only=True, tag="email"):
    """Mail through an SMTP server, optionally with STARTTLS and a login."""

    host: str
    port: Port = 25
    starttls: bool = False
    username: str = ""
    """Empty: no login."""
    password_file: str = ""
    """A file holding the password, read at each send."""
    sender: str
    to: Annotated[list[str], msgspec.Meta(min_length=1)]
    subject_prefix: str = "[ttamond]"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.host:
            raise ValueError(f"channel {self.name!r}: host must not be empty")
        for address in (self.sender, *self.to):
            if "@" not in address or any(c in address for c in "\r\n"):
                raise ValueError(f"channel {self.name!r}: {address!r} is not a mail address")
        if self.password_file and not self.username:
            raise ValueError(f"channel {self.name!r}: password_file needs a username")


class AlertmanagerChannel(ChannelBase, frozen=True, kw_only=True, tag="alertmanager"):
    """Every firing alert, kept alive in one or more Alertmanagers through the v2 API
    (`POST <url>/api/v2/alerts`), the way Prometheus does it. A sync counts as sent
    when at least one of the URLs accepted it; the others are retried."""

    urls: Annotated[list[str], msgspec.Meta(min_length=1)]
    """Base URLs, such as http://127.0.0.1:9093. Alertmanagers in a cluster do not
    share alerts, so list every one of them."""
    resend_every: Positive = 60.0
    """Seconds between syncs. A firing alert is sent with `endsAt` four of these
    ahead, so Alertmanager resolves it by itself when the daemon goes silent."""
    rate_limit: Count = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        for url in self.urls:
            check_url(self.name, "urls", url)
        if len(set(self.urls)) != len(self.urls):
            raise ValueError(f"channel {self.name!r}: urls lists a URL twice")


class CommandChannel(ChannelBase, frozen=True, kw_only=True, tag="command"):
    """Runs a command (no shell) with the notification as JSON on its standard input and
    a summary in TTAMOND_* environment variables; exit status 0 means delivered."""

    argv: Annotated[list[str], msgspec.Meta(min_length=1)]
    env: dict[str, str] = msgspec.field(default_factory=dict)
    """Added to the daemon's environment, after the TTAMOND_* variables."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.argv[0]:
            raise ValueError(f"channel {self.name!r}: argv[0] must name a command")


AnyChannel = (LogChannel | WebhookChannel | SlackChannel | EmailChannel
              | AlertmanagerChannel | CommandChannel)


def validate_channels(channels: Sequence[AnyChannel]) -> list[str]:
    """Every problem across `channels` (names used twice), one line each; empty when
    sound. Problems within one channel are caught when it is decoded."""
    seen: set[str] = set()
    problems: list[str] = []
    for channel in channels:
        if channel.name in seen:
            problems.append(f"channel {channel.name!r}: defined more than once")
        seen.add(channel.name)
    return problems
