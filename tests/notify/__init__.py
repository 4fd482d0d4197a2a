"""Tests of notification delivery, against real receivers on loopback."""

from __future__ import annotations

from ttamond.messages import AlertNotice, AlertStatus, Notification, NotificationReason

T0 = 1_714_564_800_000
"""2024-05-01T12:00:00Z in milliseconds."""


def alert(name: str = "HighCpu", *, status: AlertStatus = "firing", instance: str = "web1",
          severity: str = "critical", summary: str = "", value: float | None = 97.5,
          starts_ms: int = T0, ends_ms: int = 0, **extra: str) -> AlertNotice:
    """An alert as the escalator hands it over."""
    return AlertNotice(
        fingerprint=f"{name}-{instance}",
        labels={"alertname": name, "severity": severity, "instance": instance, **extra},
        annotations={"summary": summary or f"{name} on {instance}",
                     "runbook_url": "https://runbooks.example/cpu"},
        status=status, starts_ms=starts_ms, ends_ms=ends_ms, value=value, priority="P2",
        generator_url="http://ttamond.example/alerts/1")


def notification(*alerts: AlertNotice, channel: str = "ops", reason: NotificationReason = "firing",
                 id: str = "n-1", level: int = 0) -> Notification:
    """A notification of `alerts` (one firing HighCpu when none given) to `channel`."""
    chosen = alerts or (alert(),)
    return Notification(
        id=id, channel=channel, reason=reason, group_key='{}:{alertname="HighCpu"}',
        group_labels={"alertname": chosen[0].labels["alertname"]}, alerts=chosen,
        created_ms=T0 + 500, level=level)
