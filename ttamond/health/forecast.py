"""Predictions on a timer: each configured series' time to its limit, and its trend,
from the store's 1-minute rollups over the window (blocking reads: a worker thread)."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import trio

from ttamond.bus import Bus
from ttamond.health.predict import describe, time_to_limit, trend
from ttamond.health.settings import PredictionConfig
from ttamond.messages import MetricBatch, MetricPoint, StoreEvent, now_ms
from ttamond.selector import SelectorError, parse_selector
from ttamond.store.queries import QueryError, Reader, Retention, retention_of

if TYPE_CHECKING:
    from ttamond.config import Config

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
MIN_CONFIDENCE = 0.5
"""Below this a prediction is kept (and shown) but not published as a series."""


class Forecast(msgspec.Struct, frozen=True):
    """One series' prediction, for people and for alert rules."""

    series: str
    labels: dict[str, str]
    text: str
    seconds: float | None
    confidence: float
    current: float
    limit: float
    trend: str | None
    """"up" or "down" when the series moves significantly over the window."""


def forecast(database: Path, predictions: list[PredictionConfig], retention: Retention, *,
             now_ms: int, window_ms: int) -> list[Forecast]:
    """Every configured series' forecast. Raises sqlite3.Error, QueryError."""
    reader = Reader(database)
    found: list[Forecast] = []
    try:
        for wanted in predictions:
            result = reader.query(parse_selector(wanted.selector), start_ms=now_ms - window_ms,
                                  end_ms=now_ms, step_ms=MINUTE_MS, aggregate="avg",
                                  retention=retention, now_ms=now_ms)
            for series in result.series:
                points = [(ts, value) for ts, value in series.points]
                period = int(wanted.period_hours * 3_600_000) or None
                if period is not None and period >= window_ms:
                    period = None  # a window shorter than the cycle cannot see through it
                prediction = time_to_limit(points, wanted.limit, now_ms=now_ms,
                                           rising=wanted.rising, period_ms=period)
                if prediction is None:
                    continue
                moving = trend(points, period_ms=period)
                what = " ".join([series.name, *series.labels.values()])
                found.append(Forecast(
                    series=series.name, labels=series.labels, text=describe(prediction, what),
                    seconds=prediction.seconds, confidence=round(prediction.confidence, 3),
                    current=prediction.current, limit=wanted.limit,
                    trend=moving.direction if moving is not None else None,
                ))
    finally:
        reader.close()
    return found


def as_series(forecasts: list[Forecast], now_ms: int) -> MetricBatch:
    """The confident forecasts as series alert rules can use: seconds until the limit
    (series not heading there have none) and the fit's confidence."""
    points: list[MetricPoint] = []
    for item in forecasts:
        labels = tuple(sorted({**item.labels, "target": item.series}.items()))
        points.append(MetricPoint("ttamond_prediction_confidence", item.confidence, labels))
        if item.seconds is not None and item.confidence >= MIN_CONFIDENCE:
            points.append(MetricPoint("ttamond_prediction_seconds_to_limit", item.seconds,
                                      labels, "gauge", "seconds"))
    return MetricBatch(source="health:predictions", timestamp_ms=now_ms, points=tuple(points))


class Forecaster:
    """Runs the configured predictions, keeps the latest, publishes them as series, and
    stores a trend event when a series starts moving significantly (its continuing is
    not news)."""

    def __init__(self, bus: Bus, database: Path) -> None:
        self.bus = bus
        self.database = database
        self.forecasts: list[Forecast] = []
        self._trends: dict[tuple[str, tuple[tuple[str, str], ...]], str | None] = {}

    async def run_once(self, config: Config) -> None:
        """One round; a database that cannot be read is logged and tried next round."""
        now = now_ms()
        window = int(config.health.predict_window_hours * 3_600_000)
        try:
            self.forecasts = await trio.to_thread.run_sync(
                lambda: forecast(self.database, config.health.predictions,
                                 retention_of(config.store), now_ms=now, window_ms=window))
        except (sqlite3.Error, QueryError, SelectorError) as exc:
            log.warning("predictions: %s", exc)
            return
        await self.bus.publish(as_series(self.forecasts, now))
        for item in self.forecasts:
            key = (item.series, tuple(sorted(item.labels.items())))
            if self._trends.get(key) == item.trend:
                continue
            self._trends[key] = item.trend
            if item.trend is not None:
                await self.bus.publish(StoreEvent(
                    kind="trend", timestamp_ms=now, source=item.series,
                    detail=json.dumps({"direction": item.trend, "labels": item.labels,
                                       "prediction": item.text}),
                ))
