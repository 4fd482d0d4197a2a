"""Warnings about alert rules that parse but may never fire: series nobody produces,
anomaly scores asked to stay high through the detector's hold."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from ttamond.alerts.rules import AnomalyRule, AnyRule, MetricRule
from ttamond.selector import parse_selector

OPEN_PREFIXES = ("tta_", "ttamond_")
"""Series from components (ingested, `tta_*`) and the daemon's own (`ttamond_*`): any
name with these prefixes may exist, so it is not questioned."""


def known_series() -> set[str]:
    """Every series name ttamond's probes declare."""
    from ttamond.probes import carbon, cgroup, docker, gpu, host, process

    names: set[str] = set()
    for module in (host, process, gpu, docker, cgroup, carbon):
        names.update(module.FIELDS)
    return names


def rule_warnings(rules: Iterable[AnyRule], known: set[str] | None = None) -> list[str]:
    """One line per metric rule whose series name no probe produces, and per anomaly
    rule that wants more than one high score in a row."""
    names = known_series() if known is None else known
    warnings: list[str] = []
    for rule in rules:
        if isinstance(rule, AnomalyRule) and rule.samples > 1:
            warnings.append(f"rule {rule.name!r}: samples = {rule.samples}, but the detector"
                            " scores an event high once and holds the scores after it low;"
                            " it fires only on alarms in a row (use samples = 1)")
        if not isinstance(rule, MetricRule):
            continue
        name = parse_selector(rule.series).name
        if name is None or name in names or name.startswith(OPEN_PREFIXES):
            continue
        close = difflib.get_close_matches(name, sorted(names), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        warnings.append(f"rule {rule.name!r}: no probe produces a series named {name!r}{hint};"
                        " it fires only if a component reports it")
    return warnings
