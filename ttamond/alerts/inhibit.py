"""Inhibition: a firing alert (or a dependency that is down) mutes the alerts it explains."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

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


class Inhibitor:
    """One round's inhibitions: the firing alerts that can inhibit, indexed per rule by
    the values of its `equal` labels, so each alert is checked in constant time rather
    than against every firing alert."""

    def __init__(self, rules: Sequence[CompiledInhibition],
                 firing: Iterable[tuple[str, Mapping[str, str]]],
                 down_dependents: Collection[str] = ()) -> None:
        self.rules = rules
        self.down_dependents = set(down_dependents)
        self._sources: list[dict[tuple[str, ...], list[tuple[str, str]]]] = [
            {} for _ in rules]
        for fp, labels in firing:
            for rule, index in zip(rules, self._sources, strict=True):
                if matches(rule.source, labels):
                    key = tuple(labels.get(name, "") for name in rule.equal)
                    index.setdefault(key, []).append((fp, labels.get("alertname", fp)))

    def reason(self, labels: Mapping[str, str], fingerprint: str) -> str | None:
        """Why an alert with these labels is inhibited, or None. An alert never
        inhibits itself. A component the health monitor finds down only because a
        dependency is waits for the dependency's alert."""
        component = labels.get("component", "")
        if component and component in self.down_dependents:
            return f"dependency of {component} is down"
        for rule, index in zip(self.rules, self._sources, strict=True):
            if not index or not matches(rule.target, labels):
                continue
            key = tuple(labels.get(name, "") for name in rule.equal)
            for source_fp, name in index.get(key, ()):
                if source_fp != fingerprint:
                    return f"inhibited by {name}"
        return None
