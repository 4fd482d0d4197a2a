"""Building the whole report from the database, read-only, section by section: it
works whether the daemon is running or not, and never writes."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Final

from ttamond.carbon.model import CarbonReport
from ttamond.carbon.reader import load_report
from ttamond.config import CarbonConfig, Config, PrivacyConfig
from ttamond.engagement.anonymity import Noise
from ttamond.engagement.metrics import EngagementMetrics, engagement_metrics
from ttamond.engagement.report import read_events
from ttamond.report.alerts import read_alerts
from ttamond.report.errors import read_errors
from ttamond.report.model import Report
from ttamond.report.performance import read_performance
from ttamond.report.window import Totals, Window, read_buckets
from ttamond.store.queries import Reader
from ttamond.store.readonly import open_reader

SECTIONS: Final = ("performance", "errors", "alerts", "carbon", "engagement")
"""The report's sections in the order they are computed (and reported to `on_section`)."""


def host_name(config: Config) -> str:
    """The name the report gives this host: the alerts' `instance`, else the host name."""
    return config.alerts.instance or socket.gethostname()


def build_report(database: Path, config: Config, window: Window, *, generated_ms: int,
                 on_section: Callable[[str], None] | None = None) -> Report:
    """The report over `window` (blocking: run it on a worker thread when in a trio
    task). `on_section` is called with each section's name as it starts.

    Raises sqlite3.Error when the database cannot be read, QueryError for a window no
    tier can answer.
    """
    def starting(name: str) -> None:
        if on_section is not None:
            on_section(name)

    reader = Reader(database)
    conn = open_reader(database)
    try:
        starting("performance")
        performance, charts = read_performance(reader, window)
        starting("errors")
        errors, error_chart = read_errors(conn, window)
        starting("alerts")
        alerts = read_alerts(database, window)
        starting("carbon")
        carbon = _carbon(database, reader, config.carbon, window)
        starting("engagement")
        engagement = _engagement(database, config.privacy, window)
    finally:
        conn.close()
        reader.close()
    return Report(host=host_name(config), since_ms=window.since_ms, until_ms=window.until_ms,
                  generated_ms=generated_ms, performance=performance, errors=errors,
                  alerts=alerts, carbon=carbon, engagement=engagement,
                  charts=[*charts, error_chart])


def _carbon(database: Path, reader: Reader, config: CarbonConfig,
            window: Window) -> CarbonReport | None:
    """The carbon report, with how the figures were obtained read back from the carbon
    actor's series (the daemon may not be running); None when nothing was recorded."""
    flags = [bucket for series in read_buckets(reader, "ttamond_carbon_estimated", window)
             for bucket in series.buckets]
    # Any estimated reading in the window makes its figures estimates.
    estimated = max(bucket.high for bucket in flags) > 0 if flags else True
    methods: dict[str, tuple[int, str]] = {}
    for series in read_buckets(reader, "ttamond_carbon_power_watts", window):
        if series.buckets:
            part, method = series.labels.get("part", ""), series.labels.get("method", "")
            latest = series.buckets[-1].ts
            if latest >= methods.get(part, (-1, ""))[0]:
                methods[part] = (latest, method)
    intensity = Totals()
    for series in read_buckets(reader, "ttamond_carbon_intensity_grams_per_kwh", window):
        intensity.add(series.buckets)
    report = load_report(database, config, window.retention, since_ms=window.since_ms,
                         until_ms=window.until_ms, now_ms=window.now_ms, estimated=estimated,
                         methods={part: method for part, (_, method) in methods.items()},
                         intensity_g_per_kwh=intensity.mean or 0.0)
    if not flags and not report.per_model and not report.per_component:
        return None
    return report


def _engagement(database: Path, config: PrivacyConfig, window: Window) -> EngagementMetrics:
    """k-anonymous aggregates of the window's play events, as `ttamond engagement
    report` computes them (with its noise when `epsilon` is set)."""
    events = [event for event in read_events(database, since_ms=window.since_ms)
              if event.ts_ms <= window.until_ms]
    noise = Noise(config.epsilon, random.SystemRandom()) if config.epsilon > 0 else None
    return engagement_metrics(events, k=config.k, noise=noise, until_ms=window.until_ms,
                              rotate_every_days=config.rotate_every_days)
