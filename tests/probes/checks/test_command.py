"""The command check running real commands, one of them past its timeout."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest
import trio

from ttamond.probes.checks import check_command


async def test_exit_0_is_ok_with_the_first_line() -> None:
    result = await check_command(["sh", "-c", "echo; echo 'queue depth 3'; echo more"],
                                 timeout=5)
    assert (result.status, result.message) == ("ok", "queue depth 3")
    assert result.values == {"exit_status": 0}


async def test_exit_1_is_warn() -> None:
    result = await check_command(["sh", "-c", "echo 'queue depth 900'; exit 1"], timeout=5)
    assert (result.status, result.message) == ("warn", "sh exited with status 1: queue depth 900")
    assert result.values == {"exit_status": 1}


async def test_exit_2_is_crit_with_stderr_when_stdout_is_empty() -> None:
    result = await check_command(["sh", "-c", "echo 'queue unreachable' >&2; exit 2"],
                                 timeout=5)
    assert (result.status, result.message) == (
        "crit", "sh exited with status 2: queue unreachable")


async def test_custom_codes_and_no_output() -> None:
    result = await check_command(["sh", "-c", "exit 3"], timeout=5, ok_codes={0, 3},
                                 warn_codes=())
    failing = await check_command(["sh", "-c", "exit 1"], timeout=5, warn_codes=())
    assert (result.status, result.message) == ("ok", "sh exited with status 3")
    assert (failing.status, failing.message) == ("crit", "sh exited with status 1")


async def test_a_long_line_is_cut() -> None:
    result = await check_command(["sh", "-c", "printf 'x%.0s' $(seq 500)"], timeout=5)
    assert len(result.message) == 200
    assert result.message.endswith("…")


async def wait_until_dead(pid: int) -> None:
    """Poll until `pid` is gone or a zombie (SIGKILL lands a moment after kill()
    returns; an orphan goes to PID 1, which may not reap it in a container)."""
    with trio.fail_after(5):
        while psutil.pid_exists(pid):
            try:
                if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                    return
            except psutil.NoSuchProcess:
                return
            await trio.sleep(0.01)


@pytest.mark.parametrize(("script", "case"), [
    ("sleep 30 & echo $! > {pidfile}; sleep 30", "still running"),
    # The command itself ends at once, but its child holds the output pipe open.
    ("sleep 30 & echo $! > {pidfile}", "ended, its child not"),
])
async def test_a_command_past_its_timeout_is_killed_with_its_children(
        tmp_path: Path, script: str, case: str) -> None:
    pidfile = tmp_path / "child.pid"
    started = trio.current_time()
    result = await check_command(["sh", "-c", script.format(pidfile=pidfile)], timeout=0.5)
    assert trio.current_time() - started < 2, case
    assert (result.status, result.message) == (
        "crit", "timed out after 0.5 s running sh; killed its process group")
    await wait_until_dead(int(pidfile.read_text()))


async def test_a_command_that_ends_cleanly_leaves_detached_children_alone(
        tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    result = await check_command(
        ["sh", "-c", f"sleep 30 >/dev/null 2>&1 & echo $! > {pidfile}; echo started"],
        timeout=5)
    child = psutil.Process(int(pidfile.read_text()))
    try:
        assert (result.status, result.message) == ("ok", "started")
        assert child.status() != psutil.STATUS_ZOMBIE
    finally:
        child.kill()


async def test_a_missing_command_is_crit() -> None:
    result = await check_command(["no-such-command-here"], timeout=5)
    assert (result.status, result.message) == ("crit", "command not found: no-such-command-here")


async def test_a_command_killed_by_a_signal_is_crit() -> None:
    result = await check_command(["sh", "-c", "kill -9 $$"], timeout=5)
    assert (result.status, result.message) == ("crit", "sh was killed by SIGKILL")
    assert result.values == {"exit_status": -9}


async def test_an_empty_command_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="check_command needs a command to run"):
        await check_command([], timeout=5)
