"""The latest-values view: the newest value of every series, for status queries."""

from __future__ import annotations

import msgspec
import trio

from ttamond.bus import Subscription
from ttamond.messages import Labels, MetricBatch, ProbeFailed
from ttamond.receipts import Ingested


class LatestValue(msgspec.Struct, frozen=True):
    """The newest value of one series."""

    name: str
    labels: dict[str, str]
    value: float
    kind: str
    unit: str
    timestamp_ms: int
    source: str


class LatestActor:
    """Keeps the newest reading of each series and the newest failure of each source.

    Reads a `drop_oldest` mailbox: under load it skips stale batches, which a view of
    the latest values can afford; the skips are counted on the subscription.
    """

    def __init__(self, mailbox: Subscription[MetricBatch | ProbeFailed | Ingested]) -> None:
        self.mailbox = mailbox
        self._values: dict[tuple[str, Labels], tuple[float, str, str, int, str]] = {}
        self.failures: dict[str, ProbeFailed] = {}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Update the view from the mailbox until cancelled."""
        task_status.started()
        async for message in self.mailbox:
            self.update(message)

    def update(self, message: MetricBatch | ProbeFailed | Ingested) -> None:
        """Apply one message to the view."""
        match message:
            case MetricBatch(source=source, timestamp_ms=ts, points=points):
                for point in points:
                    self._values[(point.name, point.labels)] = (
                        point.value, point.kind, point.unit, point.timestamp_ms or ts, source
                    )
                self.failures.pop(source, None)
            case Ingested(messages=messages):
                for inner in messages:
                    if isinstance(inner, MetricBatch):
                        self.update(inner)
            case ProbeFailed(source=source):
                self.failures[source] = message
            case _:
                raise TypeError(f"latest view cannot take {type(message).__name__}")

    def query(self, prefix: str = "") -> list[LatestValue]:
        """Values whose series name starts with `prefix`, sorted by name and labels."""
        return [
            LatestValue(name=name, labels=dict(labels), value=value, kind=kind, unit=unit,
                        timestamp_ms=ts, source=source)
            for (name, labels), (value, kind, unit, ts, source) in sorted(self._values.items())
            if name.startswith(prefix)
        ]
