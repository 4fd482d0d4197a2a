"""The report's data: what `ttamond report` computes, as msgspec structs.

Every figure that needs data the window did not have is None, never 0, so the
renderers can say "no data" instead of showing a number nobody measured. Times are
Unix milliseconds, durations seconds, shares fractions of 1.
"""

from __future__ import annotations

import msgspec

from ttamond.carbon.model import CarbonReport
from ttamond.engagement.metrics import EngagementMetrics
from ttamond.errors.queries import ComponentRate, Spike


class Figures(msgspec.Struct, frozen=True, kw_only=True):
    """Operations reported by components over the window: how many, how fast, how often
    they failed. Response times are per operation, in seconds."""

    operations: int
    throughput_per_s: float | None
    response_avg_s: float | None
    response_peak_s: float | None
    error_rate: float | None
    """Failed operations over all operations."""


class OperationFigures(Figures, frozen=True, kw_only=True):
    """The figures of one component for one kind of operation."""

    component: str
    kind: str
    """`ai_inference` or `database` (see `performance.OPERATION_SERIES`)."""


class Availability(msgspec.Struct, frozen=True, kw_only=True):
    """Health samples of one component ("" for the host's overall level): the share
    that was up (ok or degraded) among those whose level was known."""

    component: str
    samples: int
    availability: float | None
    """None when every sample was `unknown`, or there were none."""
    unknown_samples: int


class ResourceUse(msgspec.Struct, frozen=True, kw_only=True):
    """A host resource in percent over the window: the mean of its samples and the
    highest one."""

    resource: str
    """`cpu`, `memory` or `disk`."""
    target: str
    """The mount point for `disk`, else ""."""
    samples: int
    avg_percent: float | None
    peak_percent: float | None


class PerformanceSummary(msgspec.Struct, frozen=True, kw_only=True):
    """The platform's performance summary over [since_ms, until_ms]."""

    since_ms: int
    until_ms: int
    step_ms: int
    """Bucket width the figures were read at (rollup tiers answer for long windows)."""
    overall: Figures
    operations: list[OperationFigures]
    availability: Availability | None
    """The host's overall health level; None without samples."""
    components: list[Availability]
    resources: list[ResourceUse]


class ErrorGroupRow(msgspec.Struct, frozen=True, kw_only=True):
    """One error group among the window's top groups."""

    id: int
    title: str
    error_type: str
    state: str
    severity: str
    events: int
    """Events in the window."""
    total: int
    """Events since the group was first seen."""
    first_seen_ms: int
    last_seen_ms: int
    components: list[str]
    regressions: int
    """Times it regressed (came back after being resolved) in the window."""


class ErrorPatterns(msgspec.Struct, frozen=True, kw_only=True):
    """Error events of the window, grouped."""

    events: int
    groups: int
    new_groups: int
    regressions: int
    top: list[ErrorGroupRow]
    spikes: list[Spike]
    per_component: list[ComponentRate]
    per_hour: list[tuple[int, int]]
    """(hour start, events), hours with events only."""


class AlertCounts(msgspec.Struct, frozen=True, kw_only=True):
    """Transitions of alerts of one name and severity in the window."""

    alertname: str
    severity: str
    fired: int
    resolved: int
    acknowledged: int
    escalated: int
    mean_time_to_acknowledge_s: float | None
    mean_time_to_resolve_s: float | None


class ChannelDeliveries(msgspec.Struct, frozen=True, kw_only=True):
    """Delivery attempts to one channel in the window, by outcome."""

    channel: str
    sent: int
    failed: int
    """Attempts that failed and were retried."""
    gave_up: int
    rate_limited: int


class AlertStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """What the alerts did in the window, and how much noise was kept back.

    `suppressed` holds the escalator's running totals (silence, inhibition, grouping,
    flapping, acknowledged): the database keeps them as counters since the first start,
    not per time, so they are not limited to the window. `suppressed_rate_limit` is.
    """

    fired: int
    resolved: int
    acknowledged: int
    escalated: int
    mean_time_to_acknowledge_s: float | None
    mean_time_to_resolve_s: float | None
    firing_now: int
    by_alert: list[AlertCounts]
    notifications_sent: int
    suppressed_rate_limit: int
    channels: list[ChannelDeliveries]
    suppressed: dict[str, int]
    notifications_total: int
    """Notifications decided since the first start (the escalator's counter)."""
    truncated: bool
    """More history rows than were read: the figures cover the newest part only."""


class ChartLine(msgspec.Struct, frozen=True):
    """One line of a chart: (timestamp_ms, value) points, oldest first."""

    label: str
    points: list[tuple[int, float]]


class Chart(msgspec.Struct, frozen=True, kw_only=True):
    """A chart the HTML report draws; its lines may be empty (no data)."""

    section: str
    """The section it belongs to (`performance`, `errors`)."""
    title: str
    unit: str
    step_ms: int
    lines: list[ChartLine]


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """Everything `ttamond report` shows, in the order it shows it."""

    host: str
    since_ms: int
    until_ms: int
    generated_ms: int
    performance: PerformanceSummary
    errors: ErrorPatterns
    alerts: AlertStatistics
    carbon: CarbonReport | None
    """None when nothing carbon-related was recorded in the window."""
    engagement: EngagementMetrics
    charts: list[Chart]
