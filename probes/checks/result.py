"""What every health check returns, how thresholds grade a figure, and shared wording."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import msgspec
import trio

Status = Literal["ok", "warn", "crit"]

_SEVERITY: dict[Status, int] = {"ok": 0, "warn": 1, "crit": 2}


class CheckResult(msgspec.Struct, frozen=True):
    """One run of one check.

    `message` is one line a person can act on; `values` holds the figures worth keeping
    as series (their names and units are listed in each check module's VALUES).
    `latency_ms` is how long the check took, up to the timeout when it timed out.
    """

    status: Status
    latency_ms: float
    message: str
    values: dict[str, float] = msgspec.field(default_factory=dict)


class Thresholds(msgspec.Struct, frozen=True):
    """Warn and crit limits of one figure; None leaves that level out.

    A figure reaching a limit is graded at that level: with `higher_is_worse` a value
    at or above it, otherwise a value at or below it (days until a certificate
    expires). Raises ValueError when the limits are in the wrong order.
    """

    warn: float | None
    crit: float | None
    higher_is_worse: bool = True

    def __post_init__(self) -> None:
        if self.warn is None or self.crit is None:
            return
        if self.higher_is_worse and self.warn > self.crit:
            raise ValueError(f"warn limit {self.warn} is above crit limit {self.crit}")
        if not self.higher_is_worse and self.warn < self.crit:
            raise ValueError(f"warn limit {self.warn} is below crit limit {self.crit} "
                             "(lower is worse here)")

    def grade(self, value: float) -> Status:
        """The level `value` reaches."""
        if self._reached(value, self.crit):
            return "crit"
        if self._reached(value, self.warn):
            return "warn"
        return "ok"

    def limit(self, status: Status) -> float | None:
        """The limit of a level; None for ok and for a level left out."""
        if status == "crit":
            return self.crit
        if status == "warn":
            return self.warn
        return None

    def _reached(self, value: float, limit: float | None) -> bool:
        if limit is None:
            return False
        return value >= limit if self.higher_is_worse else value <= limit


class Findings:
    """The problems one run of a check found. The worst decides the status; the
    message names every problem, worst first, so none hides behind another."""

    def __init__(self) -> None:
        self._found: list[tuple[Status, str]] = []

    def add(self, status: Status, message: str) -> None:
        """Note a problem; an ok status notes nothing."""
        if status != "ok":
            self._found.append((status, message))

    def grade(self, value: float, thresholds: Thresholds, description: str,
              unit: str = "", show: Callable[[float], str] | None = None) -> None:
        """Grade `value` and note it, as "<description> (warn at <limit><unit>)", when it
        reaches a limit; `show` writes the limit (figure() by default)."""
        status = thresholds.grade(value)
        limit = thresholds.limit(status)
        if limit is not None:
            self.add(status, f"{description} ({status} at {(show or figure)(limit)}{unit})")

    def result(self, *, latency_ms: float, ok_message: str,
               values: dict[str, float]) -> CheckResult:
        """The result: `ok_message` when nothing was found."""
        if not self._found:
            return CheckResult("ok", latency_ms, ok_message, values)
        ordered = sorted(self._found, key=lambda found: -_SEVERITY[found[0]])
        message = "; ".join(text for _, text in ordered)
        return CheckResult(ordered[0][0], latency_ms, message, values)


def failed(message: str, *, latency_ms: float = 0.0,
           values: dict[str, float] | None = None) -> CheckResult:
    """A crit result: the checked thing is down or answered wrongly."""
    return CheckResult("crit", latency_ms, message, values or {})


def timed_out(timeout: float, target: str) -> CheckResult:
    """The crit result of a check that ran out of time."""
    return failed(f"timed out after {figure(timeout)} s on {target}",
                  latency_ms=timeout * 1000)


def elapsed_ms(started: float) -> float:
    """Milliseconds since `started`, a trio.current_time() reading."""
    return (trio.current_time() - started) * 1000


def figure(value: float) -> str:
    """A number as a person would write it: 14, 0.85, 1234."""
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 100:
        return str(round(value))
    return f"{value:.3g}"


def percent(ratio: float) -> str:
    """A ratio as a percentage: 0.923 -> "92.3%"."""
    return f"{figure(round(ratio * 100, 1))}%"


def duration(seconds: float) -> str:
    """A span in the largest unit that keeps it at 2 or more: "5 days", "3 hours"."""
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if abs(round(seconds / size)) >= 2:
            return f"{round(seconds / size)} {unit}"
    return f"{round(seconds)} seconds"
