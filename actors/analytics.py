"""The anomaly actor: a streaming detector per selected series, its scores as series."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import msgspec
import trio

from ttamond.analytics.detector import Detector
from ttamond.analytics.persist import SavedSeries, decode, encode
from ttamond.analytics.settings import AnalyticsSettings
from ttamond.analytics.snapshot import SnapshotError
from ttamond.analytics.steps import StepMean
from ttamond.atomicfile import write_atomically
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
    `run()` again after a crash keeps what they have learnt; a new actor for changed
    settings takes them over (`adopt`) when the detector settings and step are the
    same; with a `state_file`, they are written every `save_every_seconds` and when
    `run()` ends, and read back by `restore()`, so a daemon restart keeps them too. A
    message of an unknown type raises; samples that are not finite are counted by
    their detector and skipped.

    The mailbox must drop its oldest messages when full (Overflow.DROP_OLDEST): the
    actor's own batches come back to it through the bus, and a blocking mailbox could
    leave it waiting on itself. Raises ValueError for a blocking one.
    """

    def __init__(self, mailbox: Subscription[MetricBatch | Ingested], bus: Bus,
                 settings: AnalyticsSettings, state_file: Path | None = None) -> None:
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
        self.state_file = state_file
        self.restored = 0
        """Series whose detectors were read back or taken over, not learnt afresh."""
        self.save_errors = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Judge every batch from the mailbox until cancelled; save the detectors
        every `save_every_seconds` and when it ends."""
        try:
            async with trio.open_nursery() as nursery:
                if self.state_file is not None and self.settings.save_every_seconds > 0:
                    nursery.start_soon(self._save_periodically, self.settings.save_every_seconds)
                task_status.started()
                async for message in self.mailbox:
                    await self.take(message)
        finally:
            if self.state_file is not None:
                self._write(self._encode())

    async def _save_periodically(self, seconds: float) -> None:
        while True:
            await trio.sleep(seconds)
            blob = self._encode()  # here, not in the thread: the detectors keep changing
            await trio.to_thread.run_sync(self._write, blob)

    def _encode(self) -> bytes:
        return encode(self.settings.detector, self.settings.step_seconds,
                      (SavedSeries(name, labels, t.detector, t.steps, t.previous)
                       for (name, labels), t in self._tracked.items()))

    def _write(self, blob: bytes) -> None:
        assert self.state_file is not None
        try:
            write_atomically(self.state_file, blob, mode=0o600)
        except OSError as exc:
            self.save_errors += 1
            log.warning("analytics: cannot save the detectors to %s: %s", self.state_file, exc)

    def restore(self) -> None:
        """Read back the detectors of `state_file`, for the series still selected (at
        most `max_series`). A missing file is a first start; one that cannot be read,
        or was written under other settings, is logged in one line and learnt afresh."""
        if self.state_file is None:
            return
        try:
            blob = self.state_file.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("analytics: cannot read %s (%s); detectors learn afresh",
                        self.state_file, exc)
            return
        try:
            saved = decode(blob, self.settings.detector, self.settings.step_seconds)
        except SnapshotError as exc:
            log.warning("analytics: detectors in %s not restored: %s; they learn afresh",
                        self.state_file, exc)
            return
        for series in saved:
            tracked = _Tracked(series.detector, series.steps)
            tracked.previous = series.previous
            self._take_over((series.name, series.labels), tracked)
        log.info("analytics: %d detectors restored from %s", self.restored, self.state_file)

    def adopt(self, previous: AnalyticsActor) -> None:
        """Take over the detectors of the actor these settings replace, for the series
        still selected, when they judge the same way (same detector settings and step)."""
        if (previous.settings.detector != self.settings.detector
                or previous.settings.step_seconds != self.settings.step_seconds):
            return
        for key, tracked in previous._tracked.items():
            self._take_over(key, tracked)

    def _take_over(self, key: SeriesKey, tracked: _Tracked) -> None:
        name, series_labels = key
        label_map = dict(series_labels)
        if (len(self._tracked) >= self.settings.max_series or key in self._tracked
                or not any(s.matches(name, label_map) for s in self._selectors)):
            return
        self._tracked[key] = tracked
        self.restored += 1

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
        """Counts for status: series tracked and refused, alarms, the threshold, the
        step, detectors restored, failed saves."""
        return {"tracked": len(self._tracked), "max_series": self.settings.max_series,
                "dropped": self.dropped, "alarms": self.alarms,
                "threshold": self.settings.threshold,
                "step_seconds": self.settings.step_seconds, "restored": self.restored,
                "save_errors": self.save_errors}


def _score_labels(key: SeriesKey) -> Labels:
    """The judged series' labels plus `series=<its name>`; a label of its own called
    `series` becomes `exported_series` (Prometheus' rule for clashing labels)."""
    name, series_labels = key
    pairs = [("exported_series" if label == "series" else label, value)
             for label, value in series_labels]
    pairs.append(("series", name))
    return tuple(sorted(pairs))
