"""Keyed pseudonyms for user identifiers: HMAC-SHA256 under a secret kept in the state
directory (ttamond/keyring.py keeps the keys), so stored data can be linked per person
without naming anyone."""

from __future__ import annotations

import hashlib
import hmac

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

