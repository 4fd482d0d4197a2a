"""Health check of a program through psutil: is it running, restarted, how much it uses."""

from __future__ import annotations

import os
import re
from pathlib import Path

import psutil
import trio

from ttamond.probes.base import FieldInfo
from ttamond.probes.checks.result import CheckResult, Findings, Thresholds, failed, figure

VALUES: dict[str, FieldInfo] = {
    "count": FieldInfo("gauge", "", (), "matching processes; 0 when none runs"),
    "pid": FieldInfo("gauge", "", (), "the oldest matching process"),
    "restarts": FieldInfo(
        "counter", "", (), "times the oldest process was found replaced, since the check "
        "was made"),
    "cpu_percent": FieldInfo(
        "gauge", "percent", (), "CPU of all matching processes since the previous call, "
        "100 = one whole CPU"),
    "rss_bytes": FieldInfo("gauge", "bytes", (), "resident memory of all matching processes"),
}
"""count and restarts always; the others only while a process runs."""

CPU_SAMPLE_S = 0.1
"""A process seen for the first time is sampled over this long for its CPU percentage."""


class ProcessCheck:
    """Finds the processes of one program on every call and remembers, between calls,
    the oldest one (to count restarts) and each one's CPU times (for CPU percentages).

    Exactly one of `name` (the process name, as in `ps -e`), `pattern` (a regular
    expression searched in the command line joined by spaces) or `pidfile` (a file
    holding the PID) selects the processes. Raises ValueError otherwise, or for a bad
    pattern.
    """

    def __init__(
        self,
        *,
        name: str | None = None,
        pattern: str | None = None,
        pidfile: str | os.PathLike[str] | None = None,
        cpu_warn_percent: float | None = None,
        cpu_crit_percent: float | None = None,
        rss_warn_bytes: float | None = None,
        rss_crit_bytes: float | None = None,
    ) -> None:
        if sum(selector is not None for selector in (name, pattern, pidfile)) != 1:
            raise ValueError("give exactly one of name, pattern or pidfile")
        self.name = name
        self.pattern = re.compile(pattern) if pattern is not None else None
        self.pidfile = Path(pidfile) if pidfile is not None else None
        self.cpu = Thresholds(cpu_warn_percent, cpu_crit_percent)
        self.rss = Thresholds(rss_warn_bytes, rss_crit_bytes)
        self.restarts = 0
        self._oldest: tuple[int, float] | None = None
        # Our own Process objects: psutil.process_iter's are shared with every other
        # psutil user in the daemon, whose cpu_percent() calls would reset the rates.
        self._sampled: dict[tuple[int, float], psutil.Process] = {}

    @property
    def target(self) -> str:
        """What the check looks for, as a person would say it."""
        if self.name is not None:
            return f"process {self.name!r}"
        if self.pattern is not None:
            return f"process matching {self.pattern.pattern!r}"
        return f"process of pidfile {self.pidfile}"

    async def __call__(self) -> CheckResult:
        """Look once. Crit when no process is found (or the pidfile is missing or
        unreadable); warn on the call that finds the oldest process replaced; warn or
        crit when CPU or resident memory reach their limits."""
        started = trio.current_time()
        try:
            found = self._find()
        except _NotFound as exc:
            return failed(str(exc), values={"count": 0.0, "restarts": float(self.restarts)})
        findings = Findings()
        if not found:
            self._sampled.clear()
            return failed(f"no {self.target} is running",
                          values={"count": 0.0, "restarts": float(self.restarts)})
        oldest = min(found, key=lambda key: (key[1], key[0]))
        if self._oldest is not None and self._oldest not in found:
            self.restarts += 1
            findings.add("warn", f"{self.target} restarted: pid {self._oldest[0]} is now "
                                 f"pid {oldest[0]}")
        self._oldest = oldest
        values = {"count": float(len(found)), "pid": float(oldest[0]),
                  "restarts": float(self.restarts)}
        values.update(await self._usage(found))
        if "cpu_percent" in values:
            findings.grade(values["cpu_percent"], self.cpu,
                           f"{self.target} uses {values['cpu_percent']:.0f}% CPU", "%")
        if "rss_bytes" in values:
            findings.grade(values["rss_bytes"], self.rss,
                           f"{self.target} holds {_size(values['rss_bytes'])} resident",
                           show=_size)
        count = f" ({len(found)} processes)" if len(found) > 1 else ""
        return findings.result(
            latency_ms=(trio.current_time() - started) * 1000, values=values,
            ok_message=f"{self.target} is running as pid {oldest[0]}{count}")

    def _find(self) -> dict[tuple[int, float], psutil.Process]:
        """The live matching processes by (pid, start time): a PID alone may be reused."""
        if self.pidfile is not None:
            process = self._from_pidfile(self.pidfile)
            candidates = [] if process is None else [process]
        else:
            candidates = list(psutil.process_iter())
        found: dict[tuple[int, float], psutil.Process] = {}
        for process in candidates:
            try:
                if process.pid == os.getpid() or not self._matches(process):
                    continue
                if process.status() == psutil.STATUS_ZOMBIE:
                    continue
                key = (process.pid, process.create_time())
                found[key] = self._sampled.get(key) or psutil.Process(process.pid)
            except psutil.Error:
                # Gone, or a zombie, or not ours to read, since it was listed.
                continue
        return found

    def _from_pidfile(self, pidfile: Path) -> psutil.Process | None:
        try:
            text = pidfile.read_text().strip()
        except FileNotFoundError as exc:
            raise _NotFound(f"pidfile {pidfile} is missing") from exc
        except OSError as exc:
            raise _NotFound(f"cannot read pidfile {pidfile}: {exc.strerror}") from exc
        if not text.isdigit():
            raise _NotFound(f"pidfile {pidfile} holds {text[:40]!r}, not a PID")
        try:
            return psutil.Process(int(text))
        except psutil.NoSuchProcess as exc:
            raise _NotFound(f"pid {text} of pidfile {pidfile} is not running") from exc
        except psutil.AccessDenied as exc:
            raise _NotFound(f"pid {text} of pidfile {pidfile} cannot be read: access "
                            "denied") from exc

    def _matches(self, process: psutil.Process) -> bool:
        if self.name is not None:
            return bool(process.name() == self.name)
        if self.pattern is not None:
            return self.pattern.search(" ".join(process.cmdline())) is not None
        return True

    async def _usage(self, found: dict[tuple[int, float], psutil.Process]) -> dict[str, float]:
        """Summed CPU percent and resident bytes; a figure is left out when some process
        cannot be read."""
        fresh = [process for key, process in found.items() if key not in self._sampled]
        self._sampled = dict(found)
        for process in fresh:
            try:
                # The first call only sets the reference point.
                process.cpu_percent()
            except psutil.Error:
                continue
        if fresh:
            await trio.sleep(CPU_SAMPLE_S)
        cpu = rss = 0.0
        try:
            for process in found.values():
                cpu += process.cpu_percent()
                rss += process.memory_info().rss
        except psutil.Error:
            return {}
        return {"cpu_percent": cpu, "rss_bytes": rss}


class _NotFound(Exception):
    pass


async def check_process(
    *,
    name: str | None = None,
    pattern: str | None = None,
    pidfile: str | os.PathLike[str] | None = None,
    cpu_warn_percent: float | None = None,
    cpu_crit_percent: float | None = None,
    rss_warn_bytes: float | None = None,
    rss_crit_bytes: float | None = None,
) -> CheckResult:
    """One look with a fresh ProcessCheck: no restart counting, and the CPU percentage
    is sampled over CPU_SAMPLE_S. Keep a ProcessCheck to count restarts."""
    check = ProcessCheck(name=name, pattern=pattern, pidfile=pidfile,
                         cpu_warn_percent=cpu_warn_percent, cpu_crit_percent=cpu_crit_percent,
                         rss_warn_bytes=rss_warn_bytes, rss_crit_bytes=rss_crit_bytes)
    return await check()


def _size(size: float) -> str:
    if size >= 1 << 20:
        return f"{figure(round(size / (1 << 20), 1))} MiB"
    return f"{figure(round(size / 1024, 1))} KiB"
