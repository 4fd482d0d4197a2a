"""Health check of an HTTP(S) endpoint: status, body, latency and certificate expiry."""

from __future__ import annotations

import datetime
from collections.abc import Container

import trio

from ttamond.probes.base import FieldInfo
from ttamond.probes.checks._http import Target, fetch
from ttamond.probes.checks._network import CheckFailed
from ttamond.probes.checks.result import (
    CheckResult,
    Findings,
    Thresholds,
    duration,
    elapsed_ms,
    failed,
    timed_out,
)

VALUES: dict[str, FieldInfo] = {
    "latency_ms": FieldInfo("gauge", "ms", (), "connect, TLS, request and body read"),
    "status_code": FieldInfo("gauge", "", (), "HTTP status of the response"),
    "cert_days_left": FieldInfo(
        "gauge", "days", (), "until the server certificate expires; HTTPS only, negative "
        "once expired"),
}
"""Present only when a response came back."""


async def check_http(
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 - running out of time is a crit result, not a cancellation
    expect_status: Container[int] = range(200, 400),
    body_contains: str | None = None,
    latency_warn_ms: float | None = None,
    latency_crit_ms: float | None = None,
    cert_warn_days: float | None = 14,
    cert_crit_days: float | None = 3,
    verify_tls: bool = True,
    ca_file: str | None = None,
) -> CheckResult:
    """GET `url` (redirects are not followed: a 3xx is judged as it is).

    Crit when the server cannot be reached in `timeout` seconds, fails TLS
    verification (unless `verify_tls` is off), answers a status outside
    `expect_status`, or its body (its first MiB) lacks `body_contains`. Warn or crit
    when the response took longer than the latency limits, or, for HTTPS, when the
    certificate expires within the day limits (crit once expired; reported with
    `verify_tls` off too). `ca_file` names the CA certificates (PEM) to trust instead
    of the system's. Raises ValueError for a URL that is not http(s).
    """
    target = Target.parse(url)
    latency = Thresholds(latency_warn_ms, latency_crit_ms)
    cert_days = Thresholds(cert_warn_days, cert_crit_days, higher_is_worse=False)
    started = trio.current_time()
    with trio.move_on_after(timeout):
        try:
            response = await fetch(target, verify_tls=verify_tls, ca_file=ca_file)
        except CheckFailed as exc:
            return failed(str(exc), latency_ms=elapsed_ms(started))
        latency_ms = elapsed_ms(started)
        values = {"latency_ms": latency_ms, "status_code": float(response.status)}
        findings = Findings()
        if response.status not in expect_status:
            findings.add("crit", f"HTTP {response.status} from {url} "
                                 f"(expected {_describe(expect_status)})")
        elif body_contains is not None and body_contains.encode() not in response.body:
            findings.add("crit", f"body from {url} lacks {body_contains!r}")
        findings.grade(latency_ms, latency, f"{url} took {latency_ms:.0f} ms", " ms")
        ok_message = f"HTTP {response.status} from {url} in {latency_ms:.0f} ms"
        if response.certificate_expires is not None:
            left = response.certificate_expires - datetime.datetime.now(datetime.UTC)
            days_left = left.total_seconds() / 86400
            values["cert_days_left"] = days_left
            if days_left <= 0:
                findings.add("crit", f"certificate of {target.host} expired "
                                     f"{duration(-left.total_seconds())} ago")
            else:
                findings.grade(days_left, cert_days, f"certificate of {target.host} expires "
                               f"in {duration(left.total_seconds())}")
            ok_message += f", certificate valid for {duration(left.total_seconds())}"
        return findings.result(latency_ms=latency_ms, ok_message=ok_message, values=values)
    return timed_out(timeout, url)


def _describe(expected: Container[int]) -> str:
    if isinstance(expected, range) and expected.step == 1:
        return f"{expected.start}-{expected.stop - 1}"
    if isinstance(expected, set | frozenset | list | tuple):
        return ", ".join(str(code) for code in sorted(expected))
    return repr(expected)
