"""Collector, latest-values and selfmon actors on a real bus, under trio's autojump clock."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import ClassVar

import pytest
import trio
import trio.testing

from ttamond.actors.collector import CollectorActor
from ttamond.actors.latest import LatestActor
from ttamond.actors.selfmon import SelfmonActor
from ttamond.bus import Bus, Overflow
from ttamond.looplag import LagMeter
from ttamond.messages import MetricBatch, MetricPoint, ProbeFailed, labels
from ttamond.probes.base import FieldInfo, ProbeError, ProbeUnavailable
from ttamond.receipts import Ingested
from ttamond.store.stats import StoreStats
from ttamond.supervisor import ActorStatus


class CountingProbe:
    """A probe that counts its reads, fails on chosen ones and can stall the loop."""

    fields: ClassVar[Mapping[str, FieldInfo]] = {
        "reads": FieldInfo(kind="counter", unit="", labels=(), description="reads so far")
    }
    blocking: ClassVar[bool] = False

    def __init__(self, fail_on: set[int] | None = None) -> None:
        self.reads = 0
        self.fail_on = fail_on or set()

    def read(self) -> list[MetricPoint]:
        self.reads += 1
        if self.reads in self.fail_on:
            raise ProbeError(f"read {self.reads} failed: /proc/stat is unreadable")
        return [MetricPoint("reads", float(self.reads), (), "counter")]


async def test_collector_publishes_on_a_fixed_grid_and_reports_failures(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = Bus()
    mailbox = bus.subscribe("t", (MetricBatch, ProbeFailed), policy=Overflow.BLOCK, capacity=100)
    probe = CountingProbe(fail_on={3})
    collector = CollectorActor("collector:test", probe, bus, interval=1.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(collector.run)
        await trio.sleep(4.5)
        nursery.cancel_scope.cancel()
    messages = []
    while mailbox.depth:
        messages.append(mailbox.receive_nowait())
    assert [type(m).__name__ for m in messages] == [
        "MetricBatch", "MetricBatch", "ProbeFailed", "MetricBatch", "MetricBatch"
    ]
    failure = messages[2]
    assert isinstance(failure, ProbeFailed)
    assert failure.error == "read 3 failed: /proc/stat is unreadable"
    assert collector.failures == 1 and collector.missed_ticks == 0


async def test_collector_skips_ticks_it_was_too_late_for(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = Bus()
    bus.subscribe("t", (MetricBatch,), policy=Overflow.DROP_OLDEST, capacity=100)

    class SlowProbe(CountingProbe):
        def read(self) -> list[MetricPoint]:
            if self.reads == 1:
                autojump_clock.jump(3.5)  # the loop was stalled for 3.5 s
            return super().read()

    probe = SlowProbe()
    collector = CollectorActor("collector:slow", probe, bus, interval=1.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(collector.run)
        await trio.sleep(6.2)
        nursery.cancel_scope.cancel()
    assert collector.missed_ticks == 3
    assert probe.reads == 4  # t=0, stall, then 4, 5, 6


async def test_latest_keeps_the_newest_value_and_failures() -> None:
    bus = Bus()
    mailbox = bus.subscribe("latest", (MetricBatch, ProbeFailed, Ingested),
                            policy=Overflow.DROP_OLDEST, capacity=4)
    latest = LatestActor(mailbox)
    for value in (1.0, 2.0):
        latest.update(MetricBatch(source="s", timestamp_ms=int(value), points=(
            MetricPoint("a_b", value, labels(x="1"), "gauge", "bytes"),)))
    latest.update(ProbeFailed(source="p", timestamp_ms=3, error="down"))
    (only,) = latest.query("a_")
    assert (only.value, only.labels, only.unit, only.source) == (2.0, {"x": "1"}, "bytes", "s")
    assert latest.query("zzz") == []
    assert latest.failures["p"].error == "down"


async def test_selfmon_reports_queues_actors_store_and_lag() -> None:
    bus = Bus()
    sub = bus.subscribe("store", (MetricBatch,), policy=Overflow.DROP_OLDEST, capacity=2)
    for tick in range(3):
        bus.publish_nowait(MetricBatch(source="x", timestamp_ms=tick, points=()))
    actors = [ActorStatus(name="store", state="running", restarts=2, critical=True,
                          since_ms=0, last_error="")]
    stats = StoreStats(spool_bytes=123, last_batch_ms=4.0)
    lag = LagMeter()
    lag.observe(trio.current_time() - 0.25)  # a wakeup a quarter second late
    selfmon = SelfmonActor(bus, actors=lambda: actors, store=stats, lag=lag, interval=1.0)
    batch = selfmon.reading()
    values = {(p.name, p.labels): p.value for p in batch.points}
    assert values[("ttamond_queue_dropped_total", labels(subscription="store"))] == 1
    assert values[("ttamond_queue_depth", labels(subscription="store"))] == 2
    assert values[("ttamond_actor_restarts_total", labels(actor="store"))] == 2
    assert values[("ttamond_actor_up", labels(actor="store"))] == 1.0
    assert values[("ttamond_store_spool_bytes", ())] == 123
    assert values[("ttamond_store_batch_seconds", ())] == 0.004
    assert values[("ttamond_process_resident_bytes", ())] > 0
    assert 0.25 <= values[("ttamond_loop_lag_seconds", ())] < 1.0
    assert selfmon.reading().points[0].value < 0.25  # a new window
    assert sub.dropped == 1


async def test_collector_reports_how_late_it_woke(autojump_clock: trio.testing.MockClock) -> None:
    bus = Bus()
    lag = LagMeter()
    collector = CollectorActor("collector:lag", CountingProbe(), bus, interval=1.0, lag=lag)
    async with trio.open_nursery() as nursery:
        await nursery.start(collector.run)
        await trio.sleep(2.5)
        nursery.cancel_scope.cancel()
    assert lag.samples == 2
    assert lag.take_worst() == 0.0  # the mock clock wakes every sleeper on time
    late = trio.current_time() - 0.4
    lag.observe(late)
    assert lag.take_worst() == pytest.approx(0.4)
    assert lag.take_worst() == 0.0


class MissingProbe(CountingProbe):
    """Nothing to read until `appears_at` reads have been tried (a GPU driver loaded later)."""

    def __init__(self, appears_at: int) -> None:
        super().__init__()
        self.appears_at = appears_at

    def read(self) -> list[MetricPoint]:
        if self.reads + 1 < self.appears_at:
            self.reads += 1
            raise ProbeUnavailable("NVML Shared Library Not Found")
        return super().read()


async def test_unavailable_is_reported_once_and_retried_rarely(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bus = Bus()
    mailbox = bus.subscribe("t", (MetricBatch, ProbeFailed), policy=Overflow.BLOCK, capacity=100)
    probe = MissingProbe(appears_at=4)
    collector = CollectorActor("collector:gpu", probe, bus, interval=1.0, unavailable_retry=60.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(collector.run)
        await trio.sleep(60 * 3 + 2.5)
        nursery.cancel_scope.cancel()
    messages = []
    while mailbox.depth:
        messages.append(mailbox.receive_nowait())
    failures = [m for m in messages if isinstance(m, ProbeFailed)]
    assert [f.error for f in failures] == ["unavailable: NVML Shared Library Not Found"]
    assert probe.reads == 3 + 3  # three tries a minute apart, then every second
    assert sum("unavailable" in r.getMessage() for r in caplog.records) == 1
    assert any("recovered" in r.getMessage() for r in caplog.records)


async def test_a_persistent_error_is_stored_each_time_but_logged_once(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    bus = Bus()
    mailbox = bus.subscribe("t", (ProbeFailed,), policy=Overflow.BLOCK, capacity=100)
    collector = CollectorActor("collector:x", CountingProbe(fail_on=set(range(1, 100))), bus,
                               interval=1.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(collector.run)
        await trio.sleep(9.5)
        nursery.cancel_scope.cancel()
    assert mailbox.depth == 10
    warnings = [r for r in caplog.records if r.name == "ttamond.actors.collector"]
    assert len(warnings) == 10  # each message differs ("read N failed"), so each is logged


async def test_blocking_probes_read_on_a_worker_thread() -> None:
    import threading

    class ThreadProbe(CountingProbe):
        blocking: ClassVar[bool] = True
        thread: threading.Thread | None = None

        def read(self) -> list[MetricPoint]:
            ThreadProbe.thread = threading.current_thread()
            return super().read()

    bus = Bus()
    mailbox = bus.subscribe("t", (MetricBatch,), policy=Overflow.BLOCK, capacity=4)
    await CollectorActor("collector:sdk", ThreadProbe(), bus, interval=1.0).collect_once()
    assert ThreadProbe.thread is not None
    assert ThreadProbe.thread is not threading.main_thread()
    assert mailbox.depth == 1
