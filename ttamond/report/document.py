"""The report laid out once as headings, paragraphs, tables and charts, with every
figure written out in words and units; the Markdown and HTML writers only format it."""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec

from ttamond.carbon.model import CarbonReport
from ttamond.engagement.metrics import Bucket, EngagementMetrics
from ttamond.report.model import (
    AlertStatistics,
    Chart,
    ErrorPatterns,
    Figures,
    PerformanceSummary,
    Report,
)
from ttamond.web.svg import format_value

NO_DATA = "no data"


class Heading(msgspec.Struct, frozen=True):
    """A heading; level 1 is the title."""

    level: int
    text: str


class Paragraph(msgspec.Struct, frozen=True):
    """A line of prose."""

    text: str


class Table(msgspec.Struct, frozen=True):
    """Rows of cells under headers; `numeric` columns are right-aligned."""

    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool]


class Figure(msgspec.Struct, frozen=True):
    """A chart (the HTML report draws it; Markdown leaves it out)."""

    chart: Chart


Block = Heading | Paragraph | Table | Figure


def when(ms: int) -> str:
    """An instant as `2026-01-31 14:05 UTC`."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ms / 1000))


def value(number: float | None, unit: str) -> str:
    """A figure in its unit (`120 ms`, `42.5%`), or "no data"."""
    return NO_DATA if number is None else format_value(number, unit)


def share(number: float | None) -> str:
    """A fraction of 1 as a percentage with two decimals (`99.95%`), or "no data"."""
    return NO_DATA if number is None else f"{number * 100:.2f}%"


def count(number: int) -> str:
    """A count with thousands separators."""
    return f"{number:,}"


def outline(report: Report) -> list[Block]:
    """The report's blocks, section by section."""
    length = format_value((report.until_ms - report.since_ms) / 1000, "seconds")
    blocks: list[Block] = [
        Heading(1, f"ttamond report for {report.host}"),
        Paragraph(f"From {when(report.since_ms)} to {when(report.until_ms)} ({length});"
                  f" generated {when(report.generated_ms)}."),
    ]
    charts: dict[str, list[Block]] = {
        section: [Figure(c) for c in report.charts if c.section == section]
        for section in ("performance", "errors")}
    blocks += _performance(report.performance) + charts["performance"]
    blocks += _errors(report.errors) + charts["errors"]
    blocks += _alerts(report.alerts)
    blocks += _carbon(report.carbon)
    blocks += _engagement(report.engagement)
    return blocks


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]],
           numeric: Sequence[int] = ()) -> Table:
    """A table whose columns at the positions in `numeric` are right-aligned."""
    return Table(list(headers), [list(row) for row in rows],
                 [i in numeric for i in range(len(headers))])


def _figures(figures: Figures) -> list[list[str]]:
    return [
        ["operations", count(figures.operations) if figures.operations else NO_DATA],
        ["throughput", NO_DATA if figures.throughput_per_s is None
         else f"{format_value(figures.throughput_per_s, '')}/s"],
        ["response time, mean", value(figures.response_avg_s, "seconds")],
        ["response time, peak", value(figures.response_peak_s, "seconds")],
        ["error rate", share(figures.error_rate)],
    ]


def _performance(summary: PerformanceSummary) -> list[Block]:
    overall = summary.availability
    rows = [*_figures(summary.overall),
            ["availability (overall health)", share(overall.availability) if overall else NO_DATA]]
    blocks: list[Block] = [Heading(2, "Performance"), _table(("figure", "value"), rows, (1,)),
                           Heading(3, "Operations by component")]
    if summary.operations:
        blocks.append(_table(
            ("component", "kind", "operations", "per second", "mean", "peak", "error rate"),
            [[o.component or "(none)", o.kind, count(o.operations),
              value(o.throughput_per_s, ""), value(o.response_avg_s, "seconds"),
              value(o.response_peak_s, "seconds"), share(o.error_rate)]
             for o in summary.operations], (2, 3, 4, 5, 6)))
    else:
        blocks.append(Paragraph("No operations reported by components: no data."))
    blocks.append(Heading(3, "Availability by component"))
    if summary.components:
        blocks.append(_table(
            ("component", "availability", "health samples", "unknown"),
            [[a.component, share(a.availability), count(a.samples), count(a.unknown_samples)]
             for a in summary.components], (1, 2, 3)))
    else:
        blocks.append(Paragraph("No component health recorded: no data."))
    blocks.append(Heading(3, "Host resources"))
    if summary.resources:
        blocks.append(_table(
            ("resource", "mean", "peak", "samples"),
            [[f"{r.resource} {r.target}".strip(), value(r.avg_percent, "percent"),
              value(r.peak_percent, "percent"), count(r.samples)] for r in summary.resources],
            (1, 2, 3)))
    else:
        blocks.append(Paragraph("No host resource samples: no data."))
    return blocks


def _errors(errors: ErrorPatterns) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Error patterns")]
    if not errors.events:
        return [*blocks, Paragraph("No error events in the window: no data.")]
    blocks.append(Paragraph(
        f"{count(errors.events)} error events in {count(errors.groups)} groups; new groups:"
        f" {count(errors.new_groups)}; regressions: {count(errors.regressions)}."))
    blocks += [Heading(3, "Top groups"), _table(
        ("id", "group", "state", "severity", "events", "all time", "first seen", "last seen",
         "regressions", "components"),
        [[str(g.id), g.title, g.state, g.severity, count(g.events), count(g.total),
          when(g.first_seen_ms), when(g.last_seen_ms), count(g.regressions),
          ", ".join(g.components)] for g in errors.top], (0, 4, 5, 8))]
    if errors.spikes:
        blocks += [Heading(3, "Spikes"), _table(
            ("group", "hour", "events", "usual per hour"),
            [[f"{s.group_id}: {s.title}", when(s.hour_ms), count(s.count),
              f"{s.baseline_per_hour:g}"] for s in errors.spikes], (2, 3))]
    blocks += [Heading(3, "By component"), _table(
        ("component", "events", "per hour", "groups"),
        [[c.component, count(c.events), f"{c.per_hour:g}", count(c.groups)]
         for c in errors.per_component], (1, 2, 3))]
    return blocks


def _alerts(alerts: AlertStatistics) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Alerts")]
    if alerts.truncated:
        blocks.append(Paragraph("The history holds more rows than were read: these figures"
                                " cover its newest part."))
    blocks.append(_table(("figure", "value"), [
        ["fired", count(alerts.fired)],
        ["resolved", count(alerts.resolved)],
        ["acknowledged", count(alerts.acknowledged)],
        ["escalated", count(alerts.escalated)],
        ["mean time to acknowledge", value(alerts.mean_time_to_acknowledge_s, "seconds")],
        ["mean time to resolve", value(alerts.mean_time_to_resolve_s, "seconds")],
        ["firing when the report was made", count(alerts.firing_now)],
        ["notifications sent", count(alerts.notifications_sent)],
        ["notifications held back by rate limits", count(alerts.suppressed_rate_limit)],
    ], (1,)))
    if alerts.by_alert:
        blocks += [Heading(3, "By alert"), _table(
            ("alert", "severity", "fired", "resolved", "acknowledged", "escalated",
             "mean time to acknowledge", "mean time to resolve"),
            [[a.alertname, a.severity, count(a.fired), count(a.resolved),
              count(a.acknowledged), count(a.escalated),
              value(a.mean_time_to_acknowledge_s, "seconds"),
              value(a.mean_time_to_resolve_s, "seconds")] for a in alerts.by_alert],
            (2, 3, 4, 5, 6, 7))]
    else:
        blocks.append(Paragraph("No alert fired, resolved or changed in the window."))
    if alerts.channels:
        blocks += [Heading(3, "Deliveries by channel"), _table(
            ("channel", "sent", "failed and retried", "gave up", "rate limited"),
            [[c.channel, count(c.sent), count(c.failed), count(c.gave_up),
              count(c.rate_limited)] for c in alerts.channels], (1, 2, 3, 4))]
    blocks.append(Heading(3, "Notifications suppressed, since the first start"))
    if alerts.suppressed:
        blocks.append(_table(("reason", "suppressed"), [
            *([reason, count(number)] for reason, number in alerts.suppressed.items()),
            ["notifications decided in all", count(alerts.notifications_total)]], (1,)))
    else:
        blocks.append(Paragraph("The alert escalator has kept no counters: no data."))
    return blocks


def _carbon(carbon: CarbonReport | None) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Carbon")]
    if carbon is None:
        return [*blocks, Paragraph("Carbon tracking recorded nothing in the window: no data.")]
    note = " (estimated)" if carbon.estimated else ""
    if carbon.estimated:
        methods = ", ".join(f"{part} {how}" for part, how in sorted(carbon.methods.items()))
        blocks.append(Paragraph("These figures are estimated: no hardware energy counter"
                                " measured them" + (f" ({methods})." if methods else ".")))
    blocks.append(_table(("figure", "value"), [
        ["energy", f"{carbon.total_energy_kwh:.4g} kWh{note}"],
        ["emissions", f"{carbon.total_emissions_kg:.4g} kg CO2e{note}"],
        ["efficiency score", NO_DATA if carbon.efficiency_score is None
         else f"{carbon.efficiency_score:.0f}/100"],
        ["Wh per 1,000 tokens", NO_DATA if carbon.wh_per_1k_tokens is None
         else f"{carbon.wh_per_1k_tokens:.4g}"],
        ["energy charged to no inference or session", share(carbon.unattributed_share)],
    ], (1,)))
    if carbon.per_model:
        blocks += [Heading(3, "By model"), _table(
            ("model", "inferences", "tokens", "kWh", "kg CO2e", "Wh per 1,000 tokens"),
            [[m.model or "(none)", count(m.inferences), count(m.tokens_in + m.tokens_out),
              f"{m.energy_kwh:.4g}", f"{m.emissions_kg:.4g}",
              NO_DATA if m.wh_per_1k_tokens is None else f"{m.wh_per_1k_tokens:.4g}"]
             for m in carbon.per_model], (1, 2, 3, 4, 5))]
    if carbon.recommendations:
        blocks.append(Heading(3, "Recommendations"))
        blocks += [Paragraph(f"{r.severity}: {r.message}") for r in carbon.recommendations]
    return blocks


def _engagement(metrics: EngagementMetrics) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Engagement")]
    if not metrics.people:
        return [*blocks, Paragraph(
            f"No engagement figures: no play events in the window, or fewer than"
            f" k = {metrics.k} people (withheld for k-anonymity).")]
    retention = metrics.retention_overall
    blocks += [Paragraph(f"Aggregates over groups of at least k = {metrics.k} people only."),
               _table(("figure", "value"), [
                   ["people", count(metrics.people)],
                   ["sessions", count(metrics.sessions)],
                   ["mean session", value(metrics.mean_session_seconds, "seconds")],
                   ["interactions per minute", value(metrics.interactions_per_minute, "")],
                   ["completion rate", share(metrics.completion_rate)],
                   ["back the next day", share(retention.day1 if retention else None)],
                   ["back within 7 days", share(retention.day7 if retention else None)],
                   ["back within 30 days", share(retention.day30 if retention else None)],
               ], (1,))]
    for title, buckets in (("Session lengths", metrics.lengths), ("Hours of day", metrics.hours),
                           ("Where sessions ended", metrics.drop_off)):
        if buckets:
            blocks += [Heading(3, title), _buckets(buckets)]
    withheld = sum(metrics.suppressed.values())
    blocks.append(Paragraph(f"Groups withheld for having fewer than k people: {withheld}."))
    return blocks


def _buckets(buckets: list[Bucket]) -> Table:
    return _table(("group", "people", "sessions", "mean minutes"),
                  [[b.key, count(b.people), count(b.sessions), f"{b.mean_minutes:.1f}"]
                   for b in buckets], (1, 2, 3))
