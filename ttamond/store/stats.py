"""The store's counters, shared with status queries and self-metrics; they outlive restarts."""

from __future__ import annotations

import msgspec


class StoreStats(msgspec.Struct):
    """Mutable counters the store actor keeps; read by control and selfmon."""

    database: str = ""
    mode: str = "starting"
    """"live" (writing to SQLite), "spooling" (the database refuses writes) or "starting"."""
    batches_committed: int = 0
    points_committed: int = 0
    events_committed: int = 0
    last_batch_ms: float = 0.0
    """Wall time of the last commit, in milliseconds."""
    last_commit_ms: int = 0
    database_bytes: int = 0
    spool_bytes: int = 0
    spool_frames: int = 0
    spooled_batches: int = 0
    replayed_batches: int = 0
    spool_dropped_batches: int = 0
    spool_dropped_points: int = 0
    spool_torn_tails: int = 0
    spool_corrupt_frames: int = 0
    write_errors: int = 0
    last_error: str = ""
    recoveries: int = 0
    duplicate_messages: int = 0
    """Messages of client batches sent again after being written, and not written twice."""
