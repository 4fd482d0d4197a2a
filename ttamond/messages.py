"""Every message that crosses the bus: frozen, tagged msgspec structs and their union."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import msgspec

from ttamond.alerts.groups import NotificationGroup
from ttamond.alerts.lifecycle import AlertRecord
from ttamond.alerts.silences import Silence

Labels = tuple[tuple[str, str], ...]
"""Sorted (key, value) pairs: hashable, so a series key can be a dict key."""

MetricKind = Literal["gauge", "counter"]


def now_ms() -> int:
    """Wall-clock time in integer milliseconds, the timestamp unit of every sample."""
    return time.time_ns() // 1_000_000


def labels(**pairs: str) -> Labels:
    """Build a canonical label tuple from keyword arguments."""
    return tuple(sorted(pairs.items()))


class Message(msgspec.Struct, frozen=True, tag_field="type", kw_only=True):
    """Base of every bus message; the tag names the concrete type on the wire."""


class MetricPoint(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One value of one series. Not a bus message on its own: it travels in a batch.
    Untracked by the cycle collector (it holds only strings and numbers): batches
    of thousands would otherwise make every collection longer."""

    name: str
    value: float
    labels: Labels = ()
    kind: MetricKind = "gauge"
    unit: str = ""
    timestamp_ms: int = 0
    """0: the batch's timestamp. Reported samples carry their own."""


class MetricBatch(Message, frozen=True, tag="metric_batch"):
    """Points read together by one source at one instant."""

    source: str
    timestamp_ms: int
    points: tuple[MetricPoint, ...]


class ProbeFailed(Message, frozen=True, tag="probe_failed"):
    """A probe could not read the world; stored and shown like any reading."""

    source: str
    timestamp_ms: int
    error: str


ActorStateName = Literal["starting", "running", "backing-off", "failed", "stopped"]


class ActorStateChanged(Message, frozen=True, tag="actor_state_changed"):
    """The supervisor moved an actor to a new state."""

    actor: str
    state: ActorStateName
    restarts: int
    timestamp_ms: int
    error: str = ""


class StoreEvent(Message, frozen=True, tag="store_event"):
    """Something a person should know about, stored in the events table: the store's
    own (recovery, torn spool) or an actor's (container started, died, OOM-killed)."""

    kind: str
    timestamp_ms: int
    detail: str
    source: str = "store"


# What TTA components report (the ingestion API). Every message names the component
# and the environment it comes from; a missing timestamp means "when received".

Environment = Literal["dev", "prototype", "prod"]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
ShortText = Annotated[str, msgspec.Meta(max_length=256)]
Text = Annotated[str, msgspec.Meta(max_length=16_384)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Count = Annotated[int, msgspec.Meta(ge=0)]
ContextValue = str | int | float | bool | None
Severity = Literal["debug", "info", "warning", "error", "critical"]
SEVERITIES: tuple[Severity, ...] = ("debug", "info", "warning", "error", "critical")


ComponentName = Annotated[str, msgspec.Meta(min_length=1, max_length=64,
                                           pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class Reported(Message, frozen=True, kw_only=True):
    """Base of every message a component sends."""

    component: ComponentName
    environment: Environment
    timestamp_ms: int = 0


class Sample(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """One reported value of one series (untracked by the cycle collector, like
    MetricPoint: it cannot be part of a cycle)."""

    name: Name
    value: float
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    kind: MetricKind = "gauge"
    unit: ShortText = ""
    timestamp_ms: int = 0


class MetricSamples(Reported, frozen=True, tag="metrics", forbid_unknown_fields=True):
    """Samples of the component's own series."""

    samples: Annotated[list[Sample], msgspec.Meta(max_length=100_000)]


class MonitoringStarted(Reported, frozen=True, tag="monitoring_started",
                        forbid_unknown_fields=True):
    """A component began a monitoring session (the platform's `MonitoringSession`)."""

    session_id: Name
    version: ShortText = ""
    host: ShortText = ""
    pid: Count | None = None
    heartbeat_interval: Annotated[float, msgspec.Meta(gt=0)] = 30.0


class MonitoringStopped(Reported, frozen=True, tag="monitoring_stopped",
                        forbid_unknown_fields=True):
    """A component ended its monitoring session."""

    session_id: Name
    reason: ShortText = ""


class Heartbeat(Reported, frozen=True, tag="heartbeat", forbid_unknown_fields=True):
    """A live session is still alive."""

    session_id: Name


class AIMetrics(Reported, frozen=True, tag="ai_metrics", forbid_unknown_fields=True):
    """One AI model invocation."""

    model: Name
    inference_time_ms: NonNegative
    operation: ShortText = ""
    tokens_in: Count = 0
    tokens_out: Count = 0
    gpu_utilization: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    energy_joules: NonNegative | None = None
    success: bool = True


class DatabaseOperation(Reported, frozen=True, tag="db_operation", forbid_unknown_fields=True):
    """One database operation (Neo4j, Redis, SQL, ...)."""

    database: Name
    operation: Name
    duration_ms: NonNegative
    rows: Count = 0
    success: bool = True


class NetworkActivity(Reported, frozen=True, tag="network", forbid_unknown_fields=True):
    """Network traffic over an interval, or one request."""

    protocol: Name
    endpoint: ShortText = ""
    bytes_sent: Count = 0
    bytes_received: Count = 0
    latency_ms: NonNegative | None = None
    websocket_connections: Count | None = None


class StackFrame(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One frame of a stack trace, innermost last."""

    module: ShortText
    function: ShortText
    filename: Annotated[str, msgspec.Meta(max_length=1024)] = ""
    lineno: Count = 0
    in_app: bool = True
    """The application's own code, not a library's: only these shape the fingerprint."""
    vars: dict[str, ShortText] = msgspec.field(default_factory=dict)


class ErrorEvent(Reported, frozen=True, tag="error", forbid_unknown_fields=True):
    """An error a component met (the platform's `ErrorEvent`)."""

    error_type: Name
    message: Text
    severity: Severity = "error"
    stack: Annotated[list[StackFrame], msgspec.Meta(max_length=256)] = msgspec.field(
        default_factory=list
    )
    context: dict[str, ContextValue] = msgspec.field(default_factory=dict)
    user_session_id: ShortText | None = None
    release: ShortText = ""
    """The component's version, for version-aware regressions."""
    fingerprint: ShortText | None = None
    """Set by the client to group by its own rule instead of the daemon's."""


class EngagementEvent(Reported, frozen=True, tag="engagement", forbid_unknown_fields=True):
    """A therapy-session engagement event; stored by the engagement actor."""

    event: Name
    session_id: ShortText | None = None
    user_id: ShortText | None = None
    properties: dict[str, ContextValue] = msgspec.field(default_factory=dict)


ReportedMessage = (
    MetricSamples | MonitoringStarted | MonitoringStopped | Heartbeat | AIMetrics
    | DatabaseOperation | NetworkActivity | ErrorEvent | EngagementEvent
)


# What the daemon makes of reports, inside the process.

class ErrorRecorded(Message, frozen=True, tag="error_recorded"):
    """A scrubbed, fingerprinted error event, ready to be grouped and stored."""

    event: ErrorEvent
    fingerprint: str
    title: str
    """The normalised message: what the group is called."""
    received_ms: int
    critical: bool = False


class ErrorGroupStateSet(Message, frozen=True, tag="error_group_state_set"):
    """A person resolved, ignored or reopened an error group."""

    group_id: int
    state: Literal["unresolved", "resolved", "ignored"]
    resolved_in: str = ""
    timestamp_ms: int = 0
    fingerprint: str = ""


class CriticalErrorRaised(Message, frozen=True, tag="critical_error_raised"):
    """An error that must reach a person now: severity critical, or from a component
    critical to therapy sessions. For the alert escalator; stored as an event."""

    fingerprint: str
    title: str
    component: str
    environment: str
    severity: Severity
    timestamp_ms: int


class BatchBegun(Message, frozen=True, tag="batch_begun"):
    """The next `count` messages are one client batch: written once, however often the
    client sends it (a reply lost with a restarting daemon makes it send again)."""

    batch_id: str
    count: int


class AIInvocationRecorded(Message, frozen=True, tag="ai_invocation_recorded"):
    """One AI invocation kept as a row, for the carbon report's per-model figures
    (its series points alone lose the invocation once rolled up)."""

    invocation: AIMetrics
    received_ms: int


class CarbonSessionEnded(Message, frozen=True, tag="carbon_session_ended"):
    """A per-operation carbon session, stopped or expired, with what it was charged."""

    session_id: str
    operation: str
    component: str
    model: str
    pid: int | None
    started_ms: int
    stopped_ms: int
    state: Literal["stopped", "expired"]
    energy_kwh: float
    emissions_kg: float
    method: str


CheckStatus = Literal["ok", "warn", "crit"]


class CheckCompleted(Message, frozen=True, tag="check_completed"):
    """One run of one health check."""

    check: str
    component: str
    status: CheckStatus
    latency_ms: float
    message: str
    timestamp_ms: int
    values: dict[str, float] = msgspec.field(default_factory=dict)


class ComponentEvent(Message, frozen=True, tag="component_event"):
    """A lifecycle or engagement report kept as an event row (scrubbed already)."""

    kind: str
    component: str
    environment: str
    timestamp_ms: int
    detail: dict[str, Any]


AlertSeverity = Literal["info", "warning", "critical"]
AlertStatus = Literal["firing", "resolved"]


class AlertNotice(msgspec.Struct, frozen=True, kw_only=True):
    """One alert as a notification channel sees it."""

    fingerprint: str
    """Stable id of the alert's label set (its identity, used for deduplication)."""
    labels: dict[str, str]
    """Always has `alertname`, `severity` and `instance`; rules add their own."""
    annotations: dict[str, str]
    """`summary` always; often `description` and `runbook_url`."""
    status: AlertStatus
    starts_ms: int
    ends_ms: int = 0
    """When it resolved; 0 while firing."""
    value: float | None = None
    priority: str = "P3"
    """P1 (page now) .. P4, from severity and whether the component is critical to
    therapy sessions."""
    acknowledged: bool = False
    generator_url: str = ""


NotificationReason = Literal[
    "firing", "resolved", "repeat", "escalation", "sync", "test", "channel_failing"
]


class Notification(Message, frozen=True, tag="notification"):
    """What the alert escalator asks the notifier to deliver to one channel.

    For an Alertmanager channel the reason is `sync`: `alerts` holds every firing alert
    and those resolved since the last sync, re-sent periodically with a fresh `endsAt`.
    """

    id: str
    """Unique per notification; repeated on each delivery attempt."""
    channel: str
    reason: NotificationReason
    group_key: str
    group_labels: dict[str, str]
    alerts: tuple[AlertNotice, ...]
    created_ms: int
    level: int = 0
    """The escalation level (0 for the first) that sent it."""

    @property
    def status(self) -> AlertStatus:
        """`firing` when any alert in it fires, else `resolved`."""
        return "firing" if any(a.status == "firing" for a in self.alerts) else "resolved"


DeliveryOutcome = Literal["sent", "failed", "gave_up", "rate_limited"]


class DeliveryAttempted(Message, frozen=True, tag="delivery_attempted"):
    """One try to deliver a notification to a channel: the delivery log's row."""

    notification_id: str
    channel: str
    reason: NotificationReason
    group_key: str
    attempt: int
    """1 for the first try."""
    outcome: DeliveryOutcome
    """`failed`: will retry; `gave_up`: the last try failed; `rate_limited`: not sent."""
    timestamp_ms: int
    error: str = ""
    fingerprints: tuple[str, ...] = ()
    duration_ms: float = 0.0


class ChannelHealthChanged(Message, frozen=True, tag="channel_health_changed"):
    """A channel started failing (consecutive deliveries gave up) or works again."""

    channel: str
    failing: bool
    consecutive_failures: int
    error: str
    timestamp_ms: int


class AlertSaved(Message, frozen=True, tag="alert_saved"):
    """An alert's whole state after a change; `transition` names a state change
    (pending, firing, resolved, acknowledged, escalated) for the history."""

    record: AlertRecord
    transition: str
    timestamp_ms: int


class AlertForgotten(Message, frozen=True, tag="alert_forgotten"):
    """A pending alert whose condition stopped holding before it fired."""

    fingerprint: str
    timestamp_ms: int


class SilenceSaved(Message, frozen=True, tag="silence_saved"):
    """A silence created, or expired early (its end moved to now)."""

    silence: Silence
    timestamp_ms: int


class NotificationGroupSaved(Message, frozen=True, tag="notification_group_saved"):
    """What a channel was last told about one group of alerts."""

    group: NotificationGroup
    timestamp_ms: int


class NotificationGroupForgotten(Message, frozen=True, tag="notification_group_forgotten"):
    """A group with nothing left to notify."""

    channel: str
    group_key: str
    timestamp_ms: int


class AlertCountersSaved(Message, frozen=True, tag="alert_counters_saved"):
    """The escalator's running totals (notifications sent, suppressed by reason)."""

    counters: dict[str, int]
    timestamp_ms: int


class ErrorGroupChanged(Message, frozen=True, tag="error_group_changed"):
    """An error group was opened, or a resolved one regressed (for the error rules)."""

    change: Literal["new_group", "regression"]
    fingerprint: str
    title: str
    component: str
    timestamp_ms: int


class EngagementRecorded(Message, frozen=True, tag="engagement_recorded"):
    """A play event as stored: pseudonymised ids, allow-listed properties, no free text."""

    component: str
    environment: str
    timestamp_ms: int
    event: str
    pseudonym: str | None
    session: str | None
    name: str | None = None
    value: float | None = None
    chapter: str | None = None
    arc: str | None = None
    extra: dict[str, ContextValue] = msgspec.field(default_factory=dict)
    """Other allow-listed properties ([privacy] engagement_fields), scrubbed."""


class AuditRecorded(Message, frozen=True, tag="audit_recorded"):
    """A privacy operation for the hash-chained audit trail (ttamond/audit.py)."""

    action: str
    actor: str
    detail: dict[str, Any]
    timestamp_ms: int


ErasureScope = Literal["subject", "engagement", "all"]


class PersonalDataErased(Message, frozen=True, tag="personal_data_erased"):
    """Delete personal data: one person's rows (every pseudonym they may have), or all
    engagement rows, or every row that can hold a pseudonym. The store overwrites the
    deleted content, audits the erasure in the same transaction, and empties the WAL."""

    scope: ErasureScope
    pseudonyms: tuple[str, ...]
    actor: str
    timestamp_ms: int


class StoredTextRedacted(Message, frozen=True, tag="stored_text_redacted"):
    """The privacy scan found personal data in stored text: the store replaces each cell
    with its scrubbed text (secure delete, WAL emptied) and audits the hit."""

    cells: tuple[tuple[str, int, str, str], ...]
    """(table, rowid, column, scrubbed text)."""
    kinds: dict[str, int]
    timestamp_ms: int


AnyMessage = (
    MetricBatch | ProbeFailed | ActorStateChanged | StoreEvent | ErrorRecorded
    | ErrorGroupStateSet | CriticalErrorRaised | ComponentEvent | BatchBegun
    | AIInvocationRecorded | CarbonSessionEnded | Notification | DeliveryAttempted
    | ChannelHealthChanged | AlertSaved | AlertForgotten | SilenceSaved
    | NotificationGroupSaved | NotificationGroupForgotten | AlertCountersSaved
    | ErrorGroupChanged | EngagementRecorded | AuditRecorded | PersonalDataErased
    | StoredTextRedacted
)

message_decoder = msgspec.json.Decoder(AnyMessage)
message_encoder = msgspec.json.Encoder()
