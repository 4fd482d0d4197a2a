"""The alerts API and the page's alerts section, through httpx's ASGI transport inside
trio, over a live escalator."""

from __future__ import annotations

import re
from typing import Any

import httpx
import trio

from tests.alerts.test_alerts_actor import Rig, settings
from ttamond.alerts.commands import alert_handlers
from ttamond.alerts.rules import MetricRule
from ttamond.alerts.settings import GroupingConfig
from ttamond.messages import MetricBatch, MetricPoint, labels, now_ms
from ttamond.web.app import create_app


def app_for(rig: Rig, token: str = "") -> Any:
    handlers = alert_handlers(lambda: rig.escalator, lambda: rig.actor, lambda: None)
    return create_app(latest=list, status=dict, ready=lambda: True, commands=handlers,
                      token=token)


async def test_list_ack_silence_and_unsilence_over_http() -> None:
    rig = Rig(settings(rules=[MetricRule(name="CpuHigh", series="cpu", aggregate="last",
                                         window=60, threshold=90,
                                         annotations={"summary": "<script>x</script>"})],
                       grouping=GroupingConfig(group_wait=0), evaluate_every=0.05))
    transport = httpx.ASGITransport(app=app_for(rig), client=("127.0.0.1", 5000))
    async with trio.open_nursery() as nursery, httpx.AsyncClient(
            transport=transport, base_url="http://ttamond") as client:
        await rig.run(nursery)
        rig.actor.take(MetricBatch(source="t", timestamp_ms=now_ms(),
                                   points=(MetricPoint("cpu", 95.0, labels(host="a")),)))
        await rig.actor.evaluate_once()
        listed = (await client.get("/api/v1/alerts")).json()
        (alert,) = listed["alerts"]
        assert alert["state"] == "firing"
        page = (await client.get("/panels/alerts")).text
        assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x" not in page
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        # A form without the page's token is refused.
        refused = await client.post("/alerts/action", data={"action": "ack",
                                                             "alert": alert["fingerprint"]})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf"
        acked = await client.post("/alerts/action", data={
            "csrf": csrf[1], "action": "ack", "alert": alert["fingerprint"], "by": "sam"})
        assert acked.status_code == 303
        assert rig.escalator.records[alert["fingerprint"]].acked_by == "sam"
        created = await client.post("/api/v1/silences", json={
            "matchers": '{alertname="CpuHigh"}', "duration_s": 600, "author": "sam",
            "comment": "tuning"})
        assert created.status_code == 200, created.text
        bad = await client.post("/api/v1/silences", json={"matchers": "{x=", "duration_s": 1,
                                                           "author": "a", "comment": "b"})
        assert bad.status_code == 400 and "bad selector" in bad.json()["error"]["message"]
        gone = await client.delete(f"/api/v1/silences/{created.json()['id']}")
        assert gone.status_code == 200
        again = await client.delete(f"/api/v1/silences/{created.json()['id']}")
        assert again.status_code == 409
        missing = await client.post("/api/v1/alerts/ffff0000/ack", json={"by": "x"})
        assert missing.status_code == 404
        nursery.cancel_scope.cancel()


async def test_writes_from_other_hosts_need_the_token() -> None:
    rig = Rig(settings())
    transport = httpx.ASGITransport(app=app_for(rig, token="s3cret"),
                                    client=("192.0.2.7", 5000))
    async with trio.open_nursery() as nursery, httpx.AsyncClient(
            transport=transport, base_url="http://ttamond") as client:
        await rig.run(nursery)
        body = {"matchers": "CpuHigh", "duration_s": 60, "author": "a", "comment": "b"}
        denied = await client.post("/api/v1/silences", json=body)
        assert denied.status_code == 401
        allowed = await client.post("/api/v1/silences", json=body,
                                    headers={"Authorization": "Bearer s3cret"})
        assert allowed.status_code == 200, allowed.text
        nursery.cancel_scope.cancel()
