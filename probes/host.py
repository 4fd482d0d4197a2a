"""Host counters through psutil: CPU, load, memory, swap, disk usage and I/O, network I/O."""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar

import psutil

from ttamond.messages import Labels, MetricPoint
from ttamond.probes.base import FieldInfo, ProbeError


def _f(kind: str, unit: str, labels: tuple[str, ...], description: str) -> FieldInfo:
    return FieldInfo(kind="counter" if kind == "counter" else "gauge", unit=unit,
                     labels=labels, description=description)


FIELDS: dict[str, FieldInfo] = {
    "host_cpu_percent": _f("gauge", "percent", ("cpu",),
                           "CPU busy time since the previous read; cpu=total or the CPU index"),
    "host_load_average": _f("gauge", "", ("period",), "run-queue load average (1m, 5m, 15m)"),
    "host_memory_total_bytes": _f("gauge", "bytes", (), "physical memory"),
    "host_memory_available_bytes": _f("gauge", "bytes", (), "memory available without swapping"),
    "host_memory_used_bytes": _f("gauge", "bytes", (), "memory in use"),
    "host_memory_percent": _f("gauge", "percent", (), "share of memory not available"),
    "host_swap_total_bytes": _f("gauge", "bytes", (), "swap space"),
    "host_swap_used_bytes": _f("gauge", "bytes", (), "swap in use"),
    "host_disk_total_bytes": _f("gauge", "bytes", ("mount", "device", "fstype"), "filesystem size"),
    "host_disk_used_bytes": _f("gauge", "bytes", ("mount", "device", "fstype"), "space used"),
    "host_disk_free_bytes": _f("gauge", "bytes", ("mount", "device", "fstype"),
                               "space free for unprivileged users"),
    "host_disk_percent": _f("gauge", "percent", ("mount", "device", "fstype"), "share used"),
    "host_disk_inodes_percent": _f("gauge", "percent", ("mount", "device", "fstype"),
                                   "share of inodes used (filesystems with an inode table)"),
    "host_fds_allocated": _f("gauge", "", (), "file handles allocated, host-wide"),
    "host_fds_percent": _f("gauge", "percent", (), "file handles allocated, as a share of"
                           " the kernel's maximum (fs.file-max)"),
    "host_disk_read_bytes_total": _f("counter", "bytes", ("disk",), "bytes read"),
    "host_disk_written_bytes_total": _f("counter", "bytes", ("disk",), "bytes written"),
    "host_disk_reads_total": _f("counter", "", ("disk",), "read operations"),
    "host_disk_writes_total": _f("counter", "", ("disk",), "write operations"),
    "host_net_received_bytes_total": _f("counter", "bytes", ("interface",), "bytes received"),
    "host_net_sent_bytes_total": _f("counter", "bytes", ("interface",), "bytes sent"),
    "host_net_received_packets_total": _f("counter", "", ("interface",), "packets received"),
    "host_net_sent_packets_total": _f("counter", "", ("interface",), "packets sent"),
    "host_net_receive_errors_total": _f("counter", "", ("interface",), "receive errors"),
    "host_net_transmit_errors_total": _f("counter", "", ("interface",), "transmit errors"),
    "host_net_receive_drops_total": _f("counter", "", ("interface",), "incoming packets dropped"),
    "host_net_transmit_drops_total": _f("counter", "", ("interface",), "outgoing packets dropped"),
}

_LOAD_LABELS: tuple[Labels, ...] = ((("period", "1m"),), (("period", "5m"),), (("period", "15m"),))
_TOTAL_CPU: Labels = (("cpu", "total"),)


class HostProbe:
    """Reads the host's counters. Filesystems are listed again every `mounts_refresh`
    seconds (listing them costs more than reading them)."""

    fields: ClassVar[Mapping[str, FieldInfo]] = FIELDS
    blocking: ClassVar[bool] = False

    def __init__(
        self,
        *,
        per_cpu: bool = True,
        mounts_refresh: float = 60.0,
        exclude_fstypes: Sequence[str] = (),
        exclude_interfaces: Sequence[str] = (),
        exclude_disks: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
        proc: Path = Path("/proc"),
    ) -> None:
        self.per_cpu = per_cpu
        self.proc = proc
        self.mounts_refresh = mounts_refresh
        self.exclude_fstypes = frozenset(exclude_fstypes)
        self.exclude_interfaces = tuple(exclude_interfaces)
        self.exclude_disks = tuple(exclude_disks)
        self._clock = clock
        self._mounts: list[tuple[str, Labels]] = []
        self._mounts_read_at = float("-inf")
        self._label_cache: dict[tuple[str, str], Labels] = {}
        # The first cpu_percent() call only sets the reference point.
        psutil.cpu_percent(percpu=True)

    def read(self) -> list[MetricPoint]:
        """One reading of every field. Raises ProbeError when /proc cannot be read."""
        try:
            points: list[MetricPoint] = []
            self._cpu(points)
            self._memory(points)
            self._disks(points)
            self._network(points)
            self._file_handles(points)
        except (OSError, RuntimeError) as exc:
            raise ProbeError(f"cannot read host counters: {exc}") from exc
        return points

    def _cpu(self, points: list[MetricPoint]) -> None:
        per_cpu = psutil.cpu_percent(percpu=True)
        total = sum(per_cpu) / len(per_cpu) if per_cpu else 0.0
        points.append(MetricPoint("host_cpu_percent", total, _TOTAL_CPU, "gauge", "percent"))
        if self.per_cpu:
            for index, value in enumerate(per_cpu):
                labels = self._labels("cpu", str(index))
                points.append(MetricPoint("host_cpu_percent", value, labels, "gauge", "percent"))
        for labels, value in zip(_LOAD_LABELS, os.getloadavg(), strict=True):
            points.append(MetricPoint("host_load_average", value, labels))

    def _memory(self, points: list[MetricPoint]) -> None:
        memory = psutil.virtual_memory()
        swap = psutil.swap_memory()
        points += [
            MetricPoint("host_memory_total_bytes", memory.total, (), "gauge", "bytes"),
            MetricPoint("host_memory_available_bytes", memory.available, (), "gauge", "bytes"),
            MetricPoint("host_memory_used_bytes", memory.used, (), "gauge", "bytes"),
            MetricPoint("host_memory_percent", memory.percent, (), "gauge", "percent"),
            MetricPoint("host_swap_total_bytes", swap.total, (), "gauge", "bytes"),
            MetricPoint("host_swap_used_bytes", swap.used, (), "gauge", "bytes"),
        ]

    def _disks(self, points: list[MetricPoint]) -> None:
        now = self._clock()
        if now - self._mounts_read_at >= self.mounts_refresh:
            self._mounts = self._list_mounts()
            self._mounts_read_at = now
        for mount, labels in self._mounts:
            try:
                usage = psutil.disk_usage(mount)
            except OSError:
                # A filesystem unmounted since the last listing: list again next time.
                self._mounts_read_at = float("-inf")
                continue
            points += [
                MetricPoint("host_disk_total_bytes", usage.total, labels, "gauge", "bytes"),
                MetricPoint("host_disk_used_bytes", usage.used, labels, "gauge", "bytes"),
                MetricPoint("host_disk_free_bytes", usage.free, labels, "gauge", "bytes"),
                MetricPoint("host_disk_percent", usage.percent, labels, "gauge", "percent"),
            ]
            inodes = os.statvfs(mount)
            if inodes.f_files:  # some filesystems (btrfs, vfat) have no inode table
                used = (inodes.f_files - inodes.f_ffree) / inodes.f_files * 100
                points.append(MetricPoint("host_disk_inodes_percent", used, labels, "gauge",
                                          "percent"))
        for disk, io in (psutil.disk_io_counters(perdisk=True) or {}).items():
            if _matches(disk, self.exclude_disks):
                continue
            labels = self._labels("disk", disk)
            points += [
                MetricPoint("host_disk_read_bytes_total", io.read_bytes, labels, "counter",
                            "bytes"),
                MetricPoint("host_disk_written_bytes_total", io.write_bytes, labels, "counter",
                            "bytes"),
                MetricPoint("host_disk_reads_total", io.read_count, labels, "counter"),
                MetricPoint("host_disk_writes_total", io.write_count, labels, "counter"),
            ]

    def _file_handles(self, points: list[MetricPoint]) -> None:
        # /proc/sys/fs/file-nr: allocated, free (always 0 since 2.6), maximum.
        try:
            allocated, _, maximum = (self.proc / "sys/fs/file-nr").read_text().split()[:3]
        except (FileNotFoundError, ValueError):
            return
        points.append(MetricPoint("host_fds_allocated", float(allocated)))
        if int(maximum) > 0:
            points.append(MetricPoint("host_fds_percent", int(allocated) / int(maximum) * 100,
                                      (), "gauge", "percent"))

    def _network(self, points: list[MetricPoint]) -> None:
        for interface, io in psutil.net_io_counters(pernic=True).items():
            if _matches(interface, self.exclude_interfaces):
                continue
            labels = self._labels("interface", interface)
            points += [
                MetricPoint("host_net_received_bytes_total", io.bytes_recv, labels, "counter",
                            "bytes"),
                MetricPoint("host_net_sent_bytes_total", io.bytes_sent, labels, "counter", "bytes"),
                MetricPoint("host_net_received_packets_total", io.packets_recv, labels, "counter"),
                MetricPoint("host_net_sent_packets_total", io.packets_sent, labels, "counter"),
                MetricPoint("host_net_receive_errors_total", io.errin, labels, "counter"),
                MetricPoint("host_net_transmit_errors_total", io.errout, labels, "counter"),
                MetricPoint("host_net_receive_drops_total", io.dropin, labels, "counter"),
                MetricPoint("host_net_transmit_drops_total", io.dropout, labels, "counter"),
            ]

    def _list_mounts(self) -> list[tuple[str, Labels]]:
        mounts: dict[str, Labels] = {}
        for part in psutil.disk_partitions(all=False):
            if part.fstype in self.exclude_fstypes or part.mountpoint in mounts:
                continue
            mounts[part.mountpoint] = (
                ("device", part.device), ("fstype", part.fstype), ("mount", part.mountpoint)
            )
        return sorted(mounts.items())

    def _labels(self, key: str, value: str) -> Labels:
        cached = self._label_cache.get((key, value))
        if cached is None:
            cached = self._label_cache[(key, value)] = ((key, value),)
        return cached


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
