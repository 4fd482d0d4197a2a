"""Health check that a file is being written: the age of its last change."""

from __future__ import annotations

import os
import time
from pathlib import Path

import trio

from ttamond.probes.base import FieldInfo
from ttamond.probes.checks.result import (
    CheckResult,
    Findings,
    Thresholds,
    duration,
    elapsed_ms,
    failed,
    timed_out,
)

VALUES: dict[str, FieldInfo] = {
    "age_seconds": FieldInfo(
        "gauge", "seconds", (), "since the file (or its SQLite -wal file) last changed"),
}
"""Present only when the file exists."""


async def check_freshness(
    path: str | os.PathLike[str],
    *,
    max_age_warn_s: float | None = None,
    max_age_crit_s: float | None = None,
    timeout: float = 5.0,  # noqa: ASYNC109 - running out of time is a crit result, not a cancellation
) -> CheckResult:
    """How long ago `path` was modified. An SQLite database in WAL mode takes its
    writes in `<path>-wal` and may leave the main file unchanged for a long time, so
    the newer of the two counts.

    Crit when the file is missing or unreadable, or its filesystem does not answer
    within `timeout` seconds (the stat runs on a worker thread); warn or crit when the
    age reaches its limits. A modification time in the future counts as age 0.
    """
    limits = Thresholds(max_age_warn_s, max_age_crit_s)
    started = trio.current_time()
    with trio.move_on_after(timeout):
        try:
            modified = await trio.to_thread.run_sync(_modified, os.fspath(path),
                                                     abandon_on_cancel=True)
        except FileNotFoundError:
            return failed(f"{path} is missing", latency_ms=elapsed_ms(started))
        except OSError as exc:
            return failed(f"cannot read {path}: {exc.strerror}", latency_ms=elapsed_ms(started))
        age = max(0.0, time.time() - modified)
        findings = Findings()
        findings.grade(age, limits, f"{path} last changed {duration(age)} ago", " s")
        return findings.result(latency_ms=elapsed_ms(started), values={"age_seconds": age},
                               ok_message=f"{path} changed {duration(age)} ago")
    return timed_out(timeout, str(path))


def _modified(path: str) -> float:
    modified = Path(path).stat().st_mtime
    try:
        return max(modified, Path(f"{path}-wal").stat().st_mtime)
    except FileNotFoundError:
        return modified
