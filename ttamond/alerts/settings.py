"""The [alerts] table: rules, escalation policies, inhibitions, grouping, fatigue limits."""

from __future__ import annotations

import itertools
from typing import Annotated

import msgspec

from ttamond.alerts.matchers import parse_matchers
from ttamond.alerts.rules import AnyRule, default_rules
from ttamond.selector import SelectorError

Positive = Annotated[float, msgspec.Meta(gt=0)]
Minutes = Annotated[float, msgspec.Meta(ge=0)]
PolicyName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]


class _Table(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of the alert tables: unknown keys are errors."""


class EscalationLevel(_Table, frozen=True, kw_only=True):
    """"If not acknowledged `after_minutes` after firing, notify these channels"."""

    after_minutes: Minutes = 0.0
    channels: list[str]

    def __post_init__(self) -> None:
        if not self.channels:
            raise ValueError("an escalation level needs at least one channel")


class EscalationPolicy(_Table, frozen=True, kw_only=True):
    """Ordered levels; acknowledging stops the climb, resolving notifies every level
    already reached."""

    name: PolicyName
    levels: list[EscalationLevel]

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError(f"escalation {self.name!r}: needs at least one level")
        times = [level.after_minutes for level in self.levels]
        if any(later <= earlier for earlier, later in itertools.pairwise(times)):
            raise ValueError(f"escalation {self.name!r}: after_minutes must increase from"
                             f" level to level (got {times})")


class InhibitRule(_Table, frozen=True, kw_only=True):
    """While an alert matching `source` fires, alerts matching `target` with the same
    values of the `equal` labels are inhibited (Alertmanager's inhibit_rules)."""

    source: str
    target: str
    equal: list[str] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        for field in ("source", "target"):
            try:
                parse_matchers(getattr(self, field))
            except SelectorError as exc:
                raise ValueError(f"inhibit {field}: {exc}") from None


class GroupingConfig(_Table, frozen=True, kw_only=True):
    """How alerts are batched into notifications (Alertmanager's route timing)."""

    group_by: list[str] = msgspec.field(default_factory=lambda: ["alertname", "component"])
    group_wait: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    """Seconds a new group waits for more alerts before its first notification."""
    group_interval: Positive = 300.0
    """Seconds between notifications of a group whose alerts changed."""
    repeat_interval: Positive = 14_400.0
    """Seconds before a group still firing (and not acknowledged) is notified again."""


def default_escalations() -> list[EscalationPolicy]:
    """One policy, `default`: the log channel at once."""
    return [EscalationPolicy(name="default", levels=[EscalationLevel(channels=["log"])])]


def default_inhibitions() -> list[InhibitRule]:
    """A critical alert silences the warning of the same name, component and instance."""
    return [InhibitRule(source='{severity="critical"}', target='{severity="warning"}',
                        equal=["alertname", "component", "instance"])]


class AlertsConfig(_Table, frozen=True, kw_only=True):
    """The alert escalator."""

    enabled: bool = True
    """Changing it takes effect at the next start."""
    instance: str = ""
    """The `instance` label of this daemon's alerts; empty: the host name."""
    evaluate_every: Annotated[float, msgspec.Meta(ge=0.1)] = 5.0
    """Seconds between rule evaluations (critical errors are evaluated at once)."""
    rules: list[AnyRule] = msgspec.field(default_factory=default_rules)
    escalations: list[EscalationPolicy] = msgspec.field(default_factory=default_escalations)
    inhibit: list[InhibitRule] = msgspec.field(default_factory=default_inhibitions)
    inhibit_dependents: bool = True
    """Inhibit the alerts of components the health monitor finds down only because a
    dependency is (their `component` label); the dependency's alert speaks for them."""
    grouping: GroupingConfig = msgspec.field(default_factory=GroupingConfig)
    send_resolved: bool = True
    critical_components: list[str] = msgspec.field(default_factory=list)
    """Components critical to therapy sessions: their alerts get a higher priority
    (with [errors] critical_components)."""
    flap_threshold: Annotated[int, msgspec.Meta(ge=2)] = 4
    """Firings within `flap_window` seconds that make an alert flapping: its further
    firings and resolutions are not notified until it settles."""
    flap_window: Positive = 3600.0
    resolved_keep_hours: Positive = 24.0
    """How long a resolved alert stays in `ttamond alerts list`."""

    def __post_init__(self) -> None:
        names = [policy.name for policy in self.escalations]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"escalations: the name {twice[0]!r} is used twice")
        for rule in self.rules:
            if rule.escalation not in names:
                raise ValueError(f"rule {rule.name!r}: no escalation policy"
                                 f" {rule.escalation!r} (have: {', '.join(names)})")

    def channel_names(self) -> set[str]:
        """Every channel an escalation level names."""
        return {name for policy in self.escalations for level in policy.levels
                for name in level.channels}
