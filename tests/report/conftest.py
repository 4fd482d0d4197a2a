"""Fixtures of the report tests: the known database (written once, only read) and an
empty one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report.known import write_known
from ttamond.store.database import Database


@pytest.fixture(scope="session")
def known_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The database of tests/report/known.py; tests must not write to it."""
    path = tmp_path_factory.mktemp("known") / "ttamond.db"
    write_known(path)
    return path


@pytest.fixture
def empty_db(tmp_path: Path) -> Path:
    """A database with the schema and nothing in it, as a fresh daemon leaves it."""
    path = tmp_path / "ttamond.db"
    db = Database(path, busy_timeout=1.0, synchronous="normal")
    db.open()
    db.close()
    return path
