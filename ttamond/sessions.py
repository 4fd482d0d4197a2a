"""Monitoring sessions of the components that report through the client library."""

from __future__ import annotations

from typing import Literal

import msgspec

from ttamond.messages import Heartbeat, MonitoringStarted, MonitoringStopped

SessionState = Literal["active", "silent", "stopped"]
SILENT_AFTER_BEATS = 3
"""A session missing this many heartbeats counts as silent: its component may be down."""
KEEP_STOPPED_MS = 3_600_000
MAX_SESSIONS = 10_000


class MonitoringSession(msgspec.Struct, frozen=True):
    """One component's monitoring session, as the platform's `MonitoringSession`."""

    session_id: str
    component: str
    environment: str
    state: SessionState
    started_ms: int
    last_seen_ms: int
    heartbeat_interval: float
    version: str = ""
    host: str = ""
    pid: int | None = None
    stopped_ms: int | None = None
    reason: str = ""


class _Entry:
    __slots__ = ("component", "environment", "heartbeat_interval", "host", "last_seen_ms",
                 "pid", "reason", "session_id", "started_ms", "stopped_ms", "version")

    def __init__(self, session_id: str, component: str, environment: str, now_ms: int) -> None:
        self.session_id = session_id
        self.component = component
        self.environment = environment
        self.started_ms = self.last_seen_ms = now_ms
        self.heartbeat_interval = 30.0
        self.version = self.host = self.reason = ""
        self.pid: int | None = None
        self.stopped_ms: int | None = None


class Sessions:
    """Sessions by id, in memory: a daemon restart forgets them, and each comes back
    with its next heartbeat. Bounded: stopped sessions go after an hour, and the
    oldest stopped or silent ones first when the table is full."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def apply(self, message: MonitoringStarted | MonitoringStopped | Heartbeat,
              now_ms: int) -> None:
        """Record a lifecycle report."""
        entry = self._entries.get(message.session_id)
        if entry is None:
            self._make_room(now_ms)
            entry = _Entry(message.session_id, message.component, message.environment, now_ms)
            self._entries[message.session_id] = entry
        entry.last_seen_ms = now_ms
        match message:
            case MonitoringStarted():
                entry.started_ms = message.timestamp_ms or now_ms
                entry.heartbeat_interval = message.heartbeat_interval
                entry.version, entry.host, entry.pid = message.version, message.host, message.pid
                entry.stopped_ms, entry.reason = None, ""
            case MonitoringStopped():
                entry.stopped_ms, entry.reason = now_ms, message.reason
            case Heartbeat():
                entry.stopped_ms = None

    def snapshot(self, now_ms: int) -> list[MonitoringSession]:
        """Every known session, newest first."""
        return sorted((self._view(entry, now_ms) for entry in self._entries.values()),
                      key=lambda session: -session.started_ms)

    def get(self, session_id: str, now_ms: int) -> MonitoringSession | None:
        """One session, or None."""
        entry = self._entries.get(session_id)
        return None if entry is None else self._view(entry, now_ms)

    @staticmethod
    def _view(entry: _Entry, now_ms: int) -> MonitoringSession:
        state: SessionState
        if entry.stopped_ms is not None:
            state = "stopped"
        elif now_ms - entry.last_seen_ms > SILENT_AFTER_BEATS * entry.heartbeat_interval * 1000:
            state = "silent"
        else:
            state = "active"
        return MonitoringSession(
            session_id=entry.session_id, component=entry.component,
            environment=entry.environment, state=state, started_ms=entry.started_ms,
            last_seen_ms=entry.last_seen_ms, heartbeat_interval=entry.heartbeat_interval,
            version=entry.version, host=entry.host, pid=entry.pid,
            stopped_ms=entry.stopped_ms, reason=entry.reason,
        )

    def _make_room(self, now_ms: int) -> None:
        for session_id, entry in list(self._entries.items()):
            if entry.stopped_ms is not None and now_ms - entry.stopped_ms > KEEP_STOPPED_MS:
                del self._entries[session_id]
        if len(self._entries) >= MAX_SESSIONS:
            oldest = min(self._entries.values(), key=lambda entry: entry.last_seen_ms)
            del self._entries[oldest.session_id]
