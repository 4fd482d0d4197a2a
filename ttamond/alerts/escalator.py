"""The escalator's engine: rules into alerts, alerts through silences and inhibitions,
escalation and grouping into notifications, and every change as a message to store.

Synchronous and clock-free (every call takes `now_ms`), so the actor around it is thin
and tests can drive it step by step.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from ttamond.alerts.conditions import Inputs, Instance, evaluate, horizons
from ttamond.alerts.groups import NotificationGroup
from ttamond.alerts.inhibit import Inhibitor, compile_rules
from ttamond.alerts.lifecycle import AlertRecord, fingerprint, new_record, priority, step
from ttamond.alerts.routing import channels_of, plan, reached_level
from ttamond.alerts.rules import AnyRule, ErrorRule
from ttamond.alerts.settings import AlertsConfig, EscalationLevel, EscalationPolicy
from ttamond.alerts.signals import ErrorSignals
from ttamond.alerts.silences import Silence, silenced_by
from ttamond.alerts.templates import render
from ttamond.alerts.windows import Windows
from ttamond.messages import (
    AlertCountersSaved,
    AlertForgotten,
    AlertNotice,
    AlertSaved,
    Message,
    Notification,
    NotificationGroupForgotten,
    NotificationGroupSaved,
)

log = logging.getLogger(__name__)

CHANNEL_RULE = "builtin:NotificationChannelFailing"
ACTOR_RULE = "builtin:ActorFailed"
MANUAL_RULE = "builtin:Raised"
STARTUP_GRACE_MS = 60_000
"""After a start, an alert restored as firing is not resolved for want of data until
this long (or its rule's window, if longer) has passed: checks, heartbeats and metric
windows need that long to speak again."""
SYNC_RESOLVED_MS = 15 * 60_000
"""Resolved alerts are re-sent to Alertmanager for this long, as Prometheus does."""
COUNTERS = ("notifications", "suppressed_silence", "suppressed_inhibition",
            "suppressed_grouping", "suppressed_flapping", "suppressed_acknowledged")


@dataclass(slots=True)
class Outcome:
    """What one evaluation produced: changes to store, then notifications to send."""

    saves: list[Message] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    next_due_ms: int | None = None


@dataclass(slots=True)
class Raised:
    """An alert raised by something other than a rule: a failing channel or actor, or
    a person or component through `trigger_alert`. It fires until taken back."""

    labels: dict[str, str]
    summary: str
    severity: str = "critical"


class Escalator:
    """All alert state of one daemon, with the settings that drive it."""

    def __init__(self, config: AlertsConfig, *, host: str, alertmanagers: Mapping[str, float],
                 channels: Collection[str], therapy_critical: Collection[str] = (),
                 started_ms: int) -> None:
        self.records: dict[str, AlertRecord] = {}
        self.silences: dict[str, Silence] = {}
        self.groups: dict[str, NotificationGroup] = {}
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.windows = Windows()
        self.signals = ErrorSignals()
        self.failing_channels: dict[str, str] = {}
        self.failed_actors: dict[str, str] = {}
        self.outbox: list[Notification] = []
        """Notifications decided before a restart and never delivered: sent first."""
        self.raised: dict[str, Raised] = {}
        """Alerts raised through `trigger_alert`, by key."""
        self.muted: dict[str, str] = {}
        self.started_ms = started_ms
        self._synced_ms: dict[str, int] = {}
        self._sync_signature: tuple[str, ...] = ()
        self.configure(config, host=host, alertmanagers=alertmanagers, channels=channels,
                       therapy_critical=therapy_critical)

    def configure(self, config: AlertsConfig, *, host: str, alertmanagers: Mapping[str, float],
                  channels: Collection[str], therapy_critical: Collection[str] = ()) -> None:
        """Apply (new) settings; alert state is kept."""
        self.config = config
        self.host = host
        self.alertmanagers = dict(alertmanagers)
        """Alertmanager channel → seconds between re-sends."""
        self.channels = [name for name in channels if name not in alertmanagers]
        self.therapy_critical = set(therapy_critical) | set(config.critical_components)
        self.rules: dict[str, AnyRule] = {
            f"{rule.__struct_config__.tag}:{rule.name}:{index}": rule
            for index, rule in enumerate(config.rules)}
        self.policies = {policy.name: policy for policy in config.escalations}
        self.inhibitions = compile_rules(config.inhibit)
        self.windows.configure([pair for rule in config.rules for pair in horizons(rule)])
        self.grace_ms = max([STARTUP_GRACE_MS, *(int(getattr(rule, "window", 0) * 1000)
                                                 for rule in config.rules)])

    def restore(self, records: Iterable[AlertRecord], silences: Iterable[Silence],
                groups: Iterable[NotificationGroup], counters: Mapping[str, int],
                outbox: Iterable[Notification] = ()) -> None:
        """Take the state stored before a restart."""
        self.outbox.extend(outbox)
        self.records.update((record.fingerprint, record) for record in records)
        self.silences.update((silence.id, silence) for silence in silences)
        self.groups.update((group.group_key, group) for group in groups)
        for name, value in counters.items():
            self.counters[name] = value
        for record in self.records.values():
            if record.state == "firing" and record.rule == CHANNEL_RULE:
                self.failing_channels[record.labels.get("channel", "")] = "before restart"
            if record.state == "firing" and record.rule == ACTOR_RULE:
                self.failed_actors[record.labels.get("actor", "")] = "before restart"
            if record.state == "firing" and record.rule == MANUAL_RULE:
                self.raised[record.fingerprint] = Raised(
                    {k: v for k, v in record.labels.items() if k not in ("instance", "severity")},
                    record.annotations.get("summary", ""), record.severity)

    # Evaluation.

    def evaluate(self, now_ms: int, *, components: Mapping[str, str] | None = None,
                 checks: Mapping[str, tuple[str, str]] | None = None,
                 down_dependents: Collection[str] = ()) -> Outcome:
        """One round: every rule, then silences, inhibitions, escalation and grouping."""
        outcome = Outcome()
        inputs = Inputs(now_ms=now_ms, windows=self.windows, signals=self.signals,
                        components=components or {}, checks=checks or {})
        seen: set[str] = set()
        for key, rule in self.rules.items():
            for instance in evaluate(rule, inputs):
                seen.add(self._apply(key, rule, instance, now_ms, outcome))
        for instance_key, builtin in self._builtins():
            seen.add(self._apply_builtin(instance_key, builtin, now_ms, outcome))
        self._without_data(seen, now_ms, outcome)
        self._escalate(now_ms, down_dependents, outcome)
        self._route(now_ms, outcome)
        self._sync(now_ms, outcome)
        self.signals.forget(now_ms, keep_ms=max(
            (int(r.resolve_after * 1000) for r in self.config.rules if isinstance(r, ErrorRule)),
            default=0) + 60_000)
        if any(isinstance(save, AlertSaved) for save in outcome.saves) or outcome.notifications:
            outcome.saves.append(AlertCountersSaved(counters=dict(self.counters),
                                                    timestamp_ms=now_ms))
        return outcome

    def _labels(self, rule: AnyRule, instance: Instance) -> dict[str, str]:
        labels = dict(instance.labels)
        if rule.component:
            labels["component"] = rule.component
        labels.update(rule.labels)
        labels.setdefault("instance", self.host)
        labels["alertname"] = rule.name
        labels["severity"] = rule.severity
        return labels

    def _apply(self, key: str, rule: AnyRule, instance: Instance, now_ms: int,
               outcome: Outcome) -> str:
        labels = self._labels(rule, instance)
        fp = fingerprint(labels)
        record = self.records.get(fp)
        if record is None:
            if instance.condition != "active":
                return fp
            record = self.records[fp] = new_record(
                fp=fp, rule=key, labels=labels, annotations={}, severity=rule.severity,
                priority=priority(rule.severity,
                                  therapy_critical=labels.get("component", "") in
                                  self.therapy_critical),
                escalation=rule.escalation, now_ms=now_ms)
        record.rule, record.escalation = key, rule.escalation
        threshold = getattr(rule, "threshold", None)
        annotations = {name: render(text, labels=labels, value=instance.value,
                                    threshold=threshold)
                       for name, text in rule.annotations.items()}
        annotations.setdefault("summary", f"{rule.name} on {labels['instance']}")
        self._step(record, instance.condition, instance.value, annotations, now_ms,
                   for_ms=int(rule.for_ * 1000), keep_ms=int(rule.keep_firing_for * 1000),
                   outcome=outcome)
        return fp

    def _step(self, record: AlertRecord, condition: str, value: float | None,
              annotations: dict[str, str], now_ms: int, *, for_ms: int, keep_ms: int,
              outcome: Outcome) -> None:
        before_annotations = record.annotations
        if condition == "active" or record.state != "resolved":
            record.annotations = annotations
        transition = step(record, condition, value, now_ms=now_ms,  # type: ignore[arg-type]
                          for_ms=for_ms, keep_firing_ms=keep_ms,
                          flap_threshold=self.config.flap_threshold,
                          flap_window_ms=int(self.config.flap_window * 1000))
        if transition == "inactive":
            del self.records[record.fingerprint]
            outcome.saves.append(AlertForgotten(fingerprint=record.fingerprint,
                                                timestamp_ms=now_ms))
            return
        if transition is not None:
            log.info("alert %s %s: %s", record.labels.get("alertname"), transition,
                     record.annotations.get("summary", ""))
            if transition == "firing" and record.flapping:
                self._count("suppressed_flapping", record, None)
        if transition is not None or (record.state == "firing"
                                      and record.annotations != before_annotations):
            outcome.saves.append(AlertSaved(record=_copy(record), transition=transition or "",
                                            timestamp_ms=now_ms))

    def _without_data(self, seen: set[str], now_ms: int, outcome: Outcome) -> None:
        # An alert no rule spoke of: its rule was removed, or its series went quiet.
        # Just after a start the windows are still filling, so wait for them first.
        settling = now_ms - self.started_ms < self.grace_ms
        for record in list(self.records.values()):
            if record.fingerprint in seen or record.state == "resolved":
                continue
            if settling and record.rule in self.rules:
                continue
            self._step(record, "clear", None, record.annotations, now_ms, for_ms=0,
                       keep_ms=self._keep_ms(record), outcome=outcome)
        cutoff = now_ms - int(self.config.resolved_keep_hours * 3_600_000)
        for record in list(self.records.values()):
            if record.state == "resolved" and record.updated_ms < cutoff and not any(
                    record.fingerprint in group.notified for group in self.groups.values()):
                del self.records[record.fingerprint]

    def _keep_ms(self, record: AlertRecord) -> int:
        rule = self.rules.get(record.rule)
        return int(rule.keep_firing_for * 1000) if rule is not None else 0

    # Built-in alerts: the daemon's own notification channels and actors.

    def _builtins(self) -> list[tuple[str, Raised]]:
        found = [(CHANNEL_RULE, Raised(
            {"alertname": "NotificationChannelFailing", "channel": name},
            f"notification channel {name} is failing: {error}"))
            for name, error in self.failing_channels.items()]
        found += [(ACTOR_RULE, Raised(
            {"alertname": "ActorFailed", "actor": name},
            f"ttamond actor {name} failed: {error}")) for name, error in self.failed_actors.items()]
        found += [(MANUAL_RULE, raised) for raised in self.raised.values()]
        return found

    def _apply_builtin(self, key: str, builtin: Raised, now_ms: int, outcome: Outcome) -> str:
        labels = {"instance": self.host, **builtin.labels, "severity": builtin.severity}
        fp = fingerprint(labels)
        record = self.records.get(fp)
        if record is None:
            component = labels.get("component", "")
            record = self.records[fp] = new_record(
                fp=fp, rule=key, labels=labels, annotations={}, severity=builtin.severity,
                priority=priority(builtin.severity,
                                  therapy_critical=component in self.therapy_critical),
                escalation="default",
                now_ms=now_ms)
        self._step(record, "active", None, {"summary": builtin.summary}, now_ms, for_ms=0,
                   keep_ms=0, outcome=outcome)
        return fp

    # Silences, inhibitions, escalation, routing.

    def _escalate(self, now_ms: int, down_dependents: Collection[str], outcome: Outcome) -> None:
        dependents = down_dependents if self.config.inhibit_dependents else ()
        inhibitor = Inhibitor(self.inhibitions, ((fp, r.labels) for fp, r in self.records.items()
                                                 if r.state == "firing"), dependents)
        self.muted = {}
        for fp, record in self.records.items():
            if record.state != "firing":
                continue
            reason = self._mute_reason(record, inhibitor, now_ms, outcome)
            if reason is not None:
                self.muted[fp] = reason
                continue
            if record.acknowledged:
                continue
            level = reached_level(record, self._policy(record), now_ms)
            if level > record.level:
                record.level, record.updated_ms = level, now_ms
                outcome.saves.append(AlertSaved(record=_copy(record), transition="escalated",
                                                timestamp_ms=now_ms))

    def _mute_reason(self, record: AlertRecord, inhibitor: Inhibitor, now_ms: int,
                     outcome: Outcome) -> str | None:
        silences = silenced_by(self.silences.values(), record.labels, now_ms)
        if silences:
            self._count("suppressed_silence", record, outcome)
            return f"silenced by {', '.join(silences)}"
        reason = inhibitor.reason(record.labels, record.fingerprint)
        if reason is not None:
            self._count("suppressed_inhibition", record, outcome)
            return reason
        if record.flapping and len(record.firings) > self.config.flap_threshold:
            return "flapping"
        return None

    def _policy(self, record: AlertRecord) -> EscalationPolicy:
        if record.rule == CHANNEL_RULE:
            # Around the failing channel: every other channel, at once.
            others = [c for c in self.channels if c != record.labels.get("channel")]
            return EscalationPolicy(name="channel-failing",
                                    levels=[EscalationLevel(channels=others or ["log"])])
        return self.policies.get(record.escalation) or next(iter(self.policies.values()))

    def _route(self, now_ms: int, outcome: Outcome) -> None:
        routes = {fp: {c: lvl for c, lvl in channels_of(r, self._policy(r)).items()
                       if c not in self.alertmanagers}
                  for fp, r in self.records.items() if r.state == "firing" and r.level >= 0}
        result = plan(now_ms=now_ms, records=self.records, routes=routes, muted=self.muted,
                      groups=self.groups, grouping=self.config.grouping,
                      send_resolved=self.config.send_resolved)
        for flush in result.flushes:
            notices = tuple(self.notice(r) for r in flush.alerts)
            outcome.notifications.append(Notification(
                id=secrets.token_hex(8), channel=flush.group.channel, reason=flush.reason,
                group_key=flush.group.group_key, group_labels=flush.group.group_labels,
                alerts=notices, created_ms=now_ms, level=flush.level))
            self.counters["notifications"] += 1
            self.counters["suppressed_grouping"] += max(0, flush.new_alerts - 1)
            if flush.reason == "repeat":
                acked = sum(r.acknowledged for r in flush.alerts)
                self.counters["suppressed_acknowledged"] += acked
        for group in result.changed:
            if group.group_key in self.groups:
                outcome.saves.append(NotificationGroupSaved(group=_copy_group(group),
                                                            timestamp_ms=now_ms))
        for group in result.forgotten:
            outcome.saves.append(NotificationGroupForgotten(
                channel=group.channel, group_key=group.group_key, timestamp_ms=now_ms))
        outcome.next_due_ms = result.next_due_ms

    def _sync(self, now_ms: int, outcome: Outcome) -> None:
        # Every Alertmanager hears of every firing alert (and those resolved lately),
        # when the set changes and again every `resend_every`, so a fleet's
        # Alertmanagers hold the same alerts whichever daemon raised them.
        firing = [r for r in self.records.values() if r.state == "firing"
                  and not self.muted.get(r.fingerprint, "").startswith("silenced")]
        resolved = [r for r in self.records.values() if r.state == "resolved" and r.fired_ms
                    and now_ms - r.resolved_ms < SYNC_RESOLVED_MS]
        signature = tuple(sorted(r.fingerprint + r.state for r in [*firing, *resolved]))
        changed = signature != self._sync_signature
        self._sync_signature = signature
        for channel, every in self.alertmanagers.items():
            last = self._synced_ms.get(channel, 0)
            if not (firing or resolved) or (not changed and now_ms - last < every * 1000):
                continue
            self._synced_ms[channel] = now_ms
            outcome.notifications.append(Notification(
                id=secrets.token_hex(8), channel=channel, reason="sync", group_key="all",
                group_labels={}, alerts=tuple(self.notice(r) for r in [*firing, *resolved]),
                created_ms=now_ms))

    def notice(self, record: AlertRecord) -> AlertNotice:
        """The alert as channels see it."""
        return AlertNotice(
            fingerprint=record.fingerprint, labels=dict(record.labels),
            annotations=dict(record.annotations),
            status="firing" if record.state == "firing" else "resolved",
            starts_ms=record.fired_ms or record.active_since_ms,
            ends_ms=record.resolved_ms if record.state == "resolved" else 0,
            value=record.value, priority=record.priority, acknowledged=record.acknowledged)

    def _count(self, counter: str, record: AlertRecord, outcome: Outcome | None) -> None:
        # Once per alert per firing, however many rounds (or restarts) it stays muted:
        # the record remembers, and is saved with the counters.
        if counter in record.counted:
            return
        record.counted.append(counter)
        self.counters[counter] += 1
        if outcome is not None:
            outcome.saves.append(AlertSaved(record=_copy(record), transition="",
                                            timestamp_ms=record.updated_ms))


def _copy(record: AlertRecord) -> AlertRecord:
    import msgspec

    return msgspec.structs.replace(record, labels=dict(record.labels),
                                   annotations=dict(record.annotations),
                                   firings=list(record.firings), counted=list(record.counted))


def _copy_group(group: NotificationGroup) -> NotificationGroup:
    import msgspec

    return msgspec.structs.replace(group, notified=list(group.notified),
                                   group_labels=dict(group.group_labels))
