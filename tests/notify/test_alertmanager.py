"""The Alertmanager sender against a real Alertmanager on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.alertmanager import ALERTMANAGER, Alertmanager
from tests.notify import alert, notification
from tests.notify.receivers import HttpReceiver
from tests.probes.checks.servers import free_port
from ttamond.messages import DeliveryAttempted, Message, now_ms
from ttamond.notify.alertmanager import send_alertmanager
from ttamond.notify.delivery import ChannelDelivery
from ttamond.notify.errors import DeliveryFailed
from ttamond.notify.payloads import iso_utc
from ttamond.notify.settings import AlertmanagerChannel

pytestmark = pytest.mark.skipif(
    ALERTMANAGER is None,
    reason="Alertmanager not installed (Debian package `prometheus-alertmanager`)")


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    server = Alertmanager(tmp_path)
    try:
        yield server
    finally:
        server.stop()


async def test_a_firing_alert_is_kept_alive_and_a_resolved_one_goes(
        alertmanager: Alertmanager) -> None:
    channel = AlertmanagerChannel(name="am", urls=[alertmanager.url], resend_every=30.0)
    started = now_ms() - 60_000
    firing = alert(starts_ms=started, team="ttamond-core")
    async with httpx.AsyncClient(timeout=5) as client:
        await alertmanager.ready(client)
        sent_at = now_ms()
        await send_alertmanager(channel, notification(firing, reason="sync", channel="am"),
                                now_ms=sent_at)
        (held,) = await alertmanager.alerts(client)
        assert held["labels"] == {"alertname": "HighCpu", "instance": "web1",
                                  "severity": "critical", "team": "ttamond-core"}
        assert held["annotations"] == {"summary": "HighCpu on web1", "priority": "P2",
                                       "runbook_url": "https://runbooks.example/cpu",
                                       "value": "97.5"}
        assert held["startsAt"] == iso_utc(started)
        assert held["endsAt"] == iso_utc(sent_at + 120_000)
        assert held["generatorURL"] == "http://ttamond.example/alerts/1"
        assert held["status"]["state"] == "active"

        resolved = alert(starts_ms=started, status="resolved", ends_ms=now_ms() - 1000,
                         team="ttamond-core")
        await send_alertmanager(channel, notification(resolved, reason="sync", channel="am"),
                                now_ms=now_ms())
        # An end in the past resolves it at once: gone from the alerts and their groups.
        assert await alertmanager.alerts(client) == []
        assert await alertmanager.alerts(client, active="true") == []
        groups = (await client.get(f"{alertmanager.url}/api/v2/alerts/groups")).json()
        assert groups == []


async def test_every_alertmanager_is_sent_to_and_only_failures_are_retried(
        alertmanager: Alertmanager, nursery: trio.Nursery) -> None:
    flaky = HttpReceiver(statuses=[503])
    flaky_url = await flaky.serve(nursery)
    channel = AlertmanagerChannel(name="am", urls=[alertmanager.url, flaky_url],
                                  backoff_initial=0.01, backoff_max=0.01)
    sync = notification(alert(starts_ms=now_ms() - 1000), reason="sync", channel="am")
    async with httpx.AsyncClient(timeout=5) as client:
        await alertmanager.ready(client)
        with pytest.raises(DeliveryFailed) as failed:
            await send_alertmanager(channel, sync, now_ms=now_ms())
        assert failed.value.message == (
            f"alertmanager {flaky_url}: HTTP 503 Service Unavailable: answer 503 as told"
            " (1 of 2 accepted)")
        assert failed.value.partial and not failed.value.permanent
        retry = failed.value.retry
        assert isinstance(retry, AlertmanagerChannel) and retry.urls == [flaky_url]
        assert len(await alertmanager.alerts(client)) == 1

        published: list[Message] = []

        async def publish(message: Message) -> None:
            published.append(message)

        flaky.statuses[:] = [503]
        flaky.requests.clear()
        final = await ChannelDelivery(channel, publish).deliver(sync)
        assert [(m.attempt, m.outcome) for m in published if isinstance(m, DeliveryAttempted)] \
            == [(1, "failed"), (2, "sent")]
        assert final.error == ""
        assert [r.path for r in flaky.requests] == ["/api/v2/alerts", "/api/v2/alerts"]


async def test_a_dead_alertmanager_beside_a_live_one_still_counts_as_sent(
        alertmanager: Alertmanager) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    channel = AlertmanagerChannel(name="am", urls=[dead, alertmanager.url], max_attempts=2,
                                  backoff_initial=0.01, backoff_max=0.01)
    published: list[Message] = []

    async def publish(message: Message) -> None:
        published.append(message)

    sync = notification(alert(starts_ms=now_ms() - 1000), reason="sync", channel="am")
    async with httpx.AsyncClient(timeout=5) as client:
        await alertmanager.ready(client)
        delivery = ChannelDelivery(channel, publish)
        final = await delivery.deliver(sync)
        assert (final.attempt, final.outcome) == (2, "sent")
        assert final.error == (f"alertmanager {dead}: connection refused"
                               " (delivered to the other targets)")
        first = published[0]
        assert isinstance(first, DeliveryAttempted)
        assert first.error == (f"alertmanager {dead}: connection refused"
                                      " (1 of 2 accepted)")
        assert len(await alertmanager.alerts(client)) == 1
        assert (delivery.stats().sent, delivery.stats().failing) == (1, False)
