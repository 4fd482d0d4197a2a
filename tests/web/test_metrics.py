"""/metrics, health, readiness and the status API over real HTTP on 127.0.0.1:0."""

from __future__ import annotations

import math
import shutil
import socket
import stat
from pathlib import Path

import httpx
import msgspec
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests.web import FakeDaemon, base_url, serve_web, value
from ttamond import __version__
from ttamond.actors.latest import LatestValue
from ttamond.actors.web import WebActor
from ttamond.probes.host import FIELDS
from ttamond.web.app import create_app
from ttamond.web.metrics import LatestCollector

AWKWARD_TEXT = 'narrative "engine" \\ line\nnext'

VALUES = [
    value("host_cpu_percent", 12.5, unit="percent", cpu="total"),
    value("host_cpu_percent", 0.1 + 0.2, unit="percent", cpu="0"),
    value("host_memory_total_bytes", 16_000_000_000.0, unit="bytes"),
    value("host_disk_free_bytes", 1234.0, unit="bytes", mount="/", device="/dev/sda1",
          fstype="ext4"),
    value("host_net_received_bytes_total", 123_456_789.0, "counter", "bytes", interface="eth0"),
    value("host_load_average", math.nan, period="1m"),
    value("ttamond_queue_depth", 3.0, source="selfmon", subscription="store"),
    value("ttamond_queue_dropped_total", 2.0, "counter", source="selfmon",
          subscription="latest"),
    LatestValue(name="tta.player-sessions", labels={"component-name": AWKWARD_TEXT},
                value=4.0, kind="gauge", unit="", timestamp_ms=1, source="client"),
]

# (sample name, labels) -> value, as Prometheus should read them.
EXPECTED = {
    ("ttamond_build_info", (("version", __version__),)): 1.0,
    ("host_cpu_percent", (("cpu", "total"),)): 12.5,
    ("host_cpu_percent", (("cpu", "0"),)): 0.1 + 0.2,
    ("host_memory_total_bytes", ()): 16_000_000_000.0,
    ("host_disk_free_bytes", (("device", "/dev/sda1"), ("fstype", "ext4"), ("mount", "/"))):
        1234.0,
    ("host_net_received_bytes_total", (("interface", "eth0"),)): 123_456_789.0,
    ("ttamond_queue_depth", (("subscription", "store"),)): 3.0,
    ("ttamond_queue_dropped_total", (("subscription", "latest"),)): 2.0,
    ("tta_player_sessions", (("component_name", AWKWARD_TEXT),)): 4.0,
}


def _samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if not family.name.startswith("ttamond_exposition_")
    }


async def test_metrics_round_trip_through_the_prometheus_parser() -> None:
    async with serve_web(FakeDaemon(VALUES)) as actor, httpx.AsyncClient() as client:
        response = await client.get(f"{base_url(actor)}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"

    samples = _samples(response.text)
    nan = samples.pop(("host_load_average", (("period", "1m"),)))
    assert math.isnan(nan)
    assert samples == EXPECTED

    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert families["host_cpu_percent"].type == "gauge"
    assert families["host_cpu_percent"].documentation == FIELDS["host_cpu_percent"].description
    assert families["host_net_received_bytes"].type == "counter"
    assert families["host_net_received_bytes"].documentation == "bytes received"
    assert families["ttamond_queue_dropped"].type == "counter"
    assert families["ttamond_queue_depth"].documentation == "ttamond gauge ttamond_queue_depth"
    assert families["tta_player_sessions"].type == "gauge"
    # Exporters leave the timestamp to the scrape.
    assert all(s.timestamp is None for f in families.values() for s in f.samples)
    assert response.text.count("# TYPE host_cpu_percent ") == 1


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool not installed (Debian package `prometheus`)")
async def test_metrics_pass_promtool_check() -> None:
    awkward = [
        *VALUES,
        value("ttamond_odd_jobs", 1.0, "counter"),
        value("ttamond_odd_total", 1.0),
        value("0leading digit", 1.0, **{"__reserved": "x", "9lives": "y"}),
    ]
    async with serve_web(FakeDaemon(awkward)) as actor, httpx.AsyncClient() as client:
        body = (await client.get(f"{base_url(actor)}/metrics")).content
    result = await trio.run_process(["promtool", "check", "metrics"], stdin=body,
                                    capture_stdout=True, capture_stderr=True, check=False)
    report = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, f"promtool check metrics:\n{report}\n{body.decode()}"
    assert report == ""


def test_names_are_sanitised_and_unexportable_series_counted() -> None:
    values = [
        value("tta.sessions", 1.0, **{"0zone": "a", "__kind": "b", "ok-name": "c"}),
        value("dup", 1.0, **{"a-b": "1"}),
        value("dup", 2.0, **{"a_b": "1"}),           # the same series once sanitised
        value("dup", 3.0, **{"a-b": "2", "a_b": "2"}),  # two labels become one
        value("dup", 4.0, empty=""),                 # "" reads as no label: same as {}
        value("dup", 5.0),
        value("ttamond_build_info", 9.0),
        value("", 1.0),
        value("_total", 1.0, "counter"),
        value("mixed", 1.0, "counter", x="1"),
        value("mixed", 2.0, x="2"),
        value("odd_kind", 1.0, "histogram"),
    ]
    body = LatestCollector(lambda: values, version="9.9").render().decode()
    families = {family.name: family for family in text_string_to_metric_families(body)}

    [sessions] = families["tta_sessions"].samples
    assert sessions.labels == {"_0zone": "a", "_kind": "b", "ok_name": "c"}
    assert [(s.labels, s.value) for s in families["dup"].samples] == [
        ({"a_b": "1"}, 1.0), ({"empty": ""}, 4.0),
    ]
    assert families["mixed"].type == "unknown"
    assert "reported as counter and gauge" in families["mixed"].documentation
    assert families["odd_kind"].documentation.endswith("(reported as histogram: exported untyped)")
    assert [s.labels for s in families["ttamond_build_info"].samples] == [{"version": "9.9"}]
    skipped = {s.labels["reason"]: s.value
               for s in families["ttamond_exposition_skipped_series"].samples}
    assert skipped == {"invalid_name": 2.0, "reserved_name": 1.0, "label_clash": 1.0,
                       "duplicate": 2.0}


def test_counter_and_gauge_names_against_the_total_convention_stay_named_untyped() -> None:
    values = [value("jobs", 3.0, "counter"), value("queue_total", 4.0)]
    body = LatestCollector(lambda: values).render().decode()
    assert "# TYPE jobs untyped\njobs 3.0\n" in body
    assert "# TYPE queue_total untyped\nqueue_total 4.0\n" in body
    assert "a counter whose name lacks _total" in body


def test_an_empty_view_still_exports_build_info() -> None:
    body = LatestCollector(lambda: [], version="1.2.3").render().decode()
    assert 'ttamond_build_info{version="1.2.3"} 1.0\n' in body


async def test_healthz_and_readyz_follow_the_daemon() -> None:
    daemon = FakeDaemon(VALUES)
    async with serve_web(daemon) as actor, httpx.AsyncClient(base_url=base_url(actor)) as client:
        health = await client.get("/healthz")
        assert (health.status_code, health.text) == (200, "ok\n")

        starting = await client.get("/readyz")
        assert (starting.status_code, starting.text) == (503, "not ready: ttamond is starting\n")

        daemon.state = "running"
        running = await client.get("/readyz")
        assert (running.status_code, running.text) == (200, "ready\n")

        daemon.state = "stopping"
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200


async def test_status_api_is_the_status_dict_as_json() -> None:
    daemon = FakeDaemon(VALUES)
    async with serve_web(daemon) as actor, httpx.AsyncClient(base_url=base_url(actor)) as client:
        response = await client.get("/api/v1/status")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "state": "starting",
        "database": "/var/lib/ttamond/ttamond.db",
        "store": msgspec.to_builtins(daemon.stats),
        "actors": [{"name": "web", "state": "running"}],
    }


async def test_unknown_paths_and_methods_are_json_errors() -> None:
    async with serve_web(FakeDaemon([])) as actor, \
            httpx.AsyncClient(base_url=base_url(actor)) as client:
        missing = await client.get("/api/v1/nothing")
        wrong = await client.post("/metrics")
        page = await client.get("/?inline=1")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/json"
    assert missing.json() == {"error": {"code": "not_found",
                                        "message": "no such path: /api/v1/nothing"}}
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in wrong.headers["allow"]
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert 'data-panel="/panels/host"' in page.text
    assert "Carbon tracking is off" in page.text


async def test_a_port_in_use_is_an_error_naming_the_address() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        actor = WebActor(f"127.0.0.1:{port}", create_app(latest=list, status=dict,
                                                         ready=lambda: True))
        with pytest.raises(OSError, match=rf"^\[Errno 98\] web: cannot listen on 127\.0\.0\.1:"
                                          rf"{port}: Address already in use \(another process"):
            await actor.run()
    assert actor.port is None


async def test_an_unknown_host_is_an_error_naming_the_address() -> None:
    actor = WebActor("no-such-host.invalid:9471", create_app(latest=list, status=dict,
                                                           ready=lambda: True))
    with pytest.raises(OSError, match=r"web: cannot listen on no-such-host\.invalid:9471: "):
        await actor.run()


@pytest.mark.parametrize("bind", ["9471", "localhost", "127.0.0.1:http", ":9471",
                                  "::1:9471", "127.0.0.1:70000"])
def test_a_malformed_bind_is_rejected(bind: str) -> None:
    with pytest.raises(ValueError, match=rf"^web bind '{bind}': expected host:port, e\.g\. "):
        WebActor(bind, create_app(latest=list, status=dict, ready=lambda: True))


def test_ipv6_binds_parse() -> None:
    actor = WebActor("[::1]:0", create_app(latest=list, status=dict, ready=lambda: True))
    assert (actor.host, actor.requested_port) == ("::1", 0)


async def test_cancelling_stops_the_server_with_a_connection_open_and_frees_the_port() -> None:
    daemon = FakeDaemon(VALUES)
    async with httpx.AsyncClient() as client:
        # A hang guard, not a timing claim (those live in benchmarks/).
        with trio.fail_after(5):
            async with serve_web(daemon) as actor:
                port = actor.port
                # The client keeps this connection alive after the response.
                assert (await client.get(f"{base_url(actor)}/healthz")).status_code == 200
    assert actor.port is None
    # The listening socket is closed: the same port binds again at once.
    async with serve_web(daemon, bind=f"127.0.0.1:{port}") as again, \
            httpx.AsyncClient() as client:
        assert again.port == port
        assert (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200


async def test_shutdown_stops_gracefully_and_run_returns() -> None:
    actor = WebActor("127.0.0.1:0", create_app(latest=list, status=dict, ready=lambda: True),
                     graceful_timeout=1.0)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(actor.run)
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"{base_url(actor)}/healthz")).status_code == 200
            actor.shutdown()
    assert actor.port is None


async def test_also_serves_on_a_unix_socket_and_removes_it_after(tmp_path: Path) -> None:
    path = tmp_path / "web.sock"
    path.touch()  # not a socket: must not be replaced silently
    actor = WebActor("127.0.0.1:0", create_app(latest=list, status=dict, ready=lambda: True),
                     unix_socket=path)
    with pytest.raises(OSError, match=r"web: cannot listen on .*web\.sock"):
        await actor.run()
    path.unlink()
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
        transport = httpx.AsyncHTTPTransport(uds=str(path))
        async with httpx.AsyncClient(transport=transport, base_url="http://ttamond") as client:
            assert (await client.get("/healthz")).text == "ok\n"
        nursery.cancel_scope.cancel()
    assert not path.exists()
