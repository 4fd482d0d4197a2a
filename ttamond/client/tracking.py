"""Context managers that time a block and record what it did: timers, AI, database, network."""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ttamond.messages import AIMetrics, DatabaseOperation, NetworkActivity

if TYPE_CHECKING:
    from ttamond.client.monitor import Monitor

_perf_counter = time.perf_counter
_time_ns = time.time_ns


class Timer:
    """Records how long its block took, in seconds, as a gauge sample.

    `seconds` holds the duration once the block has ended. An exception in the block is
    recorded the same way and passes through unchanged.
    """

    __slots__ = ("_labels", "_monitor", "_started", "name", "seconds")

    def __init__(self, monitor: Monitor, name: str, labels: dict[str, Any]) -> None:
        self._monitor = monitor
        self._labels = labels
        self._started = 0.0
        self.name = name
        self.seconds = 0.0

    def __enter__(self) -> Timer:
        self._started = _perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.seconds = _perf_counter() - self._started
        self._monitor._push(
            (self.name, self.seconds, self._labels, "gauge", "seconds", _time_ns() // 1_000_000)
        )


class _Tracked:
    """A timed block that becomes one message when it ends. An exception in the block
    passes through unchanged."""

    __slots__ = ("_monitor", "_started", "_started_ms", "elapsed_ms", "success")

    def __init__(self, monitor: Monitor) -> None:
        self._monitor = monitor
        self._started = 0.0
        self._started_ms = 0
        self.elapsed_ms = 0.0
        self.success = True
        """False when the block raised, or when the code inside set it so."""

    def _begin(self) -> None:
        self._started_ms = _time_ns() // 1_000_000
        self._started = _perf_counter()

    def _end(self, error: BaseException | None) -> None:
        self.elapsed_ms = (_perf_counter() - self._started) * 1000.0
        if error is not None:
            self.success = False


class InferenceTracker(_Tracked):
    """One AI model invocation (an `AIMetrics` message). Inside the block, set
    `tokens_in`, `tokens_out`, `energy_joules` and `gpu_utilization` (percent) as known."""

    __slots__ = ("energy_joules", "gpu_utilization", "model", "operation", "tokens_in",
                 "tokens_out")

    def __init__(self, monitor: Monitor, model: str, operation: str) -> None:
        super().__init__(monitor)
        self.model = model
        self.operation = operation
        self.tokens_in = 0
        self.tokens_out = 0
        self.energy_joules: float | None = None
        self.gpu_utilization: float | None = None

    def __enter__(self) -> InferenceTracker:
        self._begin()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._end(error)
        monitor = self._monitor
        monitor._push(AIMetrics(
            component=monitor.component, environment=monitor.environment,
            timestamp_ms=self._started_ms, model=self.model,
            inference_time_ms=self.elapsed_ms, operation=self.operation,
            tokens_in=self.tokens_in, tokens_out=self.tokens_out,
            gpu_utilization=self.gpu_utilization, energy_joules=self.energy_joules,
            success=self.success,
        ))


class DatabaseTracker(_Tracked):
    """One database operation (a `DatabaseOperation` message); set `rows` inside."""

    __slots__ = ("database", "operation", "rows")

    def __init__(self, monitor: Monitor, database: str, operation: str) -> None:
        super().__init__(monitor)
        self.database = database
        self.operation = operation
        self.rows = 0

    def __enter__(self) -> DatabaseTracker:
        self._begin()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._end(error)
        monitor = self._monitor
        monitor._push(DatabaseOperation(
            component=monitor.component, environment=monitor.environment,
            timestamp_ms=self._started_ms, database=self.database, operation=self.operation,
            duration_ms=self.elapsed_ms, rows=self.rows, success=self.success,
        ))


class NetworkTracker(_Tracked):
    """One network request (a `NetworkActivity` message whose latency is the block's
    duration); set `bytes_sent` and `bytes_received` inside. The message has no success
    field: a failed request shows in the error it raised."""

    __slots__ = ("bytes_received", "bytes_sent", "endpoint", "protocol")

    def __init__(self, monitor: Monitor, protocol: str, endpoint: str) -> None:
        super().__init__(monitor)
        self.protocol = protocol
        self.endpoint = endpoint
        self.bytes_sent = 0
        self.bytes_received = 0

    def __enter__(self) -> NetworkTracker:
        self._begin()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._end(error)
        monitor = self._monitor
        monitor._push(NetworkActivity(
            component=monitor.component, environment=monitor.environment,
            timestamp_ms=self._started_ms, protocol=self.protocol, endpoint=self.endpoint,
            bytes_sent=self.bytes_sent, bytes_received=self.bytes_received,
            latency_ms=self.elapsed_ms,
        ))
