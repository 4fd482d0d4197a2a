"""Privacy operations of the running daemon: pseudonyms under rotating keys, erasure of
one person, emergency purge, the audit trail, and the keyring's upkeep."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from ttamond import audit
from ttamond.bus import Bus
from ttamond.config import PrivacyConfig
from ttamond.control import CommandError, Handler
from ttamond.keyring import DAY_SECONDS, LEGACY, Keyring
from ttamond.messages import AuditRecorded, PersonalDataErased, now_ms
from ttamond.receipts import Ingested, NotStored, Receipt
from ttamond.store.readonly import open_reader

log = logging.getLogger(__name__)

UPKEEP_EVERY = 3600.0
"""Seconds between keyring upkeep rounds: rotation noticed, old keys retired."""


def open_keyring(state_dir: Path, config: PrivacyConfig) -> Keyring:
    """The keyring in `state_dir/keys`, adopting the single key of earlier releases.

    Raises KeyFileUnsafe naming a key file or folder others can read; OSError.
    """
    now = time.time()
    keyring = Keyring(state_dir / "keys", rotate_every_days=config.rotate_every_days,
                      keep_days=config.keep_keys_days, now=now)
    if keyring.previous_rotation_days is not None:
        log.warning("privacy: rotate_every_days changed from %g to %g days; the keys of the"
                    " old rotation moved aside and retire by its calendar",
                    keyring.previous_rotation_days, config.rotate_every_days)
    legacy = state_dir / "pseudonym.key"
    if legacy.exists():
        keyring.adopt_legacy(legacy, now)
        log.info("privacy: the single pseudonym key moved into the keyring (%s)",
                 keyring.directory)
    keyring.current(now)
    return keyring


class EpochPseudonyms:
    """Pseudonyms under the key of the epoch in force now (what the converter uses)."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._epoch = -1
        self._until = 0.0

    def of(self, identifier: str) -> str:
        """The pseudonym of `identifier` in the current epoch."""
        now = time.time()
        if now >= self._until:
            # Once per epoch, not per event: the keyring's clock and key lookup.
            self._epoch = self.keyring.current(now)
            self._until = (self._epoch + 1) * self.keyring.rotate_seconds
        return self.keyring.pseudonym(identifier, self._epoch)


def key_audit_entries(keyring: Keyring, now: float) -> list[AuditRecorded]:
    """Audit entries for keys created and retired since the last call: the upkeep
    round (blocking file I/O: run it in a worker thread)."""
    entries: list[AuditRecorded] = []
    previous = keyring.drain_rotation_change()
    if previous is not None:
        entries.append(AuditRecorded(
            action=audit.SETTINGS_CHANGED, actor="daemon", timestamp_ms=int(now * 1000),
            detail={"rotate_every_days": {"before": previous,
                                          "after": keyring.rotate_seconds / DAY_SECONDS},
                    "previous_keys": f"rotation-{round(previous * DAY_SECONDS)}"}))
    created = keyring.drain_created()
    for epoch in created:
        action = audit.KEY_ROTATED if len(keyring.epochs()) > 1 else audit.KEY_CREATED
        entries.append(AuditRecorded(action=action, actor="daemon", detail={"epoch": epoch},
                                     timestamp_ms=int(now * 1000)))
    for epoch in keyring.retire(now):
        entries.append(AuditRecorded(
            action=audit.KEY_RETIRED, actor="daemon",
            detail={"epoch": "legacy" if epoch == LEGACY else epoch},
            timestamp_ms=int(now * 1000)))
    return entries


def privacy_settings_changed(old: PrivacyConfig, new: PrivacyConfig) -> AuditRecorded:
    """The audit entry of a reload that changed [privacy]: which settings, old and new
    (configured names are counted, not listed: they are names of people)."""
    changes: dict[str, Any] = {}
    for field in old.__struct_fields__:
        before, after = getattr(old, field), getattr(new, field)
        if before != after:
            changes[field] = ({"before": len(before), "after": len(after)} if field == "names"
                              else {"before": before, "after": after})
    return AuditRecorded(action=audit.SETTINGS_CHANGED, actor="reload", detail=changes,
                         timestamp_ms=now_ms())


async def keep_keyring(keyring: Keyring, bus: Bus) -> None:
    """Until cancelled: every UPKEEP_EVERY, start the new epoch's key and retire keys
    past retention, auditing each."""
    while True:
        entries = await trio.to_thread.run_sync(key_audit_entries, keyring, time.time())
        if entries:
            await bus.publish(Ingested(messages=tuple(entries)))
        await trio.sleep(UPKEEP_EVERY)


def privacy_handlers(keyring: Callable[[], Keyring], bus: Bus,
                     database: Path) -> dict[str, Handler]:
    """`privacy_erase`, `privacy_purge` and `privacy_audit`."""

    async def store(order: PersonalDataErased) -> dict[str, Any]:
        receipt = Receipt()
        await bus.publish(Ingested(messages=(order,), receipt=receipt))
        try:
            await receipt.wait()
        except NotStored as exc:
            raise CommandError("not_stored", f"nothing erased: {exc}") from None
        last = await trio.to_thread.run_sync(_last_audit, database)
        return {"scope": order.scope, "pseudonyms": len(order.pseudonyms), "audit": last}

    async def privacy_erase(args: dict[str, Any]) -> Any:
        subject = args.get("subject")
        if not isinstance(subject, str) or not subject.strip():
            raise CommandError("bad_request", "'subject' (the person's identifier) is required")
        found = await trio.to_thread.run_sync(keyring().pseudonyms_of, subject)
        return await store(PersonalDataErased(scope="subject", pseudonyms=tuple(found),
                                              actor=_actor(args), timestamp_ms=now_ms()))

    async def privacy_purge(args: dict[str, Any]) -> Any:
        scope = args.get("scope")
        if scope not in ("engagement", "all"):
            raise CommandError("bad_request", "'scope' must be 'engagement' or 'all'")
        if args.get("confirm") is not True:
            raise CommandError("bad_request", "a purge deletes data for good: send"
                               " 'confirm': true (the CLI's --yes)")
        return await store(PersonalDataErased(scope=scope, pseudonyms=(),
                                              actor=_actor(args), timestamp_ms=now_ms()))

    async def privacy_audit(args: dict[str, Any]) -> Any:
        limit = args.get("limit", 50)
        if not isinstance(limit, int) or limit < 1:
            raise CommandError("bad_request", "'limit' must be a positive integer")
        try:
            return await trio.to_thread.run_sync(_read_audit, database, limit)
        except sqlite3.Error as exc:
            raise CommandError("not_available", f"cannot read {database}: {exc}") from None

    return {"privacy_erase": privacy_erase, "privacy_purge": privacy_purge,
            "privacy_audit": privacy_audit}


def _actor(args: dict[str, Any]) -> str:
    by = args.get("by")
    return f"control:{by}" if isinstance(by, str) and by.strip() else "control"


def _last_audit(database: Path) -> dict[str, Any] | None:
    conn = open_reader(database)
    try:
        row = conn.execute("SELECT id, ts, action, actor, detail, hash FROM audit"
                           " ORDER BY id DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    return None if row is None else _entry(row)


def _read_audit(database: Path, limit: int) -> dict[str, Any]:
    conn = open_reader(database)
    try:
        result = audit.verify(conn)
        rows = conn.execute("SELECT id, ts, action, actor, detail, hash FROM audit"
                            " ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    finally:
        conn.close()
    return {"verify": result, "entries": [_entry(row) for row in rows]}


def _entry(row: tuple[Any, ...]) -> dict[str, Any]:
    entry_id, ts, action, actor, detail, digest = row
    return {"id": entry_id, "timestamp_ms": ts, "action": action, "actor": actor,
            "detail": json.loads(detail), "hash": digest}
