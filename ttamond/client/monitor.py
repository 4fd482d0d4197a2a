"""The Monitor: what a TTA component records, buffered in memory and sent by a thread."""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, get_args

import msgspec

from ttamond.client._batch import Record
from ttamond.client._buffer import Buffer
from ttamond.client._sender import Ack, Sender
from ttamond.client._transport import (
    ServiceError,
    ServiceUnavailable,
    request_once,
    resolve_socket_path,
)
from ttamond.client.errors import context_values, error_event, message_event
from ttamond.client.session import MonitoringSession, Sessions
from ttamond.client.tracking import DatabaseTracker, InferenceTracker, NetworkTracker, Timer
from ttamond.messages import (
    EngagementEvent,
    Environment,
    Heartbeat,
    MetricKind,
    MonitoringStarted,
    MonitoringStopped,
    Name,
    NetworkActivity,
    Reported,
    Severity,
    ShortText,
)

log = logging.getLogger("ttamond.client")

MAX_COUNTER_SERIES = 10_000
"""Distinct series `increment` keeps totals for; increments of further ones are dropped."""
_ENVIRONMENTS: tuple[str, ...] = get_args(Environment)
_NAME_MAX: int = get_args(Name)[1].max_length
_SHORT_MAX: int = get_args(ShortText)[1].max_length
_time_ns = time.time_ns


class MonitorStats(msgspec.Struct, frozen=True):
    """A Monitor's counters, in records (one sample or one event each)."""

    buffered: int
    """Recorded and not yet delivered (in flight included)."""
    sent: int
    """Accepted by the daemon."""
    dropped: int
    """Lost: the buffer was full, or a record could not even be built."""
    rejected: int
    """Refused by the daemon, or found unsendable before sending; never sent again."""
    connected: bool
    """Whether a daemon is taking records now."""
    last_error: str
    """The most recent delivery problem; empty when there was none."""


class Monitor:
    """Records a component's metrics, sessions and events and sends them to ttamond.

    Recording calls only append to a bounded in-memory buffer and return: they never
    block on the daemon and never raise into the application, in sync code as in trio or
    asyncio code. A daemon thread sends batches every `flush_interval` seconds (sooner
    when `batch_size` records are waiting). While the daemon is away the buffer holds
    up to `capacity` records, dropping the oldest and counting them; the drop count is
    reported once the daemon is back. `close()` runs at interpreter exit. Delivery is at
    least once: a batch whose reply was lost with its connection is sent again.

    With `ack="durable"` (the default) the daemon answers a batch once it is committed
    or spooled, so a record leaves the buffer only when it is safe; `"accepted"` answers
    once the daemon has taken it in. `timeout` bounds one request: above the daemon's
    ingest.ack_timeout (30 s), so a slow store answers `not_stored` before it expires.
    `request_bytes` bounds one request line (the daemon's limit is 1 MiB by default).

    Raises ValueError for an invalid argument.
    """

    def __init__(
        self,
        component: str,
        environment: Environment = "dev",
        socket_path: str | os.PathLike[str] | None = None,
        *,
        capacity: int = 100_000,
        batch_size: int = 2_000,
        flush_interval: float = 0.5,
        release: str = "",
        heartbeat_interval: float = 30.0,
        ack: Ack = "durable",
        timeout: float = 40.0,
        request_bytes: int = 512 * 1024,
    ) -> None:
        _check(isinstance(component, str) and 1 <= len(component) <= _NAME_MAX,
               f"component must be a name of 1 to {_NAME_MAX} characters, not {component!r}")
        _check(environment in _ENVIRONMENTS,
               f"environment must be one of {', '.join(_ENVIRONMENTS)}, not {environment!r}")
        _check(batch_size >= 1, f"batch_size must be at least 1, not {batch_size}")
        _check(flush_interval > 0, f"flush_interval must be positive, not {flush_interval}")
        _check(heartbeat_interval > 0,
               f"heartbeat_interval must be positive, not {heartbeat_interval}")
        _check(ack in ("durable", "accepted"), f"ack must be durable or accepted, not {ack!r}")
        _check(len(release) <= _SHORT_MAX, f"release must be at most {_SHORT_MAX} characters")
        _check(request_bytes >= 16 * 1024, "request_bytes must be at least 16 KiB")
        self.component = component
        self.environment: Environment = environment
        self.release = release
        self.heartbeat_interval = heartbeat_interval
        self.socket_path: Path = resolve_socket_path(socket_path)
        self._buffer = Buffer(capacity, wake_at=batch_size)
        self._push: Callable[[Record], None] = self._buffer.push
        self._sessions = Sessions()
        self._totals: dict[tuple[str, tuple[tuple[str, Any], ...]], float] = {}
        self._changed: set[tuple[str, tuple[tuple[str, Any], ...]]] = set()
        self._totals_lock = threading.Lock()
        self._closed = False
        self._sender = Sender(
            self._buffer, self.socket_path, component=component, environment=environment,
            ack=ack, batch_size=batch_size, flush_interval=flush_interval,
            request_bytes=request_bytes, timeout=timeout, periodic=self._periodic,
        )
        self._sender.start()
        atexit.register(self.close)
        _watch_forks(self)

    # Samples.

    def gauge(self, name: str, value: float, /, **labels: str) -> None:
        """Record the current value of a series."""
        self._push((name, value, labels, "gauge", "", _time_ns() // 1_000_000))

    def counter(self, name: str, value: float, /, **labels: str) -> None:
        """Record a counter's running total (not an increment: see `increment`)."""
        self._push((name, value, labels, "counter", "", _time_ns() // 1_000_000))

    def record(self, name: str, value: float, *, labels: Mapping[str, str] | None = None,
               kind: MetricKind = "gauge", unit: str = "", timestamp_ms: int | None = None
               ) -> None:
        """Record one sample with everything spelled out (`labels` is copied)."""
        when = _time_ns() // 1_000_000 if timestamp_ms is None else timestamp_ms
        self._push((name, value, dict(labels) if labels else None, kind, unit, when))

    def increment(self, name: str, amount: float = 1.0, /, **labels: str) -> None:
        """Add to a counter whose total the monitor keeps; the total is sent as a
        counter sample once per flush interval when it changed."""
        key = (name, tuple(sorted(labels.items())))
        with self._totals_lock:
            total = self._totals.get(key)
            if total is None and len(self._totals) >= MAX_COUNTER_SERIES:
                self._buffer.count_dropped()
                return
            self._totals[key] = (total or 0.0) + amount
            self._changed.add(key)

    def timer(self, name: str, /, **labels: str) -> Timer:
        """A context manager recording its block's duration in seconds as `name`."""
        return Timer(self, name, labels)

    # Events.

    def track_inference(self, model: str, operation: str = "") -> InferenceTracker:
        """A context manager recording one AI model invocation; see InferenceTracker."""
        return InferenceTracker(self, model, operation)

    def track_db(self, database: str, operation: str) -> DatabaseTracker:
        """A context manager recording one database operation; see DatabaseTracker."""
        return DatabaseTracker(self, database, operation)

    def track_network(self, protocol: str, endpoint: str = "") -> NetworkTracker:
        """A context manager recording one network request; see NetworkTracker."""
        return NetworkTracker(self, protocol, endpoint)

    def record_network(self, protocol: str, endpoint: str = "", *, bytes_sent: int = 0,
                       bytes_received: int = 0, latency_ms: float | None = None,
                       websocket_connections: int | None = None) -> None:
        """Record network traffic over an interval, or one request measured elsewhere."""
        self._push(NetworkActivity(
            component=self.component, environment=self.environment,
            timestamp_ms=_time_ns() // 1_000_000, protocol=protocol, endpoint=endpoint,
            bytes_sent=bytes_sent, bytes_received=bytes_received, latency_ms=latency_ms,
            websocket_connections=websocket_connections,
        ))

    def record_engagement(self, event: str, *, session_id: str | None = None,
                          user_id: str | None = None,
                          properties: Mapping[str, Any] | None = None) -> None:
        """Record a therapy-session engagement event (the daemon pseudonymises ids)."""
        self._push(EngagementEvent(
            component=self.component, environment=self.environment,
            timestamp_ms=_time_ns() // 1_000_000, event=event, session_id=session_id,
            user_id=user_id, properties=context_values(properties),
        ))

    def record_error(self, error: BaseException, *, severity: Severity = "error",
                     context: Mapping[str, Any] | None = None,
                     user_session_id: str | None = None, fingerprint: str | None = None
                     ) -> None:
        """Record an exception: its qualified type, message and traceback frames."""
        try:
            event = error_event(
                error, component=self.component, environment=self.environment,
                release=self.release, severity=severity,
                timestamp_ms=_time_ns() // 1_000_000, context=context,
                user_session_id=user_session_id, fingerprint=fingerprint,
            )
        except Exception:  # noqa: BLE001 - recording must never raise into the application
            self._unrecordable(type(error).__name__)
            return
        self._push(event)

    def record_message_error(self, message: str, *, error_type: str = "Error",
                             severity: Severity = "error",
                             context: Mapping[str, Any] | None = None,
                             user_session_id: str | None = None,
                             fingerprint: str | None = None) -> None:
        """Record an error that has no exception: a type name and a message."""
        try:
            event = message_event(
                message, error_type=error_type, component=self.component,
                environment=self.environment, release=self.release, severity=severity,
                timestamp_ms=_time_ns() // 1_000_000, context=context,
                user_session_id=user_session_id, fingerprint=fingerprint,
            )
        except Exception:  # noqa: BLE001 - recording must never raise into the application
            self._unrecordable(error_type)
            return
        self._push(event)

    def report(self, message: Reported) -> None:
        """Send a message built by the caller as it is (any ReportedMessage type)."""
        self._push(message)

    # Sessions.

    def start_monitoring(self, *, version: str | None = None,
                         heartbeat_interval: float | None = None) -> MonitoringSession:
        """Start a monitoring session: queues MonitoringStarted, then a Heartbeat every
        `heartbeat_interval` seconds (the monitor's by default) until it is stopped."""
        interval = self.heartbeat_interval if heartbeat_interval is None else heartbeat_interval
        session_id = uuid.uuid4().hex
        started = _time_ns() // 1_000_000
        self._push(MonitoringStarted(
            component=self.component, environment=self.environment, timestamp_ms=started,
            session_id=session_id, version=self.release if version is None else version,
            host=socket.gethostname()[:256], pid=os.getpid(), heartbeat_interval=interval,
        ))
        self._sessions.add(session_id, interval)
        # The sender sleeps up to flush_interval; it must see the new heartbeat clock.
        self._buffer.wake.set()
        return MonitoringSession(self, session_id, started_ms=started,
                                 heartbeat_interval=interval)

    def stop_monitoring(self, session_id: str | None = None, *, reason: str = "") -> bool:
        """Stop one session, or every live one when `session_id` is None; queues
        MonitoringStopped for each. False when none was running."""
        targets = self._sessions.ids() if session_id is None else [session_id]
        stopped = False
        for target in targets:
            if self._sessions.remove(target):
                stopped = True
                self._push(MonitoringStopped(
                    component=self.component, environment=self.environment,
                    timestamp_ms=_time_ns() // 1_000_000, session_id=target, reason=reason,
                ))
        return stopped

    def session_ids(self) -> list[str]:
        """The live sessions' ids, oldest first."""
        return self._sessions.ids()

    # The daemon.

    def get_system_status(self, timeout: float = 1.0) -> dict[str, Any]:
        """The daemon's `get_system_status` result. Blocks up to `timeout` seconds, so
        async code should use MonitoringClient. Never raises: when the daemon cannot
        answer, returns {"overall": "unknown", "error": why}."""
        try:
            result = request_once(self.socket_path, "get_system_status", timeout=timeout)
        except (ServiceUnavailable, ServiceError) as exc:
            return {"overall": "unknown", "error": str(exc)}
        if not isinstance(result, dict):
            return {"overall": "unknown", "error": f"unexpected result: {result!r:.200}"}
        return result

    def stats(self) -> MonitorStats:
        """The monitor's counters now."""
        sender = self._sender
        return MonitorStats(
            buffered=self._buffer.pending(), sent=sender.sent,
            dropped=self._buffer.dropped, rejected=sender.rejected,
            connected=sender.connected, last_error=sender.last_error,
        )

    def flush(self, timeout: float = 2.0) -> bool:
        """Try to deliver everything recorded so far, now; True when nothing is left.
        Returns False at once when the daemon cannot take it, or when `timeout` passes."""
        if self._closed:
            return self._buffer.pending() == 0
        return self._sender.flush(timeout)

    def close(self, timeout: float = 2.0) -> bool:
        """Stop live sessions, deliver what can be delivered within `timeout`, and end
        the sender thread. True when everything was delivered. Idempotent."""
        if self._closed:
            return self._buffer.pending() == 0
        atexit.unregister(self.close)
        self.stop_monitoring(reason="closed")
        self._closed = True
        delivered = self._sender.stop(timeout)
        if not delivered and (left := self._buffer.pending()):
            log.warning("ttamond client %s: %d record(s) not delivered at close (%s)",
                        self.component, left, self._sender.last_error or "timed out")
        return delivered

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Monitor({self.component!r}, {self.environment!r}, "
                f"socket_path={str(self.socket_path)!r})")

    def _unrecordable(self, what: object) -> None:
        # Counted with the drops, so the daemon hears of it with them.
        self._buffer.count_dropped()
        log.warning("ttamond client %s: cannot record an error %.100s", self.component, what,
                    exc_info=True)

    def _periodic(self, now: float) -> float:
        """Sender-thread hook: queue due heartbeats and changed counter totals; return
        seconds until the next heartbeat."""
        owing, following = self._sessions.due(now)
        stamp = _time_ns() // 1_000_000
        for session_id in owing:
            self._push(Heartbeat(component=self.component, environment=self.environment,
                                 timestamp_ms=stamp, session_id=session_id))
        if self._changed:
            with self._totals_lock:
                changed = [(key, self._totals[key]) for key in self._changed]
                self._changed.clear()
            for (name, labels), total in changed:
                self._push((name, total, dict(labels), "counter", "", stamp))
        return following

    def _after_fork(self) -> None:
        self._buffer.forget()
        self._sessions.forget()
        self._totals_lock = threading.Lock()
        self._changed.clear()
        self._sender.restart_after_fork()


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


_forked: weakref.WeakSet[Monitor] = weakref.WeakSet()
_fork_hook_installed = False


def _watch_forks(monitor: Monitor) -> None:
    # A forked child inherits the buffer but not the sender thread; without this its
    # records would pile up unseen. Weak references: a closed monitor is let go.
    global _fork_hook_installed
    _forked.add(monitor)
    if not _fork_hook_installed:
        os.register_at_fork(after_in_child=_restart_in_child)
        _fork_hook_installed = True


def _restart_in_child() -> None:
    for monitor in list(_forked):
        if not monitor._closed:
            monitor._after_fork()
