"""A notification group's memory: what one channel was last told about one group."""

from __future__ import annotations

import msgspec


class NotificationGroup(msgspec.Struct, kw_only=True):
    """Alerts batched for one channel by the `group_by` labels (Alertmanager's
    aggregation group and its notification log entry, in one)."""

    channel: str
    group_key: str
    group_labels: dict[str, str]
    first_seen_ms: int
    """When the group got its first alert: the group wait counts from here."""
    last_sent_ms: int = 0
    notified: list[str] = msgspec.field(default_factory=list)
    """Fingerprints last notified as firing; they are owed a resolution."""
