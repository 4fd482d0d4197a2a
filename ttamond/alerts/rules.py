"""Alert rules as ttamond.toml states them: one table per rule, by kind."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ttamond.alerts.templates import check_template
from ttamond.selector import SelectorError, parse_selector

AlertName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]
Seconds = Annotated[float, msgspec.Meta(ge=0)]
Window = Annotated[float, msgspec.Meta(ge=1)]
LabelName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]
Severity = Literal["info", "warning", "critical"]
Comparison = Literal[">", ">=", "<", "<="]
RESERVED_LABELS = frozenset({"alertname", "severity", "instance"})


class RuleBase(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True,
               tag_field="kind"):
    """What every rule has: the alert's name, severity, labels, annotations, timing and
    the escalation policy its notifications follow."""

    name: AlertName
    """Becomes the alert's `alertname` label."""
    severity: Severity = "warning"
    component: str = ""
    """The component the alert is about (a `component` label): sets the priority and
    lets the health monitor's dependency graph inhibit it."""
    labels: dict[LabelName, str] = msgspec.field(default_factory=dict)
    annotations: dict[str, str] = msgspec.field(default_factory=dict)
    """Templates: {{ $value }}, {{ $threshold }}, {{ $labels.NAME }}."""
    for_: Seconds = msgspec.field(default=0.0, name="for")
    """Seconds the condition must hold (pending) before the alert fires."""
    keep_firing_for: Seconds = 0.0
    """Seconds an alert keeps firing after its condition cleared."""
    escalation: str = "default"
    """The escalation policy (its name in [[alerts.escalations]])."""

    def __post_init__(self) -> None:
        reserved = sorted(RESERVED_LABELS & set(self.labels))
        if reserved:
            raise ValueError(f"rule {self.name!r}: label {reserved[0]!r} is set by ttamond")
        for key, text in self.annotations.items():
            problem = check_template(text)
            if problem:
                raise ValueError(f"rule {self.name!r}: annotation {key!r}: {problem}")


def _check_selector(rule: str, text: str, *, field: str = "series") -> None:
    try:
        parse_selector(text)
    except SelectorError as exc:
        raise ValueError(f"rule {rule!r}: {field}: {exc}") from None


class MetricRule(RuleBase, frozen=True, kw_only=True, tag="metric"):
    """An aggregate of each selected series over a window, compared with a threshold.
    One alert per series; `clear` adds hysteresis (firing until the value is back past
    it)."""

    series: str
    """A selector: `host_cpu_percent{cpu="total"}`."""
    aggregate: Literal["avg", "min", "max", "last", "rate", "increase"] = "avg"
    """`rate` is per second and `increase` over the window, both for counters."""
    window: Window = 300.0
    op: Comparison = ">"
    threshold: float
    clear: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_selector(self.name, self.series)
        if self.clear is not None:
            above = self.op in (">", ">=")
            wrong_side = self.clear > self.threshold if above else self.clear < self.threshold
            if wrong_side:
                side = "at or below" if above else "at or above"
                raise ValueError(f"rule {self.name!r}: clear ({self.clear:g}) must be {side}"
                                 f" the threshold ({self.threshold:g})")


class HealthRule(RuleBase, frozen=True, kw_only=True, tag="health"):
    """A component or a check in one of the given states."""

    target: Literal["component", "check"] = "component"
    names: list[str] = msgspec.field(default_factory=list)
    """Components (or checks) watched; empty: all of them."""
    states: list[Literal["degraded", "critical", "unknown", "warn", "crit"]] = msgspec.field(
        default_factory=lambda: ["critical"]
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        allowed = {"degraded", "critical", "unknown"} if self.target == "component" else {
            "warn", "crit", "unknown"}
        wrong = sorted(set(self.states) - allowed)
        if wrong or not self.states:
            raise ValueError(f"rule {self.name!r}: states for a {self.target} are"
                             f" {', '.join(sorted(allowed))} (got {wrong or 'none'})")


class ErrorRule(RuleBase, frozen=True, kw_only=True, tag="error"):
    """Error tracking: a new group, a regression, a critical error, or a rate above
    `rate_per_minute` over `window`. Event alerts resolve `resolve_after` seconds after
    the last matching event."""

    event: Literal["new_group", "regression", "critical", "rate"]
    components: list[str] = msgspec.field(default_factory=list)
    """Only errors from these components; empty: any."""
    rate_per_minute: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    window: Window = 300.0
    resolve_after: Window = 3600.0


class PredictionRule(RuleBase, frozen=True, kw_only=True, tag="prediction"):
    """A forecast reaching its limit (full disk, memory, file handles) within
    `below_hours`, with at least `min_confidence`."""

    target: str = ""
    """A selector on the predicted series (`host_disk_percent{mountpoint="/"}`); empty:
    every prediction."""
    below_hours: Annotated[float, msgspec.Meta(gt=0)] = 24.0
    min_confidence: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.target:
            _check_selector(self.name, self.target, field="target")


class AnomalyRule(RuleBase, frozen=True, kw_only=True, tag="anomaly"):
    """The anomaly detector's score of a series above `above` for `samples` scores in
    a row.

    The detector reports an event once: after a score of at least its alarm score
    (0.5), it holds the next `quiet_samples` scores below half of that. So the
    defaults fire on every alarm, and `samples` above 1 fires only for alarms that
    follow one another through the hold (`ttamond config check` warns)."""

    target: str = ""
    """A selector on the scored series; empty: every scored series."""
    above: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.499
    """Just under the detector's alarm score, which a score must reach."""
    samples: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.target:
            _check_selector(self.name, self.target, field="target")


class CarbonRule(RuleBase, frozen=True, kw_only=True, tag="carbon"):
    """Emissions over the last 24 hours above a daily budget."""

    budget_kg_per_day: Annotated[float, msgspec.Meta(gt=0)]


AnyRule = MetricRule | HealthRule | ErrorRule | PredictionRule | AnomalyRule | CarbonRule


def default_rules() -> list[AnyRule]:
    """What a daemon with no rules configured alerts on: a component down, a check
    failing, a disk or memory forecast to fill within a day, a critical error, and the
    notification channels themselves (built in, see escalator)."""
    return [
        HealthRule(name="ComponentDown", severity="critical", for_=30.0,
                   annotations={"summary": "component {{ $labels.component }} is critical"}),
        HealthRule(name="CheckFailing", target="check", states=["crit"], severity="warning",
                   annotations={"summary": "check {{ $labels.check }} is failing"}),
        PredictionRule(name="ResourceExhaustionPredicted", below_hours=24.0,
                       annotations={"summary": "{{ $labels.target }} reaches its limit in"
                                               " {{ $value }} h"}),
        ErrorRule(name="CriticalError", event="critical", severity="critical",
                  annotations={"summary": "critical error in {{ $labels.component }}:"
                                          " {{ $labels.title }}"}),
    ]
