"""From a check's settings to the call that runs it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ttamond.actors.latest import LatestValue
from ttamond.health.settings import (
    CheckBase,
    CommandCheck,
    ContainerCheck,
    DiskCheck,
    FreshnessCheck,
    HttpCheck,
    Neo4jCheck,
    ProcessCheck,
    RedisCheck,
    TcpCheck,
)
from ttamond.probes.checks import (
    CheckResult,
    check_command,
    check_disk,
    check_freshness,
    check_http,
    check_neo4j,
    check_redis,
    check_tcp,
    container_status,
)
from ttamond.probes.checks import ProcessCheck as ProcessLookout

Check = Callable[[], Awaitable[CheckResult]]
Latest = Callable[[str], list[LatestValue]]
"""The newest value of every series whose name starts with a prefix."""


def make_check(spec: CheckBase, *, latest: Latest) -> Check:
    """The coroutine function that runs `spec` once. A process check keeps its state
    (the oldest process, CPU times) between runs, so build it once per actor."""
    match spec:
        case HttpCheck():
            statuses = set(spec.expect_status) or range(200, 400)
            return lambda: check_http(
                spec.url, timeout=spec.timeout, expect_status=statuses,
                body_contains=spec.body_contains or None,
                latency_warn_ms=spec.latency_warn_ms, latency_crit_ms=spec.latency_crit_ms,
                cert_warn_days=spec.cert_warn_days, cert_crit_days=spec.cert_crit_days,
                verify_tls=spec.verify_tls, ca_file=spec.ca_file or None)
        case TcpCheck():
            return lambda: check_tcp(spec.host, spec.port, timeout=spec.timeout,
                                     latency_warn_ms=spec.latency_warn_ms,
                                     latency_crit_ms=spec.latency_crit_ms)
        case RedisCheck():
            return lambda: check_redis(
                spec.host, spec.port, timeout=spec.timeout, password=spec.password or None,
                latency_warn_ms=spec.latency_warn_ms, latency_crit_ms=spec.latency_crit_ms,
                memory_warn_ratio=spec.memory_warn_ratio,
                memory_crit_ratio=spec.memory_crit_ratio)
        case Neo4jCheck():
            return lambda: check_neo4j(spec.host, spec.port, timeout=spec.timeout,
                                       mode=spec.mode)
        case ProcessCheck():
            return ProcessLookout(
                name=spec.process_name or None, pattern=spec.pattern or None,
                pidfile=spec.pidfile or None, cpu_warn_percent=spec.cpu_warn_percent,
                cpu_crit_percent=spec.cpu_crit_percent, rss_warn_bytes=spec.rss_warn_bytes,
                rss_crit_bytes=spec.rss_crit_bytes)
        case ContainerCheck():
            return _container(spec.container, latest)
        case DiskCheck():
            return lambda: check_disk(
                spec.path, used_warn_ratio=spec.used_warn_ratio,
                used_crit_ratio=spec.used_crit_ratio, inodes_warn_ratio=spec.inodes_warn_ratio,
                inodes_crit_ratio=spec.inodes_crit_ratio, timeout=spec.timeout)
        case FreshnessCheck():
            return lambda: check_freshness(spec.path, max_age_warn_s=spec.max_age_warn,
                                           max_age_crit_s=spec.max_age_crit,
                                           timeout=spec.timeout)
        case CommandCheck():
            return lambda: check_command(spec.command, timeout=spec.timeout,
                                         ok_codes=set(spec.ok_codes),
                                         warn_codes=set(spec.warn_codes))
    raise TypeError(f"no check runs {type(spec).__name__}")


def _container(name: str, latest: Latest) -> Check:
    async def check() -> CheckResult:
        state = health = None
        for value in latest("container_"):
            if value.labels.get("container") != name or value.value != 1.0:
                continue
            if value.name == "container_state":
                state = value.labels.get("state")
            elif value.name == "container_health":
                health = value.labels.get("health")
        if state is None:
            return CheckResult(status="crit", latency_ms=0.0, values={},
                               message=f"container {name!r} not seen by the container"
                               " collector (is [collectors.docker] on, and the name right?)")
        return container_status(None if health in (None, "none") else health, state)

    return check
