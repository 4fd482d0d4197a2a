"""What people do to alerts: acknowledge, resolve, raise, escalate, silence and unsilence.
Each returns the messages that store the change."""

from __future__ import annotations

import msgspec

from ttamond.alerts.escalator import MANUAL_RULE, Escalator, Raised
from ttamond.alerts.lifecycle import AlertRecord, fingerprint
from ttamond.alerts.routing import reached_level
from ttamond.alerts.silences import MAX_AUTHOR, MAX_COMMENT, Silence, is_blank, new_silence
from ttamond.messages import AlertSaved, Message, SilenceSaved

MIN_PREFIX = 4


class OperationError(ValueError):
    """An operation that cannot be done; `code` is the control protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def find_alert(escalator: Escalator, ref: str) -> AlertRecord:
    """An alert by fingerprint (or a prefix of at least 4 characters), or by alert name
    when exactly one alert of that name is not resolved.

    Raises OperationError (not_found, or ambiguous naming the candidates).
    """
    ref = ref.strip()
    records = escalator.records
    if ref in records:
        return records[ref]
    found = [r for fp, r in records.items() if len(ref) >= MIN_PREFIX and fp.startswith(ref)]
    if not found:
        found = [r for r in records.values()
                 if r.labels.get("alertname") == ref and r.state != "resolved"]
    if len(found) == 1:
        return found[0]
    if not found:
        raise OperationError("not_found", f"no alert {ref!r} (give a fingerprint from"
                             " `ttamond alerts list`, or an alert name)")
    choices = ", ".join(f"{r.fingerprint} {_describe(r)}" for r in found[:5])
    raise OperationError("ambiguous", f"{ref!r} matches {len(found)} alerts: {choices}")


def acknowledge(escalator: Escalator, ref: str, *, by: str, comment: str,
                now_ms: int) -> tuple[AlertRecord, list[Message]]:
    """Acknowledge a firing alert: its escalation stops, repeats stop."""
    record = find_alert(escalator, ref)
    if record.state != "firing":
        raise OperationError("conflict", f"alert {record.fingerprint} is {record.state},"
                             " not firing: nothing to acknowledge")
    if is_blank(by) or len(by) > MAX_AUTHOR:
        raise OperationError("bad_request", f"say who acknowledges (--by, at most {MAX_AUTHOR}"
                             " characters)")
    if len(comment) > MAX_COMMENT:
        raise OperationError("bad_request", f"comment longer than {MAX_COMMENT} characters")
    record.acked_by, record.acked_ms, record.ack_comment = by.strip(), now_ms, comment
    record.updated_ms = now_ms
    return record, [AlertSaved(record=_copy(record), transition="acknowledged",
                               timestamp_ms=now_ms)]


def resolve(escalator: Escalator, ref: str, *, now_ms: int) -> tuple[AlertRecord, list[Message]]:
    """Resolve an alert by hand. A raised alert is taken back; an error alert forgets
    its event; a rule's alert fires again at the next round if its condition holds."""
    record = find_alert(escalator, ref)
    if record.state == "resolved":
        raise OperationError("conflict", f"alert {record.fingerprint} is already resolved")
    escalator.raised.pop(record.fingerprint, None)
    group = record.labels.get("group")
    if group:
        for seen in escalator.signals.seen.values():
            seen.pop(group, None)
    record.state, record.resolved_ms, record.updated_ms = "resolved", now_ms, now_ms
    return record, [AlertSaved(record=_copy(record), transition="resolved",
                               timestamp_ms=now_ms)]


def escalate(escalator: Escalator, ref: str, *, now_ms: int) -> tuple[AlertRecord, list[Message]]:
    """Move a firing alert to its policy's next level now."""
    record = find_alert(escalator, ref)
    if record.state != "firing":
        raise OperationError("conflict", f"alert {record.fingerprint} is {record.state},"
                             " not firing")
    policy = escalator.policies.get(record.escalation)
    if policy is None or record.level + 1 >= len(policy.levels):
        raise OperationError("conflict", f"alert {record.fingerprint} is at its policy's"
                             " last level already")
    # Pretend it fired early enough for the next level: the climb goes on from there.
    record.fired_ms = min(record.fired_ms,
                          now_ms - int(policy.levels[record.level + 1].after_minutes * 60_000))
    record.level = max(record.level + 1, reached_level(record, policy, now_ms))
    record.updated_ms = now_ms
    return record, [AlertSaved(record=_copy(record), transition="escalated",
                               timestamp_ms=now_ms)]


def raise_alert(escalator: Escalator, *, name: str, severity: str, summary: str,
                component: str = "", labels: dict[str, str] | None = None) -> str:
    """Raise an alert that fires until resolved; returns its fingerprint."""
    if severity not in ("info", "warning", "critical"):
        raise OperationError("bad_request", f"severity must be info, warning or critical,"
                             f" not {severity!r}")
    if not name.isidentifier():
        raise OperationError("bad_request", f"alert name {name!r}: letters, digits and _ only")
    extra = {str(k): str(v) for k, v in (labels or {}).items()}
    raised = Raised({**extra, "alertname": name, **({"component": component} if component
                                                     else {})}, summary or name, severity)
    full = {"instance": escalator.host, **raised.labels, "severity": severity}
    fp = fingerprint(full)
    escalator.raised[fp] = raised
    return fp


def silence(escalator: Escalator, matchers: str, *, duration_s: float, author: str,
            comment: str, now_ms: int) -> tuple[Silence, list[Message]]:
    """Create a silence; raises OperationError for bad matchers or missing fields."""
    try:
        created = new_silence(matchers, now_ms=now_ms, duration_s=duration_s, author=author,
                              comment=comment)
    except ValueError as exc:
        raise OperationError("bad_request", str(exc)) from None
    escalator.silences[created.id] = created
    return created, [SilenceSaved(silence=created, timestamp_ms=now_ms)]


def unsilence(escalator: Escalator, silence_id: str, *,
              now_ms: int) -> tuple[Silence, list[Message]]:
    """Expire a silence now."""
    found = [s for sid, s in escalator.silences.items() if sid.startswith(silence_id.strip())]
    if len(found) != 1 or not silence_id.strip():
        known = ", ".join(sorted(escalator.silences)) or "none"
        raise OperationError("not_found", f"no single silence {silence_id!r} (known: {known})")
    current = found[0]
    if current.ends_ms <= now_ms:
        raise OperationError("conflict", f"silence {current.id} has expired already")
    expired = msgspec.structs.replace(current, ends_ms=now_ms)
    escalator.silences[expired.id] = expired
    return expired, [SilenceSaved(silence=expired, timestamp_ms=now_ms)]


def _describe(record: AlertRecord) -> str:
    extra = ",".join(f"{k}={v}" for k, v in sorted(record.labels.items())
                     if k not in ("alertname", "severity", "instance"))
    return f"{record.labels.get('alertname', '?')}{{{extra}}}"


def _copy(record: AlertRecord) -> AlertRecord:
    return msgspec.structs.replace(record, labels=dict(record.labels),
                                   annotations=dict(record.annotations),
                                   firings=list(record.firings), counted=list(record.counted))


__all__ = ["MANUAL_RULE", "OperationError", "acknowledge", "escalate", "find_alert",
           "raise_alert", "resolve", "silence", "unsilence"]
