"""Inhibition: a firing alert (or a dependency that is down) mutes the alerts it explains."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import msgspec

from ttamond.alerts.matchers import matches, parse_matchers
from ttamond.alerts.settings import InhibitRule
from ttamond.selector import Matcher


class CompiledInhibition(msgspec.Struct, frozen=True):
    """An inhibit rule with its matchers parsed."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]


def compile_rules(rules: Sequence[InhibitRule]) -> list[CompiledInhibition]:
    """Parse every rule's matchers (the config validated them already)."""
    return [CompiledInhibition(parse_matchers(rule.source), parse_matchers(rule.target),
                               tuple(rule.equal)) for rule in rules]


def inhibited_by(
    labels: Mapping[str, str],
    fingerprint: str,
    firing: Sequence[tuple[str, Mapping[str, str]]],
    rules: Sequence[CompiledInhibition],
    down_dependents: Collection[str] = (),
) -> str | None:
    """Why an alert is inhibited, or None.

    `firing` holds (fingerprint, labels) of the alerts firing now; an alert never
    inhibits itself. `down_dependents` are components the health monitor finds down
    only because a dependency is: their alerts wait for the dependency's.
    """
    component = labels.get("component", "")
    if component and component in down_dependents:
        return f"dependency of {component} is down"
    for rule in rules:
        if not matches(rule.target, labels):
            continue
        for source_fp, source in firing:
            if source_fp == fingerprint or not matches(rule.source, source):
                continue
            if all(source.get(name, "") == labels.get(name, "") for name in rule.equal):
                return f"inhibited by {source.get('alertname', source_fp)}"
    return None
