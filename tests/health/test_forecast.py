"""Predictions read from a real SQLite store: a disk filling at a steady rate is
predicted full within 10 % of the truth, and published as series."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from ttamond.config import StoreConfig
from ttamond.health.forecast import as_series, forecast
from ttamond.health.settings import PredictionConfig
from ttamond.messages import MetricBatch, MetricPoint
from ttamond.store.database import Database
from ttamond.store.queries import retention_of

MINUTE = 60_000
NOW = 1_800_000_000_000 - 1_800_000_000_000 % MINUTE


def test_a_filling_disk_is_predicted_full(tmp_path: Path) -> None:
    database = Database(tmp_path / "t.db", busy_timeout=1.0, synchronous="normal")
    database.open()
    labels = (("mount", "/srv"),)
    keys = itertools.count()
    # 3 hours at 10 s: from 40 % rising 5 points an hour, so 55 % at the end and full
    # 45 points (9 h) later;
    # and a flat series beside it.
    for step in range(3 * 360):
        ts = NOW - (3 * 360 - step) * 10_000
        points = (MetricPoint("host_disk_percent", 40 + 5 * step / 360, labels),
                  MetricPoint("host_disk_percent", 20.0, (("mount", "/boot"),)))
        database.write(f"k{next(keys)}", [MetricBatch(source="t", timestamp_ms=ts,
                                                      points=points)], origin="live")
    database.close()
    found = forecast(tmp_path / "t.db", [PredictionConfig(selector="host_disk_percent",
                                                          limit=100.0)],
                     retention_of(StoreConfig()), now_ms=NOW, window_ms=6 * 3_600_000)
    by_mount = {item.labels["mount"]: item for item in found}
    srv = by_mount["/srv"]
    assert srv.seconds == pytest.approx(9 * 3600, rel=0.10)
    assert srv.confidence > 0.9 and srv.trend == "up"
    assert "full in about" in srv.text
    assert by_mount["/boot"].seconds is None and by_mount["/boot"].trend is None
    series = as_series(found, NOW)
    names = {(p.name, dict(p.labels)["mount"]) for p in series.points}
    assert ("ttamond_prediction_seconds_to_limit", "/srv") in names
    assert ("ttamond_prediction_seconds_to_limit", "/boot") not in names
