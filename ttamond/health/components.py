"""Component health from check states and heartbeats, with failures traced to dependencies."""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from typing import Literal

import msgspec

Level = Literal["ok", "degraded", "critical", "unknown"]

CHECK_STATES = frozenset({"unknown", "ok", "warn", "crit"})
HEARTBEAT_STATES = frozenset({"active", "silent", "stopped", "absent"})
"""`absent` (or no entry at all): nothing heard yet from the component."""


class ComponentSpec(msgspec.Struct, frozen=True):
    """A platform component: its checks, the components it depends on, and whether it
    reports through the client library (then a silent or stopped heartbeat is down)."""

    name: str
    checks: list[str] = msgspec.field(default_factory=list)
    depends_on: list[str] = msgspec.field(default_factory=list)
    heartbeat: bool = False


class ComponentHealth(msgspec.Struct, frozen=True, kw_only=True):
    """How one component is doing, and why."""

    level: Level
    reason: str
    root_cause: bool
    """The component's problem is its own, not derived from a dependency that is down.
    False for ok and unknown components."""
    failing_checks: list[str]
    """Its own checks in warn or crit, critical ones first."""
    down_dependencies: list[str]
    """Components it depends on, directly or not, whose own health is critical,
    nearest first."""

    def describe(self) -> str:
        """One line for people: `degraded (dependency redis down)`, `ok`."""
        if self.level == "ok":
            return "ok"
        return f"{self.level} ({self.reason})"


class _Own(msgspec.Struct, frozen=True):
    level: Level
    reason: str
    failing_checks: list[str]


def merge_specs(
    declared: Sequence[ComponentSpec], check_components: Mapping[str, str]
) -> list[ComponentSpec]:
    """The components a configuration describes.

    `check_components` maps each check to the component it names (a check may name
    its component instead of being listed in one). The declared components come
    first, each with the checks that name it added after its own list; then one
    component per other name the checks give, in order of appearance, with no
    dependencies and no heartbeat. So `depends_on` may name a component made only of
    checks.
    """
    declared_names = {spec.name for spec in declared}
    extra_checks: dict[str, list[str]] = {}
    for check, component in check_components.items():
        extra_checks.setdefault(component, []).append(check)
    merged = []
    for spec in declared:
        added = [c for c in extra_checks.get(spec.name, []) if c not in spec.checks]
        merged.append(msgspec.structs.replace(spec, checks=[*spec.checks, *added]))
    for component, checks in extra_checks.items():
        if component not in declared_names:
            merged.append(ComponentSpec(component, checks=checks))
    return merged


def validate(specs: Sequence[ComponentSpec], known_checks: Collection[str]) -> list[str]:
    """Every problem in `specs`, one line each naming the component, in spec order.

    Reports empty and duplicate names, unknown checks, unknown dependencies, a component
    depending on itself, and dependency cycles (each cycle once, from its first member).
    Empty when the specs are sound.
    """
    errors: list[str] = []
    names = {spec.name for spec in specs}
    seen: set[str] = set()
    for spec in specs:
        label = f"component {spec.name!r}"
        if not spec.name:
            errors.append(f"{label}: empty name")
        if spec.name in seen:
            errors.append(f"{label}: defined more than once")
        seen.add(spec.name)
        errors.extend(
            f"{label}: unknown check {check!r}{_suggestion(check, known_checks)}"
            for check in spec.checks
            if check not in known_checks
        )
        for dependency in spec.depends_on:
            if dependency == spec.name:
                errors.append(f"{label}: depends on itself")
            elif dependency not in names:
                errors.append(
                    f"{label}: depends on unknown component {dependency!r}"
                    f"{_suggestion(dependency, names)}"
                )
    errors.extend(_cycles(specs))
    return errors


def evaluate(
    specs: Sequence[ComponentSpec],
    check_states: Mapping[str, str],
    heartbeat_states: Mapping[str, str],
) -> dict[str, ComponentHealth]:
    """The health of every component, keyed by name in spec order.

    `check_states` maps check names to `unknown|ok|warn|crit` (a missing check is
    unknown); `heartbeat_states` maps component names to `active|silent|stopped`
    (missing or `absent`: nothing heard yet). A component's own level: critical when
    a check is crit or, for a heartbeat component, the heartbeat is silent or stopped;
    degraded when a check is warn; unknown when nothing about it is known; else ok.
    When a dependency, direct or not, is critical on its own account, the component's
    problems are taken to follow from it: it is degraded (critical if its own level
    is critical), not a root cause, and its reason names the root causes. Dependencies
    on unknown names are ignored and cycles do not loop (`validate` reports both).
    Raises ValueError for a duplicate component name or a state not listed above.
    """
    by_name: dict[str, ComponentSpec] = {}
    for spec in specs:
        if spec.name in by_name:
            raise ValueError(f"component {spec.name!r}: defined more than once")
        by_name[spec.name] = spec
    own = {spec.name: _own_health(spec, check_states, heartbeat_states) for spec in specs}
    down = {
        name: [dep for dep in _dependencies(name, by_name) if own[dep].level == "critical"]
        for name in by_name
    }
    healths: dict[str, ComponentHealth] = {}
    for name, mine in own.items():
        if not down[name]:
            healths[name] = ComponentHealth(
                level=mine.level,
                reason=mine.reason,
                root_cause=mine.level in ("critical", "degraded"),
                failing_checks=mine.failing_checks,
                down_dependencies=[],
            )
            continue
        # Down dependencies with none of their own down are where the trouble starts;
        # within a cycle there is no such one, so all of them are named.
        roots = [dep for dep in down[name] if not down[dep]] or down[name]
        derived = _listing("dependency", "dependencies", roots) + " down"
        problem = mine.level in ("critical", "degraded")
        healths[name] = ComponentHealth(
            level="critical" if mine.level == "critical" else "degraded",
            reason=f"{mine.reason}; {derived}" if problem else derived,
            root_cause=False,
            failing_checks=mine.failing_checks,
            down_dependencies=down[name],
        )
    return healths


def overall(healths: Mapping[str, ComponentHealth]) -> Level:
    """The platform's level: critical when a component is critical on its own account;
    degraded when any is degraded, or critical only through a dependency; unknown when
    every component is unknown (or there are none); else ok."""
    values = list(healths.values())
    if any(health.level == "critical" and health.root_cause for health in values):
        return "critical"
    if any(health.level in ("critical", "degraded") for health in values):
        return "degraded"
    if all(health.level == "unknown" for health in values):
        return "unknown"
    return "ok"


def inhibited(healths: Mapping[str, ComponentHealth]) -> set[str]:
    """Components whose problems are derived from a dependency that is down: their
    alerts wait while the root cause's alert speaks for them."""
    return {
        name
        for name, health in healths.items()
        if health.level in ("critical", "degraded") and not health.root_cause
    }


def _own_health(
    spec: ComponentSpec, check_states: Mapping[str, str], heartbeat_states: Mapping[str, str]
) -> _Own:
    states = {check: check_states.get(check, "unknown") for check in spec.checks}
    for check, state in states.items():
        if state not in CHECK_STATES:
            raise ValueError(
                f"component {spec.name!r}: check {check!r} has unknown state {state!r} "
                "(expected unknown, ok, warn or crit)"
            )
    heartbeat = heartbeat_states.get(spec.name, "absent") if spec.heartbeat else ""
    if heartbeat and heartbeat not in HEARTBEAT_STATES:
        raise ValueError(
            f"component {spec.name!r}: unknown heartbeat state {heartbeat!r} "
            "(expected active, silent, stopped or absent)"
        )
    crit = [check for check, state in states.items() if state == "crit"]
    warn = [check for check, state in states.items() if state == "warn"]
    problems = []
    if crit:
        problems.append(_listing("check", "checks", crit) + " crit")
    if heartbeat in ("silent", "stopped"):
        problems.append(f"no heartbeat for {spec.name} ({heartbeat})")
    if warn:
        problems.append(_listing("check", "checks", warn) + " warn")
    reason = "; ".join(problems)
    if crit or heartbeat in ("silent", "stopped"):
        return _Own("critical", reason, [*crit, *warn])
    if warn:
        return _Own("degraded", reason, warn)
    if any(state == "ok" for state in states.values()) or heartbeat == "active":
        return _Own("ok", "ok", [])
    if not states and not heartbeat:
        return _Own("unknown", "no checks and no heartbeat", [])
    unknowns = []
    if states:
        unknowns.append("no result for " + _listing("check", "checks", list(states)))
    if heartbeat:
        unknowns.append(f"no heartbeat yet from {spec.name}")
    return _Own("unknown", "; ".join(unknowns), [])


def _dependencies(name: str, by_name: Mapping[str, ComponentSpec]) -> list[str]:
    """Every component `name` depends on, directly or not, nearest first, without itself."""
    found: list[str] = []
    seen = {name}
    queue = deque([name])
    while queue:
        for dependency in by_name[queue.popleft()].depends_on:
            if dependency in seen or dependency not in by_name:
                continue
            seen.add(dependency)
            found.append(dependency)
            queue.append(dependency)
    return found


def _cycles(specs: Sequence[ComponentSpec]) -> list[str]:
    """One error per dependency cycle through a component not yet in a reported cycle."""
    edges = {spec.name: [d for d in spec.depends_on if d != spec.name] for spec in specs}
    covered: set[str] = set()
    errors = []
    for spec in specs:
        if spec.name in covered:
            continue
        cycle = _shortest_cycle(spec.name, edges)
        if cycle:
            covered.update(cycle)
            path = " -> ".join([*cycle, spec.name])
            errors.append(f"component {spec.name!r}: dependency cycle {path}")
    return errors


def _shortest_cycle(start: str, edges: Mapping[str, list[str]]) -> list[str]:
    """The components on the shortest path from `start` back to itself, `start` first;
    empty when there is none."""
    parents: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in edges.get(node, []):
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return path[::-1]
            if target not in parents and target in edges:
                parents[target] = node
                queue.append(target)
    return []


def _listing(singular: str, plural: str, names: list[str]) -> str:
    if len(names) == 1:
        return f"{singular} {names[0]}"
    return f"{plural} {', '.join(names)}"


def _suggestion(name: str, candidates: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
