"""The command sender with real programs: environment, input, exit status, timeout."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import trio

from tests.notify import alert, notification
from ttamond.notify.command import send_command
from ttamond.notify.errors import DeliveryFailed
from ttamond.notify.settings import CommandChannel


def script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


async def test_the_command_gets_the_summary_in_its_environment_and_json_on_stdin(
        tmp_path: Path) -> None:
    out = tmp_path / "out"
    notify = script(tmp_path, "notify.sh",
                    f'env | grep -E "^(TTAMOND_|EXTRA=)" | sort > "{out}.env"\n'
                    f'cat > "{out}.json"\n')
    channel = CommandChannel(name="pager", argv=[str(notify)], env={"EXTRA": "yes"})
    sent = notification(alert(summary="CPU at 97%"), alert(instance="web2"), reason="escalation",
                        level=1, channel="pager")
    await send_command(channel, sent, now_ms=0)
    env = dict(line.split("=", 1) for line in (tmp_path / "out.env").read_text().splitlines())
    assert env == {
        "EXTRA": "yes",
        "TTAMOND_STATUS": "firing", "TTAMOND_REASON": "escalation", "TTAMOND_CHANNEL": "pager",
        "TTAMOND_GROUP_KEY": '{}:{alertname="HighCpu"}', "TTAMOND_ALERT_COUNT": "2",
        "TTAMOND_ALERTNAME": "HighCpu", "TTAMOND_SUMMARY": "CPU at 97%",
        "TTAMOND_TITLE": "[FIRING:2] HighCpu (escalation level 1)",
        "TTAMOND_NOTIFICATION_ID": "n-1", "TTAMOND_LEVEL": "1"}
    body = json.loads((tmp_path / "out.json").read_text())
    assert (body["id"], body["reason"], len(body["alerts"])) == ("n-1", "escalation", 2)


async def test_a_command_that_ignores_its_input_is_fine() -> None:
    await send_command(CommandChannel(name="c", argv=["true"]), notification(), now_ms=0)


async def test_a_non_zero_exit_quotes_the_first_line_of_stderr() -> None:
    channel = CommandChannel(name="c", argv=["sh", "-c", "echo; echo 'pager API: 401 bad key' >&2;"
                                                         " echo second >&2; exit 3"])
    with pytest.raises(DeliveryFailed, match=r"^command sh: exited with status 3:"
                                             r" pager API: 401 bad key$") as failed:
        await send_command(channel, notification(), now_ms=0)
    assert not failed.value.permanent


async def test_a_missing_command_is_permanent(tmp_path: Path) -> None:
    channel = CommandChannel(name="c", argv=[str(tmp_path / "absent")])
    with pytest.raises(DeliveryFailed, match=r"absent: command not found$") as failed:
        await send_command(channel, notification(), now_ms=0)
    assert failed.value.permanent


async def test_a_command_past_its_timeout_is_killed_with_its_process_group(
        tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    hang = script(tmp_path, "hang.sh", f'sleep 60 &\necho $! > "{pids}"\nwait\n')
    channel = CommandChannel(name="c", argv=[str(hang)], timeout=0.5)
    started = trio.current_time()
    with pytest.raises(DeliveryFailed, match=r"hang\.sh: timed out after 0\.5 s; killed its"
                                             r" process group$"):
        await send_command(channel, notification(), now_ms=0)
    assert trio.current_time() - started < 5
    child = int(pids.read_text())
    # SIGKILL lands asynchronously; the background sleep was in the group, so it dies.
    for _ in range(500):
        if not alive(child):
            break
        await trio.sleep(0.01)
    else:
        raise AssertionError(f"pid {child} outlived the command's timeout by 5 s")


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead and awaiting its reaper, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
