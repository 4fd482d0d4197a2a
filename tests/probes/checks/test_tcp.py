"""The TCP check against a real loopback listener, open and then closed."""

from __future__ import annotations

import trio

from tests.probes.checks.servers import serve_tcp
from ttamond.probes.checks import check_tcp


async def hang_up(stream: trio.SocketStream) -> None:
    await stream.aclose()


async def test_an_open_port_is_ok_then_closed_is_crit() -> None:
    async with trio.open_nursery() as nursery:
        port = await serve_tcp(nursery, hang_up)
        up = await check_tcp("127.0.0.1", port, timeout=5)
        nursery.cancel_scope.cancel()
    down = await check_tcp("127.0.0.1", port, timeout=5)
    assert (up.status, up.message) == ("ok", f"127.0.0.1:{port} accepts connections")
    assert 0 < up.values["latency_ms"] == up.latency_ms
    assert (down.status, down.message) == ("crit", f"connection refused on 127.0.0.1:{port}")
    assert down.values == {}


async def test_latency_limits_grade_the_connect(nursery: trio.Nursery) -> None:
    port = await serve_tcp(nursery, hang_up)
    result = await check_tcp("127.0.0.1", port, timeout=5, latency_warn_ms=0,
                             latency_crit_ms=10_000)
    assert result.status == "warn"
    assert result.message.startswith(f"connecting to 127.0.0.1:{port} took ")
    assert result.message.endswith(" ms (warn at 0 ms)")


async def test_an_unknown_host_is_crit() -> None:
    result = await check_tcp("no-such-host.invalid", 80, timeout=5)
    assert result.status == "crit"
    assert result.message.startswith("cannot resolve no-such-host.invalid: ")

