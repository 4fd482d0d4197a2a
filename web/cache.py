"""The dashboard's cache: one render per panel per batch of new data, however many
browsers ask, and one computation at a time per key."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import msgspec
import trio

T = TypeVar("T")


class CacheStats(msgspec.Struct):
    """What the cache saved: hits, computations, entries dropped for the size bound."""

    hits: int = 0
    misses: int = 0
    waits: int = 0
    """Requests that found the same key being computed and waited for that result."""
    evicted: int = 0
    entries: int = 0


class _Entry(Generic[T]):
    __slots__ = ("done", "expires", "generation", "value")

    def __init__(self, generation: Hashable, expires: float) -> None:
        self.generation = generation
        self.expires = expires
        self.done = trio.Event()
        self.value: T | None = None


class DashboardCache(Generic[T]):
    """Values keyed by (panel, parameters), valid while `generation()` is unchanged
    and for at most `max_age` seconds.

    `generation` is cheap and changes when new data lands (the store's commit count,
    the alert state's version): a batch of samples invalidates every panel at once,
    which is what the page needs, since most panels read the newest samples. Callers
    asking for a key being computed wait for that computation instead of starting
    their own. A computation that raises is not cached; its waiters compute again.
    """

    def __init__(self, generation: Callable[[], Hashable], *, max_age: float = 15.0,
                 max_entries: int = 512) -> None:
        self.generation = generation
        self.max_age = max_age
        self.max_entries = max_entries
        self.stats = CacheStats()
        self._entries: dict[Hashable, _Entry[T]] = {}

    def invalidate(self) -> None:
        """Forget everything (after a write through the page, for instance)."""
        self._entries.clear()
        self.stats.entries = 0

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """The cached value of `key`, computing it with `compute()` when stale."""
        generation = self.generation()
        while True:
            entry = self._entries.get(key)
            now = time.monotonic()
            if entry is None or entry.generation != generation or entry.expires < now:
                break
            if entry.done.is_set():
                if entry.value is None:
                    break  # its computation failed
                self.stats.hits += 1
                return entry.value
            self.stats.waits += 1
            await entry.done.wait()
        self.stats.misses += 1
        entry = _Entry(generation, time.monotonic() + self.max_age)
        self._store(key, entry)
        try:
            entry.value = await compute()
        except BaseException:
            if self._entries.get(key) is entry:
                del self._entries[key]
                self.stats.entries = len(self._entries)
            raise
        finally:
            entry.done.set()
        return entry.value

    def _store(self, key: Hashable, entry: _Entry[T]) -> None:
        self._entries.pop(key, None)
        while len(self._entries) >= self.max_entries:
            # Dicts keep insertion order: the first key is the least recently stored.
            del self._entries[next(iter(self._entries))]
            self.stats.evicted += 1
        self._entries[key] = entry
        self.stats.entries = len(self._entries)
