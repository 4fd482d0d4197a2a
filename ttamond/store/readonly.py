"""Read-only connections for the readers (CLI commands, reports, scans): they never
take the write lock, so the store's writer never waits for them."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_reader(database: Path) -> sqlite3.Connection:
    """A read-only connection; raises sqlite3.Error when the database cannot be read."""
    return sqlite3.connect(f"file:{database}?mode=ro", uri=True)
