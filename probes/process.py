"""Per-process readings through psutil: the top processes by CPU and memory, and watched ones."""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import psutil

from ttamond.config import WatchedProcess
from ttamond.messages import Labels, MetricPoint
from ttamond.probes.base import FieldInfo, ProbeError

_T = TypeVar("_T")
_PER_PROCESS = ("name", "pid", "watch")

FIELDS: dict[str, FieldInfo] = {
    "process_count": FieldInfo("gauge", "", (), "processes on the host"),
    "process_watch_count": FieldInfo(
        "gauge", "", ("watch",), "processes matching each watched pattern; 0 when none runs"),
    "process_cpu_percent": FieldInfo(
        "gauge", "percent", _PER_PROCESS, "CPU time since the previous read, 100 = one whole "
        "CPU (as in top); absent on the first read that sees the process"),
    "process_resident_bytes": FieldInfo("gauge", "bytes", _PER_PROCESS, "resident set size"),
    "process_threads": FieldInfo("gauge", "", _PER_PROCESS, "threads"),
    "process_open_fds": FieldInfo(
        "gauge", "", _PER_PROCESS, "open file descriptors; absent where not permitted"),
    "process_read_bytes_total": FieldInfo(
        "counter", "bytes", _PER_PROCESS, "bytes read from storage; absent where not permitted"),
    "process_written_bytes_total": FieldInfo(
        "counter", "bytes", _PER_PROCESS,
        "bytes written to storage; absent where not permitted"),
}
"""Per-process series carry watch="" when the process is reported for its rank only."""

# A process's command line is read on its first two sightings, then kept: the second
# comes an interval after start-up, once servers that retitle themselves (nginx,
# postgres) have done so. A name change (exec, or a PID reused) reads it afresh.
_CMDLINE_SIGHTINGS = 2


@dataclass(slots=True)
class _Tracked:
    """What the probe keeps about one PID between reads."""

    process: psutil.Process
    name: str
    watch: str = ""
    labels: Labels = ()
    cmdline_sightings: int = 0


@dataclass(slots=True)
class _Sample:
    tracked: _Tracked
    cpu: float | None
    rss: int | None


class ProcessProbe:
    """Reports the `top_n` processes by CPU and the `top_n` by resident memory (their
    union; a process using none of either ranks in neither), every process matching a
    watched pattern, and the process count.

    Every process is sampled on every read (name, CPU times, memory: about two small
    /proc reads each); threads, descriptors and I/O are read only for those reported.
    psutil.Process objects are kept per PID between reads, because a CPU percentage
    needs the previous sample; they are the probe's own, not process_iter's shared
    cache, so another psutil user in the daemon cannot disturb the rates. A process
    that exits, turns zombie or denies access mid-read is skipped, never failing the
    read. A process whose name changes (exec, or its PID reused) starts afresh.

    A watched process matches when its pattern is found (re.search) in its name or in
    its command line joined by spaces; the first matching watch, in configured order,
    names it in the `watch` label.
    """

    fields: ClassVar[Mapping[str, FieldInfo]] = FIELDS
    blocking: ClassVar[bool] = False

    def __init__(self, top_n: int = 10, watch: Sequence[WatchedProcess] = ()) -> None:
        if top_n < 0:
            raise ValueError(f"top_n must be 0 or more, not {top_n}")
        self.top_n = top_n
        self.watch = tuple(watch)
        self._patterns = [(w.name, re.compile(w.pattern)) for w in self.watch]
        self._watch_labels: dict[str, Labels] = {w.name: (("watch", w.name),) for w in watch}
        self._tracked: dict[int, _Tracked] = {}
        self.skipped = 0
        """Processes skipped so far because psutil was denied access to their basics."""

    def read(self) -> list[MetricPoint]:
        """One reading. Raises ProbeError only when the process list cannot be had."""
        try:
            pids = psutil.pids()
        except OSError as exc:
            raise ProbeError(f"cannot list processes: {exc}") from exc
        points = [MetricPoint("process_count", len(pids), (), "gauge", "")]
        if not self.top_n and not self._patterns:
            self._tracked.clear()
            return points
        alive = set(pids)
        for gone in [pid for pid in self._tracked if pid not in alive]:
            del self._tracked[gone]
        samples = [sample for pid in pids if (sample := self._sample(pid)) is not None]
        watch_counts = dict.fromkeys(self._watch_labels, 0)
        reported: dict[int, _Sample] = {}
        for sample in samples:
            if sample.tracked.watch:
                watch_counts[sample.tracked.watch] += 1
                reported[sample.tracked.process.pid] = sample
        if self.top_n:
            # Idle processes and kernel threads (no memory of their own) are no one's top.
            busy = [sample for sample in samples if sample.cpu]
            for sample in heapq.nlargest(self.top_n, busy, key=_cpu_key):
                reported[sample.tracked.process.pid] = sample
            resident = [sample for sample in samples if sample.rss]
            for sample in heapq.nlargest(self.top_n, resident, key=_rss_key):
                reported[sample.tracked.process.pid] = sample
        for watch, count in watch_counts.items():
            points.append(MetricPoint("process_watch_count", count, self._watch_labels[watch]))
        for sample in reported.values():
            self._report(sample, points)
        return points

    def _sample(self, pid: int) -> _Sample | None:
        """Name, CPU percentage and RSS of one process; None when it cannot be read."""
        tracked = self._tracked.get(pid)
        try:
            process = psutil.Process(pid) if tracked is None else tracked.process
            with process.oneshot():
                name = process.name()
                percent: float = process.cpu_percent()
                cpu: float | None = percent
                if tracked is None or name != tracked.name or percent < 0.0:
                    if tracked is not None:
                        # exec'd, or a new process under a reused PID: the CPU history
                        # kept is not this program's.
                        process = psutil.Process(pid)
                        process.cpu_percent()
                    tracked = self._tracked[pid] = _Tracked(process, name)
                    cpu = None
                if self._patterns and tracked.cmdline_sightings < _CMDLINE_SIGHTINGS:
                    self._match(tracked)
                rss = process.memory_info().rss if self.top_n or tracked.watch else None
        except psutil.NoSuchProcess:  # exited, or a zombie (a subclass) with nothing to read
            self._tracked.pop(pid, None)
            return None
        except psutil.AccessDenied:
            self.skipped += 1
            return None
        return _Sample(tracked, cpu, rss)

    def _match(self, tracked: _Tracked) -> None:
        try:
            cmdline = " ".join(tracked.process.cmdline())
        except psutil.AccessDenied:
            cmdline = ""
        tracked.cmdline_sightings += 1
        tracked.watch = next(
            (name for name, pattern in self._patterns
             if pattern.search(tracked.name) or pattern.search(cmdline)),
            "",
        )
        tracked.labels = ()

    def _report(self, sample: _Sample, points: list[MetricPoint]) -> None:
        tracked = sample.tracked
        process = tracked.process
        labels = tracked.labels
        if not labels:
            labels = tracked.labels = (
                ("name", tracked.name), ("pid", str(process.pid)), ("watch", tracked.watch)
            )
        if sample.cpu is not None:
            points.append(MetricPoint("process_cpu_percent", sample.cpu, labels, "gauge",
                                      "percent"))
        if sample.rss is not None:
            points.append(MetricPoint("process_resident_bytes", sample.rss, labels, "gauge",
                                      "bytes"))
        try:
            with process.oneshot():
                points.append(MetricPoint("process_threads", process.num_threads(), labels))
                fds = _permitted(process.num_fds)
                io = _permitted(process.io_counters)
        except psutil.NoSuchProcess:
            # Exited since it was sampled: what was sampled still stands.
            self._tracked.pop(process.pid, None)
            return
        if fds is not None:
            points.append(MetricPoint("process_open_fds", fds, labels))
        if io is not None:
            points += [
                MetricPoint("process_read_bytes_total", io.read_bytes, labels, "counter",
                            "bytes"),
                MetricPoint("process_written_bytes_total", io.write_bytes, labels, "counter",
                            "bytes"),
            ]


def _permitted(read: Callable[[], _T]) -> _T | None:
    """read(), or None where psutil is denied it: another user's descriptors and I/O
    counters are not ours to see unless the daemon runs as root."""
    try:
        return read()
    except psutil.AccessDenied:
        return None


def _cpu_key(sample: _Sample) -> float:
    return sample.cpu or 0.0


def _rss_key(sample: _Sample) -> int:
    return sample.rss or 0
