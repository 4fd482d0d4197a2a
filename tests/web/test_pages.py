"""The status page and the JSON API through httpx's ASGI transport inside trio (Starlette's
TestClient deadlocks inside trio.run), over a real SQLite file written by the store."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import trio

from ttamond.control import CommandError
from ttamond.messages import MetricBatch, MetricPoint, labels, now_ms
from ttamond.store.database import HOUR_MS, MINUTE_MS, Database
from ttamond.store.queries import Retention
from ttamond.web.app import create_app
from ttamond.web.openapi import document

RETENTION = Retention(raw_ms=48 * HOUR_MS, minute_ms=30 * 24 * HOUR_MS,
                      hour_ms=400 * 24 * HOUR_MS)
EVIL = "<script>alert(1)</script>"


def _fill(path: Path) -> None:
    """Two hours of host and component series, one point a minute, ending now."""
    database = Database(path, busy_timeout=1, synchronous="normal")
    database.open()
    end = now_ms()
    batches = []
    for i in range(120):
        ts = end - (120 - i) * MINUTE_MS
        batches.append(MetricBatch(source="t", timestamp_ms=ts, points=(
            MetricPoint("host_cpu_percent", 20 + i % 10, labels(cpu="total"), "gauge", "percent"),
            MetricPoint("host_memory_percent", 50.0, (), "gauge", "percent"),
            MetricPoint("host_net_received_bytes_total", 1000.0 * i,
                        labels(interface="eth0"), "counter", "bytes"),
            MetricPoint("ttamond_component_health", float(i % 2), labels(component=EVIL)),
        )))
    assert database.write("fill", batches, origin="live")


class Platform:
    """The control commands the page calls, answering from plain data a test changes;
    each call is counted so that tests can see what the cache saved."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.firing = 0
        self.generation = 0
        self.lag = 0.0
        self.fail_errors = False

    def commands(self) -> dict[str, Any]:
        def counted(name: str, reply: Any) -> Any:
            async def handler(args: dict[str, Any]) -> Any:
                self.calls[name] = self.calls.get(name, 0) + 1
                await trio.sleep(0.01)  # long enough for concurrent requests to overlap
                return reply(args) if callable(reply) else reply

            return handler

        def errors_list(args: dict[str, Any]) -> Any:
            if self.fail_errors:
                raise RuntimeError(f"database on fire {EVIL}")
            return [{"id": 7, "fingerprint": "ab12", "error_type": "ValueError", "title": EVIL,
                     "state": "unresolved", "resolved_in": "", "severity": "error", "count": 3,
                     "first_seen_ms": now_ms() - HOUR_MS, "last_seen_ms": now_ms()}]

        def errors_show(args: dict[str, Any]) -> Any:
            if args["group"] != "7":
                raise CommandError("not_found", f"no error group {args['group']!r}")
            (group,) = errors_list(args)
            return {"group": group, "events": [{
                "id": 1, "timestamp_ms": now_ms(), "component": "narrative",
                "environment": "prod", "severity": "error", "release": "1.2", "message": EVIL,
                "stack": [{"module": "story", "function": "tell", "filename": "story.py",
                           "lineno": 12}], "context": {"chapter": "<b>2</b>"}, "session": None}]}

        health = {"overall": "degraded", "checks": [], "predictions": [], "components": {
            EVIL: {"level": "degraded", "status": "degraded", "reason": "<b>slow</b>",
                   "root_cause": "", "failing_checks": [], "down_dependencies": []}}}
        def component(args: dict[str, Any]) -> Any:
            if args["component"] != EVIL:
                raise CommandError("not_found", f"no component {args['component']!r}")
            return {"component": EVIL, **health["components"][EVIL]}  # type: ignore[index]

        return {
            "health": counted("health", health),
            "monitor_component_health": counted("monitor_component_health", component),
            "errors_list": counted("errors_list", errors_list),
            "errors_show": counted("errors_show", errors_show),
            # No GPU can exist on this machine: the GPU panel is fed NVML-shaped values.
            "latest": counted("latest", lambda args: {"values": [
                {"name": "gpu_utilization_percent", "labels": {"gpu": "0"}, "value": 87.0,
                 "unit": "percent"}] if args["prefix"] == "gpu_" else [], "failures": []}),
        }

    def status(self) -> dict[str, Any]:
        store = {"mode": "live", "batches_committed": 3, "points_committed": 9,
                 "spool_bytes": 0, "spool_frames": 0, "spool_dropped_points": 0,
                 "write_errors": 0, "last_error": ""}
        return {"state": "running", "version": "test", "pid": 1, "uptime_s": 1.0,
                "actors": [{"name": EVIL, "state": "failed", "restarts": 3, "critical": False,
                            "since_ms": now_ms(), "last_error": "boom"}],
                "store": store, "carbon": None, "alerts": {"firing": self.firing},
                "analytics": {"tracked": 4, "dropped": 0, "alarms": 1, "threshold": 0.5,
                              "top": [{"name": "host_cpu_percent", "labels": {"cpu": EVIL},
                                       "score": 0.93, "anomalous": True,
                                       "timestamp_ms": now_ms()}]},
                "bus": {"subscriptions": [{"name": "latest", "policy": "drop_oldest",
                                           "depth": 16, "capacity": 16, "delivered": 5,
                                           "dropped": 2}]}}


@pytest.fixture
def platform() -> Platform:
    return Platform()


@pytest.fixture
async def client(tmp_path: Path, platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    _fill(tmp_path / "t.db")
    app = create_app(latest=list, status=platform.status, ready=lambda: True,
                     commands=platform.commands(), database=tmp_path / "t.db",
                     retention=RETENTION, generation=lambda: platform.generation,
                     loop_lag=lambda: platform.lag)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://ttamond") as found:
        yield found


async def test_the_shell_comes_first_and_lists_its_panels(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    panels = re.findall(r'data-panel="([^"]+)"', page.text)
    assert panels == [f"/panels/{name}" for name in (
        "health", "alerts", "host", "gpus", "containers", "carbon", "errors", "anomalies")]
    assert EVIL not in page.text and "ValueError" not in page.text  # no panel data yet
    # Only the page's own script may run: the policy names its hash.
    script = re.search(r"<script>(.*)</script>", page.text, re.DOTALL)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_inline_pages_render_every_panel_escaped_with_svg_charts(
        client: httpx.AsyncClient) -> None:
    page = (await client.get("/?inline=1")).text
    assert "<script>" not in page  # neither the page's script nor anyone else's
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;slow&lt;/b&gt;" in page
    assert len(re.findall(r'<path class="line[^"]*" d="M', page)) >= 3  # CPU, memory, network
    assert "87%" in page or "87.0%" in page  # the GPU's utilisation
    assert "Alerting is off" in page
    assert "4 series watched, 1 alarms" in page and "0.93" in page


async def test_panels_say_when_to_reload(client: httpx.AsyncClient,
                                         platform: Platform) -> None:
    quiet = await client.get("/panels/health")
    platform.firing = 1
    firing = await client.get("/panels/health")
    platform.lag = 0.5
    busy = await client.get("/panels/health")
    assert [int(r.headers["x-refresh"]) for r in (quiet, firing, busy)] == [15, 5, 60]
    assert quiet.headers["cache-control"] == "no-store"


async def test_many_browsers_cost_one_render_per_batch_of_data(
        client: httpx.AsyncClient, platform: Platform) -> None:
    async def get(results: list[str]) -> None:
        results.append((await client.get("/panels/errors")).text)

    first: list[str] = []
    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(get, first)
    assert len(set(first)) == 1 and platform.calls["errors_list"] == 1
    await client.get("/panels/errors")
    assert platform.calls["errors_list"] == 1
    platform.generation += 1  # a batch landed
    await client.get("/panels/errors")
    assert platform.calls["errors_list"] == 2


async def test_a_failing_panel_says_so_and_the_others_still_render(
        client: httpx.AsyncClient, platform: Platform) -> None:
    platform.fail_errors = True
    broken = await client.get("/panels/errors")
    fine = await client.get("/panels/health")
    assert broken.status_code == 500
    assert "RuntimeError: database on fire &lt;script&gt;" in broken.text
    assert fine.status_code == 200


async def test_error_pages_show_stack_traces_as_text(client: httpx.AsyncClient) -> None:
    page = (await client.get("/errors/7?inline=1")).text
    assert "story.py:12 in tell" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and EVIL not in page
    missing = (await client.get("/panels/error?group=8")).text
    assert "no error group" in missing


async def test_charts_of_any_series_over_a_week(client: httpx.AsyncClient) -> None:
    chart = await client.get("/charts/series.svg",
                             params={"selector": 'host_cpu_percent{cpu="total"}', "since": "7d"})
    assert chart.status_code == 200
    assert chart.headers["content-type"] == "image/svg+xml"
    assert re.search(r'<path class="line[^"]*" d="M', chart.text)
    bad = await client.get("/charts/series.svg", params={"selector": "cpu{", "since": "7d"})
    assert bad.status_code == 400 and "bad selector" in bad.json()["error"]["message"]
    long = await client.get("/charts/series.svg", params={"selector": "x", "since": "7y"})
    assert long.status_code == 400 and "bad range '7y'" in long.json()["error"]["message"]


async def test_series_api_lists_and_queries_with_clear_errors(
        client: httpx.AsyncClient) -> None:
    listed = (await client.get("/api/v1/series", params={"match": "host_cpu_percent"})).json()
    assert listed == {"series": [{"name": "host_cpu_percent", "labels": {"cpu": "total"},
                                  "kind": "gauge", "unit": "percent"}]}
    answer = await client.get("/api/v1/series/query", params={
        "selector": "host_memory_percent", "since": "2h", "step": "10m", "aggregate": "max"})
    body = answer.json()
    assert answer.status_code == 200 and body["step_ms"] == 10 * MINUTE_MS
    assert {value for _, value in body["series"][0]["points"]} == {50.0}
    for params, message in [
        ({"selector": "x", "since": "1h", "step": "5"}, "step must be"),
        ({"selector": "x", "since": "1h", "end_ms": "-5"}, "end_ms must be a whole number"),
        ({"selector": "x", "limit": "5"}, "unknown query parameter 'limit'"),
        ({"selector": "x", "aggregate": "median"}, "aggregate must be one of"),
        ({"since": "1h"}, "selector is required"),
    ]:
        refused = await client.get("/api/v1/series/query", params=params)
        assert refused.status_code == 400, params
        assert message in refused.json()["error"]["message"]


async def test_errors_api_maps_command_errors_and_guards_writes(
        tmp_path: Path, client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/errors")).json()["groups"][0]["id"] == 7
    missing = await client.get("/api/v1/errors/8")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    off = await client.get("/api/v1/carbon/report")
    assert off.status_code == 503 and "not running" in off.json()["error"]["message"]
    app = create_app(latest=list, status=dict, ready=lambda: True)
    remote = httpx.ASGITransport(app=app, client=("192.0.2.7", 5000))
    async with httpx.AsyncClient(transport=remote, base_url="http://ttamond") as other:
        refused = await other.post("/api/v1/errors/7/resolve", json={})
    assert refused.status_code == 403


async def test_every_api_route_is_documented(client: httpx.AsyncClient) -> None:
    served = (await client.get("/api/v1/openapi.json")).json()
    assert served["openapi"] == "3.1.0" and set(served["paths"]) == set(document("x")["paths"])
    app = create_app(latest=list, status=dict, ready=lambda: True, commands={
        "alerts_list": Platform().commands()["health"]})
    routes = {route.path for route in app.app.routes  # type: ignore[attr-defined]
              if route.path.startswith("/api/v1/")}
    documented = set(served["paths"]) | {"/api/v1/openapi.json", "/api/v1/ingest"}
    assert routes <= documented, routes - documented


async def test_the_daemon_page_shows_actors_drops_and_the_cache(
        client: httpx.AsyncClient, platform: Platform) -> None:
    platform.lag = 0.012
    await client.get("/panels/errors")
    page = (await client.get("/panels/daemon")).text
    assert "&lt;script&gt;" in page and '<span class="badge crit">failed</span>' in page
    assert '<span class="crit">2</span>' in page  # drops stand out
    assert re.search(r"\d+ renders", page)
    assert "event loop lag 12.0 ms" in page


async def test_a_component_page_has_its_state_history_and_errors(
        client: httpx.AsyncClient) -> None:
    page = (await client.get(f"/components/{quote(EVIL, safe='')}?inline=1")).text
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt; · ttamond</title>" in page
    assert '<span class="badge warn">degraded</span>' in page
    assert re.search(r'<path class="line[^"]*" d="M', page)  # its health level, 24 h
    assert 'href="/errors/7"' in page
    missing = (await client.get("/panels/component?name=nope")).text
    assert "no component &#x27;nope&#x27;" in missing
