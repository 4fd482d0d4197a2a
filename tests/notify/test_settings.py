"""Channel settings: decoding by kind, defaults, and one-line errors."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from ttamond.notify.settings import (
    AlertmanagerChannel,
    AnyChannel,
    CommandChannel,
    EmailChannel,
    LogChannel,
    WebhookChannel,
    validate_channels,
)


def decode(table: dict[str, Any]) -> AnyChannel:
    channel: AnyChannel = msgspec.convert(table, AnyChannel)
    return channel


def test_each_kind_decodes_with_its_defaults() -> None:
    webhook = decode({"kind": "webhook", "name": "hook", "url": "https://h.example/in"})
    assert isinstance(webhook, WebhookChannel)
    assert (webhook.format, webhook.timeout, webhook.max_attempts, webhook.rate_limit,
            webhook.rate_period, webhook.fail_after) == ("json", 10.0, 5, 30, 3600.0, 3)
    assert webhook.kind == "webhook"
    log = decode({"kind": "log", "name": "journal"})
    assert isinstance(log, LogChannel) and log.level == "warning"
    mail = decode({"kind": "email", "name": "mail", "host": "smtp", "sender": "m@h.example",
                   "to": ["ops@h.example"]})
    assert isinstance(mail, EmailChannel)
    assert (mail.port, mail.starttls, mail.subject_prefix) == (25, False, "[ttamond]")
    command = decode({"kind": "command", "name": "pager", "argv": ["/bin/true"]})
    assert isinstance(command, CommandChannel) and command.env == {}


def test_alertmanager_syncs_are_not_rate_limited_by_default() -> None:
    channel = decode({"kind": "alertmanager", "name": "am", "urls": ["http://127.0.0.1:9093"]})
    assert isinstance(channel, AlertmanagerChannel)
    assert (channel.rate_limit, channel.resend_every) == (0, 60.0)


@pytest.mark.parametrize(("table", "error"), [
    ({"kind": "webhook", "name": "w", "url": "ftp://h.example/x"},
     r"channel 'w': url must be an http:// or https:// URL with a host, got 'ftp://h.example/x'"),
    ({"kind": "slack", "name": "s", "url": "https:///services/x"},
     r"channel 's': url must be an http:// or https:// URL with a host"),
    ({"kind": "alertmanager", "name": "am", "urls": ["http://a:9093", "a:9093"]},
     r"channel 'am': urls must be an http:// or https:// URL with a host, got 'a:9093'"),
    ({"kind": "alertmanager", "name": "am", "urls": []},
     r"Expected `array` of length >= 1 - at `\$.urls`"),
    ({"kind": "webhook", "name": "w", "url": "http://h:70000/"}, r"channel 'w': url has a bad port"),
    ({"kind": "email", "name": "e", "host": "smtp", "sender": "nobody", "to": ["a@b"]},
     r"channel 'e': 'nobody' is not a mail address"),
    ({"kind": "email", "name": "e", "host": "smtp", "sender": "a@b", "to": []},
     r"Expected `array` of length >= 1 - at `\$.to`"),
    ({"kind": "command", "name": "c", "argv": []}, r"Expected `array` of length >= 1"),
    ({"kind": "webhook", "name": "w", "url": "http://h/", "headers": {"X-A": "1\r\nX-B: 2"}},
     r"channel 'w': bad HTTP header 'X-A'"),
    ({"kind": "webhook", "name": "w", "url": "http://h/", "token_file": "/t",
      "headers": {"authorization": "Basic x"}},
     r"channel 'w': give token_file or an Authorization header, not both"),
    ({"kind": "log", "name": "-bad"}, r"Expected `str` matching regex"),
    ({"kind": "log", "name": "x", "backoff_initial": 10, "backoff_max": 5},
     r"channel 'x': backoff_max must be >= backoff_initial"),
    ({"kind": "log", "name": "x", "levle": "info"}, r"Object contains unknown field `levle`"),
    ({"kind": "pigeon", "name": "x"}, r"Invalid value 'pigeon' - at `\$.kind`"),
])
def test_bad_tables_are_one_clear_line(table: dict[str, Any], error: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=error):
        decode(table)


def test_names_used_twice_are_reported() -> None:
    channels = [decode({"kind": "log", "name": "a"}), decode({"kind": "log", "name": "b"}),
                decode({"kind": "command", "name": "a", "argv": ["true"]})]
    assert validate_channels(channels) == ["channel 'a': defined more than once"]
    assert validate_channels(channels[:2]) == []
