"""The disk and freshness checks against the test's own temporary folder and files."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from ttamond.probes.checks import check_disk, check_freshness


async def test_disk_figures_of_the_temporary_folder(tmp_path: Path) -> None:
    result = await check_disk(tmp_path)
    stat = os.statvfs(tmp_path)
    assert result.status == "ok"
    assert result.message.startswith(f"filesystem of {tmp_path} is ")
    assert result.values["total_bytes"] == stat.f_blocks * stat.f_frsize
    assert 0 <= result.values["used_ratio"] <= 1
    assert result.values["used_bytes"] + result.values["free_bytes"] <= result.values[
        "total_bytes"]
    if stat.f_files:
        assert result.values["inodes_total"] == stat.f_files
        assert 0 <= result.values["inodes_used_ratio"] <= 1


async def test_disk_limits_force_warn_and_crit(tmp_path: Path) -> None:
    # Every ratio reaches 0, and none can pass 1 short of a full disk.
    warn = await check_disk(tmp_path, used_warn_ratio=0.0, used_crit_ratio=1.0)
    crit = await check_disk(tmp_path, used_warn_ratio=0.0, used_crit_ratio=0.0)
    assert warn.status == "warn"
    assert warn.message.endswith("full (warn at 0%)")
    assert crit.status == "crit"
    assert crit.message.endswith("full (crit at 0%)")


async def test_inode_limits_force_crit(tmp_path: Path) -> None:
    result = await check_disk(tmp_path, inodes_crit_ratio=0.0)
    if os.statvfs(tmp_path).f_files:
        assert result.status == "crit"
        assert " of its inodes (crit at 0%)" in result.message
    else:
        assert result.status == "ok"


async def test_disk_of_a_missing_path_is_crit(tmp_path: Path) -> None:
    result = await check_disk(tmp_path / "gone")
    assert (result.status, result.message) == (
        "crit", f"cannot read the filesystem of {tmp_path / 'gone'}: No such file or directory")


async def test_a_file_touched_now_is_fresh(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    path.touch()
    result = await check_freshness(path, max_age_warn_s=60, max_age_crit_s=300)
    assert result.status == "ok"
    assert result.values["age_seconds"] < 60
    assert result.message.startswith(f"{path} changed ")


async def test_a_backdated_file_is_stale(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    path.touch()
    os.utime(path, (time.time() - 120, time.time() - 120))
    warn = await check_freshness(path, max_age_warn_s=60, max_age_crit_s=300)
    os.utime(path, (time.time() - 3600, time.time() - 3600))
    crit = await check_freshness(path, max_age_warn_s=60, max_age_crit_s=300)
    assert (warn.status, warn.message) == (
        "warn", f"{path} last changed 2 minutes ago (warn at 60 s)")
    assert 120 <= warn.values["age_seconds"] < 180
    assert (crit.status, crit.message) == (
        "crit", f"{path} last changed 60 minutes ago (crit at 300 s)")


async def test_a_missing_file_is_crit(tmp_path: Path) -> None:
    result = await check_freshness(tmp_path / "never", max_age_warn_s=60)
    assert (result.status, result.message) == ("crit", f"{tmp_path / 'never'} is missing")


def open_busy_database(path: Path) -> sqlite3.Connection:
    """A WAL-mode database whose main file was last changed an hour ago and whose
    latest write sits in its -wal file (checkpointed only when the last connection
    closes, so keep the one returned open)."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=wal")
    connection.execute("CREATE TABLE samples (value REAL)")
    connection.commit()
    old = time.time() - 3600
    os.utime(path, (old, old))
    connection.execute("INSERT INTO samples VALUES (1.0)")
    connection.commit()
    if not Path(f"{path}-wal").exists() or path.stat().st_mtime != old:
        raise RuntimeError("SQLite did not keep the write in the -wal file")
    return connection


async def test_an_sqlite_database_counts_its_wal_file(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    connection = open_busy_database(path)
    try:
        result = await check_freshness(path, max_age_warn_s=60)
    finally:
        connection.close()
    assert result.status == "ok"
    assert result.values["age_seconds"] < 60
