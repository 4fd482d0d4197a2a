"""Health check of a TCP port: does it accept a connection, and how fast."""

from __future__ import annotations

import trio

from ttamond.probes.base import FieldInfo
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
    "latency_ms": FieldInfo("gauge", "ms", (), "time to open the connection"),
}
"""Present only when the connection was made."""


async def check_tcp(
    host: str,
    port: int,
    *,
    timeout: float,  # noqa: ASYNC109 - running out of time is a crit result, not a cancellation
    latency_warn_ms: float | None = None,
    latency_crit_ms: float | None = None,
) -> CheckResult:
    """Connect to host:port and close again. Crit when the connection is refused or
    cannot be made within `timeout` seconds; warn or crit when it took longer than
    the latency limits. Never raises for the service being down."""
    target = place(host, port)
    latency = Thresholds(latency_warn_ms, latency_crit_ms)
    started = trio.current_time()
    with trio.move_on_after(timeout):
        try:
            stream = await open_connection(host, port)
        except CheckFailed as exc:
            return failed(str(exc), latency_ms=elapsed_ms(started))
        latency_ms = elapsed_ms(started)
        await trio.aclose_forcefully(stream)
        findings = Findings()
        findings.grade(latency_ms, latency, f"connecting to {target} took {latency_ms:.0f} ms",
                       " ms")
        return findings.result(latency_ms=latency_ms, values={"latency_ms": latency_ms},
                               ok_message=f"{target} accepts connections")
    return timed_out(timeout, target)
