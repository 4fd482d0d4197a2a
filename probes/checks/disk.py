"""Health check of a filesystem's free space and inodes through os.statvfs."""

from __future__ import annotations

import os

import trio

from ttamond.probes.base import FieldInfo
from ttamond.probes.checks.result import (
    CheckResult,
    Findings,
    Thresholds,
    elapsed_ms,
    failed,
    percent,
    timed_out,
)

VALUES: dict[str, FieldInfo] = {
    "total_bytes": FieldInfo("gauge", "bytes", (), "filesystem size"),
    "used_bytes": FieldInfo("gauge", "bytes", (), "space in use"),
    "free_bytes": FieldInfo("gauge", "bytes", (), "space free for unprivileged users"),
    "used_ratio": FieldInfo(
        "gauge", "", (), "used / (used + free for unprivileged users), as df shows it"),
    "inodes_total": FieldInfo("gauge", "", (), "inodes; absent where the filesystem has no "
                              "fixed number (btrfs)"),
    "inodes_used": FieldInfo("gauge", "", (), "inodes in use"),
    "inodes_used_ratio": FieldInfo("gauge", "", (), "inodes in use / inodes"),
}
"""Present only when the filesystem could be read."""


async def check_disk(
    path: str | os.PathLike[str],
    *,
    used_warn_ratio: float | None = None,
    used_crit_ratio: float | None = None,
    inodes_warn_ratio: float | None = None,
    inodes_crit_ratio: float | None = None,
    timeout: float = 5.0,  # noqa: ASYNC109 - running out of time is a crit result, not a cancellation
) -> CheckResult:
    """Read the filesystem holding `path`. Crit when it cannot be read (a missing path)
    or does not answer within `timeout` seconds (a hung network mount: the call runs
    on a worker thread, so it cannot stall the event loop); warn or crit when the used
    space or inode ratios reach their limits."""
    used_limits = Thresholds(used_warn_ratio, used_crit_ratio)
    inode_limits = Thresholds(inodes_warn_ratio, inodes_crit_ratio)
    started = trio.current_time()
    with trio.move_on_after(timeout):
        try:
            stat = await trio.to_thread.run_sync(os.statvfs, path, abandon_on_cancel=True)
        except OSError as exc:
            return failed(f"cannot read the filesystem of {path}: {exc.strerror}",
                          latency_ms=elapsed_ms(started))
        used = (stat.f_blocks - stat.f_bfree) * stat.f_frsize
        free = stat.f_bavail * stat.f_frsize
        values = {"total_bytes": float(stat.f_blocks * stat.f_frsize), "used_bytes": float(used),
                  "free_bytes": float(free),
                  "used_ratio": used / (used + free) if used + free else 0.0}
        findings = Findings()
        findings.grade(values["used_ratio"], used_limits,
                       f"filesystem of {path} is {percent(values['used_ratio'])} full",
                       show=percent)
        ok_message = f"filesystem of {path} is {percent(values['used_ratio'])} full"
        if stat.f_files:
            inodes_used = stat.f_files - stat.f_ffree
            values |= {"inodes_total": float(stat.f_files), "inodes_used": float(inodes_used),
                       "inodes_used_ratio": inodes_used / stat.f_files}
            findings.grade(values["inodes_used_ratio"], inode_limits,
                           f"filesystem of {path} has used "
                           f"{percent(values['inodes_used_ratio'])} of its inodes", show=percent)
            ok_message += f", {percent(values['inodes_used_ratio'])} of inodes used"
        return findings.result(latency_ms=elapsed_ms(started), ok_message=ok_message,
                               values=values)
    return timed_out(timeout, f"the filesystem of {path}")
