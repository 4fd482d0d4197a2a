"""A detector's state dumped and loaded: the same scores after, bad states refused."""

from __future__ import annotations

import math
import random

import msgspec
import pytest

from ttamond.analytics.detector import Detector, DetectorSettings
from ttamond.analytics.persist import SavedSeries, decode, encode
from ttamond.analytics.snapshot import SnapshotError, dump, load
from ttamond.analytics.steps import StepMean

START = 1_700_000_000.0


def samples(count: int) -> list[tuple[float, float]]:
    rng = random.Random(3)
    return [(START + i * 300.0, 50 + 10 * math.sin(i / 40) + rng.gauss(0, 1) + (30 if i == 5500
                                                                              else 0))
            for i in range(count)]


def test_a_loaded_detector_scores_exactly_as_the_one_it_was_dumped_from() -> None:
    stream = samples(6000)
    original = Detector()
    for ts, value in stream[:4000]:
        original.update(ts, value)
    copy = Detector()
    load(copy, msgspec.msgpack.decode(msgspec.msgpack.encode(dump(original))))
    after = [(original.update(ts, v), copy.update(ts, v)) for ts, v in stream[4000:]]
    assert all(a == b for a, b in after)
    assert max(a for a, _ in after) >= 0.5  # the spike at 5500 is still seen


def test_a_state_that_does_not_fit_is_refused_and_changes_nothing() -> None:
    original = Detector()
    for ts, value in samples(2000):
        original.update(ts, value)
    good = dump(original)

    def refused(state: object, message: str) -> None:
        fresh = Detector()
        before = dump(fresh)
        with pytest.raises(SnapshotError, match=message):
            load(fresh, state)
        assert dump(fresh) == before

    refused([1, 2], "Detector: expected a mapping, got list")
    refused({k: v for k, v in good.items() if k != "_seen"}, r"slots differ \(_seen\)")
    refused({**good, "_seen": 1.5}, "Detector._seen: expected a whole number")
    refused({**good, "_mean_abs": "x"}, "Detector._mean_abs: expected a number")
    refused({**good, "_rhythm": {**good["_rhythm"], "_offsets": b"\0" * 8}},
            r"Detector._rhythm._offsets: 1 values where 144 fit")
    window = good["_window"]
    refused({**good, "_window": {**window, "_sorted": window["_sorted"][8:] + b"\0" * 8}},
            "Detector._window: the sorted values are not the ring's")
    # A window dumped under other settings holds more values than this one's size.
    with pytest.raises(SnapshotError, match=r"Detector._window._ring: 960 values where 100 fit"):
        load(Detector(DetectorSettings(window=100)), good)


def test_the_detectors_file_is_read_back_only_under_the_same_settings_and_step() -> None:
    detector, steps = Detector(), StepMean(60.0)
    for ts, value in samples(500):
        detector.update(ts, value)
        steps.add(ts, value)
    blob = encode(DetectorSettings(), 60.0, [SavedSeries("cpu", (("core", "0"),), detector,
                                                         steps, (1.0, 2.0))])
    (back,) = decode(blob, DetectorSettings(), 60.0)
    assert (back.name, back.labels, back.previous) == ("cpu", (("core", "0"),), (1.0, 2.0))
    assert dump(back.detector) == dump(detector) and dump(back.steps) == dump(steps)
    with pytest.raises(SnapshotError, match="written under other detector settings"):
        decode(blob, DetectorSettings(window=480), 60.0)
    with pytest.raises(SnapshotError, match=r"written with step_seconds = 60\.0, not 0\.0"):
        decode(blob, DetectorSettings(), 0.0)
    with pytest.raises(SnapshotError, match="not a detectors file"):
        decode(b"\xc1garbage", DetectorSettings(), 60.0)
    with pytest.raises(SnapshotError, match="not a version 1 detectors file"):
        decode(msgspec.msgpack.encode({"version": 99}), DetectorSettings(), 60.0)
    broken = msgspec.msgpack.decode(blob)
    broken["series"][0][1] = [["core"]]
    with pytest.raises(SnapshotError, match=r"series #0 \(cpu\): labels are not"):
        decode(msgspec.msgpack.encode(broken), DetectorSettings(), 60.0)
