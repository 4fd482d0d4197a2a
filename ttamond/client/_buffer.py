"""The bounded, thread-safe record buffer between recording calls and the sender thread."""

from __future__ import annotations

import threading
from collections import deque

from ttamond.client._batch import Record


class Buffer:
    """A FIFO of records. When full, the oldest give way and are counted as dropped.

    Recording threads push; the sender thread takes batches and gives back the ones it
    could not deliver. `wake` is set when the buffer reaches `wake_at` records, so the
    sender need not wait for its flush interval when records arrive fast.
    """

    __slots__ = ("capacity", "dropped", "in_flight", "lock", "records", "wake", "wake_at")

    def __init__(self, capacity: int, *, wake_at: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self.wake_at = min(wake_at, capacity)
        self.records: deque[Record] = deque(maxlen=capacity)
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.dropped = 0
        self.in_flight = 0

    def push(self, record: Record) -> None:
        """Append a record; never blocks beyond the lock, never raises."""
        records = self.records
        with self.lock:
            if len(records) == self.capacity:
                self.dropped += 1
            records.append(record)
            size = len(records)
        if size == self.wake_at:
            self.wake.set()

    def count_dropped(self, count: int = 1) -> None:
        """Count records lost before they reached the buffer."""
        with self.lock:
            self.dropped += count

    def take(self, limit: int) -> list[Record]:
        """Remove up to `limit` of the oldest records; they count as in flight until
        `settle`."""
        with self.lock:
            records = self.records
            batch = [records.popleft() for _ in range(min(limit, len(records)))]
            self.in_flight += len(batch)
        return batch

    def give_back(self, batch: list[Record]) -> None:
        """Return undelivered records to the front, oldest first. Where they no longer
        fit, the oldest of them are dropped and counted."""
        with self.lock:
            room = self.capacity - len(self.records)
            if len(batch) > room:
                self.dropped += len(batch) - room
                batch = batch[len(batch) - room:]
            self.records.extendleft(reversed(batch))

    def settle(self, count: int) -> None:
        """`count` records taken earlier are no longer in flight."""
        with self.lock:
            self.in_flight -= count

    def pending(self) -> int:
        """Records not yet delivered: buffered plus in flight."""
        with self.lock:
            return len(self.records) + self.in_flight

    def forget(self) -> None:
        """Start over in a forked child: fresh locks, and no records (the parent process
        delivers the ones it had)."""
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.records.clear()
        self.in_flight = 0
