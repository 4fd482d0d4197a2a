"""Containers through the Docker Engine API (Docker or podman): state, health, usage."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ttamond.messages import Labels, MetricPoint, labels
from ttamond.probes.base import FieldInfo, ProbeError, ProbeUnavailable

if TYPE_CHECKING:
    import docker

# The Docker SDK (with requests and urllib3) costs about 20 MB of RSS: it is imported
# inside the methods that talk to an engine, and only once one's socket exists.

DEFAULT_URL = "unix:///var/run/docker.sock"

STATES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
"""The Docker Engine's container states; `container_state` has one series for each."""

HEALTH = ("healthy", "unhealthy", "starting", "none")
"""Health-check statuses; "none" means the container has no health check."""

_CONTAINER = ("container", "id", "image")


def _f(kind: str, unit: str, extra: tuple[str, ...], description: str) -> FieldInfo:
    return FieldInfo(kind="counter" if kind == "counter" else "gauge", unit=unit,
                     labels=(*_CONTAINER, *extra), description=description)


FIELDS: dict[str, FieldInfo] = {
    "container_count": FieldInfo(
        kind="gauge", unit="", labels=("state",),
        description="containers in each state (every state listed, zeros included)"),
    "container_up": _f("gauge", "", (), "1 while the container is running, else 0"),
    "container_state": _f("gauge", "", ("state",),
                          "state set: 1 for the container's current state, 0 for the others"),
    "container_health": _f("gauge", "", ("health",),
                           "state set: 1 for the current health-check status "
                           "(healthy, unhealthy, starting, none), 0 for the others"),
    "container_healthy": _f("gauge", "", (),
                            "1 healthy, 0 unhealthy or starting; absent without a health check"),
    "container_restarts_total": _f("counter", "", (), "restarts by the engine's restart policy"),
    "container_cpu_percent": _f("gauge", "percent", (),
                                "CPU time since the previous read over the time elapsed; "
                                "100 is one CPU fully busy (as `docker stats`); running only, "
                                "from the second read of a container on"),
    "container_memory_used_bytes": _f("gauge", "bytes", (),
                                      "memory in use, less the inactive page cache "
                                      "(as `docker stats`); running only"),
    "container_memory_limit_bytes": _f("gauge", "bytes", (),
                                       "memory limit (the host's memory when unlimited); "
                                       "running only"),
    "container_network_received_bytes_total": _f("counter", "bytes", (),
                                                 "bytes received on all interfaces; running "
                                                 "only, absent without a network"),
    "container_network_sent_bytes_total": _f("counter", "bytes", (),
                                             "bytes sent on all interfaces; running only, "
                                             "absent without a network"),
    "container_block_read_bytes_total": _f("counter", "bytes", (),
                                           "bytes read from block devices; running only"),
    "container_block_written_bytes_total": _f("counter", "bytes", (),
                                              "bytes written to block devices; running only"),
}

# An RFC 3339 time with up to nanoseconds, as the engines write `read` in stats.
_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


class DockerProbe:
    """Reads every container of one engine: one list call, one inspect per container
    and one one-shot stats call per running container.

    One-shot stats carry no previous sample (`precpu_stats` is empty), so the CPU
    percentage is the change in the container's CPU time between this probe's reads
    over the time between the engine's two samples. That is the `docker stats` number,
    and it stays right on podman, whose `system_cpu_usage` is not the host's CPU time.

    Raises ProbeUnavailable when the engine cannot be reached (no socket, connection
    refused) and ProbeError for anything else the engine gets wrong. A container that
    goes away or stops between the list and its stats is left out of that read, and
    counted in `vanished`.
    """

    fields: ClassVar[Mapping[str, FieldInfo]] = FIELDS
    blocking: ClassVar[bool] = True

    def __init__(self, url: str = "", *, timeout: float = 5.0) -> None:
        self.url = engine_url(url)
        self.timeout = timeout
        self.vanished = 0
        self._api: docker.APIClient | None = None
        self._cpu: dict[str, tuple[int, float]] = {}  # id -> (CPU ns, sampled at, s)

    def read(self) -> list[MetricPoint]:
        """One reading of every container. Raises ProbeUnavailable or ProbeError."""
        if (missing := missing_socket(self.url)) is not None:
            raise ProbeUnavailable(f"Docker engine unavailable at {self.url}: {missing}")
        import docker.errors
        import requests.exceptions

        try:
            return self._read()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise self._error(exc) from exc

    def close(self) -> None:
        """Close the connection pool; the next read opens a new one."""
        if self._api is not None:
            self._api.close()
            self._api = None

    def _read(self) -> list[MetricPoint]:
        api = self._connect()
        points: list[MetricPoint] = []
        counts = dict.fromkeys(STATES, 0)
        seen: set[str] = set()
        for summary in api.containers(all=True):
            details = self._inspect(api, summary["Id"])
            if details is None:
                continue
            state = _get(details, "State", "Status", default="") or summary.get("State", "")
            counts[state] = counts.get(state, 0) + 1
            container = labels(container=_get(details, "Name", default="").lstrip("/"),
                               id=details["Id"][:12],
                               image=_get(details, "Config", "Image", default="")
                               or summary.get("Image", ""))
            self._status(points, container, details, state)
            if state == "running" and (stats := self._stats(api, details["Id"])) is not None:
                seen.add(details["Id"])
                self._usage(points, container, details["Id"], stats)
        for state, count in counts.items():
            points.append(MetricPoint("container_count", count, (("state", state),)))
        self._cpu = {key: value for key, value in self._cpu.items() if key in seen}
        return points

    def _connect(self) -> docker.APIClient:
        import docker

        if self._api is None:
            # Asks the engine for its API version: the first call that can fail.
            self._api = docker.APIClient(base_url=self.url, timeout=self.timeout)
        return self._api

    def _inspect(self, api: docker.APIClient, container_id: str) -> dict[str, Any] | None:
        import docker.errors

        try:
            details: dict[str, Any] = api.inspect_container(container_id)
        except docker.errors.NotFound:
            self.vanished += 1  # removed since the list
            return None
        return details

    def _stats(self, api: docker.APIClient, container_id: str) -> dict[str, Any] | None:
        import docker.errors
        import docker.utils
        import requests.exceptions

        # one_shot returns at once; without it the engine waits for a second sample.
        one_shot = True if docker.utils.version_gte(api.api_version, "1.41") else None
        try:
            stats: dict[str, Any] = api.stats(container_id, stream=False, one_shot=one_shot)
        except docker.errors.NotFound:
            self.vanished += 1
            return None
        except requests.exceptions.JSONDecodeError:
            self.vanished += 1  # podman answers a stopped container with an empty body
            return None
        return stats

    def _status(self, points: list[MetricPoint], container: Labels, details: dict[str, Any],
                state: str) -> None:
        points.append(MetricPoint("container_up", 1.0 if state == "running" else 0.0,
                                  container))
        for name in (STATES if state in STATES else (*STATES, state)):
            points.append(MetricPoint("container_state", 1.0 if name == state else 0.0,
                                      _with(container, "state", name)))
        health = _get(details, "State", "Health", "Status", default="") or "none"
        for name in (HEALTH if health in HEALTH else (*HEALTH, health)):
            points.append(MetricPoint("container_health", 1.0 if name == health else 0.0,
                                      _with(container, "health", name)))
        if health != "none":
            points.append(MetricPoint("container_healthy", 1.0 if health == "healthy" else 0.0,
                                      container))
        points.append(MetricPoint("container_restarts_total",
                                  float(details.get("RestartCount") or 0), container, "counter"))

    def _usage(self, points: list[MetricPoint], container: Labels, container_id: str,
               stats: dict[str, Any]) -> None:
        cpu_ns = _get(stats, "cpu_stats", "cpu_usage", "total_usage", default=None)
        if isinstance(cpu_ns, int):
            sampled_at = parse_time(stats.get("read")) or time.time()
            previous = self._cpu.get(container_id)
            self._cpu[container_id] = (cpu_ns, sampled_at)
            if previous is not None and cpu_ns >= previous[0] and sampled_at > previous[1]:
                percent = (cpu_ns - previous[0]) / ((sampled_at - previous[1]) * 1e9) * 100.0
                points.append(MetricPoint("container_cpu_percent", percent, container, "gauge",
                                          "percent"))
        memory = stats.get("memory_stats") or {}
        if isinstance(usage := memory.get("usage"), int):
            detail = memory.get("stats") or {}
            # cgroup v1 names it total_inactive_file, v2 inactive_file; podman sends neither.
            cache = detail.get("total_inactive_file", detail.get("inactive_file", 0))
            used = usage - cache if 0 <= cache <= usage else usage
            points.append(MetricPoint("container_memory_used_bytes", used, container, "gauge",
                                      "bytes"))
        if isinstance(limit := memory.get("limit"), int) and limit > 0:
            points.append(MetricPoint("container_memory_limit_bytes", limit, container, "gauge",
                                      "bytes"))
        networks = stats.get("networks")
        if isinstance(networks, dict) and networks:
            received = sum(int(n.get("rx_bytes") or 0) for n in networks.values())
            sent = sum(int(n.get("tx_bytes") or 0) for n in networks.values())
            points += [
                MetricPoint("container_network_received_bytes_total", received, container,
                            "counter", "bytes"),
                MetricPoint("container_network_sent_bytes_total", sent, container, "counter",
                            "bytes"),
            ]
        entries = _get(stats, "blkio_stats", "io_service_bytes_recursive", default=None)
        if isinstance(entries, list):
            read = sum(_ops(entries, "read"))
            written = sum(_ops(entries, "write"))
            points += [
                MetricPoint("container_block_read_bytes_total", read, container, "counter",
                            "bytes"),
                MetricPoint("container_block_written_bytes_total", written, container,
                            "counter", "bytes"),
            ]

    def _error(self, exc: Exception) -> ProbeError:
        import docker.errors
        import requests.exceptions

        reason = unreachable_reason(exc)
        if reason is not None:
            return ProbeUnavailable(f"Docker engine unavailable at {self.url}: {reason}")
        if isinstance(exc, requests.exceptions.Timeout):
            return ProbeError(f"Docker engine at {self.url} did not answer within "
                              f"{self.timeout:g} s")
        if isinstance(exc, docker.errors.APIError):
            return ProbeError(f"Docker engine at {self.url} answered {exc.status_code}: "
                              f"{exc.explanation or exc}")
        return ProbeError(f"Docker engine at {self.url}: {exc}")


def engine_url(url: str = "") -> str:
    """The engine's address: `url`, else $DOCKER_HOST, else the default Docker socket."""
    return url or os.environ.get("DOCKER_HOST") or DEFAULT_URL


def missing_socket(url: str) -> str | None:
    """For a unix:// address whose socket file does not exist, the reason ("No such file
    or directory"); None otherwise, when only a connection attempt can tell."""
    if url.startswith("unix://") and not Path(url.removeprefix("unix://")).exists():
        return os.strerror(2)
    return None


def unreachable_reason(exc: BaseException) -> str | None:
    """Why the engine could not be reached, in the operating system's words ("No such
    file or directory", "Connection refused"); None when `exc` is not a connection
    failure (the engine answered, wrongly or slowly)."""
    import requests.exceptions

    links = list(_chain(exc))
    if not any(isinstance(link, requests.exceptions.ConnectionError) for link in links):
        return None
    for link in links:
        if isinstance(link, OSError) and link.strerror:
            return link.strerror
    return str(exc)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, its causes and contexts, and exceptions carried in their args (urllib3
    and requests wrap the OSError there)."""
    pending, seen = [exc], set[int]()
    while pending:
        link = pending.pop(0)
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        pending += [arg for arg in link.args if isinstance(arg, BaseException)]
        pending += [e for e in (link.__cause__, link.__context__) if e is not None]


def _get(data: Mapping[str, Any], *keys: str, default: Any) -> Any:
    """data[k1][k2]..., or `default` where a level is missing or null."""
    value: Any = data
    for key in keys:
        if not isinstance(value, Mapping) or value.get(key) is None:
            return default
        value = value[key]
    return value


def _ops(entries: list[Any], op: str) -> Iterator[int]:
    # cgroup v1 writes "Read"/"Write", cgroup v2 "read"/"write".
    for entry in entries:
        if isinstance(entry, dict) and str(entry.get("op", "")).lower() == op:
            yield int(entry.get("value") or 0)


def _with(container: Labels, key: str, value: str) -> Labels:
    return tuple(sorted((*container, (key, value))))


def parse_time(text: object) -> float | None:
    """Seconds since the epoch from an RFC 3339 time with nanoseconds; None for a
    missing, malformed or zero ("0001-01-01T00:00:00Z") time."""
    if not isinstance(text, str) or not (match := _TIMESTAMP.match(text)):
        return None
    offset = "+00:00" if match[3] == "Z" else match[3]
    seconds = datetime.fromisoformat(match[1] + offset).timestamp()
    if seconds <= 0:
        return None
    return seconds + (float("0." + match[2]) if match[2] else 0.0)
