"""The audit trail: appends chain, and edits, deletions, reordering and truncation show."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ttamond import audit
from ttamond.audit import AUDIT_SCHEMA, AuditError, VerifyResult, append, verify

TS = 1_767_225_600_000


def open_database(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    # As ttamond.store.schema runs a migration: statements split at semicolons, one
    # transaction.
    conn.execute("BEGIN IMMEDIATE")
    for statement in AUDIT_SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("COMMIT")


def write_trail(path: Path, entries: int = 5) -> list[str]:
    conn = open_database(path)
    migrate(conn)
    hashes = []
    actions = sorted(audit.ACTIONS)
    for number in range(entries):
        conn.execute("BEGIN IMMEDIATE")
        hashes.append(append(conn, ts=TS + number, action=actions[number % len(actions)],
                             actor="daemon", detail={"n": number, "epochs": [2922]}))
        conn.execute("COMMIT")
    conn.close()
    return hashes


def verify_file(path: Path) -> VerifyResult:
    conn = open_database(path)
    try:
        return verify(conn)
    finally:
        conn.close()


def tamper(path: Path, *statements: str) -> VerifyResult:
    conn = open_database(path)
    for statement in statements:
        conn.execute(statement)
    conn.close()
    return verify_file(path)


def test_an_untouched_trail_verifies(tmp_path: Path) -> None:
    database = tmp_path / "ttamond.db"
    hashes = write_trail(database)
    assert len(set(hashes)) == 5
    assert verify_file(database) == VerifyResult(ok=True, entries=5, first_bad_id=None,
                                                 problem=None)
    conn = open_database(database)
    rows = conn.execute("SELECT id, detail, prev_hash, hash FROM audit ORDER BY id").fetchall()
    assert rows[0][1] == '{"epochs":[2922],"n":0}'  # canonical: sorted keys, no spaces
    assert rows[0][2] == audit.GENESIS
    assert [row[2] for row in rows[1:]] == [row[3] for row in rows[:-1]]
    assert conn.execute("SELECT entries, last_id, hash FROM audit_head").fetchone() == (
        5, 5, hashes[-1])


def test_an_empty_trail_verifies(tmp_path: Path) -> None:
    database = tmp_path / "ttamond.db"
    write_trail(database, entries=0)
    assert verify_file(database).ok


def test_a_rolled_back_append_leaves_no_trace(tmp_path: Path) -> None:
    database = tmp_path / "ttamond.db"
    write_trail(database, entries=2)
    conn = open_database(database)
    conn.execute("BEGIN IMMEDIATE")
    append(conn, ts=TS, action=audit.ERASURE, actor="cli:erase", detail={"rows": 3})
    conn.execute("ROLLBACK")
    conn.close()
    assert verify_file(database) == VerifyResult(True, 2, None, None)


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE audit SET detail = '{\"epochs\":[2922],\"n\":99}' WHERE id = 3",
        "UPDATE audit SET action = 'purge' WHERE id = 3",
        "UPDATE audit SET actor = 'someone' WHERE id = 3",
        "UPDATE audit SET ts = ts + 1 WHERE id = 3",
    ],
)
def test_an_edited_row_fails_at_its_id(tmp_path: Path, change: str) -> None:
    database = tmp_path / "ttamond.db"
    write_trail(database)
    result = tamper(database, change)
    assert (result.ok, result.first_bad_id) == (False, 3)
    assert result.problem == "audit row 3 was changed (hash differs)"


def test_a_deleted_middle_row_is_found(tmp_path: Path) -> None:
    database = tmp_path / "ttamond.db"
    write_trail(database)
    result = tamper(database, "DELETE FROM audit WHERE id = 3")
    assert (result.ok, result.first_bad_id) == (False, 3)
    assert result.problem == "audit row 3 missing (next is 4)"


def test_a_deleted_and_renumbered_row_is_found(tmp_path: Path) -> None:
    database = tmp_path / "ttamond.db"
    write_trail(database)
    result = tamper(database, "DELETE FROM audit WHERE id = 3",
                    "UPDATE audit SET id = id - 1 WHERE id > 3")
    assert (result.ok, result.first_bad_id) == (False, 3)
    assert result.problem == "audit row 3 does not follow row 2 (prev_hash differs)"


def test_reordered_rows_are_found(tmp_path: Path) -> None:
    database = tmp_path / "ttamond.db"
    write_trail(database)
    # Swap the contents of rows 2 and 3, ids staying in place.
    result = tamper(
        database,
        "UPDATE audit SET id = -2 WHERE id = 2",
        "UPDATE audit SET id = 2 WHERE id = 3",
        "UPDATE audit SET id = 3 WHERE id = -2",
    )
    assert (result.ok, result.first_bad_id) == (False, 2)


def test_a_truncated_tail_is_found(tmp_path: Path) -> None:
    database = tmp_path / "ttamond.db"
    write_trail(database)
    result = tamper(database, "DELETE FROM audit WHERE id >= 4")
    assert result == VerifyResult(
        ok=False, entries=3, first_bad_id=4,
        problem="audit rows 4 to 5 missing at the end (the head counts more)",
    )


def test_a_row_added_behind_the_head_is_found(tmp_path: Path) -> None:
    database = tmp_path / "ttamond.db"
    hashes = write_trail(database, entries=2)
    forged = audit.row_hash(hashes[-1], 3, TS, "purge", "x", "{}")
    result = tamper(
        database,
        f"INSERT INTO audit VALUES (3, {TS}, 'purge', 'x', '{{}}', '{hashes[-1]}', '{forged}')",
    )
    assert (result.ok, result.first_bad_id) == (False, 3)
    assert result.problem is not None and "audit_head does not match" in result.problem


def test_append_refuses_unknown_actions_bad_details_and_autocommit(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "ttamond.db")
    migrate(conn)
    with pytest.raises(AuditError, match="inside a transaction"):
        append(conn, ts=TS, action=audit.PURGE, actor="cli", detail={})
    conn.execute("BEGIN IMMEDIATE")
    with pytest.raises(AuditError, match="unknown audit action 'purged'"):
        append(conn, ts=TS, action="purged", actor="cli", detail={})
    with pytest.raises(AuditError, match="audit detail is not JSON"):
        append(conn, ts=TS, action=audit.PURGE, actor="cli", detail={"x": float("nan")})
    conn.execute("ROLLBACK")
    conn.close()
