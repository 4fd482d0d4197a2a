"""Health check of a Neo4j server: the Bolt handshake, or the HTTP discovery document."""

from __future__ import annotations

from typing import Literal

import msgspec
import trio

from ttamond.probes.base import FieldInfo
from ttamond.probes.checks._http import Target, fetch
from ttamond.probes.checks._network import CheckFailed, open_connection, place
from ttamond.probes.checks.result import (
    CheckResult,
    Findings,
    Thresholds,
    elapsed_ms,
    failed,
    timed_out,
)

VALUES: dict[str, FieldInfo] = {
    "latency_ms": FieldInfo("gauge", "ms", (), "connect and handshake, or the discovery GET"),
    "bolt_major": FieldInfo("gauge", "", (), "agreed Bolt protocol major version; bolt mode"),
    "bolt_minor": FieldInfo("gauge", "", (), "agreed Bolt protocol minor version; bolt mode"),
}
"""Present only when the server answered as Neo4j."""

BOLT_MAGIC = b"\x60\x60\xb0\x17"
# Four proposals, each [reserved, range, minor, major]: a range offers that many minor
# versions below the one named as well (5.8 down to 5.0, 4.4 down to 4.2).
BOLT_PROPOSALS = b"".join((b"\x00\x08\x08\x05", b"\x00\x02\x04\x04", b"\x00\x00\x01\x04",
                           b"\x00\x00\x00\x03"))
_OFFERED = "5.0-5.8, 4.2-4.4, 4.1, 3.0"


async def check_neo4j(
    host: str,
    port: int,
    *,
    timeout: float,  # noqa: ASYNC109 - running out of time is a crit result, not a cancellation
    mode: Literal["bolt", "http"] = "bolt",
    latency_warn_ms: float | None = None,
    latency_crit_ms: float | None = None,
) -> CheckResult:
    """In bolt mode, open a Bolt connection and agree a protocol version, then hang up
    (no credentials needed); in http mode, GET the discovery document at / of the
    HTTP port and look for neo4j_version or the Bolt addresses.

    Crit when the server cannot be reached within `timeout` seconds, agrees no Bolt
    version, or answers as something other than Neo4j. Warn or crit when the latency
    limits are reached. Raises ValueError for an unknown mode.
    """
    if mode not in ("bolt", "http"):
        raise ValueError(f"unknown Neo4j check mode {mode!r} (expected 'bolt' or 'http')")
    where = place(host, port)
    latency = Thresholds(latency_warn_ms, latency_crit_ms)
    started = trio.current_time()
    with trio.move_on_after(timeout):
        try:
            if mode == "bolt":
                major, minor = await _handshake(host, port)
                values = {"bolt_major": float(major), "bolt_minor": float(minor)}
                ok_message = f"Neo4j at {where} agreed Bolt {major}.{minor}"
            else:
                values = {}
                ok_message = await _discover(host, port)
        except CheckFailed as exc:
            return failed(str(exc), latency_ms=elapsed_ms(started))
        latency_ms = elapsed_ms(started)
        values["latency_ms"] = latency_ms
        findings = Findings()
        findings.grade(latency_ms, latency, f"Neo4j at {where} took {latency_ms:.0f} ms", " ms")
        return findings.result(latency_ms=latency_ms, values=values,
                               ok_message=f"{ok_message} in {latency_ms:.0f} ms")
    return timed_out(timeout, f"Neo4j at {where}")


async def _handshake(host: str, port: int) -> tuple[int, int]:
    where = place(host, port)
    stream = await open_connection(host, port)
    try:
        await stream.send_all(BOLT_MAGIC + BOLT_PROPOSALS)
        answer = b""
        while len(answer) < 4:
            data = await stream.receive_some(4 - len(answer))
            if not data:
                raise CheckFailed(f"{where} closed the connection during the Bolt handshake"
                                  + (f" after sending {answer!r}" if answer else ""))
            answer += data
    except trio.BrokenResourceError as exc:
        raise CheckFailed(f"connection to {where} broke during the Bolt handshake: "
                          f"{exc.__cause__ or exc}") from exc
    finally:
        await trio.aclose_forcefully(stream)
    if answer == b"\x00\x00\x00\x00":
        raise CheckFailed(f"Neo4j at {where} supports none of the Bolt versions {_OFFERED}")
    if answer[:2] != b"\x00\x00":
        raise CheckFailed(f"not a Bolt server at {where}: it answered {answer!r}")
    return answer[3], answer[2]


async def _discover(host: str, port: int) -> str:
    where = place(host, port)
    target = Target.parse(f"http://{where}/")
    response = await fetch(target, headers=[("Accept", "application/json")])
    if response.status != 200:
        raise CheckFailed(f"HTTP {response.status} from {target.url} (expected Neo4j's "
                          "discovery document)")
    try:
        document = msgspec.json.decode(response.body)
    except msgspec.DecodeError as exc:
        raise CheckFailed(f"not Neo4j at {target.url}: the answer is not JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise CheckFailed(f"not Neo4j at {target.url}: the answer is not a JSON object")
    if "neo4j_version" in document:
        edition = document.get("neo4j_edition", "")
        return f"Neo4j {document['neo4j_version']} {edition}".rstrip() + f" at {where}"
    for key in ("bolt_routing", "bolt_direct"):
        if key in document:
            return f"Neo4j at {where} offers {document[key]}"
    raise CheckFailed(f"not Neo4j at {target.url}: no neo4j_version, bolt_routing or "
                      "bolt_direct in its answer")
