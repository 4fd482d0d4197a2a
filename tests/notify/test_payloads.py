"""What each kind of channel is sent: the shapes receivers depend on."""

from __future__ import annotations

import msgspec

from tests.notify import T0, alert, notification
from ttamond.notify.payloads import (
    GO_ZERO_TIME,
    alertmanager_alerts,
    alertmanager_webhook,
    email_html,
    email_message,
    email_subject,
    email_text,
    generic_json,
    iso_utc,
    slack_message,
    title,
    trial_notification,
)


def test_times_are_iso_utc_with_milliseconds() -> None:
    assert iso_utc(T0) == "2024-05-01T12:00:00.000Z"
    assert iso_utc(T0 + 1250) == "2024-05-01T12:00:01.250Z"
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"


def test_titles_count_firing_alerts_and_say_why() -> None:
    two = notification(alert(), alert(instance="web2"))
    assert title(two) == "[FIRING:2] HighCpu"
    assert title(notification(alert(status="resolved", ends_ms=T0 + 60_000))) == (
        "[RESOLVED] HighCpu")
    assert title(notification(reason="escalation", level=2)) == (
        "[FIRING:1] HighCpu (escalation level 2)")
    assert title(notification(reason="repeat")) == "[FIRING:1] HighCpu (reminder)"
    assert title(notification(reason="test")) == "[TEST] [FIRING:1] HighCpu"


def test_generic_json_has_every_field() -> None:
    body = generic_json(notification(alert(), alert(instance="web2", status="resolved",
                                                    ends_ms=T0 + 90_000, value=None)))
    assert {k: body[k] for k in ("version", "id", "channel", "reason", "status", "level",
                                 "group_key", "group_labels", "created_at")} == {
        "version": 1, "id": "n-1", "channel": "ops", "reason": "firing", "status": "firing",
        "level": 0, "group_key": '{}:{alertname="HighCpu"}',
        "group_labels": {"alertname": "HighCpu"}, "created_at": "2024-05-01T12:00:00.500Z"}
    first, second = body["alerts"]
    assert first == {
        "fingerprint": "HighCpu-web1", "status": "firing",
        "labels": {"alertname": "HighCpu", "instance": "web1", "severity": "critical"},
        "annotations": {"runbook_url": "https://runbooks.example/cpu",
                        "summary": "HighCpu on web1"},
        "starts_at": "2024-05-01T12:00:00.000Z", "ends_at": None, "value": 97.5,
        "priority": "P2", "acknowledged": False,
        "generator_url": "http://ttamond.example/alerts/1"}
    assert (second["status"], second["ends_at"], second["value"]) == (
        "resolved", "2024-05-01T12:01:30.000Z", None)


def test_the_alertmanager_webhook_format_matches_alertmanagers_own() -> None:
    body = alertmanager_webhook(notification(alert(), alert(instance="web2", status="resolved",
                                                            ends_ms=T0 + 90_000)))
    assert list(body) == ["version", "groupKey", "truncatedAlerts", "status", "receiver",
                          "groupLabels", "commonLabels", "commonAnnotations", "externalURL",
                          "alerts"]
    assert (body["version"], body["truncatedAlerts"], body["status"], body["receiver"]) == (
        "4", 0, "firing", "ops")
    assert body["groupKey"] == '{}:{alertname="HighCpu"}'
    assert body["commonLabels"] == {"alertname": "HighCpu", "severity": "critical"}
    assert body["commonAnnotations"] == {"runbook_url": "https://runbooks.example/cpu"}
    firing, resolved = body["alerts"]
    assert firing == {
        "status": "firing",
        "labels": {"alertname": "HighCpu", "instance": "web1", "severity": "critical"},
        "annotations": {"runbook_url": "https://runbooks.example/cpu",
                        "summary": "HighCpu on web1"},
        "startsAt": "2024-05-01T12:00:00.000Z", "endsAt": GO_ZERO_TIME,
        "generatorURL": "http://ttamond.example/alerts/1", "fingerprint": "HighCpu-web1"}
    assert (resolved["status"], resolved["endsAt"]) == ("resolved", "2024-05-01T12:01:30.000Z")


def test_alertmanager_api_alerts_expire_unless_renewed() -> None:
    now = T0 + 600_000
    body = alertmanager_alerts(
        notification(alert(team=""), alert(instance="web2", status="resolved",
                                           ends_ms=T0 + 90_000, value=None)),
        now_ms=now, resend_every=30.0)
    firing, resolved = body
    assert firing == {
        "labels": {"alertname": "HighCpu", "instance": "web1", "severity": "critical"},
        "annotations": {"priority": "P2", "runbook_url": "https://runbooks.example/cpu",
                        "summary": "HighCpu on web1", "value": "97.5"},
        "startsAt": "2024-05-01T12:00:00.000Z",
        "endsAt": iso_utc(now + 4 * 30_000),
        "generatorURL": "http://ttamond.example/alerts/1"}
    assert resolved["endsAt"] == "2024-05-01T12:01:30.000Z"
    assert "value" not in resolved["annotations"]


def test_slack_messages_are_coloured_and_escaped() -> None:
    message = slack_message(
        notification(alert(summary="load <5> & rising"),
                     alert(instance="web2", severity="warning"),
                     alert(instance="web3", status="resolved", ends_ms=T0 + 1)),
        channel="#ops", username="bot")
    assert message["text"] == "*[FIRING:2] HighCpu*"
    assert (message["channel"], message["username"]) == ("#ops", "bot")
    critical, warning, resolved = message["attachments"]
    assert [critical["color"], warning["color"], resolved["color"]] == [
        "danger", "warning", "good"]
    assert critical["text"].splitlines() == [
        "load &lt;5&gt; &amp; rising", "<https://runbooks.example/cpu|Runbook>"]
    fields = {f["title"]: f["value"] for f in critical["fields"]}
    assert fields["Priority"] == "P2" and fields["Value"] == "97.5"
    assert fields["Labels"] == "`alertname=HighCpu` `instance=web1` `severity=critical`"
    assert "channel" not in slack_message(notification())


def test_slack_messages_fold_many_alerts() -> None:
    many = notification(*(alert(instance=f"web{i}") for i in range(25)))
    attachments = slack_message(many)["attachments"]
    assert len(attachments) == 21
    assert attachments[-1]["text"] == "… and 5 more alerts"


def test_mail_text_html_and_headers() -> None:
    sent = notification(alert(summary="<b>hot</b>\ninjected: header"))
    assert email_subject(sent, "[ttamond]") == "[ttamond] [FIRING:1] HighCpu"
    text = email_text(sent)
    assert text.startswith("[FIRING:1] HighCpu\n\nGroup: alertname=HighCpu\nReason: firing\n")
    assert "  Summary: <b>hot</b>\ninjected: header\n" in text
    assert "  Value: 97.5\n" in text and "  Priority: P2\n" in text
    assert "  Labels: alertname=HighCpu, instance=web1, severity=critical\n" in text
    html = email_html(sent)
    assert "&lt;b&gt;hot&lt;/b&gt;<br>injected: header" in html and "<b>hot" not in html
    message = email_message(sent, sender="ttamond@h.example", to=["a@h.example", "b@h.example"],
                            subject_prefix="[prod]\n", now_ms=T0)
    assert message["Subject"] == "[prod] [FIRING:1] HighCpu"
    assert message["To"] == "a@h.example, b@h.example"
    assert message["Message-ID"] == "<n-1@h.example>"
    assert message["Date"] == "Wed, 01 May 2024 12:00:00 +0000"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain", "text/html"]


def test_a_trial_notification_says_it_is_a_test() -> None:
    trial = trial_notification("ops", notification_id="t-1", now_ms=T0, host="h1")
    assert (trial.reason, trial.status, trial.channel) == ("test", "firing", "ops")
    (only,) = trial.alerts
    assert only.labels == {"alertname": "TtamondTest", "severity": "info", "instance": "h1",
                           "channel": "ops"}
    assert only.annotations["summary"] == "Test notification from ttamond on h1 to channel ops"


def test_alertmanager_api_names_are_made_valid() -> None:
    odd = msgspec.structs.replace(alert(), labels={"alertname": "HighCpu", "team-name": "core",
                                                   "9lives": "yes"})
    (entry,) = alertmanager_alerts(notification(odd), now_ms=T0, resend_every=60.0)
    assert {"team_name": "core", "_9lives": "yes"}.items() <= entry["labels"].items()
