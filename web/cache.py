"""The dashboard's cache of rendered fragments: one render per key and batch of new data,
however many browsers ask; the previous render served while the next one is made."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

import msgspec
import trio

Rendered = str | bytes


class CacheStats(msgspec.Struct):
    """What the cache saved: fresh hits, stale hits, renders, evictions."""

    hits: int = 0
    stale: int = 0
    """Requests answered with the previous render while a newer one was being made."""
    misses: int = 0
    waits: int = 0
    """Requests that found their key's first render under way and waited for it."""
    evicted: int = 0
    entries: int = 0
    bytes: int = 0


class _Entry:
    __slots__ = ("done", "expires", "generation", "refreshing", "value")

    def __init__(self) -> None:
        self.value: Rendered | None = None
        self.generation: Hashable = None
        self.expires = 0.0
        self.refreshing = False
        self.done = trio.Event()


class DashboardCache:
    """Rendered HTML, SVG or JSON keyed by (panel, parameters), fresh while
    `generation()` is unchanged and for at most `max_age` seconds.

    `generation` is cheap and changes when new data lands (the store's commit count):
    one batch makes every panel stale at once, which is what the page needs. A stale
    entry is still served to everyone but the one request that renders the next
    version (stale-while-revalidate), so a render's cost lands on one request per
    batch rather than on every browser waiting behind it. A key's very first render is
    shared: concurrent callers wait for it. A render that raises is not kept. Entries
    are evicted least recently used first, beyond `max_entries` or `max_bytes`.
    """

    def __init__(self, generation: Callable[[], Hashable], *, max_age: float = 15.0,
                 max_entries: int = 512, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.generation = generation
        self.max_age = max_age
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.stats = CacheStats()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()

    def invalidate(self) -> None:
        """Forget everything (after a write through the page: show it at once)."""
        self._entries.clear()
        self.stats.entries = self.stats.bytes = 0

    def peek(self, key: Hashable) -> Rendered | None:
        """The latest render of `key`, fresh or not, without rendering anything."""
        entry = self._entries.get(key)
        return entry.value if entry is not None else None

    async def get(self, key: Hashable, render: Callable[[], Awaitable[Rendered]]) -> Rendered:
        """The render of `key`: cached, the previous one while another request makes
        the next, or made now with `render()`."""
        while True:
            generation = self.generation()
            entry = self._entries.get(key)
            if entry is None:
                entry = self._add(key)
                break
            self._entries.move_to_end(key)
            if entry.value is not None:
                if entry.generation == generation and entry.expires >= time.monotonic():
                    self.stats.hits += 1
                    return entry.value
                if entry.refreshing:
                    self.stats.stale += 1
                    return entry.value
                break
            if not entry.refreshing:
                break  # the first render failed: try again
            self.stats.waits += 1
            await entry.done.wait()
        return await self._render(key, entry, generation, render)

    async def _render(self, key: Hashable, entry: _Entry, generation: Hashable,
                      render: Callable[[], Awaitable[Rendered]]) -> Rendered:
        self.stats.misses += 1
        entry.refreshing = True
        try:
            value = await render()
        except BaseException:
            if entry.value is None and self._entries.get(key) is entry:
                del self._entries[key]
                self.stats.entries = len(self._entries)
            raise
        finally:
            entry.refreshing = False
            entry.done.set()
            entry.done = trio.Event()
        if self._entries.get(key) is entry:  # not dropped meanwhile by invalidate()
            self.stats.bytes += len(value) - len(entry.value or "")
            entry.value, entry.generation = value, generation
            entry.expires = time.monotonic() + self.max_age
            self._trim()
        return value

    def _add(self, key: Hashable) -> _Entry:
        entry = _Entry()
        self._entries[key] = entry
        self.stats.entries = len(self._entries)
        return entry

    def _trim(self) -> None:
        while self._entries and (len(self._entries) > self.max_entries
                                 or self.stats.bytes > self.max_bytes):
            _, oldest = self._entries.popitem(last=False)
            self.stats.bytes -= len(oldest.value or "")
            self.stats.evicted += 1
        self.stats.entries = len(self._entries)
