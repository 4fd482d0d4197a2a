"""Container limits and usage from this process's cgroup (v1 or v2): CPU cores and memory."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ttamond.messages import MetricPoint
from ttamond.probes.base import FieldInfo, ProbeError, ProbeUnavailable

FIELDS: dict[str, FieldInfo] = {
    "container_cpu_limit_cores": FieldInfo(
        "gauge", "cores", (), "CPU quota over its period (tightest of the cgroup and its "
        "ancestors); absent when unlimited"),
    "container_cpu_percent_of_limit": FieldInfo(
        "gauge", "percent", (), "CPU time used since the previous read as a share of the "
        "limit; absent on the first read and when CPU is unlimited"),
    "container_memory_limit_bytes": FieldInfo(
        "gauge", "bytes", (), "memory limit (tightest of the cgroup and its ancestors); "
        "absent when unlimited"),
    "container_memory_used_bytes": FieldInfo(
        "gauge", "bytes", (), "memory charged to the cgroup, page cache included"),
    "container_memory_percent_of_limit": FieldInfo(
        "gauge", "percent", (), "memory used as a share of the limit; absent when unlimited"),
}

# v1 writes "unlimited" as PAGE_COUNTER_MAX pages: LONG_MAX rounded down to the page size
# (9223372036854771712 with 4 KiB pages). No real limit comes near 2**62.
_V1_UNLIMITED_FROM = 1 << 62
_V1_CONTROLLERS = frozenset({"cpu", "cpuacct", "memory"})


@dataclass(frozen=True)
class CgroupLayout:
    """Where this process's cgroup files are.

    `cpu` and `memory` list the directories whose limits apply, the process's own cgroup
    first, then each ancestor up to the hierarchy's mount point: the effective limit is
    the tightest of them. `cpu_usage` is the file holding the cumulative CPU time.
    """

    version: int
    cpu: tuple[Path, ...]
    memory: tuple[Path, ...]
    cpu_usage: Path | None


def detect_layout(root: Path, proc: Path) -> CgroupLayout:
    """Find this process's cgroups from `proc`/self/cgroup and the hierarchies under `root`.

    Controllers bound to v1 hierarchies (cpu, cpuacct, memory) win over the unified v2
    one, as in the kernel's hybrid mode. A cgroup path missing under its mount point
    means the mount already shows our own cgroup (a cgroup namespace, or Docker
    bind-mounting the container's subtree), so the mount point is used.

    Raises ProbeUnavailable when there are no cgroups to read, ProbeError when a file
    cannot be read or parsed.
    """
    source = proc / "self" / "cgroup"
    text = _read(source)
    if text is None:
        raise ProbeUnavailable(f"no cgroups: {source} does not exist")
    v1: dict[str, tuple[str, str]] = {}
    unified: str | None = None
    for line in text.splitlines():
        if not line:
            continue
        parts = line.split(":", 2)
        if len(parts) != 3:
            raise ProbeError(f"{source}: unexpected line {line!r}")
        hierarchy, controllers, path = parts
        if hierarchy == "0" and not controllers:
            unified = path
        for controller in controllers.split(","):
            v1[controller] = (controllers, path)
    if _V1_CONTROLLERS & v1.keys():
        cpu = _v1_chain(root, "cpu", v1)
        cpuacct = _v1_chain(root, "cpuacct", v1)
        memory = _v1_chain(root, "memory", v1)
        if not (cpu or cpuacct or memory):
            raise ProbeUnavailable(f"no cgroup v1 cpu or memory hierarchy mounted under {root}")
        usage = cpuacct[0] / "cpuacct.usage" if cpuacct else None
        return CgroupLayout(version=1, cpu=cpu, memory=memory, cpu_usage=usage)
    if unified is not None:
        if not (root / "cgroup.controllers").is_file():
            raise ProbeUnavailable(f"no cgroup v2 filesystem mounted at {root}")
        chain = _chain(root, unified)
        return CgroupLayout(version=2, cpu=chain, memory=chain, cpu_usage=chain[0] / "cpu.stat")
    raise ProbeUnavailable(f"no cpu or memory cgroup named in {source}")


class CgroupProbe:
    """Reads the limits of the cgroup this daemon runs in and how much of them is used.

    Runs beside a container (as a sidecar sharing its cgroup, or inside it). On a host,
    or in a cgroup without CPU and memory limits, `read()` returns no points. The cgroup
    is found again on every read (a few small reads), so a process moved to another
    cgroup is followed; the CPU rate restarts then.
    """

    fields: ClassVar[Mapping[str, FieldInfo]] = FIELDS
    blocking: ClassVar[bool] = False

    def __init__(
        self,
        root: Path = Path("/sys/fs/cgroup"),
        proc: Path = Path("/proc"),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self.proc = proc
        self._clock = clock
        self._previous: tuple[Path, float, float] | None = None
        """(usage file, clock, CPU seconds) at the previous read."""

    def read(self) -> list[MetricPoint]:
        """One reading. Raises ProbeUnavailable when there are no cgroups, ProbeError
        (naming the file) when a cgroup file cannot be read or parsed."""
        layout = detect_layout(self.root, self.proc)
        v1 = layout.version == 1
        cores = _tightest(_cpu_limit_v1(d) if v1 else _cpu_limit_v2(d) for d in layout.cpu)
        memory_limit = _tightest(
            _memory_limit_v1(d) if v1 else _memory_limit_v2(d) for d in layout.memory
        )
        if cores is None and memory_limit is None:
            self._previous = None
            return []
        points: list[MetricPoint] = []
        if cores is not None:
            points.append(MetricPoint("container_cpu_limit_cores", cores, (), "gauge", "cores"))
            percent = self._cpu_percent(layout.cpu_usage, v1, cores)
            if percent is not None:
                points.append(MetricPoint("container_cpu_percent_of_limit", percent, (),
                                          "gauge", "percent"))
        else:
            self._previous = None
        used = None
        if layout.memory:
            used_file = layout.memory[0] / ("memory.usage_in_bytes" if v1 else "memory.current")
            used_text = _read(used_file)
            used = None if used_text is None else _integer(used_file, used_text)
        if used is not None:
            points.append(MetricPoint("container_memory_used_bytes", used, (), "gauge", "bytes"))
        if memory_limit is not None:
            points.append(MetricPoint("container_memory_limit_bytes", memory_limit, (), "gauge",
                                      "bytes"))
            if used is not None:
                points.append(MetricPoint("container_memory_percent_of_limit",
                                          100.0 * used / memory_limit, (), "gauge", "percent"))
        return points

    def _cpu_percent(self, usage_file: Path | None, v1: bool, cores: float) -> float | None:
        usage = None
        if usage_file is not None:
            usage = _cpu_seconds_v1(usage_file) if v1 else _cpu_seconds_v2(usage_file)
        if usage_file is None or usage is None:
            self._previous = None
            return None
        now = self._clock()
        previous, self._previous = self._previous, (usage_file, now, usage)
        if previous is None:
            return None
        last_file, last_time, last_usage = previous
        # A counter that went back belongs to a new cgroup of the same name.
        if last_file != usage_file or now <= last_time or usage < last_usage:
            return None
        return 100.0 * (usage - last_usage) / (now - last_time) / cores


def _v1_chain(root: Path, controller: str, v1: dict[str, tuple[str, str]]) -> tuple[Path, ...]:
    if controller not in v1:
        return ()
    together, path = v1[controller]
    # systemd mounts co-mounted controllers at "cpu,cpuacct" with "cpu" and "cpuacct"
    # links beside it; other setups mount each controller alone.
    for name in (together, controller):
        mount = root / name
        if mount.is_dir():
            return _chain(mount, path)
    return ()


def _chain(mount: Path, path: str) -> tuple[Path, ...]:
    leaf = mount / path.lstrip("/")
    if leaf == mount or not leaf.is_dir():
        return (mount,)
    chain = [leaf]
    while chain[-1] != mount:
        chain.append(chain[-1].parent)
    return tuple(chain)


def _tightest(limits: Iterable[float | None]) -> float | None:
    found = [limit for limit in limits if limit is not None]
    return min(found) if found else None


def _cpu_limit_v2(directory: Path) -> float | None:
    path = directory / "cpu.max"
    text = _read(path)
    if text is None:
        return None
    fields = text.split()
    if len(fields) != 2:
        raise ProbeError(f"{path}: cannot parse {text.strip()!r}")
    if fields[0] == "max":
        return None
    return _quota_cores(path, _integer(path, fields[0]), _integer(path, fields[1]))


def _cpu_limit_v1(directory: Path) -> float | None:
    quota_file = directory / "cpu.cfs_quota_us"
    quota_text = _read(quota_file)
    if quota_text is None:
        return None
    quota = _integer(quota_file, quota_text)
    if quota < 0:
        return None
    period_file = directory / "cpu.cfs_period_us"
    period_text = _read(period_file)
    if period_text is None:
        raise ProbeError(f"{period_file}: missing beside {quota_file.name}")
    return _quota_cores(quota_file, quota, _integer(period_file, period_text))


def _quota_cores(path: Path, quota: int, period: int) -> float:
    if quota <= 0 or period <= 0:
        raise ProbeError(f"{path}: quota {quota} and period {period} must be positive")
    return quota / period


def _memory_limit_v2(directory: Path) -> float | None:
    path = directory / "memory.max"
    text = _read(path)
    if text is None or text.strip() == "max":
        return None
    return _integer(path, text)


def _memory_limit_v1(directory: Path) -> float | None:
    path = directory / "memory.limit_in_bytes"
    text = _read(path)
    if text is None:
        return None
    limit = _integer(path, text)
    return None if limit >= _V1_UNLIMITED_FROM else limit


def _cpu_seconds_v2(path: Path) -> float | None:
    text = _read(path)
    if text is None:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            return _integer(path, value) / 1e6
    raise ProbeError(f"{path}: no usage_usec line")


def _cpu_seconds_v1(path: Path) -> float | None:
    text = _read(path)
    return None if text is None else _integer(path, text) / 1e9


def _integer(path: Path, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ProbeError(f"{path}: cannot parse {text.strip()!r} as an integer") from None


def _read(path: Path) -> str | None:
    """The file's text, or None when it does not exist (a controller not enabled there)."""
    try:
        return path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ProbeError(f"cannot read {path}: {reason}") from exc
