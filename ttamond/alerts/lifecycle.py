"""One alert's life: inactive → pending → firing → resolved, with `for`, hysteresis,
`keep_firing_for`, acknowledgement and flap detection."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Literal

import msgspec

AlertState = Literal["pending", "firing", "resolved"]
Condition = Literal["active", "hold", "clear"]
"""What a rule says of one alert this round: its condition holds; it is between the
firing threshold and the clear threshold (or has no data yet), so nothing changes;
or it does not hold."""
Transition = Literal["pending", "firing", "resolved", "inactive"]
MAX_FIRINGS_KEPT = 32


def fingerprint(labels: Mapping[str, str]) -> str:
    """The identity of an alert: a hash of its sorted label set."""
    text = "\x1e".join(f"{key}\x1f{labels[key]}" for key in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class AlertRecord(msgspec.Struct, kw_only=True):
    """An alert's state; one per label set. Stored whole on every change."""

    fingerprint: str
    rule: str
    """The key of the rule that raises it (kind:name:position)."""
    labels: dict[str, str]
    annotations: dict[str, str]
    severity: str
    priority: str
    escalation: str
    state: AlertState
    value: float | None
    active_since_ms: int
    updated_ms: int
    fired_ms: int = 0
    resolved_ms: int = 0
    last_active_ms: int = 0
    acked_by: str = ""
    acked_ms: int = 0
    ack_comment: str = ""
    level: int = -1
    """The highest escalation level notified during this firing (-1: none yet)."""
    firings: list[int] = msgspec.field(default_factory=list)
    """When it started firing, most recent last (for flap detection)."""
    flapping: bool = False
    counted: list[str] = msgspec.field(default_factory=list)
    """Suppression counters this firing was already counted in (each counts once)."""

    @property
    def acknowledged(self) -> bool:
        """Acknowledged during this firing."""
        return self.acked_ms > 0


def step(record: AlertRecord, condition: Condition, value: float | None, *, now_ms: int,
         for_ms: int, keep_firing_ms: int, flap_threshold: int,
         flap_window_ms: int) -> Transition | None:
    """Move `record` by one evaluation; returns the transition made, if any.

    A pending alert whose condition stops holding becomes `inactive` (the caller
    forgets it); a resolved one whose condition holds again starts over as pending.
    """
    if value is not None:
        record.value = value
    if condition == "active":
        record.last_active_ms = now_ms
    match record.state, condition:
        case "resolved", "active":
            record.state, record.active_since_ms = "pending", now_ms
            record.acked_by, record.acked_ms, record.ack_comment = "", 0, ""
            record.level, record.resolved_ms, record.counted = -1, 0, []
            if for_ms > 0:
                return _touch(record, now_ms, "pending")
            return _fire(record, now_ms, flap_threshold, flap_window_ms)
        case "pending", "active":
            if now_ms - record.active_since_ms >= for_ms:
                return _fire(record, now_ms, flap_threshold, flap_window_ms)
            return None
        case "pending", ("clear" | "hold"):
            return _touch(record, now_ms, "inactive")
        case "firing", "clear":
            if now_ms - record.last_active_ms < keep_firing_ms:
                return None
            record.state, record.resolved_ms = "resolved", now_ms
            return _touch(record, now_ms, "resolved")
        case _:
            _settle_flapping(record, now_ms, flap_threshold, flap_window_ms)
            return None


def new_record(*, fp: str, rule: str, labels: dict[str, str], annotations: dict[str, str],
               severity: str, priority: str, escalation: str, now_ms: int) -> AlertRecord:
    """A resolved placeholder: `step` with an active condition then makes it pending or
    firing, so a new alert and a returning one take the same path."""
    return AlertRecord(fingerprint=fp, rule=rule, labels=labels, annotations=annotations,
                       severity=severity, priority=priority, escalation=escalation,
                       state="resolved", value=None, active_since_ms=now_ms,
                       updated_ms=now_ms)


def _fire(record: AlertRecord, now_ms: int, threshold: int, window_ms: int) -> Transition:
    record.state, record.fired_ms = "firing", now_ms
    record.firings = [t for t in record.firings if now_ms - t < window_ms][-MAX_FIRINGS_KEPT:]
    record.firings.append(now_ms)
    record.flapping = len(record.firings) >= threshold
    return _touch(record, now_ms, "firing")


def _settle_flapping(record: AlertRecord, now_ms: int, threshold: int, window_ms: int) -> None:
    # Flapping ends once the firings within the window fall below half the threshold
    # (hysteresis, so an alert does not flip in and out of flapping).
    if record.flapping:
        recent = [t for t in record.firings if now_ms - t < window_ms]
        if len(recent) < max(1, threshold // 2):
            record.flapping = False
            record.updated_ms = now_ms


def _touch(record: AlertRecord, now_ms: int, transition: Transition) -> Transition:
    record.updated_ms = now_ms
    return transition


def priority(severity: str, *, therapy_critical: bool) -> str:
    """P1 (page now) .. P4: severity, raised one step for a component critical to
    therapy sessions."""
    base = {"critical": 2, "warning": 3, "info": 4}.get(severity, 3)
    return f"P{base - 1 if therapy_critical else base}"
