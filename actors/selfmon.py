"""The selfmon actor: the daemon's own health as ordinary series."""

from __future__ import annotations

from collections.abc import Callable

import psutil
import trio

from ttamond.bus import Bus
from ttamond.ingest.pipeline import IngestStats
from ttamond.looplag import LagMeter
from ttamond.messages import MetricBatch, MetricPoint, labels, now_ms
from ttamond.store.stats import StoreStats
from ttamond.supervisor import ActorStatus


class SelfmonActor:
    """Publishes, every `interval`: event-loop lag (the worst in the interval, see
    LagMeter), bus
    depths and drops, actor restarts and states, store batch latency and spool figures,
    and the process's own CPU time and RSS."""

    def __init__(
        self,
        bus: Bus,
        *,
        actors: Callable[[], list[ActorStatus]],
        store: StoreStats,
        lag: LagMeter,
        interval: float,
        ingest: IngestStats | None = None,
    ) -> None:
        self.bus = bus
        self.actors = actors
        self.store = store
        self.lag = lag
        self.interval = interval
        self.ingest = ingest
        self._process = psutil.Process()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Publish every interval until cancelled."""
        task_status.started()
        deadline = trio.current_time()
        while True:
            deadline += self.interval
            await trio.sleep_until(deadline)
            self.lag.observe(deadline)
            await self.bus.publish(self.reading())

    def reading(self) -> MetricBatch:
        """One batch of self-metrics; resets the worst-lag window."""
        points = [MetricPoint("ttamond_loop_lag_seconds", self.lag.take_worst(), (), "gauge",
                              "seconds")]
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
        if (ingest := self.ingest) is not None:
            points += [
                MetricPoint("ttamond_ingest_messages_total", ingest.accepted,
                            labels(outcome="accepted"), "counter"),
                MetricPoint("ttamond_ingest_messages_total", ingest.rejected,
                            labels(outcome="rejected"), "counter"),
                MetricPoint("ttamond_ingest_samples_total", ingest.samples, (), "counter"),
                MetricPoint("ttamond_ingest_errors_total", ingest.errors, (), "counter"),
                MetricPoint("ttamond_ingest_not_stored_total", ingest.not_stored, (), "counter"),
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
