"""The anomaly actor: a streaming detector per selected series, its scores as series."""

from __future__ import annotations

import logging
import math

import msgspec
import trio

from ttamond.analytics.detector import Detector
from ttamond.analytics.settings import AnalyticsSettings
from ttamond.analytics.steps import StepMean
from ttamond.bus import Bus, Overflow, Subscription
from ttamond.messages import Labels, MetricBatch, MetricPoint
from ttamond.receipts import Ingested

log = logging.getLogger(__name__)

SOURCE = "analytics"
OWN_PREFIX = "ttamond_anomaly"
"""Series of this actor's own: never judged, or its scores would feed back into it."""
IGNORED_CACHE = 10_000
"""Series remembered as not selected (or refused), so selectors are not matched again
for every sample; the memory is cleared when full, which bounds it."""

SeriesKey = tuple[str, Labels]


class AnomalyScore(msgspec.Struct, frozen=True):
    """The latest score of one series, for status queries."""

    name: str
    labels: dict[str, str]
    score: float
    anomalous: bool
    timestamp_ms: int


class _Tracked:
    """One series' detector, its open step, and its previous reading when it is a
    counter."""

    __slots__ = ("detector", "previous", "score", "steps", "timestamp_ms")

    def __init__(self, detector: Detector, steps: StepMean) -> None:
        self.detector = detector
        self.steps = steps
        self.previous: tuple[float, float] | None = None
        """(seconds, value) of a counter's last sample; its rate is what is judged."""
        self.score = 0.0
        self.timestamp_ms = 0


class AnalyticsActor:
    """Runs one Detector per series that the settings' selectors pick, on the mean of
    each `step_seconds` step of its samples (StepMean), and publishes each step's score
    as `ttamond_anomaly_score{series="<name>", <its labels>}` stamped with the step's
    end, with `ttamond_anomaly_series_tracked`, `ttamond_anomaly_series_dropped_total`
    and `ttamond_anomaly_alarms_total` (steps scoring at least the threshold).

    The detectors live in the actor object, not in `run()`, so a supervisor that calls
    `run()` again after a crash keeps what they have learnt. A message of an unknown
    type raises; samples that are not finite are counted by their detector and skipped.

    The mailbox must drop its oldest messages when full (Overflow.DROP_OLDEST): the
    actor's own batches come back to it through the bus, and a blocking mailbox could
    leave it waiting on itself. Raises ValueError for a blocking one.
    """

    def __init__(self, mailbox: Subscription[MetricBatch | Ingested], bus: Bus,
                 settings: AnalyticsSettings) -> None:
        if mailbox.policy is Overflow.BLOCK:
            raise ValueError(f"analytics: mailbox {mailbox.name!r} must drop oldest, not block"
                             " (the actor receives its own scores)")
        self.mailbox = mailbox
        self.bus = bus
        self.settings = settings
        self._selectors = settings.selectors()
        self._tracked: dict[SeriesKey, _Tracked] = {}
        self._ignored: set[SeriesKey] = set()
        self.dropped = 0
        """Series refused because `max_series` were tracked already."""
        self.alarms = 0
        """Samples whose score reached the threshold."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Judge every batch from the mailbox until cancelled."""
        task_status.started()
        async for message in self.mailbox:
            await self.take(message)

    async def take(self, message: MetricBatch | Ingested) -> None:
        """Judge one message's samples and publish their scores."""
        match message:
            case MetricBatch():
                batches: tuple[MetricBatch, ...] = (message,)
            case Ingested(messages=messages):
                batches = tuple(inner for inner in messages if isinstance(inner, MetricBatch))
            case _:
                raise TypeError(f"analytics cannot take {type(message).__name__}")
        for batch in batches:
            reply = self.judge(batch)
            if reply is not None:
                await self.bus.publish(reply)

    def judge(self, batch: MetricBatch) -> MetricBatch | None:
        """Score the batch's selected samples; the batch of scores to publish, or None
        when it held no selected series."""
        if batch.source == SOURCE:
            return None
        points: list[MetricPoint] = []
        selected = False
        for point in batch.points:
            key = (point.name, point.labels)
            tracked = self._tracked.get(key)
            if tracked is None:
                if key in self._ignored or point.name.startswith(OWN_PREFIX):
                    continue
                refused_before = self.dropped
                tracked = self._track(key)
                if tracked is None:
                    # A selected series refused for room still reports the refusal.
                    selected = selected or self.dropped != refused_before
                    continue
            selected = True
            judged = self._score(tracked, point,
                                 (point.timestamp_ms or batch.timestamp_ms) / 1000.0)
            if judged is None:
                continue
            seconds, score = judged
            timestamp_ms = round(seconds * 1000.0)
            tracked.score = score
            tracked.timestamp_ms = timestamp_ms
            if score >= self.settings.threshold:
                self.alarms += 1
            points.append(MetricPoint("ttamond_anomaly_score", score, _score_labels(key),
                                      "gauge", "", timestamp_ms))
        if not selected:
            return None
        points += [
            MetricPoint("ttamond_anomaly_series_tracked", float(len(self._tracked))),
            MetricPoint("ttamond_anomaly_series_dropped_total", float(self.dropped), (),
                        "counter"),
            MetricPoint("ttamond_anomaly_alarms_total", float(self.alarms), (), "counter"),
        ]
        return MetricBatch(source=SOURCE, timestamp_ms=batch.timestamp_ms, points=tuple(points))

    def _track(self, key: SeriesKey) -> _Tracked | None:
        """A new detector for a selected series, or None (remembered) when the series
        is not selected or `max_series` are tracked already."""
        name, series_labels = key
        label_map = dict(series_labels)
        if not any(selector.matches(name, label_map) for selector in self._selectors):
            self._remember_ignored(key)
            return None
        if len(self._tracked) >= self.settings.max_series:
            self.dropped += 1
            if self.dropped == 1:
                log.warning("analytics: %d series tracked, the most allowed; %s and later"
                            " new series are not judged (raise max_series)",
                            len(self._tracked), name)
            self._remember_ignored(key)
            return None
        tracked = _Tracked(Detector(self.settings.detector),
                           StepMean(self.settings.step_seconds))
        self._tracked[key] = tracked
        return tracked

    def _remember_ignored(self, key: SeriesKey) -> None:
        if len(self._ignored) >= IGNORED_CACHE:
            self._ignored.clear()
        self._ignored.add(key)

    @staticmethod
    def _score(tracked: _Tracked, point: MetricPoint,
               seconds: float) -> tuple[float, float] | None:
        """(time, score) of the step this sample closes (of the sample itself with a
        step of 0), or None. A counter is judged on its rate; its first sample, its
        resets and samples that do not move time forward give no rate. A value that
        is not finite is counted by the detector and enters no step."""
        value = point.value
        if point.kind == "counter":
            previous = tracked.previous
            tracked.previous = (seconds, value)
            if previous is None or seconds <= previous[0] or value < previous[1]:
                return None
            value = (value - previous[1]) / (seconds - previous[0])
        if not (math.isfinite(value) and math.isfinite(seconds)):
            tracked.detector.update(seconds, value)  # counted in `skipped`, scores 0
            return None
        closed = tracked.steps.add(seconds, value)
        if closed is None:
            return None
        return closed[0], tracked.detector.update(*closed)

    def scores(self, prefix: str = "") -> list[AnomalyScore]:
        """Each tracked series' latest score, most anomalous first; only series whose
        name starts with `prefix`."""
        threshold = self.settings.threshold
        found = [
            AnomalyScore(name=name, labels=dict(series_labels), score=tracked.score,
                         anomalous=tracked.score >= threshold, timestamp_ms=tracked.timestamp_ms)
            for (name, series_labels), tracked in self._tracked.items()
            if name.startswith(prefix)
        ]
        found.sort(key=lambda s: (-s.score, s.name, sorted(s.labels.items())))
        return found

    def summary(self) -> dict[str, object]:
        """Counts for status: series tracked and refused, alarms, the threshold and
        the step."""
        return {"tracked": len(self._tracked), "max_series": self.settings.max_series,
                "dropped": self.dropped, "alarms": self.alarms,
                "threshold": self.settings.threshold,
                "step_seconds": self.settings.step_seconds}


def _score_labels(key: SeriesKey) -> Labels:
    """The judged series' labels plus `series=<its name>`; a label of its own called
    `series` becomes `exported_series` (Prometheus' rule for clashing labels)."""
    name, series_labels = key
    pairs = [("exported_series" if label == "series" else label, value)
             for label, value in series_labels]
    pairs.append(("series", name))
    return tuple(sorted(pairs))
