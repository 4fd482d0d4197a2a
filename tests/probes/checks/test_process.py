"""The process check against real `sleep` processes started and killed by the tests."""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trio

from ttamond.probes.checks import ProcessCheck, check_process

Spawn = Callable[[str], Awaitable[trio.Process]]


@pytest.fixture
def duration() -> str:
    """A sleep length no other process on the machine has, so a pattern finds only ours."""
    return f"60.{random.randrange(10**8):08d}"


@pytest.fixture
async def spawn() -> AsyncIterator[Spawn]:
    """Starts `sleep DURATION`; every one is killed and reaped at teardown."""
    children: list[trio.Process] = []

    async def start(duration: str) -> trio.Process:
        child = await trio.lowlevel.open_process(["sleep", duration])
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()
        await child.wait()


async def stop(child: trio.Process) -> None:
    child.kill()
    await child.wait()


async def test_a_process_found_by_pattern_then_killed(spawn: Spawn, duration: str) -> None:
    child = await spawn(duration)
    pattern = re.escape(f"sleep {duration}")
    running = await check_process(pattern=pattern)
    await stop(child)
    gone = await check_process(pattern=pattern)
    assert (running.status, running.message) == (
        "ok", f"process matching {pattern!r} is running as pid {child.pid}")
    assert running.values["count"] == 1
    assert running.values["pid"] == child.pid
    assert running.values["restarts"] == 0
    assert running.values["cpu_percent"] >= 0
    assert running.values["rss_bytes"] > 0
    assert (gone.status, gone.message) == ("crit", f"no process matching {pattern!r} is running")
    assert gone.values == {"count": 0, "restarts": 0}


async def test_several_processes_are_counted_and_the_oldest_named(spawn: Spawn,
                                                                 duration: str) -> None:
    first = await spawn(duration)
    await spawn(duration)
    result = await check_process(pattern=re.escape(duration))
    assert result.values["count"] == 2
    assert result.values["pid"] == first.pid
    assert result.message.endswith(f"running as pid {first.pid} (2 processes)")


async def test_a_process_found_by_name(spawn: Spawn, duration: str) -> None:
    await spawn(duration)
    result = await check_process(name="sleep")
    assert result.status == "ok"
    assert result.values["count"] >= 1


async def test_a_restart_is_counted_when_the_pid_changes(spawn: Spawn, duration: str) -> None:
    check = ProcessCheck(pattern=re.escape(duration))
    first = await spawn(duration)
    before = await check()
    await stop(first)
    second = await spawn(duration)
    after = await check()
    again = await check()
    assert before.status == "ok"
    assert before.values["restarts"] == 0
    assert (after.status, after.message) == (
        "warn", f"process matching {re.escape(duration)!r} restarted: pid {first.pid} is now "
        f"pid {second.pid}")
    assert after.values["restarts"] == 1
    assert after.values["pid"] == second.pid
    assert again.status == "ok"
    assert again.values["restarts"] == 1


async def test_a_restart_is_counted_across_a_gap(spawn: Spawn, duration: str) -> None:
    check = ProcessCheck(pattern=re.escape(duration))
    await check()
    first = await spawn(duration)
    await check()
    await stop(first)
    assert (await check()).status == "crit"
    await spawn(duration)
    result = await check()
    assert result.values["restarts"] == 1


async def test_a_pidfile_names_the_process(spawn: Spawn, duration: str, tmp_path: Path) -> None:
    child = await spawn(duration)
    pidfile = tmp_path / "sleep.pid"
    pidfile.write_text(f"{child.pid}\n")
    running = await check_process(pidfile=pidfile)
    await stop(child)
    gone = await check_process(pidfile=pidfile)
    assert (running.status, running.message) == (
        "ok", f"process of pidfile {pidfile} is running as pid {child.pid}")
    assert running.values["pid"] == child.pid
    assert (gone.status, gone.message) == (
        "crit", f"pid {child.pid} of pidfile {pidfile} is not running")


async def test_a_missing_or_garbled_pidfile_is_crit(tmp_path: Path) -> None:
    missing = await check_process(pidfile=tmp_path / "none.pid")
    garbled_path = tmp_path / "garbled.pid"
    garbled_path.write_text("starting\n")
    garbled = await check_process(pidfile=garbled_path)
    assert (missing.status, missing.message) == (
        "crit", f"pidfile {tmp_path / 'none.pid'} is missing")
    assert (garbled.status, garbled.message) == (
        "crit", f"pidfile {garbled_path} holds 'starting', not a PID")


async def test_memory_limits_grade_the_resident_size(spawn: Spawn, duration: str) -> None:
    await spawn(duration)
    result = await check_process(pattern=re.escape(duration), rss_warn_bytes=1024,
                                 rss_crit_bytes=1 << 40)
    assert result.status == "warn"
    assert re.fullmatch(r"process matching '.*' holds [\d.]+ [KM]iB resident \(warn at 1 KiB\)",
                        result.message)


async def test_one_selector_is_required() -> None:
    with pytest.raises(ValueError, match="give exactly one of name, pattern or pidfile"):
        ProcessCheck()
    with pytest.raises(ValueError, match="give exactly one of name, pattern or pidfile"):
        ProcessCheck(name="sleep", pattern="sleep")
