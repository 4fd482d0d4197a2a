"""The command sender: runs a program with the notification on its standard input."""

from __future__ import annotations

import os
import signal
import subprocess

import msgspec
import trio

from ttamond.messages import Notification
from ttamond.notify.errors import DeliveryFailed
from ttamond.notify.payloads import alertname, generic_json, title
from ttamond.notify.settings import CommandChannel

STDERR_LIMIT = 16 << 10
"""Bytes of standard error kept for the error message; the rest is read and dropped."""

LINE_LIMIT = 200
"""Characters of the first line of standard error quoted in the error."""


def command_env(notification: Notification) -> dict[str, str]:
    """The TTAMOND_* variables a command gets: enough to act on without reading JSON."""
    summaries = [alert.annotations.get("summary", "") for alert in notification.alerts
                 if alert.status == notification.status]
    values = {
        "TTAMOND_STATUS": notification.status,
        "TTAMOND_REASON": notification.reason,
        "TTAMOND_CHANNEL": notification.channel,
        "TTAMOND_GROUP_KEY": notification.group_key,
        "TTAMOND_ALERT_COUNT": str(len(notification.alerts)),
        "TTAMOND_ALERTNAME": alertname(notification),
        "TTAMOND_SUMMARY": next((s for s in summaries if s), ""),
        "TTAMOND_TITLE": title(notification),
        "TTAMOND_NOTIFICATION_ID": notification.id,
        "TTAMOND_LEVEL": str(notification.level),
    }
    # The environment cannot carry NUL bytes; labels could.
    return {key: value.replace("\0", " ") for key, value in values.items()}


async def send_command(channel: CommandChannel, notification: Notification, *,
                       now_ms: int) -> None:
    """Run the channel's argv (no shell) in a session of its own, with the daemon's
    environment plus `command_env` plus the channel's `env`, and the generic JSON on
    its standard input. Exit status 0 means delivered.

    Raises DeliveryFailed: permanent when the command cannot be started; transient
    when it exits non-zero (quoting the first line of its standard error), is killed
    by a signal, or runs past the channel's timeout, in which case its whole process
    group is killed.
    """
    target = f"command {channel.argv[0]}"
    env = {**os.environ, **command_env(notification), **channel.env}
    stdin = msgspec.json.encode(generic_json(notification))
    try:
        process = await trio.lowlevel.open_process(
            list(channel.argv), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=env, start_new_session=True)
    except FileNotFoundError:
        raise DeliveryFailed(f"{target}: command not found", permanent=True) from None
    except OSError as exc:
        raise DeliveryFailed(f"{target}: cannot run it: {exc.strerror}", permanent=True) from None
    stderr = bytearray()
    finished = False
    try:
        if process.stdin is None or process.stderr is None:
            raise RuntimeError("open_process gave no pipe for the command's input or errors")
        with trio.move_on_after(channel.timeout):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_feed, process.stdin, stdin)
                nursery.start_soon(_drain, process.stderr, stderr)
                await process.wait()
            finished = True
    finally:
        if not finished:
            _kill_group(process.pid)
        with trio.CancelScope(shield=True):
            await process.wait()
            for pipe in (process.stdin, process.stderr):
                if pipe is not None:
                    await pipe.aclose()
    if not finished:
        # Ended by the timeout: the command, or a child still holding its stderr open.
        raise DeliveryFailed(f"{target}: timed out after {channel.timeout:g} s;"
                             " killed its process group")
    code = process.returncode
    if code is None:
        raise RuntimeError("the command ended without an exit status")
    if code == 0:
        return
    ending = (f"killed by {_signal_name(-code)}" if code < 0
              else f"exited with status {code}")
    line = _first_line(bytes(stderr))
    raise DeliveryFailed(f"{target}: {ending}" + (f": {line}" if line else ""))


async def _feed(stream: trio.abc.SendStream, data: bytes) -> None:
    try:
        await stream.send_all(data)
        await stream.aclose()
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        # A command may ignore its input and exit; its exit status decides, not this.
        return


async def _drain(stream: trio.abc.ReceiveStream, into: bytearray) -> None:
    # Read to the end even past the limit: a command blocked on a full pipe never ends.
    async for chunk in stream:
        if len(into) < STDERR_LIMIT:
            into += chunk[:STDERR_LIMIT - len(into)]


def _kill_group(pid: int) -> None:
    # start_new_session made the command the leader of a process group of its own.
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        # The whole group has ended already.
        return


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _first_line(output: bytes) -> str:
    for line in output.decode(errors="replace").splitlines():
        if line.strip():
            stripped = " ".join(line.split())
            return stripped if len(stripped) <= LINE_LIMIT else stripped[:LINE_LIMIT - 1] + "…"
    return ""
