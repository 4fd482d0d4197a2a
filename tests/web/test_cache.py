"""The dashboard cache: one render per key and generation, the previous render served
while the next is made, failures not kept, entries and bytes bounded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.lowlevel

from ttamond.web.cache import DashboardCache


class Renders:
    """Renders "v1", "v2", ... each taking a little while, counting itself."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self) -> str:
        self.count += 1
        version = self.count
        await trio.sleep(0.01)
        return f"v{version}"


async def test_concurrent_first_requests_share_one_render() -> None:
    cache = DashboardCache(lambda: 1)
    render = Renders()
    found: list[str | bytes] = []

    async def ask() -> None:
        found.append(await cache.get("k", render))

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(ask)
    assert found == ["v1"] * 10 and render.count == 1
    assert (cache.stats.misses, cache.stats.waits) == (1, 9)


async def test_new_data_renders_once_while_the_others_get_the_previous_render() -> None:
    generation = 1
    cache = DashboardCache(lambda: generation)
    render = Renders()
    assert await cache.get("k", render) == "v1"
    assert await cache.get("k", render) == "v1" and cache.stats.hits == 1
    generation = 2
    found: list[str | bytes] = []

    async def ask() -> None:
        found.append(await cache.get("k", render))

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(ask)
            await trio.lowlevel.checkpoint()
    # The first asker renders v2; the four behind it are not kept waiting.
    assert sorted(found) == ["v1"] * 4 + ["v2"] and cache.stats.stale == 4
    assert await cache.get("k", render) == "v2" and render.count == 2


async def test_age_and_writes_invalidate() -> None:
    render = Renders()
    aged = DashboardCache(lambda: 1, max_age=0)
    assert await aged.get("k", render) == "v1"
    assert await aged.get("k", render) == "v2"
    cache = DashboardCache(lambda: 1)
    assert await cache.get("k", render) == "v3"
    cache.invalidate()
    assert cache.peek("k") is None
    assert await cache.get("k", render) == "v4"


async def test_a_failed_render_is_not_kept() -> None:
    cache = DashboardCache(lambda: 1)

    async def broken() -> str:
        raise RuntimeError("no database")

    async def fine() -> str:
        return "ok"

    with pytest.raises(RuntimeError, match="no database"):
        await cache.get("k", broken)
    assert cache.peek("k") is None
    assert await cache.get("k", fine) == "ok"


async def test_least_recently_used_entries_go_beyond_the_bounds() -> None:
    cache = DashboardCache(lambda: 1, max_entries=3, max_bytes=25)

    def sized(size: int) -> Callable[[], Awaitable[str]]:
        async def render() -> str:
            return "x" * size

        return render

    for key in "abc":
        await cache.get(key, sized(5))
    await cache.get("a", sized(5))  # now the most recently used
    await cache.get("d", sized(5))
    assert cache.peek("b") is None and cache.peek("a") is not None
    await cache.get("e", sized(20))  # over the byte budget: the oldest go
    assert cache.stats.bytes <= 25 and cache.peek("e") is not None
    assert cache.stats.evicted >= 2
