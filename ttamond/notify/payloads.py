"""What each channel kind sends for a notification: pure functions of the notification."""

from __future__ import annotations

import datetime
import html
import re
from collections.abc import Iterable, Mapping
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from ttamond.messages import AlertNotice, Notification

GO_ZERO_TIME = "0001-01-01T00:00:00Z"
"""How Alertmanager writes "no end yet": Go's zero time.Time."""

ALERTMANAGER_LIFETIMES = 4
"""A firing alert synced to Alertmanager ends this many resend intervals ahead unless
renewed (Prometheus keeps a margin of the same kind), so one or two lost syncs do not
resolve it, while a daemon gone silent has its alerts resolved within minutes."""

SLACK_MAX_ATTACHMENTS = 20
"""Alerts shown one by one in a Slack message; the rest are counted in a last line.
Slack refuses messages with more than 100 attachments and folds long ones away."""

SLACK_COLOURS = {"critical": "danger", "warning": "warning", "info": "#439FE0"}
SLACK_RESOLVED_COLOUR = "good"

GENERIC_VERSION = 1


def iso_utc(timestamp_ms: int) -> str:
    """`timestamp_ms` as ISO-8601 in UTC with milliseconds: 2024-05-01T12:00:00.250Z."""
    seconds, millis = divmod(timestamp_ms, 1000)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


def format_value(value: float) -> str:
    """A reading as people read it: up to six significant digits."""
    return f"{value:.6g}"


def alertname(notification: Notification) -> str:
    """The name the group is known by: its grouping label, else its first alert's."""
    if "alertname" in notification.group_labels:
        return notification.group_labels["alertname"]
    for alert in notification.alerts:
        if alert.labels.get("alertname"):
            return alert.labels["alertname"]
    return notification.group_key


def title(notification: Notification) -> str:
    """One line naming the group and its state, as Alertmanager's default templates do:
    `[FIRING:2] HighCpu web1 (escalation level 1)`, `[RESOLVED] HighCpu web1`."""
    firing = sum(alert.status == "firing" for alert in notification.alerts)
    state = f"[FIRING:{firing}]" if firing else "[RESOLVED]"
    others = [value for key, value in sorted(notification.group_labels.items())
              if key != "alertname" and value]
    words = [state, alertname(notification), *others]
    if notification.reason == "test":
        words.insert(0, "[TEST]")
    elif notification.reason == "channel_failing":
        words.insert(0, "[CHANNEL FAILING]")
    elif notification.reason == "repeat":
        words.append("(reminder)")
    elif notification.reason == "escalation":
        words.append(f"(escalation level {notification.level})")
    return " ".join(words)


def common_pairs(mappings: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """The key/value pairs every mapping has, sorted by key; {} for no mappings."""
    shared: dict[str, str] | None = None
    for mapping in mappings:
        if shared is None:
            shared = dict(mapping)
        else:
            shared = {k: v for k, v in shared.items() if mapping.get(k) == v}
    return dict(sorted((shared or {}).items()))


def generic_json(notification: Notification) -> dict[str, Any]:
    """ttamond's own JSON: every field of the notification, times in ISO-8601 UTC.
    What a `json` webhook receives and a command reads on its standard input."""
    return {
        "version": GENERIC_VERSION,
        "id": notification.id,
        "channel": notification.channel,
        "reason": notification.reason,
        "status": notification.status,
        "level": notification.level,
        "title": title(notification),
        "group_key": notification.group_key,
        "group_labels": dict(sorted(notification.group_labels.items())),
        "created_at": iso_utc(notification.created_ms),
        "alerts": [_generic_alert(alert) for alert in notification.alerts],
    }


def _generic_alert(alert: AlertNotice) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "status": alert.status,
        "labels": dict(sorted(alert.labels.items())),
        "annotations": dict(sorted(alert.annotations.items())),
        "starts_at": iso_utc(alert.starts_ms),
        "ends_at": iso_utc(alert.ends_ms) if alert.ends_ms else None,
        "value": alert.value,
        "priority": alert.priority,
        "acknowledged": alert.acknowledged,
        "generator_url": alert.generator_url,
    }


def alertmanager_webhook(notification: Notification, *, external_url: str = "") -> dict[str, Any]:
    """The body Alertmanager's own webhook receiver posts (version 4), so receivers
    written for Alertmanager take ttamond's notifications unchanged. The receiver is
    the channel's name; an alert still firing ends at Go's zero time."""
    return {
        "version": "4",
        "groupKey": notification.group_key,
        "truncatedAlerts": 0,
        "status": notification.status,
        "receiver": notification.channel,
        "groupLabels": dict(sorted(notification.group_labels.items())),
        "commonLabels": common_pairs(alert.labels for alert in notification.alerts),
        "commonAnnotations": common_pairs(alert.annotations for alert in notification.alerts),
        "externalURL": external_url,
        "alerts": [
            {
                "status": alert.status,
                "labels": dict(sorted(alert.labels.items())),
                "annotations": dict(sorted(alert.annotations.items())),
                "startsAt": iso_utc(alert.starts_ms),
                "endsAt": (iso_utc(alert.ends_ms)
                           if alert.status == "resolved" and alert.ends_ms else GO_ZERO_TIME),
                "generatorURL": alert.generator_url,
                "fingerprint": alert.fingerprint,
            }
            for alert in notification.alerts
        ],
    }


def alertmanager_alerts(notification: Notification, *, now_ms: int,
                        resend_every: float) -> list[dict[str, Any]]:
    """The body of Alertmanager's `POST /api/v2/alerts` for a sync.

    A firing alert ends `ALERTMANAGER_LIFETIMES` resend intervals after `now_ms`, so
    Alertmanager resolves it by itself if the syncs stop; a resolved one ends at its
    real end (never before its start, which Alertmanager rejects). Empty label values
    are left out (Prometheus treats them as absent); the priority and the value go in
    as annotations unless the rule set annotations of those names. Label and annotation
    names are made valid Prometheus names: Alertmanager refuses the whole batch for
    one bad name.
    """
    lifetime_ms = round(resend_every * ALERTMANAGER_LIFETIMES * 1000)
    body: list[dict[str, Any]] = []
    for alert in notification.alerts:
        if alert.status == "firing":
            ends_ms = now_ms + lifetime_ms
        else:
            ends_ms = max(alert.ends_ms or now_ms, alert.starts_ms)
        annotations = {label_name(k): v for k, v in alert.annotations.items() if v}
        annotations.setdefault("priority", alert.priority)
        if alert.value is not None:
            annotations.setdefault("value", format_value(alert.value))
        entry: dict[str, Any] = {
            "labels": dict(sorted((label_name(k), v) for k, v in alert.labels.items() if v)),
            "annotations": dict(sorted(annotations.items())),
            "startsAt": iso_utc(alert.starts_ms),
            "endsAt": iso_utc(ends_ms),
        }
        if alert.generator_url:
            entry["generatorURL"] = alert.generator_url
        body.append(entry)
    return body


def label_name(name: str) -> str:
    """`name` as a valid Prometheus label name: other characters become `_`, and a
    leading digit (or nothing) gets a `_` before it."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return cleaned if cleaned[:1].isalpha() or cleaned[:1] == "_" else f"_{cleaned}"


def slack_escape(text: str) -> str:
    """Text safe inside Slack mrkdwn: the three characters Slack reserves, escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(notification: Notification, *, channel: str = "",
                  username: str = "ttamond") -> dict[str, Any]:
    """A Slack incoming-webhook message: the title as `text` (what notifications and
    old clients show) and one attachment per alert, coloured by severity (green once
    resolved), with its summary, value, priority and labels."""
    shown = notification.alerts[:SLACK_MAX_ATTACHMENTS]
    attachments = [_slack_attachment(alert) for alert in shown]
    hidden = len(notification.alerts) - len(shown)
    if hidden:
        attachments.append({"fallback": f"and {hidden} more alerts",
                            "text": f"… and {hidden} more alerts"})
    message: dict[str, Any] = {
        "text": f"*{slack_escape(title(notification))}*",
        "username": username,
        "attachments": attachments,
    }
    if channel:
        message["channel"] = channel
    return message


def _slack_attachment(alert: AlertNotice) -> dict[str, Any]:
    severity = alert.labels.get("severity", "")
    name = alert.labels.get("alertname", alert.fingerprint)
    colour = (SLACK_RESOLVED_COLOUR if alert.status == "resolved"
              else SLACK_COLOURS.get(severity, "#808080"))
    summary = alert.annotations.get("summary", "")
    lines = [slack_escape(summary)] if summary else []
    if alert.annotations.get("description"):
        lines.append(slack_escape(alert.annotations["description"]))
    runbook = alert.annotations.get("runbook_url", "")
    if runbook.startswith(("http://", "https://")) and not any(c in runbook for c in "<>|"):
        lines.append(f"<{runbook}|Runbook>")
    fields = [{"title": "Priority", "value": alert.priority, "short": True},
              {"title": "Severity", "value": slack_escape(severity or "-"), "short": True}]
    if alert.value is not None:
        fields.append({"title": "Value", "value": format_value(alert.value), "short": True})
    if alert.acknowledged:
        fields.append({"title": "Acknowledged", "value": "yes", "short": True})
    fields.append({"title": "Labels", "short": False, "value": " ".join(
        f"`{slack_escape(k)}={slack_escape(v)}`" for k, v in sorted(alert.labels.items()))})
    return {
        "color": colour,
        "fallback": f"{alert.status.upper()} {name}: {summary}",
        "title": f"{alert.status.upper()} {slack_escape(name)}",
        "text": "\n".join(lines),
        "fields": fields,
        "mrkdwn_in": ["text", "fields"],
        "ts": alert.starts_ms // 1000,
    }


def email_subject(notification: Notification, prefix: str) -> str:
    """The subject line: the prefix and the title, on one line whatever the labels hold."""
    return " ".join(f"{prefix} {title(notification)}".split())


def _alert_facts(alert: AlertNotice) -> list[tuple[str, str]]:
    """What a mail says about one alert, as (heading, text) pairs, in reading order."""
    facts = [("Summary", alert.annotations.get("summary", ""))]
    facts += [(key.replace("_", " ").capitalize(), value)
              for key, value in sorted(alert.annotations.items()) if key != "summary"]
    if alert.value is not None:
        facts.append(("Value", format_value(alert.value)))
    facts.append(("Priority", alert.priority + (" (acknowledged)" if alert.acknowledged else "")))
    facts.append(("Started", iso_utc(alert.starts_ms)))
    if alert.status == "resolved" and alert.ends_ms:
        facts.append(("Resolved", iso_utc(alert.ends_ms)))
    facts.append(("Labels", ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))))
    if alert.generator_url:
        facts.append(("Source", alert.generator_url))
    return [(heading, text) for heading, text in facts if text]


def email_text(notification: Notification) -> str:
    """The plain-text body: the title, the group, then each alert and its facts."""
    lines = [title(notification), ""]
    if notification.group_labels:
        lines.append("Group: " + ", ".join(
            f"{k}={v}" for k, v in sorted(notification.group_labels.items())))
    lines += [f"Reason: {notification.reason}", f"Notification: {notification.id}"]
    for alert in notification.alerts:
        name = alert.labels.get("alertname", alert.fingerprint)
        lines += ["", f"{alert.status.upper()}  {name}"]
        lines += [f"  {heading}: {text}" for heading, text in _alert_facts(alert)]
    return "\n".join(lines) + "\n"


def email_html(notification: Notification) -> str:
    """The HTML alternative of `email_text`, every piece of text escaped."""
    def cell(text: str) -> str:
        return html.escape(text).replace("\n", "<br>")

    parts = [f"<html><body><h2>{cell(title(notification))}</h2>"]
    for alert in notification.alerts:
        name = alert.labels.get("alertname", alert.fingerprint)
        colour = "#2eb886" if alert.status == "resolved" else "#e01e5a"
        parts.append(f'<h3 style="color:{colour}">{cell(alert.status.upper())} {cell(name)}</h3>')
        parts.append("<table>")
        parts += [f"<tr><th align=\"left\">{cell(heading)}</th><td>{cell(text)}</td></tr>"
                  for heading, text in _alert_facts(alert)]
        parts.append("</table>")
    parts.append(f"<p><small>{cell(notification.reason)} · {cell(notification.id)}"
                 "</small></p></body></html>")
    return "\n".join(parts)


def email_message(notification: Notification, *, sender: str, to: Iterable[str],
                  subject_prefix: str, now_ms: int) -> EmailMessage:
    """The whole mail: headers, the text body and its HTML alternative. Its Message-ID
    comes from the notification's id, so a retry that reaches the server twice is one
    mail to a client that deduplicates by it."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = email_subject(notification, subject_prefix)
    message["Date"] = format_datetime(
        datetime.datetime.fromtimestamp(now_ms / 1000, datetime.UTC))
    domain = sender.rpartition("@")[2].strip("<> ") or "ttamond.invalid"
    message["Message-ID"] = f"<{_token(notification.id)}@{_token(domain)}>"
    message["X-Ttamond-Group-Key"] = " ".join(notification.group_key.split())[:200]
    message.set_content(email_text(notification))
    message.add_alternative(email_html(notification), subtype="html")
    return message


def _token(text: str) -> str:
    """`text` with anything not allowed in a Message-ID part replaced."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", text)[:120] or "-"


def trial_notification(channel: str, *, notification_id: str, now_ms: int,
                       host: str) -> Notification:
    """What `ttamond alerts test CHANNEL` sends: one firing alert of severity info that
    says it is a test, addressed to `channel`."""
    alert = AlertNotice(
        fingerprint=f"test-{channel}",
        labels={"alertname": "TtamondTest", "severity": "info", "instance": host,
                "channel": channel},
        annotations={"summary": f"Test notification from ttamond on {host} to channel"
                                f" {channel}",
                     "description": "Sent by `ttamond alerts test`; nothing is wrong."},
        status="firing", starts_ms=now_ms, priority="P4")
    return Notification(id=notification_id, channel=channel, reason="test",
                        group_key=f"test:{channel}", group_labels={"alertname": "TtamondTest"},
                        alerts=(alert,), created_ms=now_ms)
