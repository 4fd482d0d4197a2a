"""The log sender: one line per notification in the daemon's log, so the journal."""

from __future__ import annotations

import logging

from ttamond.messages import Notification
from ttamond.notify.payloads import title
from ttamond.notify.settings import LogChannel

LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

SUMMARIES_SHOWN = 5
"""Alert summaries written out on the line; the rest are counted."""

log = logging.getLogger(__name__)


def log_line(notification: Notification) -> str:
    """The title, then each alert's summary: one line whatever the labels hold (the
    journal would split a line break into separate entries)."""
    summaries = [alert.annotations.get("summary") or alert.fingerprint
                 for alert in notification.alerts]
    shown = "; ".join(summaries[:SUMMARIES_SHOWN])
    if len(summaries) > SUMMARIES_SHOWN:
        shown += f"; and {len(summaries) - SUMMARIES_SHOWN} more"
    line = f"{title(notification)}: {shown}" if shown else title(notification)
    return " ".join(line.split())


async def send_log(channel: LogChannel, notification: Notification, *, now_ms: int) -> None:
    """Log the notification at the channel's level. Never fails: logging handlers
    report their own errors."""
    log.log(LEVELS[channel.level], "channel %s: %s [group %s, notification %s]",
            channel.name, log_line(notification), notification.group_key, notification.id)
