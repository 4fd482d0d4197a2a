"""Per-operation carbon sessions: how the host's energy is shared among the operations
running at the same time.

The host's energy comes from CodeCarbon in parts (CPU, GPU, RAM), as cumulative
counters read every measure interval. At each accounting step (a new reading, and a
session's start or stop) the energy used since the last step is shared among the
sessions open during it:

- CPU and RAM energy by CPU time: a session that named its process (`pid`) is charged
  the part of the step's CPU and RAM energy equal to its process's share of the host's
  busy CPU time, split equally among the open sessions of that process (one process
  cannot say which of its threads did what). A session without a pid cannot be told
  apart from the rest of the host: it is charged an equal share of the whole step.
- GPU energy equally among every open session (NVML's per-process figures are not
  read here; the GPU's own energy counter is what CodeCarbon reports).

Emissions are energy times the grid intensity of the step. A session open longer than
the timeout expires with what it was charged until then.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from ttamond.messages import CarbonSessionEnded

CpuSeconds = Callable[[int], float | None]
"""CPU seconds a process has used, or None when it is gone."""


@dataclass(frozen=True)
class Energy:
    """Cumulative energy in kWh, by part, at one instant."""

    cpu: float = 0.0
    gpu: float = 0.0
    ram: float = 0.0

    def minus(self, other: Energy) -> Energy:
        """The energy used between `other` and this (a counter that went back, after a
        tracker restart, counts from zero)."""
        def delta(now: float, before: float) -> float:
            return now - before if now >= before else now

        return Energy(delta(self.cpu, other.cpu), delta(self.gpu, other.gpu),
                      delta(self.ram, other.ram))


@dataclass
class OpenSession:
    """A session still running, and what it has been charged so far."""

    session_id: str
    operation: str
    component: str
    model: str
    pid: int | None
    started_ms: int
    cpu_seconds: float | None
    energy_kwh: float = 0.0
    emissions_kg: float = 0.0


@dataclass
class Ledger:
    """Open sessions and the accounting of each step."""

    method: str = "estimate"
    timeout_ms: int = 3_600_000
    sessions: dict[str, OpenSession] = field(default_factory=dict)
    last_energy: Energy | None = None
    last_busy_seconds: float = 0.0

    def start(self, *, operation: str, component: str, model: str, pid: int | None,
              now_ms: int, cpu_seconds: CpuSeconds) -> OpenSession:
        """Open a session (after accounting the step up to now, done by the caller)."""
        session = OpenSession(
            session_id=secrets.token_hex(8), operation=operation, component=component,
            model=model, pid=pid, started_ms=now_ms,
            cpu_seconds=cpu_seconds(pid) if pid is not None else None,
        )
        self.sessions[session.session_id] = session
        return session

    def account(self, energy: Energy, busy_seconds: float, intensity_g_per_kwh: float,
                cpu_seconds: CpuSeconds) -> None:
        """Share the energy used since the last step among the open sessions."""
        previous, self.last_energy = self.last_energy, energy
        busy, self.last_busy_seconds = busy_seconds - self.last_busy_seconds, busy_seconds
        if previous is None or not self.sessions:
            for session in self.sessions.values():
                if session.pid is not None:
                    session.cpu_seconds = cpu_seconds(session.pid)
            return
        used = energy.minus(previous)
        open_sessions = list(self.sessions.values())
        per_pid: dict[int, int] = {}
        for session in open_sessions:
            if session.pid is not None:
                per_pid[session.pid] = per_pid.get(session.pid, 0) + 1
        for session in open_sessions:
            if session.pid is None:
                share = 1.0 / len(open_sessions)
            else:
                now_cpu = cpu_seconds(session.pid)
                spent = (now_cpu - session.cpu_seconds
                         if now_cpu is not None and session.cpu_seconds is not None else 0.0)
                session.cpu_seconds = now_cpu
                share = (max(spent, 0.0) / busy if busy > 0 else 0.0) / per_pid[session.pid]
            kwh = (used.cpu + used.ram) * min(share, 1.0) + used.gpu / len(open_sessions)
            session.energy_kwh += kwh
            session.emissions_kg += kwh * intensity_g_per_kwh / 1000

    def stop(self, session_id: str, now_ms: int) -> CarbonSessionEnded | None:
        """Close a session (account the step first); None when it is not open."""
        session = self.sessions.pop(session_id, None)
        if session is None:
            return None
        return self._ended(session, now_ms, "stopped")

    def expire(self, now_ms: int) -> list[CarbonSessionEnded]:
        """Close every session open longer than the timeout."""
        stale = [s for s in self.sessions.values() if now_ms - s.started_ms > self.timeout_ms]
        for session in stale:
            del self.sessions[session.session_id]
        return [self._ended(session, now_ms, "expired") for session in stale]

    def _ended(self, session: OpenSession, now_ms: int, state: str) -> CarbonSessionEnded:
        return CarbonSessionEnded(
            session_id=session.session_id, operation=session.operation,
            component=session.component, model=session.model, pid=session.pid,
            started_ms=session.started_ms, stopped_ms=now_ms,
            state=state,  # type: ignore[arg-type]
            energy_kwh=session.energy_kwh, emissions_kg=session.emissions_kg,
            method=self.method,
        )
