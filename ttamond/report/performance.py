"""The performance summary: response times, throughput and error rate of the
operations components report, availability from the health levels, host resources.

Where each figure comes from:

- operations: every sample of `tta_ai_inference_duration_seconds` (an AI invocation)
  and `tta_db_operation_duration_seconds` (a database operation) is one operation,
  its value the response time; `tta_ai_inference_failed` and `tta_db_operation_failed`
  are 1 for a failed one, so their mean is the error rate. Throughput is operations
  over the window's length. Per component by the `component` label.
- availability: `ttamond_component_health{component}` and `ttamond_health_overall`,
  written by the health actor at each evaluation (0 ok, 1 degraded, 2 critical,
  3 unknown). A sample is up when ok or degraded; unknown ones are left out. Read in
  buckets of at most a minute; a bucket holds only min, max, sum and count, so one
  with two levels is split by its mean (exact for two levels, an estimate for more).
- resources: `host_cpu_percent{cpu="total"}`, `host_memory_percent` and
  `host_disk_percent{mount}`, from the host collector.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Final

from ttamond.report.model import (
    Availability,
    Chart,
    ChartLine,
    Figures,
    OperationFigures,
    PerformanceSummary,
    ResourceUse,
)
from ttamond.report.window import Totals, Window, mean_points, read_buckets
from ttamond.store.database import MINUTE_MS
from ttamond.store.queries import Reader

OPERATION_SERIES: Final = {
    "ai_inference": ("tta_ai_inference_duration_seconds", "tta_ai_inference_failed"),
    "database": ("tta_db_operation_duration_seconds", "tta_db_operation_failed"),
}
"""Kind of operation: (its duration series, its failure flag series)."""
KIND_LABELS: Final = {"ai_inference": "AI inference", "database": "database"}
COMPONENT_HEALTH: Final = "ttamond_component_health"
OVERALL_HEALTH: Final = "ttamond_health_overall"
RESOURCES: Final = (("cpu", 'host_cpu_percent{cpu="total"}'), ("memory", "host_memory_percent"),
                    ("disk", "host_disk_percent"))


def performance_summary(database: Path, window: Window) -> PerformanceSummary:
    """The summary over `window` (blocking: run it on a worker thread). Raises
    sqlite3.Error when the database cannot be read, QueryError for a window no tier
    can answer."""
    reader = Reader(database)
    try:
        summary, _ = read_performance(reader, window)
    finally:
        reader.close()
    return summary


def read_performance(reader: Reader, window: Window) -> tuple[PerformanceSummary, list[Chart]]:
    """The summary and its charts (host CPU and memory, response time). Raises as
    `performance_summary`."""
    overall_durations, overall_failures = Totals(), Totals()
    durations: dict[tuple[str, str], Totals] = defaultdict(Totals)
    failures: dict[tuple[str, str], Totals] = defaultdict(Totals)
    response_lines: list[ChartLine] = []
    for kind, (duration_name, failed_name) in OPERATION_SERIES.items():
        timed = read_buckets(reader, duration_name, window)
        for series in timed:
            durations[series.labels.get("component", ""), kind].add(series.buckets)
            overall_durations.add(series.buckets)
        for series in read_buckets(reader, failed_name, window):
            failures[series.labels.get("component", ""), kind].add(series.buckets)
            overall_failures.add(series.buckets)
        if any(series.buckets for series in timed):
            response_lines.append(ChartLine(KIND_LABELS[kind], mean_points(timed)))
    operations = [
        OperationFigures(component=component, kind=kind,
                         **_figures(durations[component, kind], failures[component, kind],
                                    window))
        for component, kind in sorted(durations) if durations[component, kind].count
    ]
    resources, resource_lines = _resources(reader, window)
    summary = PerformanceSummary(
        since_ms=window.since_ms, until_ms=window.until_ms, step_ms=window.step_ms,
        overall=Figures(**_figures(overall_durations, overall_failures, window)),
        operations=operations,
        availability=next(iter(_availability(reader, OVERALL_HEALTH, window)), None),
        components=_availability(reader, COMPONENT_HEALTH, window),
        resources=resources,
    )
    charts = [
        Chart(section="performance", title="Host CPU and memory", unit="percent",
              step_ms=window.step_ms, lines=resource_lines),
        Chart(section="performance", title="Response time", unit="seconds",
              step_ms=window.step_ms, lines=response_lines),
    ]
    return summary, charts


def _figures(durations: Totals, failures: Totals, window: Window) -> dict[str, Any]:
    return {
        "operations": durations.count,
        "throughput_per_s": durations.count / window.seconds if durations.count else None,
        "response_avg_s": durations.mean,
        "response_peak_s": durations.peak,
        "error_rate": failures.mean,
    }


def _resources(reader: Reader, window: Window) -> tuple[list[ResourceUse], list[ChartLine]]:
    uses: list[ResourceUse] = []
    lines: list[ChartLine] = []
    for resource, selector in RESOURCES:
        found = read_buckets(reader, selector, window)
        by_target: dict[str, Totals] = defaultdict(Totals)
        for series in found:
            by_target[series.labels.get("mount", "")].add(series.buckets)
        uses += [ResourceUse(resource=resource, target=target, samples=totals.count,
                             avg_percent=totals.mean, peak_percent=totals.peak)
                 for target, totals in sorted(by_target.items()) if totals.count]
        if resource != "disk" and any(series.buckets for series in found):
            lines.append(ChartLine(resource, mean_points(found)))
    return uses, lines


def _level_class(level: float) -> str:
    if level >= 2.5:
        return "unknown"
    return "down" if level >= 1.5 else "up"


def _availability(reader: Reader, selector: str, window: Window) -> list[Availability]:
    """One figure per component (the `component` label, "" for the overall series),
    read in buckets of at most a minute: a bucket holding more than two levels is
    only estimated, and the finer the buckets, the rarer those are."""
    found = read_buckets(reader, selector, window, step_ms=min(window.step_ms, MINUTE_MS))
    shares: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(
        ("up", "down", "unknown"), 0.0))
    samples: dict[str, int] = defaultdict(int)
    for series in found:
        component = series.labels.get("component", "")
        tally = shares[component]
        for bucket in series.buckets:
            samples[component] += bucket.count
            if bucket.low == bucket.high:
                tally[_level_class(bucket.low)] += bucket.count
                continue
            # Two levels in the bucket: the mean says how many of each.
            high_share = min(1.0, max(0.0, (bucket.mean - bucket.low)
                                      / (bucket.high - bucket.low)))
            tally[_level_class(bucket.high)] += bucket.count * high_share
            tally[_level_class(bucket.low)] += bucket.count * (1 - high_share)
    figures = []
    for component, tally in sorted(shares.items()):
        if not samples[component]:
            continue
        known = tally["up"] + tally["down"]
        figures.append(Availability(
            component=component, samples=samples[component],
            availability=tally["up"] / known if known > 1e-9 else None,
            unknown_samples=round(tally["unknown"])))
    return figures
