"""The anomaly actor on a real bus: scores published, its own output ignored, limits counted."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import trio
import trio.testing

from ttamond.actors.analytics import AnalyticsActor
from ttamond.analytics.detector import DetectorSettings
from ttamond.analytics.settings import AnalyticsSettings
from ttamond.bus import Bus, Overflow, Subscription
from ttamond.messages import MetricBatch, MetricPoint, ProbeFailed, labels
from ttamond.receipts import Ingested

START_MS = 1_767_225_600_000


def setup(settings: AnalyticsSettings) -> tuple[Bus, AnalyticsActor, Subscription[MetricBatch]]:
    bus = Bus()
    mailbox = bus.subscribe("analytics", (MetricBatch, Ingested), policy=Overflow.DROP_OLDEST,
                            capacity=10_000)
    out = bus.subscribe("out", (MetricBatch,), policy=Overflow.BLOCK, capacity=100_000)
    return bus, AnalyticsActor(mailbox, bus, settings), out


def drain(out: Subscription[MetricBatch]) -> list[MetricBatch]:
    batches = []
    while out.depth:
        batches.append(out.receive_nowait())
    return batches


def published(batches: list[MetricBatch], name: str) -> list[MetricPoint]:
    return [p for b in batches if b.source == "analytics" for p in b.points if p.name == name]


def wobble(i: int) -> float:
    """A deterministic, noisy-looking load between 20 and 30."""
    return 25 + 5 * math.sin(i * 2.7) * math.cos(i * 0.31)


async def test_scores_are_published_for_selected_series_and_a_spike_stands_out() -> None:
    settings = AnalyticsSettings(series=['cpu{core="0"}'], step_seconds=0)
    bus, actor, out = setup(settings)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        for i in range(400):
            value = 95.0 if i == 399 else wobble(i)
            await bus.publish(MetricBatch(source="collector:host", timestamp_ms=START_MS + i * 1000,
                                          points=(MetricPoint("cpu", value, labels(core="0")),
                                                  MetricPoint("cpu", value, labels(core="1")),
                                                  MetricPoint("memory", value))))
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    batches = drain(out)
    scores = published(batches, "ttamond_anomaly_score")
    assert len(scores) == 400
    assert {p.labels for p in scores} == {(("core", "0"), ("series", "cpu"))}
    assert all(0.0 <= p.value <= 1.0 for p in scores)
    assert scores[0].value == 0.0  # still learning
    assert scores[-1].value >= settings.threshold
    assert max(p.value for p in scores[:-1]) < scores[-1].value
    tracked = published(batches, "ttamond_anomaly_series_tracked")
    assert tracked[-1].value == 1.0
    assert published(batches, "ttamond_anomaly_alarms_total")[-1].value >= 1.0
    (latest,) = actor.scores()
    assert (latest.name, latest.labels, latest.anomalous) == ("cpu", {"core": "0"}, True)
    assert latest.timestamp_ms == START_MS + 399_000
    assert actor.summary()["tracked"] == 1


async def test_max_series_is_enforced_and_refusals_are_counted() -> None:
    settings = AnalyticsSettings(series=["queue_depth"], max_series=2, step_seconds=0)
    bus, actor, out = setup(settings)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        for i in range(3):
            points = (*(MetricPoint("queue_depth", float(i), labels(queue=q)) for q in "abcd"),
                      MetricPoint("unselected", 1.0))
            await bus.publish(MetricBatch(source="ingest", timestamp_ms=START_MS + i * 1000,
                                          points=points))
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    batches = drain(out)
    assert len(published(batches, "ttamond_anomaly_score")) == 6  # 2 series, 3 samples
    assert published(batches, "ttamond_anomaly_series_tracked")[-1].value == 2.0
    assert published(batches, "ttamond_anomaly_series_dropped_total")[-1].value == 2.0
    assert actor.dropped == 2
    assert [s.labels["queue"] for s in actor.scores()] == ["a", "b"]


async def test_reported_batches_are_judged_and_its_own_series_never_are() -> None:
    settings = AnalyticsSettings(series=['{__name__=~".+"}'], step_seconds=0)
    bus, actor, out = setup(settings)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        for i in range(5):
            reported = MetricBatch(source="component:api", timestamp_ms=START_MS + i * 1000,
                                   points=(MetricPoint("latency", 0.2, labels(series="x")),
                                           MetricPoint("ttamond_anomaly_score", 0.9)))
            await bus.publish(Ingested(messages=(reported,)))
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    batches = drain(out)
    scores = published(batches, "ttamond_anomaly_score")
    # The label `series` of the judged series is kept, renamed as Prometheus would.
    assert {p.labels for p in scores} == {(("exported_series", "x"), ("series", "latency"))}
    assert len(scores) == 5
    assert [s.name for s in actor.scores()] == ["latency"]


async def test_counters_are_judged_on_their_rate() -> None:
    settings = AnalyticsSettings(series=["requests_total"], step_seconds=0,
                                 detector=DetectorSettings(warmup=8, calibration=10))
    bus, actor, out = setup(settings)
    total = 0.0
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        for i in range(300):
            total += 1000.0 if i == 299 else 10.0 + (i % 3)
            await bus.publish(MetricBatch(
                source="collector:app", timestamp_ms=START_MS + i * 1000,
                points=(MetricPoint("requests_total", total, (), "counter"),)))
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    scores = published(drain(out), "ttamond_anomaly_score")
    assert len(scores) == 299  # the first sample has no rate yet
    assert scores[-1].value >= settings.threshold
    assert max(p.value for p in scores[:-1]) < settings.threshold


async def test_samples_are_judged_as_one_mean_a_step_stamped_with_its_end() -> None:
    settings = AnalyticsSettings(series=["load"], step_seconds=60)
    bus, actor, out = setup(settings)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        for i in range(6 * 400):  # a sample every 10 s for 400 minutes
            minute = i // 6
            value = 95.0 if minute == 398 else wobble(minute) + 0.1 * (i % 6)
            await bus.publish(MetricBatch(source="collector:host",
                                          timestamp_ms=START_MS + i * 10_000,
                                          points=(MetricPoint("load", value),)))
        # Not finite: counted by the detector, in no step's mean.
        await bus.publish(MetricBatch(source="collector:host", timestamp_ms=START_MS + 24_000_000,
                                      points=(MetricPoint("load", math.nan),)))
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    scores = published(drain(out), "ttamond_anomaly_score")
    assert len(scores) == 399  # every minute but the last, which no later sample closed
    assert [p.timestamp_ms for p in scores[:2]] == [START_MS + 60_000, START_MS + 120_000]
    assert scores[-1].timestamp_ms == START_MS + 399 * 60_000
    assert scores[-1].value >= settings.threshold  # the minute of 95s
    assert max(p.value for p in scores[:-1]) < settings.threshold
    (latest,) = actor.scores()
    assert latest.anomalous and latest.timestamp_ms == START_MS + 399 * 60_000
    assert actor._tracked[("load", ())].detector.skipped == 1


async def test_a_blocking_mailbox_and_a_strange_message_are_refused() -> None:
    bus = Bus()
    blocking = bus.subscribe("analytics", (MetricBatch, Ingested), policy=Overflow.BLOCK,
                             capacity=10)
    with pytest.raises(ValueError, match="mailbox 'analytics' must drop oldest, not block"):
        AnalyticsActor(blocking, bus, AnalyticsSettings())
    _, actor, _ = setup(AnalyticsSettings())
    with pytest.raises(TypeError, match="analytics cannot take ProbeFailed"):
        await actor.take(ProbeFailed(source="x", timestamp_ms=0, error="e"))  # type: ignore[arg-type]


def test_settings_reject_a_bad_selector() -> None:
    with pytest.raises(ValueError, match=r"bad selector 'cpu\{core=0\}'"):
        AnalyticsSettings(series=["cpu{core=0}"])


async def feed_load(actor: AnalyticsActor, bus: Bus, first: int, last: int) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        for i in range(first, last):
            await bus.publish(MetricBatch(source="collector:host",
                                          timestamp_ms=START_MS + i * 60_000,
                                          points=(MetricPoint("load", 400.0 if i == 590
                                                              else wobble(i)),)))
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()


async def test_detectors_are_saved_when_the_actor_stops_and_read_back_by_the_next(
        tmp_path: Path) -> None:
    settings = AnalyticsSettings(series=["load"], step_seconds=0)
    state = tmp_path / "state" / "analytics-detectors.msgpack"
    state.parent.mkdir()
    # One actor all along, and one stopped after 400 minutes and started again.
    bus, whole, whole_out = setup(settings)
    await feed_load(whole, bus, 0, 600)
    bus, first, _ = setup(settings)
    first.state_file = state
    await feed_load(first, bus, 0, 400)
    assert state.stat().st_mode & 0o777 == 0o600
    bus, second, second_out = setup(settings)
    second.state_file = state
    second.restore()
    assert second.restored == 1 and second.summary()["restored"] == 1
    await feed_load(second, bus, 400, 600)
    resumed = [p.value for p in published(drain(second_out), "ttamond_anomaly_score")]
    uninterrupted = [p.value for p in published(drain(whole_out), "ttamond_anomaly_score")]
    assert resumed == uninterrupted[400:]
    assert max(resumed) >= settings.threshold  # the spike at minute 590


async def test_a_detectors_file_that_does_not_fit_is_one_warning_and_a_fresh_start(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = tmp_path / "analytics-detectors.msgpack"
    state.write_bytes(b"not msgpack at all")
    _, actor, _ = setup(AnalyticsSettings(series=["load"]))
    actor.state_file = state
    actor.restore()
    assert actor.restored == 0
    (record,) = [r for r in caplog.records if r.name == "ttamond.actors.analytics"]
    assert record.getMessage().startswith(f"analytics: detectors in {state} not restored:"
                                          " not a detectors file")
    # Other detector settings: the saved state would mean something else.
    bus, saver, _ = setup(AnalyticsSettings(series=["load"], step_seconds=0))
    saver.state_file = state
    await feed_load(saver, bus, 0, 10)
    _, other, _ = setup(AnalyticsSettings(series=["load"], step_seconds=0,
                                          detector=DetectorSettings(window=480)))
    other.state_file = state
    other.restore()
    assert other.restored == 0
    assert "written under other detector settings" in caplog.records[-1].getMessage()


async def test_new_settings_take_over_the_detectors_that_still_apply() -> None:
    bus, old, _ = setup(AnalyticsSettings(series=["load", "cpu"], step_seconds=0))
    async with trio.open_nursery() as nursery:
        await nursery.start(old.run)
        for i in range(5):
            await bus.publish(MetricBatch(source="h", timestamp_ms=START_MS + i * 1000, points=(
                MetricPoint("load", 1.0), MetricPoint("cpu", 2.0))))
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    _, new, _ = setup(AnalyticsSettings(series=["load", "memory"], step_seconds=0))
    new.adopt(old)
    assert [s.name for s in new.scores()] == ["load"] and new.restored == 1
    assert new._tracked[("load", ())] is old._tracked[("load", ())]
    _, other, _ = setup(AnalyticsSettings(series=["load"], step_seconds=60))
    other.adopt(old)  # another step: what the detector learnt means something else
    assert other.restored == 0
