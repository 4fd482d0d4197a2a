"""Keyed pseudonyms for user identifiers: HMAC-SHA256 under a secret kept in the state
directory, so stored data can be linked per person without naming anyone."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

KEY_BYTES = 32


class KeyFileUnsafe(Exception):
    """The key file can be read by others, or is not a regular file: refusing to use it."""


class Pseudonyms:
    """Maps an identifier to the same opaque token every time, under one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a pseudonym key needs at least 16 bytes")
        self._key = key
        self._cache: dict[str, str] = {}

    def of(self, identifier: str) -> str:
        """The pseudonym of `identifier` (`p:` and 24 hex characters)."""
        found = self._cache.get(identifier)
        if found is None:
            digest = hmac.new(self._key, identifier.encode(), hashlib.sha256).hexdigest()
            found = f"p:{digest[:24]}"
            if len(self._cache) >= 65_536:
                self._cache.clear()
            self._cache[identifier] = found
        return found


def load_or_create_key(path: Path) -> bytes:
    """Read the key at `path`, creating it (mode 0600) on first start.

    Raises KeyFileUnsafe when the file's mode allows group or other access, or it is
    not a regular file; OSError when it cannot be read or written.
    """
    if not path.exists():
        _create_key(path)
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileUnsafe(f"{path} is not a regular file")
    if info.st_mode & 0o077:
        raise KeyFileUnsafe(
            f"{path} has mode {stat.S_IMODE(info.st_mode):04o}; it holds the pseudonym key"
            " and must not be readable by others (chmod 600)"
        )
    key = path.read_bytes()
    if len(key) < 16:
        raise KeyFileUnsafe(f"{path} holds {len(key)} bytes; a pseudonym key needs 32")
    return key


def _create_key(path: Path) -> None:
    # O_EXCL: two daemons starting at once cannot both write a key; the loser reads
    # the winner's.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(KEY_BYTES))
        handle.flush()
        os.fsync(handle.fileno())
