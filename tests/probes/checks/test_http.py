"""The HTTP check against real HTTP and HTTPS servers on loopback."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import msgspec
import pytest
import trio

from tests.probes.checks.servers import (
    Route,
    free_port,
    self_signed_certificate,
    serve_http,
    server_context,
)
from ttamond.probes.checks import check_http

ROUTES = {
    "/health": Route(200, b'{"status": "up"}\n', "application/json"),
    "/error": Route(500, b"database unavailable\n"),
    "/moved": Route(302, b""),
    "/slow": Route(200, delay=10.0),
}


def in_days(days: float) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days)


@pytest.fixture
async def base_url(nursery: trio.Nursery) -> str:
    return f"http://127.0.0.1:{await serve_http(nursery, ROUTES)}"


async def test_a_healthy_endpoint_is_ok_with_its_figures(base_url: str) -> None:
    result = await check_http(f"{base_url}/health", timeout=5)
    assert result.status == "ok"
    assert result.message.startswith(f"HTTP 200 from {base_url}/health in ")
    assert result.values["status_code"] == 200
    assert 0 < result.values["latency_ms"] == result.latency_ms
    assert "cert_days_left" not in result.values


async def test_a_server_error_is_crit(base_url: str) -> None:
    result = await check_http(f"{base_url}/error", timeout=5)
    assert result.status == "crit"
    assert result.message == f"HTTP 500 from {base_url}/error (expected 200-399)"
    assert result.values["status_code"] == 500


async def test_redirects_are_judged_not_followed(base_url: str) -> None:
    assert (await check_http(f"{base_url}/moved", timeout=5)).status == "ok"
    result = await check_http(f"{base_url}/moved", timeout=5, expect_status={200, 204})
    assert (result.status, result.message) == (
        "crit", f"HTTP 302 from {base_url}/moved (expected 200, 204)")


async def test_an_expected_error_status_is_ok(base_url: str) -> None:
    assert (await check_http(f"{base_url}/error", timeout=5, expect_status={500})).status == "ok"


async def test_body_must_contain_the_text(base_url: str) -> None:
    found = await check_http(f"{base_url}/health", timeout=5, body_contains='"up"')
    missing = await check_http(f"{base_url}/health", timeout=5, body_contains='"down"')
    assert found.status == "ok"
    assert (missing.status, missing.message) == (
        "crit", f"body from {base_url}/health lacks '\"down\"'")


async def test_a_response_slower_than_the_timeout_is_crit(base_url: str) -> None:
    started = trio.current_time()
    result = await check_http(f"{base_url}/slow", timeout=0.5)
    assert trio.current_time() - started < 5
    assert result.status == "crit"
    assert result.message == f"timed out after 0.5 s on {base_url}/slow"
    assert result.latency_ms == 500


async def test_latency_limits_grade_a_slow_answer(nursery: trio.Nursery) -> None:
    port = await serve_http(nursery, {"/": Route(delay=0.2)})
    result = await check_http(f"http://127.0.0.1:{port}/", timeout=5, latency_warn_ms=100,
                              latency_crit_ms=10_000)
    assert result.status == "warn"
    assert result.message.endswith("ms (warn at 100 ms)")


async def test_a_closed_port_is_crit_connection_refused() -> None:
    port = free_port()
    result = await check_http(f"http://127.0.0.1:{port}/", timeout=5)
    assert (result.status, result.message) == ("crit", f"connection refused on 127.0.0.1:{port}")


async def test_not_http_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="not an http:// or https:// URL: 'ftp://host/'"):
        await check_http("ftp://host/", timeout=1)


async def test_a_certificate_close_to_expiry_warns(nursery: trio.Nursery, tmp_path: Path) -> None:
    certificate = self_signed_certificate(tmp_path, not_after=in_days(5))
    port = await serve_http(nursery, ROUTES, server_context(certificate))
    unverified = await check_http(f"https://127.0.0.1:{port}/health", timeout=5,
                                  verify_tls=False)
    trusted = await check_http(f"https://127.0.0.1:{port}/health", timeout=5,
                               ca_file=str(certificate))
    for result in (unverified, trusted):
        assert result.status == "warn"
        assert result.message == "certificate of 127.0.0.1 expires in 5 days (warn at 14)"
        assert 4.9 < result.values["cert_days_left"] <= 5
        assert result.values["status_code"] == 200


async def test_a_certificate_about_to_expire_is_crit(nursery: trio.Nursery,
                                                     tmp_path: Path) -> None:
    certificate = self_signed_certificate(tmp_path, not_after=in_days(2))
    port = await serve_http(nursery, ROUTES, server_context(certificate))
    result = await check_http(f"https://127.0.0.1:{port}/health", timeout=5, verify_tls=False)
    assert (result.status, result.message) == (
        "crit", "certificate of 127.0.0.1 expires in 2 days (crit at 3)")


async def test_a_certificate_far_from_expiry_is_ok(nursery: trio.Nursery, tmp_path: Path) -> None:
    certificate = self_signed_certificate(tmp_path, not_after=in_days(90))
    port = await serve_http(nursery, ROUTES, server_context(certificate))
    result = await check_http(f"https://127.0.0.1:{port}/health", timeout=5,
                              ca_file=str(certificate))
    assert result.status == "ok"
    assert result.message.endswith(", certificate valid for 90 days")


async def test_an_expired_certificate_is_crit(nursery: trio.Nursery, tmp_path: Path) -> None:
    certificate = self_signed_certificate(tmp_path, not_after=in_days(-3))
    port = await serve_http(nursery, ROUTES, server_context(certificate))
    result = await check_http(f"https://127.0.0.1:{port}/health", timeout=5, verify_tls=False)
    assert (result.status, result.message) == ("crit", "certificate of 127.0.0.1 expired 3 days ago")
    assert -3.1 < result.values["cert_days_left"] < -2.9


async def test_verifying_a_self_signed_certificate_fails_crit(nursery: trio.Nursery,
                                                              tmp_path: Path) -> None:
    certificate = self_signed_certificate(tmp_path, not_after=in_days(5))
    port = await serve_http(nursery, ROUTES, server_context(certificate))
    result = await check_http(f"https://127.0.0.1:{port}/health", timeout=5)
    assert result.status == "crit"
    assert result.message == (f"TLS certificate of 127.0.0.1:{port} failed verification: "
                              "self-signed certificate")
    assert result.values == {}


async def test_the_result_encodes_as_json(base_url: str) -> None:
    result = await check_http(f"{base_url}/health", timeout=5)
    document = json.loads(msgspec.json.encode(result))
    assert set(document) == {"status", "latency_ms", "message", "values"}
