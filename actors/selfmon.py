"""The selfmon actor: the daemon's own health as ordinary series."""

from __future__ import annotations

from collections.abc import Callable

import psutil
import trio

from ttamond.bus import Bus
from ttamond.messages import MetricBatch, MetricPoint, labels, now_ms
from ttamond.store.stats import StoreStats
from ttamond.supervisor import ActorStatus

LAG_PROBE_EVERY = 0.25


class SelfmonActor:
    """Publishes, every `interval`: event-loop lag (the worst in the interval), bus
    depths and drops, actor restarts and states, store batch latency and spool figures,
    and the process's own CPU time and RSS."""

    def __init__(
        self,
        bus: Bus,
        *,
        actors: Callable[[], list[ActorStatus]],
        store: StoreStats,
        interval: float,
    ) -> None:
        self.bus = bus
        self.actors = actors
        self.store = store
        self.interval = interval
        self._worst_lag = 0.0
        self._process = psutil.Process()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Measure lag continuously and publish every interval until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._measure_lag)
            task_status.started()
            while True:
                await trio.sleep(self.interval)
                await self.bus.publish(self.reading())

    async def _measure_lag(self) -> None:
        while True:
            expected = trio.current_time() + LAG_PROBE_EVERY
            await trio.sleep_until(expected)
            self._worst_lag = max(self._worst_lag, trio.current_time() - expected)

    def reading(self) -> MetricBatch:
        """One batch of self-metrics; resets the worst-lag window."""
        lag, self._worst_lag = self._worst_lag, 0.0
        points = [MetricPoint("ttamond_loop_lag_seconds", lag, (), "gauge", "seconds")]
        for sub in self.bus.stats():
            sub_labels = labels(subscription=sub.name)
            points += [
                MetricPoint("ttamond_queue_depth", sub.depth, sub_labels),
                MetricPoint("ttamond_queue_delivered_total", sub.delivered, sub_labels, "counter"),
                MetricPoint("ttamond_queue_dropped_total", sub.dropped, sub_labels, "counter"),
            ]
        for actor in self.actors():
            actor_labels = labels(actor=actor.name)
            points += [
                MetricPoint("ttamond_actor_restarts_total", actor.restarts, actor_labels,
                            "counter"),
                MetricPoint("ttamond_actor_up", float(actor.state == "running"), actor_labels),
            ]
        store = self.store
        points += [
            MetricPoint("ttamond_store_batch_seconds", store.last_batch_ms / 1000, (), "gauge",
                        "seconds"),
            MetricPoint("ttamond_store_batches_total", store.batches_committed, (), "counter"),
            MetricPoint("ttamond_store_spool_bytes", store.spool_bytes, (), "gauge", "bytes"),
            MetricPoint("ttamond_store_spool_dropped_points_total", store.spool_dropped_points,
                        (), "counter"),
            MetricPoint("ttamond_store_write_errors_total", store.write_errors, (), "counter"),
            MetricPoint("ttamond_store_database_bytes", store.database_bytes, (), "gauge", "bytes"),
        ]
        with self._process.oneshot():
            cpu = self._process.cpu_times()
            rss = self._process.memory_info().rss
        points += [
            MetricPoint("ttamond_process_cpu_seconds_total", cpu.user + cpu.system, (), "counter",
                        "seconds"),
            MetricPoint("ttamond_process_resident_bytes", rss, (), "gauge", "bytes"),
        ]
        return MetricBatch(source="selfmon", timestamp_ms=now_ms(), points=tuple(points))
