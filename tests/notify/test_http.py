"""Webhook and Slack senders, and the retry loop, against a real HTTP receiver."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from tests.notify import alert, notification
from tests.notify.receivers import HttpReceiver
from tests.probes.checks.servers import free_port
from ttamond.messages import DeliveryAttempted, Message
from ttamond.notify.delivery import ChannelDelivery
from ttamond.notify.errors import DeliveryFailed
from ttamond.notify.settings import SlackChannel, WebhookChannel
from ttamond.notify.webhook import send_slack, send_webhook


async def test_a_json_webhook_gets_the_generic_body_and_its_headers(
        nursery: trio.Nursery, tmp_path: Path) -> None:
    receiver = HttpReceiver()
    base = await receiver.serve(nursery)
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    channel = WebhookChannel(name="hook", url=f"{base}/in?x=1", headers={"X-Team": "ops"},
                             token_file=str(token))
    await send_webhook(channel, notification(), now_ms=0)
    (request,) = receiver.requests
    assert (request.method, request.path) == ("POST", "/in?x=1")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer s3cret"
    assert request.headers["x-team"] == "ops"
    body = request.json()
    assert (body["version"], body["id"], body["status"]) == (1, "n-1", "firing")
    assert body["alerts"][0]["labels"]["alertname"] == "HighCpu"


async def test_an_alertmanager_format_webhook_gets_alertmanagers_body(
        nursery: trio.Nursery) -> None:
    receiver = HttpReceiver()
    base = await receiver.serve(nursery)
    channel = WebhookChannel(name="legacy", url=f"{base}/alerts", format="alertmanager")
    await send_webhook(channel, notification(alert(status="resolved", ends_ms=1), channel="legacy"),
                       now_ms=0)
    body = receiver.requests[0].json()
    assert (body["version"], body["status"], body["receiver"]) == ("4", "resolved", "legacy")
    assert body["alerts"][0]["endsAt"] == "1970-01-01T00:00:00.001Z"


async def test_slack_gets_its_message_and_errors_hide_the_webhook_key(
        nursery: trio.Nursery) -> None:
    receiver = HttpReceiver(statuses=[200, 404])
    base = await receiver.serve(nursery)
    channel = SlackChannel(name="chat", url=f"{base}/services/T0/B0/KEY", channel="#ops")
    await send_slack(channel, notification(), now_ms=0)
    body = receiver.requests[0].json()
    assert body["text"] == "*[FIRING:1] HighCpu*"
    assert (body["channel"], body["username"]) == ("#ops", "ttamond")
    assert body["attachments"][0]["color"] == "danger"
    with pytest.raises(DeliveryFailed, match=r"^slack http://127\.0\.0\.1:\d+/…: HTTP 404 Not"
                                             r" Found: answer 404 as told$") as failed:
        await send_slack(channel, notification(), now_ms=0)
    assert failed.value.permanent


@pytest.mark.parametrize(("status", "permanent"), [
    (500, False), (503, False), (429, False), (408, False), (400, True), (401, True),
    (404, True), (301, True)])
async def test_answers_are_sorted_into_transient_and_permanent(
        nursery: trio.Nursery, status: int, permanent: bool) -> None:
    receiver = HttpReceiver(default=status)
    base = await receiver.serve(nursery)
    channel = WebhookChannel(name="hook", url=f"{base}/in?token=abc")
    with pytest.raises(DeliveryFailed, match=rf"^webhook {base}/in: HTTP {status} ") as failed:
        await send_webhook(channel, notification(), now_ms=0)
    assert failed.value.permanent is permanent
    assert "abc" not in failed.value.message


async def test_a_closed_port_is_a_transient_connection_refused() -> None:
    port = free_port()
    channel = WebhookChannel(name="hook", url=f"http://127.0.0.1:{port}/in")
    with pytest.raises(DeliveryFailed, match=rf"^webhook http://127\.0\.0\.1:{port}/in:"
                                             r" connection refused$") as failed:
        await send_webhook(channel, notification(), now_ms=0)
    assert not failed.value.permanent


async def test_a_silent_server_times_out(nursery: trio.Nursery) -> None:
    receiver = HttpReceiver(hang=True)
    base = await receiver.serve(nursery)
    channel = WebhookChannel(name="hook", url=f"{base}/in", timeout=0.2)
    with pytest.raises(DeliveryFailed, match=rf"^webhook {base}/in: no answer within 0.2 s$"):
        await send_webhook(channel, notification(), now_ms=0)


async def test_a_missing_token_file_is_permanent(tmp_path: Path) -> None:
    channel = WebhookChannel(name="hook", url="http://127.0.0.1:9/in",
                             token_file=str(tmp_path / "absent"))
    with pytest.raises(DeliveryFailed, match=r"cannot read token_file .*absent: No such file")\
            as failed:
        await send_webhook(channel, notification(), now_ms=0)
    assert failed.value.permanent


async def test_three_server_errors_then_success_deliver_exactly_once(
        nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    receiver = HttpReceiver(statuses=[500, 500, 500])
    base = await receiver.serve(nursery)
    published: list[Message] = []

    async def publish(message: Message) -> None:
        published.append(message)

    channel = WebhookChannel(name="hook", url=f"{base}/in", backoff_initial=1.0,
                             backoff_max=60.0)
    delivery = ChannelDelivery(channel, publish)
    started = trio.current_time()
    final = await delivery.deliver(notification(channel="hook"))
    waited = trio.current_time() - started
    rows = [m for m in published if isinstance(m, DeliveryAttempted)]
    assert [(m.attempt, m.outcome) for m in rows] == [
        (1, "failed"), (2, "failed"), (3, "failed"), (4, "sent")]
    assert rows[0].error == f"webhook {base}/in: HTTP 500 Internal Server Error:" \
                                 " answer 500 as told"
    assert (final.outcome, final.error) == ("sent", "")
    assert len(receiver.requests) == 4
    assert len({r.body for r in receiver.requests}) == 1
    # Waits of 1, then 1 to 2, then 2 to 4 seconds between the tries.
    assert 4.0 <= waited <= 7.5
    stats = delivery.stats()
    assert (stats.sent, stats.failed_attempts, stats.gave_up, stats.failing) == (1, 3, 0, False)


async def test_a_permanent_failure_stops_at_the_first_try(nursery: trio.Nursery) -> None:
    receiver = HttpReceiver(default=400)
    base = await receiver.serve(nursery)
    published: list[Message] = []

    async def publish(message: Message) -> None:
        published.append(message)

    delivery = ChannelDelivery(WebhookChannel(name="hook", url=f"{base}/in"), publish)
    final = await delivery.deliver(notification(channel="hook"))
    assert (final.attempt, final.outcome) == (1, "gave_up")
    assert final.error.startswith(f"webhook {base}/in: HTTP 400 Bad Request")
    assert len(receiver.requests) == 1 and len(published) == 1
