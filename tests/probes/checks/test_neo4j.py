"""The Neo4j check against loopback servers speaking Neo4j's first words.

There is no Neo4j here, so each test serves just what the check reads: the Bolt
handshake (magic, four version proposals, one chosen version back), or the JSON
discovery document of the HTTP port."""

from __future__ import annotations

import msgspec
import pytest
import trio

from tests.probes.checks.servers import Route, serve_http, serve_tcp
from ttamond.probes.checks import check_neo4j
from ttamond.probes.checks.neo4j import BOLT_MAGIC, BOLT_PROPOSALS

DISCOVERY = msgspec.json.encode({
    "bolt_routing": "neo4j://localhost:7687",
    "transaction": "http://localhost:7474/db/{databaseName}/tx",
    "bolt_direct": "bolt://localhost:7687",
    "neo4j_version": "5.20.0",
    "neo4j_edition": "community",
})


async def serve_bolt(nursery: trio.Nursery, answer: bytes, heard: list[bytes]) -> int:
    """A Bolt server that reads the 20-byte handshake into `heard` and sends `answer`."""

    async def handshake(stream: trio.SocketStream) -> None:
        received = b""
        while len(received) < 20:
            data = await stream.receive_some(20 - len(received))
            if not data:
                break
            received += data
        heard.append(received)
        await stream.send_all(answer)

    return await serve_tcp(nursery, handshake)


async def test_bolt_agreed_is_ok(nursery: trio.Nursery) -> None:
    heard: list[bytes] = []
    port = await serve_bolt(nursery, b"\x00\x00\x04\x05", heard)
    result = await check_neo4j("127.0.0.1", port, timeout=5)
    assert heard == [BOLT_MAGIC + BOLT_PROPOSALS]
    assert result.status == "ok"
    assert result.message.startswith(f"Neo4j at 127.0.0.1:{port} agreed Bolt 5.4 in ")
    assert result.values["bolt_major"] == 5
    assert result.values["bolt_minor"] == 4
    assert result.values["latency_ms"] == result.latency_ms


async def test_no_bolt_version_in_common_is_crit(nursery: trio.Nursery) -> None:
    port = await serve_bolt(nursery, b"\x00\x00\x00\x00", [])
    result = await check_neo4j("127.0.0.1", port, timeout=5)
    assert (result.status, result.message) == (
        "crit", f"Neo4j at 127.0.0.1:{port} supports none of the Bolt versions "
        "5.0-5.8, 4.2-4.4, 4.1, 3.0")


async def test_a_server_hanging_up_mid_handshake_is_crit(nursery: trio.Nursery) -> None:
    port = await serve_bolt(nursery, b"\x00\x00", [])
    result = await check_neo4j("127.0.0.1", port, timeout=5)
    assert (result.status, result.message) == (
        "crit", f"127.0.0.1:{port} closed the connection during the Bolt handshake after "
        "sending b'\\x00\\x00'")


async def test_an_http_server_on_the_bolt_port_is_crit(nursery: trio.Nursery) -> None:
    async def reject(stream: trio.SocketStream) -> None:
        # What an HTTP server says to bytes that are no request line.
        await stream.receive_some(20)
        await stream.send_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    port = await serve_tcp(nursery, reject)
    result = await check_neo4j("127.0.0.1", port, timeout=5)
    assert result.status == "crit"
    assert result.message.startswith(f"not a Bolt server at 127.0.0.1:{port}: it answered")


async def test_a_silent_server_times_out(nursery: trio.Nursery) -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    port = await serve_tcp(nursery, silent)
    result = await check_neo4j("127.0.0.1", port, timeout=0.3)
    assert (result.status, result.message) == (
        "crit", f"timed out after 0.3 s on Neo4j at 127.0.0.1:{port}")


async def test_the_discovery_document_is_ok(nursery: trio.Nursery) -> None:
    port = await serve_http(nursery, {"/": Route(200, DISCOVERY, "application/json")})
    result = await check_neo4j("127.0.0.1", port, timeout=5, mode="http")
    assert result.status == "ok"
    assert result.message.startswith(f"Neo4j 5.20.0 community at 127.0.0.1:{port} in ")
    assert set(result.values) == {"latency_ms"}


async def test_bolt_addresses_alone_are_enough(nursery: trio.Nursery) -> None:
    document = msgspec.json.encode({"bolt_direct": "bolt://db:7687"})
    port = await serve_http(nursery, {"/": Route(200, document, "application/json")})
    result = await check_neo4j("127.0.0.1", port, timeout=5, mode="http")
    assert result.status == "ok"
    assert result.message.startswith(f"Neo4j at 127.0.0.1:{port} offers bolt://db:7687 in ")


@pytest.mark.parametrize(("route", "problem"), [
    (Route(503, b"starting"), "HTTP 503 from http://127.0.0.1:{port}/ (expected Neo4j's "
                              "discovery document)"),
    (Route(200, b"<html>"), "not Neo4j at http://127.0.0.1:{port}/: the answer is not JSON"),
    (Route(200, b"[1]"), "not Neo4j at http://127.0.0.1:{port}/: the answer is not a JSON "
                         "object"),
    (Route(200, b'{"status": "up"}'), "not Neo4j at http://127.0.0.1:{port}/: no "
                                      "neo4j_version, bolt_routing or bolt_direct in its answer"),
])
async def test_another_http_answer_is_crit(nursery: trio.Nursery, route: Route,
                                           problem: str) -> None:
    port = await serve_http(nursery, {"/": route})
    result = await check_neo4j("127.0.0.1", port, timeout=5, mode="http")
    assert result.status == "crit"
    assert result.message.startswith(problem.format(port=port))


async def test_an_unknown_mode_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown Neo4j check mode 'grpc'"):
        await check_neo4j("127.0.0.1", 7687, timeout=1, mode="grpc")  # type: ignore[arg-type]
