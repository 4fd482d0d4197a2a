"""An error group's states, and what a new event does to each (version-aware regressions)."""

from __future__ import annotations

from typing import Literal

from packaging.version import InvalidVersion, Version

GroupState = Literal["unresolved", "resolved", "ignored", "regressed"]
GROUP_STATES: tuple[GroupState, ...] = ("unresolved", "resolved", "ignored", "regressed")


def after_event(state: GroupState, resolved_in: str, release: str) -> GroupState:
    """The state of a group once an event from `release` arrives.

    A resolved group regresses, unless it was resolved "in version X" and the event
    comes from a version known to be older than X (that release still has the bug).
    An event whose version cannot be compared regresses the group: a regression
    shown wrongly costs a look, one hidden wrongly costs a relapse.
    """
    if state != "resolved":
        return state
    if resolved_in and release and is_older(release, resolved_in):
        return "resolved"
    return "regressed"


def is_older(release: str, fixed_in: str) -> bool:
    """Whether `release` is known to come before `fixed_in` (PEP 440 ordering, with a
    dotted-number fallback for versions PEP 440 cannot read; False when unsure)."""
    try:
        return Version(release) < Version(fixed_in)
    except InvalidVersion:
        left, right = _numbers(release), _numbers(fixed_in)
    if left is None or right is None:
        return False
    return left < right


def _numbers(version: str) -> tuple[int, ...] | None:
    parts = version.strip().lstrip("vV").split(".")
    if not all(part.isdigit() for part in parts):
        return None
    return tuple(int(part) for part in parts)
