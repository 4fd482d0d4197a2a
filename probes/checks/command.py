"""Health check by running a command: its exit status decides, its first line explains."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Collection, Sequence

import trio

from ttamond.probes.base import FieldInfo
from ttamond.probes.checks.result import CheckResult, Status, elapsed_ms, failed, figure

VALUES: dict[str, FieldInfo] = {
    "exit_status": FieldInfo(
        "gauge", "", (), "the command's exit status; negative: killed by that signal"),
}
"""Present only when the command ran to its end."""

MESSAGE_LIMIT = 200
"""Characters of the command's first output line kept in the message."""

OUTPUT_LIMIT = 64 << 10
"""Bytes of each of stdout and stderr kept; the rest is read and dropped."""


async def check_command(
    argv: Sequence[str],
    *,
    timeout: float,  # noqa: ASYNC109 - running out of time is a crit result, not a cancellation
    ok_codes: Collection[int] = frozenset({0}),
    warn_codes: Collection[int] = frozenset({1}),
) -> CheckResult:
    """Run `argv` (no shell, no input) in a session of its own, reading its output.

    Ok or warn when it exits with one of `ok_codes` or `warn_codes`, crit for any
    other status (the Nagios plugin convention: 0 ok, 1 warning, 2 critical). The
    message is the first non-blank line of its output (stdout, else stderr), cut at
    MESSAGE_LIMIT characters. Crit when it cannot be started or runs past `timeout`
    seconds, or leaves a child holding its output open that long; then its whole
    process group is killed. Raises ValueError for an empty argv.
    """
    if not argv:
        raise ValueError("check_command needs a command to run")
    command = list(argv)
    started = trio.current_time()
    try:
        ran = await _run(command, time_limit=timeout)
    except FileNotFoundError:
        return failed(f"command not found: {command[0]}", latency_ms=elapsed_ms(started))
    except OSError as exc:
        return failed(f"cannot run {command[0]}: {exc.strerror}", latency_ms=elapsed_ms(started))
    if ran is None:
        return failed(f"timed out after {figure(timeout)} s running {command[0]}; "
                      "killed its process group", latency_ms=elapsed_ms(started))
    code, stdout, stderr = ran
    status: Status = "ok" if code in ok_codes else "warn" if code in warn_codes else "crit"
    line = _first_line(stdout) or _first_line(stderr)
    if code < 0:
        ending = f"{command[0]} was killed by {_signal_name(-code)}"
    else:
        ending = f"{command[0]} exited with status {code}"
    message = line if status == "ok" and line else f"{ending}: {line}" if line else ending
    return CheckResult(status, elapsed_ms(started), message, {"exit_status": float(code)})


async def _run(command: list[str], *, time_limit: float) -> tuple[int, bytes, bytes] | None:
    """The exit status and the start of the output of `command`; None when it ran past
    `time_limit` seconds. Raises OSError when it cannot be started.

    Not trio.run_process: that kills only a command still running when cancelled,
    while a command that has ended can leave a child holding its output open; here
    the group is killed whenever the command did not finish with its output closed.
    """
    process = await trio.lowlevel.open_process(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)
    stdout, stderr = bytearray(), bytearray()
    finished = False
    try:
        if process.stdout is None or process.stderr is None:
            raise RuntimeError("open_process gave no pipe for the output")
        with trio.move_on_after(time_limit):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_read, process.stdout, stdout)
                nursery.start_soon(_read, process.stderr, stderr)
                await process.wait()
            finished = True
    finally:
        if not finished:
            _kill_group(process)
        with trio.CancelScope(shield=True):
            await process.wait()
            for pipe in (process.stdout, process.stderr):
                if pipe is not None:
                    await pipe.aclose()
    if not finished or process.returncode is None:
        return None
    return process.returncode, bytes(stdout), bytes(stderr)


async def _read(stream: trio.abc.ReceiveStream, into: bytearray) -> None:
    # Read to the end even past the limit: a command blocked on a full pipe never ends.
    async for chunk in stream:
        if len(into) < OUTPUT_LIMIT:
            into += chunk[:OUTPUT_LIMIT - len(into)]


def _kill_group(process: trio.Process) -> None:
    # start_new_session made the command the leader of a process group of its own.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        # The whole group has ended already.
        return


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _first_line(output: bytes | None) -> str:
    for line in (output or b"").decode(errors="replace").splitlines():
        if line.strip():
            stripped = line.strip()
            if len(stripped) > MESSAGE_LIMIT:
                return stripped[:MESSAGE_LIMIT - 1] + "…"
            return stripped
    return ""
