"""The privacy audit trail: an append-only table of privacy operations, each row hashed
together with the one before it, so an edited, removed or reordered row shows."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping
from typing import Final

import msgspec

KEY_CREATED: Final = "key_created"
KEY_ROTATED: Final = "key_rotated"
KEY_RETIRED: Final = "key_retired"
ERASURE: Final = "erasure"
PURGE: Final = "purge"
SCANNER_HIT: Final = "scanner_hit"
SETTINGS_CHANGED: Final = "settings_changed"
ACTIONS: Final = frozenset(
    {KEY_CREATED, KEY_ROTATED, KEY_RETIRED, ERASURE, PURGE, SCANNER_HIT, SETTINGS_CHANGED}
)

GENESIS: Final = "0" * 64
"""The ``prev_hash`` of the first row."""

AUDIT_SCHEMA: Final = f"""
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE audit_head (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    entries INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (singleton, entries, last_id, hash) VALUES (1, 0, 0, '{GENESIS}')
"""
"""The tables, as one migration: statements separated by semicolons, none inside a
literal. ``audit_head`` holds the count and hash of the last row, updated with every
append, so rows cut off the end show as a head that points past the table."""


class AuditError(Exception):
    """An audit row cannot be written: unknown action, a detail that is not JSON, no open
    transaction, or a missing ``audit_head``."""


class VerifyResult(msgspec.Struct, frozen=True):
    """What `verify` found: ``ok``, the rows read, and the first id found wrong (a row
    whose hash does not match, the first id missing, or the id the head expected next)
    with a one-line ``problem``; both None when ``ok``."""

    ok: bool
    entries: int
    first_bad_id: int | None
    problem: str | None


def canonical_detail(detail: Mapping[str, object]) -> str:
    """The JSON text stored and hashed for ``detail``: sorted keys, no spaces, UTF-8
    characters as they are. Raises AuditError for values JSON cannot hold (NaN too)."""
    try:
        return json.dumps(
            detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as error:
        raise AuditError(f"audit detail is not JSON: {error}") from error


def row_hash(prev_hash: str, row_id: int, ts: int, action: str, actor: str, detail: str) -> str:
    """SHA-256 (hex) of a row: the JSON array ``[prev_hash, id, ts, action, actor,
    detail]`` with no spaces, UTF-8. JSON quotes every string, so no two different rows
    encode alike, and ``detail`` is hashed as the exact text stored."""
    encoded = json.dumps(
        [prev_hash, row_id, ts, action, actor, detail], separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def append(
    conn: sqlite3.Connection, *, ts: int, action: str, actor: str, detail: Mapping[str, object]
) -> str:
    """Append one row inside the caller's open transaction and return its hash; the
    caller commits, with the change it audits, or rolls both back.

    ``ts`` is milliseconds since the Unix epoch, ``actor`` who acted (``daemon``,
    ``cli:erase``), ``detail`` what happened, without personal data: counts, epochs and
    settings, never a pseudonym of someone erased. Raises AuditError, sqlite3.Error.
    """
    if action not in ACTIONS:
        raise AuditError(f"unknown audit action {action!r} (expected one of: "
                         f"{', '.join(sorted(ACTIONS))})")
    if not conn.in_transaction:
        raise AuditError("audit rows are appended inside a transaction (BEGIN IMMEDIATE first)")
    text = canonical_detail(detail)
    head = conn.execute("SELECT entries, last_id, hash FROM audit_head WHERE singleton = 1")
    found = head.fetchone()
    if found is None:
        raise AuditError("audit_head has no row; the audit migration did not run")
    entries, last_id, prev_hash = int(found[0]), int(found[1]), str(found[2])
    row_id = last_id + 1
    digest = row_hash(prev_hash, row_id, ts, action, actor, text)
    conn.execute(
        "INSERT INTO audit (id, ts, action, actor, detail, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (row_id, ts, action, actor, text, prev_hash, digest),
    )
    conn.execute(
        "UPDATE audit_head SET entries = ?, last_id = ?, hash = ? WHERE singleton = 1",
        (entries + 1, row_id, digest),
    )
    return digest


def verify(conn: sqlite3.Connection) -> VerifyResult:
    """Recompute the chain from the first row and compare it with ``audit_head``.

    Ids run 1, 2, 3... without gaps; each row's ``prev_hash`` is the hash of the row
    before (`GENESIS` for the first) and its ``hash`` is `row_hash` of its own fields.
    An edited row fails its hash; a deleted one leaves a gap; rows swapped fail their
    hash (the id is hashed) or their link; rows cut off the end leave the head pointing
    past the last row. Someone who can write the database can rewrite the whole chain
    and the head: keep a copy of the head elsewhere (the journal) to catch that.
    Reads in one pass with constant memory. Raises sqlite3.Error.
    """
    expected_id = 1
    prev_hash = GENESIS
    entries = 0
    rows = conn.execute(
        "SELECT id, ts, action, actor, detail, prev_hash, hash FROM audit ORDER BY id"
    )
    for row_id, ts, action, actor, detail, stored_prev, stored_hash in rows:
        entries += 1
        if row_id != expected_id:
            missing = f"{expected_id}" if row_id == expected_id + 1 else (
                f"{expected_id} to {row_id - 1}"
            )
            return _broken(entries, expected_id, f"audit row {missing} missing (next is {row_id})")
        if stored_prev != prev_hash:
            return _broken(entries, row_id, f"audit row {row_id} does not follow row "
                                            f"{row_id - 1} (prev_hash differs)")
        if row_hash(stored_prev, row_id, ts, action, actor, detail) != stored_hash:
            return _broken(entries, row_id, f"audit row {row_id} was changed (hash differs)")
        prev_hash = stored_hash
        expected_id += 1
    head = conn.execute("SELECT entries, last_id, hash FROM audit_head WHERE singleton = 1")
    found = head.fetchone()
    if found is None:
        return _broken(entries, expected_id, "audit_head has no row")
    head_entries, head_last, head_hash = int(found[0]), int(found[1]), str(found[2])
    if head_last >= expected_id or head_entries > entries:
        return _broken(entries, expected_id, f"audit rows {expected_id} to {head_last} missing"
                                             " at the end (the head counts more)")
    if head_last != expected_id - 1 or head_entries != entries or head_hash != prev_hash:
        return _broken(entries, head_last + 1, "audit_head does not match the last row"
                                               " (rows added outside append, or head edited)")
    return VerifyResult(ok=True, entries=entries, first_bad_id=None, problem=None)


def _broken(entries: int, row_id: int, problem: str) -> VerifyResult:
    return VerifyResult(ok=False, entries=entries, first_bad_id=row_id, problem=problem)
