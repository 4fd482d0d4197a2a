"""WAL checkpoints off the write path: a second connection copies committed pages back
into the database file, so no commit waits for a checkpoint's fsync."""

from __future__ import annotations

import sqlite3
from pathlib import Path

CHECKPOINT_ABOVE_BYTES = 1024 * 1024
"""A WAL smaller than this is left alone until the next look."""
RESTART_ABOVE_BYTES = 16 * 1024 * 1024
"""Under steady writes a passive checkpoint never catches the WAL's end, so the WAL
never starts over: past this size a RESTART checkpoint holds writers for the last
few frames (passive ones copied the rest) and makes the WAL start from its head."""
WRITER_CHECKPOINT_ABOVE_BYTES = 64 * 1024 * 1024
"""Past this the writer checkpoints itself: the checkpointer is behind or not running."""


class Checkpointer:
    """Checkpoints on its own connection: PASSIVE (never blocks the writer or readers;
    what it cannot copy now it copies next time), and RESTART once the WAL is large."""

    def __init__(self, database: Path, *, busy_timeout: float) -> None:
        self.database = database
        self.busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self.checkpoints = 0

    def wal_bytes(self) -> int:
        """The WAL file's size (0 when there is none)."""
        try:
            return (self.database.with_name(self.database.name + "-wal")).stat().st_size
        except FileNotFoundError:
            return 0

    def checkpoint(self) -> int:
        """Copy what is committed back into the database; returns WAL frames copied.

        Raises sqlite3.Error when the database cannot be opened or read.
        """
        if self._conn is None:
            self._conn = sqlite3.connect(self.database, isolation_level=None,
                                         check_same_thread=False, timeout=self.busy_timeout)
        mode = "RESTART" if self.wal_bytes() > RESTART_ABOVE_BYTES else "PASSIVE"
        _, _, copied = self._conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        self.checkpoints += 1
        return int(copied)

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
