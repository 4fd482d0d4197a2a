"""The store actor: sole SQLite writer, batching by size or age, spooling when writes fail."""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import msgspec
import trio

from ttamond.bus import Subscription
from ttamond.config import StoreConfig
from ttamond.messages import (
    ActorStateChanged,
    AnyMessage,
    BatchBegun,
    ChannelHealthChanged,
    DeliveryAttempted,
    MetricBatch,
    ProbeFailed,
    StoreEvent,
    now_ms,
)
from ttamond.receipts import Ingested, Receipt
from ttamond.store.checkpoint import (
    CHECKPOINT_ABOVE_BYTES,
    WRITER_CHECKPOINT_ABOVE_BYTES,
    Checkpointer,
)
from ttamond.store.database import Cutoffs, Database, is_transient
from ttamond.store.queries import retention_of
from ttamond.store.spool import Spool
from ttamond.store.stats import StoreStats

log = logging.getLogger(__name__)

T = TypeVar("T")

RETENTION_EVERY = 3600.0
MAINTAIN_EVERY = 30.0
MAINTENANCE_SLICE = 64
COMPACT_GRACE_MS = 2 * 60_000
DAY_MS = 86_400_000
REPLAY_FRAMES_PER_STEP = 64
CHECKPOINT_EVERY = 1.0


StoreInput = (MetricBatch | ProbeFailed | ActorStateChanged | StoreEvent | Ingested
              | DeliveryAttempted | ChannelHealthChanged)
"""What the store's mailbox takes; everything else arrives inside an `Ingested`."""


class SpoolFrame(msgspec.Struct, array_like=True, frozen=True):
    """One batch as it sits in the spool; the key makes replay idempotent."""

    batch_key: str
    messages: list[AnyMessage]


_frame_encoder = msgspec.msgpack.Encoder()
_frame_decoder = msgspec.msgpack.Decoder(SpoolFrame)


class StoreActor:
    """Writes everything its mailbox receives to SQLite, in batches.

    A batch is committed when it holds `batch_max_rows` points or its first message is
    `batch_max_age` seconds old. When a commit fails the batch goes to the spool, and so
    does every later batch, keeping their order, until a replay empties the spool.
    A transient failure (busy, locked, read-only, full, I/O) keeps the actor running and
    retries every `retry_interval`; any other failure is spooled and then raised, so the
    supervisor restarts the actor and the database is checked on open.

    Reported batches (`Ingested`) carry a receipt: the store then commits as soon as it
    is free rather than waiting for the batch to fill, taking everything queued
    meanwhile into the same transaction (group commit), and settles each receipt once
    the commit, or the spool's fsync, is done.
    """

    def __init__(
        self,
        config: StoreConfig,
        *,
        database: Path,
        spool: Path,
        mailbox: Subscription[StoreInput],
        stats: StoreStats,
        shutdown_grace: float = 5.0,
        error_events_per_group: int = 20,
    ) -> None:
        self.config = config
        self.mailbox = mailbox
        self.stats = stats
        self.shutdown_grace = shutdown_grace
        self._db = Database(
            database, busy_timeout=config.busy_timeout, synchronous=config.synchronous,
            error_events_per_group=error_events_per_group,
        )
        self._spool = Spool(spool, max_bytes=config.spool_max_bytes)
        self._limiter = trio.CapacityLimiter(1)
        self._checkpointer = Checkpointer(database, busy_timeout=config.busy_timeout)
        self._wal_grew = trio.Event()
        self._instance = secrets.token_hex(6)
        self._sequence = 0
        self._pending: list[AnyMessage] = []
        self._pending_points = 0
        self._receipts: list[Receipt] = []
        self._persisted = False
        self._spooling = False
        self._started_spooling = trio.Event()
        self._replay_offset = 0
        stats.database = str(database)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the spool and database, report started, then write until cancelled;
        on cancellation, drain the mailbox and flush (shielded, within the grace)."""
        scan = await self._in_thread(self._spool.open)
        if scan.torn_bytes or scan.corrupt_frames:
            self._note(StoreEvent(
                kind="spool_damaged",
                timestamp_ms=now_ms(),
                detail=f"spool {self._spool.path}: cut a torn tail of {scan.torn_bytes} bytes,"
                f" skipped {scan.corrupt_frames} frames with a bad CRC",
            ))
        self._spooling = scan.frames > 0
        await self._open_database()
        self._publish_mode()
        task_status.started()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._maintain)
                nursery.start_soon(self._checkpoint)
                await self._consume()
        finally:
            with trio.move_on_after(self.shutdown_grace, shield=True):
                await self._drain()
                await self._in_thread(self._db.close)
            for receipt in self._receipts:
                receipt.settle("the store stopped before writing the batch")
            self._checkpointer.close()

    async def _consume(self) -> None:
        deadline = float("inf")
        while True:
            with trio.move_on_at(deadline):
                self._take(await self.mailbox.receive())
                self._take_queued()
                if deadline == float("inf"):
                    deadline = trio.current_time() + self.config.batch_max_age
                if self._pending_points < self.config.batch_max_rows and not self._receipts:
                    continue
            await self.flush()
            deadline = float("inf")

    def _take_queued(self) -> None:
        # What queued while the last commit ran joins this one, up to a full batch.
        while self._pending_points < self.config.batch_max_rows:
            try:
                self._take(self.mailbox.receive_nowait())
            except trio.WouldBlock:
                return

    def _take(self, message: StoreInput | AnyMessage) -> None:
        if isinstance(message, Ingested):
            if message.batch_id is not None:
                self._pending.append(BatchBegun(batch_id=message.batch_id,
                                                count=len(message.messages)))
            for inner in message.messages:
                self._take(inner)
            if message.receipt is not None:
                self._receipts.append(message.receipt)
            return
        self._pending.append(message)
        self._pending_points += len(message.points) if isinstance(message, MetricBatch) else 1

    def _note(self, event: StoreEvent) -> None:
        log.warning("%s: %s", event.kind, event.detail)
        self._take(event)

    async def flush(self) -> None:
        """Commit (or spool) what is pending now, then settle the receipts it covers."""
        if not self._pending:
            for receipt in self._receipts:
                receipt.settle()
            self._receipts.clear()
            return
        messages, self._pending, self._pending_points = self._pending, [], 0
        receipts, self._receipts = self._receipts, []
        self._sequence += 1
        key = f"{self._instance}-{self._sequence}"
        self._persisted = False
        try:
            await self._in_thread(self._store_sync, key, messages)
        finally:
            problem = None if self._persisted else (self.stats.last_error or "not written")
            for receipt in receipts:
                receipt.settle(problem)
            if self._spooling:
                self._started_spooling.set()  # start retrying now, not at the next round
            elif self._checkpointer.wal_bytes() >= CHECKPOINT_ABOVE_BYTES:
                self._wal_grew.set()

    async def _drain(self) -> None:
        while True:
            try:
                self._take(self.mailbox.receive_nowait())
            except trio.WouldBlock:
                break
            if self._pending_points >= self.config.batch_max_rows:
                await self.flush()
        await self.flush()

    async def _maintain(self) -> None:
        last_retention = last_compaction = float("-inf")
        while True:
            now = trio.current_time()
            if self._spooling:
                await self._replay()
            else:
                if now - last_compaction >= self.config.compact_every:
                    await self._compact()
                    last_compaction = now
                if now - last_retention >= RETENTION_EVERY:
                    await self._retain()
                    last_retention = now
            self.stats.database_bytes = self._db.size_bytes()  # two stat() calls
            if self._spooling:
                await trio.sleep(self.config.retry_interval)
            else:
                with trio.move_on_after(MAINTAIN_EVERY):
                    await self._started_spooling.wait()
                self._started_spooling = trio.Event()

    async def _checkpoint(self) -> None:
        # Its own thread and limiter: a checkpoint (and its fsync) runs beside commits.
        # Woken by a commit that left the WAL past the threshold (no polling: an idle
        # daemon does not wake for it), at most once every CHECKPOINT_EVERY.
        limiter = trio.CapacityLimiter(1)
        while True:
            await self._wal_grew.wait()
            self._wal_grew = trio.Event()
            try:
                await trio.to_thread.run_sync(self._checkpointer.checkpoint, limiter=limiter)
            except sqlite3.Error as exc:
                # The writer's own fallback (past WRITER_CHECKPOINT_ABOVE_BYTES) keeps
                # the WAL bounded meanwhile; the next round tries again.
                log.debug("checkpoint failed: %s", exc)
                self._checkpointer.close()
            await trio.sleep(CHECKPOINT_EVERY)

    async def _open_database(self) -> None:
        try:
            events = await self._in_thread(
                self._db.open, quick_check=self.config.quick_check_on_start
            )
        except sqlite3.Error as exc:
            if not is_transient(exc):
                raise
            self._record_error(exc)
            self._spooling = True
            return
        for event in events:
            self.stats.recoveries += 1
            self._take(event)

    async def _replay(self) -> None:
        if not self._db.is_open:
            await self._open_database()
            if not self._db.is_open:
                return
        while self._spooling:
            try:
                await self._in_thread(self._replay_step)
            except sqlite3.Error as exc:
                if not is_transient(exc):
                    raise
                self._record_error(exc)
                return
        self._publish_mode()
        log.info("spool replayed; writing to %s again", self._db.path)

    async def _compact(self) -> None:
        # Windows that ended at least COMPACT_GRACE_MS ago: late samples are rare by
        # then, and any that still come are merged into their chunks next time. One
        # window per worker-thread call, so the writer is never held for long.
        windows = await self._guarded(
            lambda: self._db.compactable_windows(before_ms=now_ms() - COMPACT_GRACE_MS)
        )
        moved = 0
        for window in windows or []:
            done = await self._guarded(partial(self._db.compact, window))
            if done is None:
                break
            moved += done
        if moved:
            log.debug("compacted %d samples into chunks", moved)

    async def _retain(self) -> None:
        reach, now = retention_of(self.config), now_ms()
        cutoffs = Cutoffs(
            raw_ms=now - reach.raw_ms,
            minute_ms=now - reach.minute_ms,
            hour_ms=now - reach.hour_ms,
            events_ms=now - self.config.events_retention_days * DAY_MS,
            engagement_ms=now - self.config.engagement_retention_days * DAY_MS,
        )
        deleted = await self._series_by_series(lambda ids: self._db.apply_retention(ids, cutoffs))
        await self._guarded(lambda: self._db.expire_events(cutoffs))
        if deleted:
            log.info("retention: deleted %d raw samples older than %d h",
                     deleted, self.config.raw_retention_hours)

    async def _series_by_series(self, step: Callable[[list[int]], int]) -> int:
        """Run `step` over every series, a slice per worker-thread call, so maintenance
        never holds the writer for long; stops at a transient error (retried next time)."""
        ids = await self._guarded(self._db.series_ids) or []
        total = 0
        for start in range(0, len(ids), MAINTENANCE_SLICE):
            done = await self._guarded(partial(step, ids[start : start + MAINTENANCE_SLICE]))
            if done is None:
                break
            total += done
        return total

    async def _guarded(self, function: Callable[[], T]) -> T | None:
        try:
            return await self._in_thread(function)
        except sqlite3.Error as exc:
            if not is_transient(exc):
                raise
            self._record_error(exc)
            return None

    # Worker-thread side: only these touch the database and the spool, one at a time.

    def _store_sync(self, key: str, messages: list[AnyMessage]) -> None:
        if not self._spooling:
            started = time.perf_counter()
            try:
                self._db.write(key, messages, origin="live")
            except sqlite3.Error as exc:
                self._record_error(exc)
                self._spooling = True
                self._publish_mode()
                self._spool_sync(key, messages)
                if not is_transient(exc):
                    raise
                log.warning("database refused a write (%s); spooling to %s", exc, self._spool.path)
                return
            self._persisted = True
            self._count_commit(messages, (time.perf_counter() - started) * 1000)
            try:
                self._db.checkpoint_if_over(WRITER_CHECKPOINT_ABOVE_BYTES)
            except sqlite3.Error as exc:
                log.debug("writer checkpoint failed: %s", exc)
            return
        self._spool_sync(key, messages)

    def _spool_sync(self, key: str, messages: list[AnyMessage]) -> None:
        payload = _frame_encoder.encode(SpoolFrame(batch_key=key, messages=messages))
        try:
            accepted = self._spool.append(payload)
            problem = "" if accepted else f"spool is full ({self._spool.max_bytes} bytes)"
        except OSError as exc:
            accepted, problem = False, f"spool write failed: {exc}"
        if accepted:
            self._persisted = True
            self.stats.spooled_batches += 1
        else:
            self.stats.spool_dropped_batches += 1
            self.stats.spool_dropped_points += _points(messages)
            self.stats.last_error = problem
            log.error("dropped a batch of %d points: %s", _points(messages), problem)
        self._sync_spool_stats()

    def _replay_step(self) -> None:
        for steps, (end, payload) in enumerate(self._spool.read_from(self._replay_offset), 1):
            if payload is None:
                self._spool.corrupt_frames += 1
            else:
                frame = _frame_decoder.decode(payload)
                if self._db.write(frame.batch_key, frame.messages, origin="spool"):
                    self._count_commit(frame.messages, 0.0)
                self.stats.replayed_batches += 1
            self._replay_offset = end
            if steps >= REPLAY_FRAMES_PER_STEP:
                return
        self._spool.clear()
        self._replay_offset = 0
        self._spooling = False
        self._sync_spool_stats()

    def _count_commit(self, messages: list[AnyMessage], elapsed_ms: float) -> None:
        points = sum(len(m.points) for m in messages if isinstance(m, MetricBatch))
        self.stats.batches_committed += 1
        self.stats.points_committed += points
        self.stats.events_committed += sum(not isinstance(m, MetricBatch | BatchBegun)
                                           for m in messages)
        self.stats.last_commit_ms = now_ms()
        self.stats.duplicate_messages = self._db.duplicates
        if elapsed_ms:
            self.stats.last_batch_ms = elapsed_ms

    def _record_error(self, exc: sqlite3.Error) -> None:
        self.stats.write_errors += 1
        code = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
        self.stats.last_error = f"{code}: {exc}"

    def _publish_mode(self) -> None:
        self.stats.mode = "spooling" if self._spooling else "live"
        self._sync_spool_stats()

    def _sync_spool_stats(self) -> None:
        self.stats.spool_bytes = self._spool.size
        self.stats.spool_frames = self._spool.frames
        self.stats.spool_torn_tails = self._spool.torn_tails
        self.stats.spool_corrupt_frames = self._spool.corrupt_frames

    async def _in_thread(self, function: Callable[..., T], *args: object, **kwargs: object) -> T:
        return await trio.to_thread.run_sync(
            lambda: function(*args, **kwargs), limiter=self._limiter
        )


def _points(messages: list[AnyMessage]) -> int:
    return sum(len(m.points) if isinstance(m, MetricBatch) else 1 for m in messages)
