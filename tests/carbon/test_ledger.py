"""Sharing the host's energy among overlapping carbon sessions, by hand-computed figures."""

from __future__ import annotations

import pytest

from ttamond.carbon.ledger import Energy, Ledger

INTENSITY = 400.0  # g CO2e per kWh


class Clock:
    """CPU seconds per process, set by the test."""

    def __init__(self) -> None:
        self.cpu: dict[int, float] = {}

    def __call__(self, pid: int) -> float | None:
        return self.cpu.get(pid)


def test_sessions_share_cpu_by_process_time_and_gpu_equally() -> None:
    cpu = Clock()
    cpu.cpu = {10: 0.0, 20: 0.0}
    ledger = Ledger(method="cpu=tdp-table")
    ledger.account(Energy(), 0.0, INTENSITY, cpu)
    a = ledger.start(operation="narrate", component="agents", model="m1", pid=10,
                     now_ms=0, cpu_seconds=cpu)
    b = ledger.start(operation="narrate", component="agents", model="m1", pid=10,
                     now_ms=0, cpu_seconds=cpu)
    c = ledger.start(operation="embed", component="world", model="m2", pid=20,
                     now_ms=0, cpu_seconds=cpu)
    # Next step: the host was busy 10 CPU-seconds; process 10 used 4, process 20 used 1.
    # CPU+RAM energy 0.010 + 0.002 kWh, GPU 0.003 kWh.
    cpu.cpu = {10: 4.0, 20: 1.0}
    ledger.account(Energy(cpu=0.010, gpu=0.003, ram=0.002), 10.0, INTENSITY, cpu)
    # a and b: 0.012 x (4/10) / 2 = 0.0024, plus 0.003 / 3 = 0.001 -> 0.0034 kWh each.
    # c: 0.012 x (1/10) = 0.0012, plus 0.001 -> 0.0022 kWh.
    assert a.energy_kwh == pytest.approx(0.0034)
    assert b.energy_kwh == pytest.approx(0.0034)
    assert c.energy_kwh == pytest.approx(0.0022)
    assert a.emissions_kg == pytest.approx(0.0034 * 400 / 1000)
    ended = ledger.stop(a.session_id, now_ms=5_000)
    assert ended is not None and ended.state == "stopped" and ended.method == "cpu=tdp-table"
    assert (ended.started_ms, ended.stopped_ms) == (0, 5_000)
    assert ledger.stop(a.session_id, now_ms=5_000) is None


def test_a_session_without_a_pid_takes_an_equal_share_of_everything() -> None:
    cpu = Clock()
    ledger = Ledger()
    ledger.account(Energy(cpu=1.0), 100.0, INTENSITY, cpu)
    first = ledger.start(operation="x", component="", model="", pid=None, now_ms=0,
                         cpu_seconds=cpu)
    second = ledger.start(operation="y", component="", model="", pid=None, now_ms=0,
                          cpu_seconds=cpu)
    ledger.account(Energy(cpu=1.004, gpu=0.002), 104.0, INTENSITY, cpu)
    # 0.004 kWh CPU / 2 + 0.002 kWh GPU / 2 = 0.003 kWh each.
    assert first.energy_kwh == pytest.approx(0.003)
    assert second.energy_kwh == pytest.approx(0.003)


def test_a_counter_reset_counts_from_zero_and_a_gone_process_is_charged_nothing() -> None:
    cpu = Clock()
    cpu.cpu = {7: 1.0}
    ledger = Ledger()
    ledger.account(Energy(cpu=5.0), 0.0, INTENSITY, cpu)
    session = ledger.start(operation="x", component="", model="", pid=7, now_ms=0,
                           cpu_seconds=cpu)
    ledger.account(Energy(cpu=0.5), 4.0, INTENSITY, cpu)  # tracker restarted: 0.5 used
    cpu.cpu = {}
    ledger.account(Energy(cpu=0.6), 8.0, INTENSITY, cpu)  # the process is gone
    assert session.energy_kwh == pytest.approx(0.0)  # it used no CPU in either step


def test_sessions_never_stopped_expire() -> None:
    ledger = Ledger(timeout_ms=1_000)
    cpu = Clock()
    old = ledger.start(operation="old", component="", model="", pid=None, now_ms=0,
                       cpu_seconds=cpu)
    ledger.start(operation="new", component="", model="", pid=None, now_ms=900,
                 cpu_seconds=cpu)
    ended = ledger.expire(now_ms=1_500)
    assert [(e.session_id, e.state) for e in ended] == [(old.session_id, "expired")]
    assert list(s.operation for s in ledger.sessions.values()) == ["new"]
