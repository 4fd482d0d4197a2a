"""Which channel hears of which alert, and when: escalation levels, then grouping with
group wait, group interval and repeat interval (Alertmanager's timing)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ttamond.alerts.groups import NotificationGroup
from ttamond.alerts.lifecycle import AlertRecord
from ttamond.alerts.settings import EscalationPolicy, GroupingConfig
from ttamond.messages import NotificationReason


def reached_level(record: AlertRecord, policy: EscalationPolicy, now_ms: int) -> int:
    """The highest level whose delay has passed since the alert fired."""
    elapsed = now_ms - record.fired_ms
    reached = -1
    for index, level in enumerate(policy.levels):
        if elapsed >= level.after_minutes * 60_000:
            reached = index
    return reached


def channels_of(record: AlertRecord, policy: EscalationPolicy) -> dict[str, int]:
    """Channel → the first level (0-based) that names it, for the levels reached."""
    found: dict[str, int] = {}
    for index, level in enumerate(policy.levels[: record.level + 1]):
        for channel in level.channels:
            found.setdefault(channel, index)
    return found


def group_key(channel: str, labels: Mapping[str, str],
              group_by: list[str]) -> tuple[str, dict[str, str]]:
    """The group an alert joins on a channel, and the labels that define it."""
    values = {name: labels.get(name, "") for name in group_by}
    return channel + "|" + ",".join(f"{k}={v}" for k, v in values.items()), values


@dataclass(slots=True)
class Flush:
    """A notification due now for one group."""

    group: NotificationGroup
    reason: NotificationReason
    alerts: list[AlertRecord]
    level: int
    new_alerts: int


@dataclass(slots=True)
class Plan:
    """What routing decided this round."""

    flushes: list[Flush] = field(default_factory=list)
    changed: list[NotificationGroup] = field(default_factory=list)
    forgotten: list[NotificationGroup] = field(default_factory=list)
    next_due_ms: int | None = None


@dataclass(slots=True)
class _Members:
    firing: dict[str, AlertRecord] = field(default_factory=dict)
    levels: dict[str, int] = field(default_factory=dict)
    resolved: dict[str, AlertRecord] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)
    """Notified before, firing still, but muted now: owed a resolution, not a repeat."""


def plan(
    *,
    now_ms: int,
    records: Mapping[str, AlertRecord],
    routes: Mapping[str, dict[str, int]],
    muted: Mapping[str, str],
    groups: dict[str, NotificationGroup],
    grouping: GroupingConfig,
    send_resolved: bool,
) -> Plan:
    """Decide the notifications due now and update `groups` (keyed by group key).

    `routes` maps each firing alert to the channels it has reached (channel → level);
    `muted` maps alerts silenced, inhibited or flapping to the reason.
    """
    members: dict[str, _Members] = {}
    by_channel_key: dict[str, tuple[str, dict[str, str]]] = {}
    for fp, channels in routes.items():
        record = records[fp]
        for channel, level in channels.items():
            key, values = group_key(channel, record.labels, grouping.group_by)
            by_channel_key[key] = (channel, values)
            found = members.setdefault(key, _Members())
            if fp in muted:
                found.held.add(fp)
            else:
                found.firing[fp] = record
                found.levels[fp] = level
    for key, group in groups.items():
        found = members.setdefault(key, _Members())
        for fp in group.notified:
            notified = records.get(fp)
            if notified is None or notified.state == "resolved":
                if notified is not None and notified.flapping:
                    found.held.add(fp)  # a flapping alert's resolution waits till it settles
                elif notified is not None and send_resolved:
                    found.resolved[fp] = notified
            elif fp not in found.firing:
                found.held.add(fp)
    result = Plan()
    for key, found in members.items():
        existing = groups.get(key)
        if existing is None:
            if not found.firing:
                continue
            channel, values = by_channel_key[key]
            group = groups[key] = NotificationGroup(channel=channel, group_key=key,
                                                    group_labels=values, first_seen_ms=now_ms)
            result.changed.append(group)
        else:
            group = existing
        _decide(group, found, now_ms, grouping, result)
        if not group.notified and not found.firing:
            del groups[key]
            result.forgotten.append(group)
    return result


def _decide(group: NotificationGroup, found: _Members, now_ms: int, grouping: GroupingConfig,
            result: Plan) -> None:
    new = [fp for fp in found.firing if fp not in group.notified]
    reason: NotificationReason
    if group.last_sent_ms == 0:
        due, reason = group.first_seen_ms + int(grouping.group_wait * 1000), "firing"
    elif new or found.resolved:
        due = group.last_sent_ms + int(grouping.group_interval * 1000)
        reason = "firing" if new else "resolved"
    elif any(not record.acknowledged for record in found.firing.values()):
        due, reason = group.last_sent_ms + int(grouping.repeat_interval * 1000), "repeat"
    else:
        return
    if not found.firing and not found.resolved:
        return
    if due > now_ms:
        result.next_due_ms = due if result.next_due_ms is None else min(result.next_due_ms, due)
        return
    level = max((found.levels[fp] for fp in new), default=0)
    if new and level > 0:
        reason = "escalation"
    alerts = [*found.firing.values(), *found.resolved.values()]
    result.flushes.append(Flush(group, reason, alerts, level, len(new)))
    group.last_sent_ms = now_ms
    group.notified = sorted({*found.firing, *found.held})
    result.changed.append(group)
