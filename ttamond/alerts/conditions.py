"""What each rule says this round: for each alert it concerns, its labels, whether its
condition holds, and the value that decided it."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ttamond.alerts.lifecycle import Condition
from ttamond.alerts.rules import (
    AnomalyRule,
    AnyRule,
    CarbonRule,
    ErrorRule,
    HealthRule,
    MetricRule,
    PredictionRule,
)
from ttamond.alerts.signals import ErrorSignals
from ttamond.alerts.windows import Windows, aggregate
from ttamond.selector import Selector
from ttamond.selector import parse_selector as _parse

parse_selector = functools.lru_cache(maxsize=4096)(_parse)

PREDICTION_SERIES = "ttamond_prediction_seconds_to_limit"
CONFIDENCE_SERIES = "ttamond_prediction_confidence"
ANOMALY_SERIES = "ttamond_anomaly_score"
EMISSIONS_SERIES = "ttamond_carbon_emissions_kg_total"
DAY_MS = 86_400_000
LAST_VALUE_HORIZON_MS = 15 * 60_000
"""Predictions and anomaly scores older than this are stale: the rule sees no value."""
TITLE_LABEL_MAX = 120
HYSTERESIS = 1.25
"""A prediction alert clears only once the time left is this much above the limit."""

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


@dataclass(frozen=True, slots=True)
class Instance:
    """One alert a rule speaks about this round."""

    labels: dict[str, str]
    """The rule's own labels for it (series labels, component, ...), before the rule's
    configured labels and alertname/severity/instance are added."""
    condition: Condition
    value: float | None


@dataclass(slots=True)
class Inputs:
    """Everything rules read, gathered once per round."""

    now_ms: int
    windows: Windows
    signals: ErrorSignals
    components: Mapping[str, str] = field(default_factory=dict)
    """Component → health level (ok, degraded, critical, unknown)."""
    checks: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    """Check → (state, component)."""


def horizons(rule: AnyRule) -> list[tuple[Selector, int]]:
    """The series a rule reads and how far back (ms), for `Windows.configure`."""
    match rule:
        case MetricRule():
            return [(parse_selector(rule.series), int(rule.window * 1000))]
        case PredictionRule():
            return [(parse_selector(PREDICTION_SERIES), LAST_VALUE_HORIZON_MS),
                    (parse_selector(CONFIDENCE_SERIES), LAST_VALUE_HORIZON_MS)]
        case AnomalyRule():
            return [(parse_selector(ANOMALY_SERIES), LAST_VALUE_HORIZON_MS)]
        case CarbonRule():
            return [(parse_selector(EMISSIONS_SERIES), DAY_MS)]
        case _:
            return []


def evaluate(rule: AnyRule, inputs: Inputs) -> list[Instance]:
    """The alerts `rule` concerns now. An alert not listed has no data this round."""
    match rule:
        case MetricRule():
            return _metric(rule, inputs)
        case HealthRule():
            return _health(rule, inputs)
        case ErrorRule():
            return _errors(rule, inputs)
        case PredictionRule():
            return _prediction(rule, inputs)
        case AnomalyRule():
            return _anomaly(rule, inputs)
        case CarbonRule():
            return _carbon(rule, inputs)
    raise TypeError(f"no evaluation for {type(rule).__name__}")


def _metric(rule: MetricRule, inputs: Inputs) -> list[Instance]:
    compare = _COMPARE[rule.op]
    since = inputs.now_ms - int(rule.window * 1000)
    found: list[Instance] = []
    for _, labels, points in inputs.windows.select(parse_selector(rule.series)):
        value = aggregate(points, rule.aggregate, since_ms=since)
        if value is None:
            continue
        if compare(value, rule.threshold):
            condition: Condition = "active"
        elif rule.clear is not None and compare(value, rule.clear):
            condition = "hold"
        else:
            condition = "clear"
        found.append(Instance(dict(labels), condition, value))
    return found


def _health(rule: HealthRule, inputs: Inputs) -> list[Instance]:
    found: list[Instance] = []
    if rule.target == "component":
        for name, level in inputs.components.items():
            if rule.names and name not in rule.names:
                continue
            found.append(Instance({"component": name},
                                  "active" if level in rule.states else "clear", None))
        return found
    for name, (state, component) in inputs.checks.items():
        if rule.names and name not in rule.names:
            continue
        found.append(Instance({"check": name, "component": component},
                              "active" if state in rule.states else "clear", None))
    return found


def _errors(rule: ErrorRule, inputs: Inputs) -> list[Instance]:
    now = inputs.now_ms
    if rule.event == "rate":
        rates = inputs.signals.per_minute(now - int(rule.window * 1000), now)
        return [Instance({"component": component},
                         "active" if rate > rule.rate_per_minute else "clear", rate)
                for component, rate in rates.items()
                if not rule.components or component in rule.components]
    found: list[Instance] = []
    for seen in inputs.signals.seen[rule.event].values():
        if rule.components and seen.component not in rule.components:
            continue
        recent = now - seen.last_ms < rule.resolve_after * 1000
        found.append(Instance({"component": seen.component, "group": seen.fingerprint,
                               "title": seen.title[:TITLE_LABEL_MAX]},
                              "active" if recent else "clear", None))
    return found


def _last(points: object) -> float | None:
    sequence = list(points)  # type: ignore[call-overload]
    return float(sequence[-1][1]) if sequence else None


def _prediction(rule: PredictionRule, inputs: Inputs) -> list[Instance]:
    target = parse_selector(rule.target) if rule.target else None
    confidence = {labels: _last(points) for _, labels, points
                  in inputs.windows.select(parse_selector(CONFIDENCE_SERIES))}
    fresh = inputs.now_ms - LAST_VALUE_HORIZON_MS
    found: list[Instance] = []
    for _, labels, points in inputs.windows.select(parse_selector(PREDICTION_SERIES)):
        as_dict = dict(labels)
        if target is not None and not target.matches(as_dict.get("target", ""), as_dict):
            continue
        if not points or points[-1][0] < fresh:
            continue
        hours = points[-1][1] / 3600
        sure = (confidence.get(labels) or 0.0) >= rule.min_confidence
        if hours < rule.below_hours and sure:
            condition: Condition = "active"
        elif hours < rule.below_hours * HYSTERESIS:
            condition = "hold"
        else:
            condition = "clear"
        found.append(Instance(as_dict, condition, round(hours, 2)))
    return found


def _anomaly(rule: AnomalyRule, inputs: Inputs) -> list[Instance]:
    target = parse_selector(rule.target) if rule.target else None
    fresh = inputs.now_ms - LAST_VALUE_HORIZON_MS
    found: list[Instance] = []
    for _, labels, points in inputs.windows.select(parse_selector(ANOMALY_SERIES)):
        as_dict = dict(labels)
        if target is not None and not target.matches(as_dict.get("series", ""), as_dict):
            continue
        recent = [value for ts, value in list(points)[-rule.samples:] if ts >= fresh]
        if not recent:
            continue
        if len(recent) == rule.samples and all(value > rule.above for value in recent):
            condition: Condition = "active"
        elif recent[-1] > rule.above:
            condition = "hold"
        else:
            condition = "clear"
        found.append(Instance(as_dict, condition, recent[-1]))
    return found


def _carbon(rule: CarbonRule, inputs: Inputs) -> list[Instance]:
    found: list[Instance] = []
    for _, labels, points in inputs.windows.select(parse_selector(EMISSIONS_SERIES)):
        used = aggregate(points, "increase", since_ms=inputs.now_ms - DAY_MS)
        if used is None:
            continue
        found.append(Instance(dict(labels), "active" if used > rule.budget_kg_per_day
                              else "clear", used))
    return found
