"""The dashboard cache: one computation per key and generation, failures not kept."""

from __future__ import annotations

import pytest
import trio

from ttamond.web.cache import DashboardCache


async def test_concurrent_callers_share_one_computation() -> None:
    cache: DashboardCache[str] = DashboardCache(lambda: 1)
    runs = 0

    async def compute() -> str:
        nonlocal runs
        runs += 1
        await trio.sleep(0.01)
        return "page"

    found: list[str] = []

    async def ask() -> None:
        found.append(await cache.get("k", compute))

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(ask)
    assert found == ["page"] * 10 and runs == 1
    assert (cache.stats.misses, cache.stats.waits) == (1, 9)


async def test_new_data_or_age_or_a_write_invalidates() -> None:
    generation = 1
    cache: DashboardCache[int] = DashboardCache(lambda: generation, max_age=60)
    counter = 0

    async def compute() -> int:
        nonlocal counter
        counter += 1
        return counter

    assert await cache.get("k", compute) == 1
    assert await cache.get("k", compute) == 1
    generation = 2
    assert await cache.get("k", compute) == 2
    cache.invalidate()
    assert await cache.get("k", compute) == 3
    aged: DashboardCache[int] = DashboardCache(lambda: 1, max_age=0)
    assert await aged.get("k", compute) == 4
    assert await aged.get("k", compute) == 5


async def test_a_failed_computation_is_not_kept() -> None:
    cache: DashboardCache[str] = DashboardCache(lambda: 1)

    async def broken() -> str:
        raise RuntimeError("no database")

    async def fine() -> str:
        return "ok"

    with pytest.raises(RuntimeError, match="no database"):
        await cache.get("k", broken)
    assert await cache.get("k", fine) == "ok"


async def test_entries_are_bounded() -> None:
    cache: DashboardCache[str] = DashboardCache(lambda: 1, max_entries=3)

    for key in range(5):
        async def compute(key: int = key) -> str:
            return str(key)

        await cache.get(key, compute)
    assert cache.stats.entries == 3 and cache.stats.evicted == 2
