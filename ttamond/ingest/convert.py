"""Reported messages into the daemon's own: series points, scrubbed and fingerprinted
errors, and event rows. Personal data is removed here, before anything reaches the bus."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from ttamond.errors.fingerprint import fingerprint, title
from ttamond.messages import (
    AIInvocationRecorded,
    AIMetrics,
    ComponentEvent,
    DatabaseOperation,
    EngagementEvent,
    EngagementRecorded,
    ErrorEvent,
    ErrorRecorded,
    Heartbeat,
    Labels,
    MetricBatch,
    MetricPoint,
    MetricSamples,
    MonitoringStarted,
    MonitoringStopped,
    NetworkActivity,
    ReportedMessage,
    StackFrame,
)
from ttamond.privacy import Scrubber
from ttamond.probes.base import FieldInfo

_BY = ("component", "environment")
FIELDS: dict[str, FieldInfo] = {
    "tta_ai_inference_duration_seconds": FieldInfo(
        "gauge", "seconds", (*_BY, "model", "operation"), "duration of one AI model invocation"),
    "tta_ai_tokens_in": FieldInfo("gauge", "tokens", (*_BY, "model", "operation"),
                                  "prompt tokens of one AI invocation"),
    "tta_ai_tokens_out": FieldInfo("gauge", "tokens", (*_BY, "model", "operation"),
                                   "generated tokens of one AI invocation"),
    "tta_ai_inference_failed": FieldInfo("gauge", "", (*_BY, "model", "operation"),
                                         "1 when the AI invocation failed"),
    "tta_ai_gpu_utilization_percent": FieldInfo(
        "gauge", "percent", (*_BY, "model", "operation"),
        "GPU utilisation the component reported for one AI invocation"),
    "tta_ai_energy_joules": FieldInfo("gauge", "joules", (*_BY, "model", "operation"),
                                      "energy the component reported for one AI invocation"),
    "tta_db_operation_duration_seconds": FieldInfo(
        "gauge", "seconds", (*_BY, "database", "operation"), "duration of one database operation"),
    "tta_db_operation_rows": FieldInfo("gauge", "", (*_BY, "database", "operation"),
                                       "rows one database operation returned or changed"),
    "tta_db_operation_failed": FieldInfo("gauge", "", (*_BY, "database", "operation"),
                                         "1 when the database operation failed"),
    "tta_network_sent_bytes": FieldInfo("gauge", "bytes", (*_BY, "protocol", "endpoint"),
                                        "bytes a component reported sending"),
    "tta_network_received_bytes": FieldInfo("gauge", "bytes", (*_BY, "protocol", "endpoint"),
                                            "bytes a component reported receiving"),
    "tta_network_latency_seconds": FieldInfo("gauge", "seconds", (*_BY, "protocol", "endpoint"),
                                             "network latency a component reported"),
    "tta_network_websocket_connections": FieldInfo(
        "gauge", "", (*_BY, "protocol", "endpoint"), "open WebSocket connections reported"),
}
"""The series reports are turned into, for /metrics' HELP."""

LABEL_CACHE = 4096

Converted = (MetricBatch | ErrorRecorded | ComponentEvent | AIInvocationRecorded
             | EngagementRecorded)


class PseudonymSource(Protocol):
    """Anything that maps an identifier to its pseudonym (a Keyring's current epoch, or
    the single key of `ttamond.pseudonyms`)."""

    def of(self, identifier: str) -> str: ...


class Converter:
    """Turns one reported message into what the store and the actors take."""

    def __init__(self, scrubber: Scrubber, pseudonyms: PseudonymSource, *,
                 critical_components: Iterable[str] = (),
                 engagement_fields: Mapping[str, Iterable[str]] | None = None) -> None:
        self.scrubber = scrubber
        self.pseudonyms = pseudonyms
        self.critical_components = frozenset(critical_components)
        fields = engagement_fields or {"*": ("name", "value", "chapter", "arc")}
        common = frozenset(fields.get("*", ()))
        self._allowed: dict[str, frozenset[str]] = {
            event: common | frozenset(names) for event, names in fields.items()}
        self._allowed_by_default = common
        self._clean: dict[str, str] = {}
        """Label values already scrubbed: they repeat in every sample, the scrubber's
        passes should run once per value (bounded by LABEL_CACHE, then forgotten)."""
        self._clean_sets: dict[Labels, Labels] = {}
        """The same for whole label sets of reported samples."""
        self.dropped_fields = 0
        """Engagement properties dropped by the allow-list (counted, shown in status)."""

    def convert_all(self, message: ReportedMessage, received_ms: int) -> list[Converted]:
        """Every message of the daemon's for `message`: an AI invocation is both series
        points and a row; a heartbeat is nothing (the sessions view keeps it)."""
        converted = self.convert(message, received_ms)
        if converted is None:
            return []
        if isinstance(message, AIMetrics):
            return [converted, AIInvocationRecorded(invocation=message, received_ms=received_ms)]
        return [converted]

    def convert(self, message: ReportedMessage, received_ms: int) -> Converted | None:
        """The daemon's main message for `message`, or None for heartbeats (kept in
        memory by the sessions view, not stored)."""
        ts = message.timestamp_ms or received_ms
        base = (("component", message.component), ("environment", message.environment))
        match message:
            case MetricSamples():
                # Samples of one message mostly share their labels: sort each set once.
                merged: dict[tuple[tuple[str, str], ...], Labels] = {}
                points = []
                for s in message.samples:
                    own = tuple(s.labels.items())
                    labels = merged.get(own)
                    if labels is None:
                        clean = self._clean_sets.get(own)
                        if clean is None:
                            clean = self._remember(own)
                        labels = merged[own] = tuple(sorted((*clean, *base)))
                    points.append(MetricPoint(s.name, s.value, labels, s.kind, s.unit,
                                              s.timestamp_ms or ts))
                return MetricBatch(source=f"ingest:{message.component}", timestamp_ms=ts,
                                   points=tuple(points))
            case AIMetrics():
                return self._ai(message, base, ts)
            case DatabaseOperation():
                labels = _with(base, database=self._label(message.database),
                               operation=self._label(message.operation))
                return _batch(message.component, ts, labels, [
                    ("tta_db_operation_duration_seconds", message.duration_ms / 1000, "seconds"),
                    ("tta_db_operation_rows", float(message.rows), ""),
                    ("tta_db_operation_failed", float(not message.success), ""),
                ])
            case NetworkActivity():
                labels = _with(base, protocol=message.protocol,
                               endpoint=self._label(message.endpoint))
                values = [("tta_network_sent_bytes", float(message.bytes_sent), "bytes"),
                          ("tta_network_received_bytes", float(message.bytes_received), "bytes")]
                if message.latency_ms is not None:
                    values.append(("tta_network_latency_seconds", message.latency_ms / 1000,
                                   "seconds"))
                if message.websocket_connections is not None:
                    values.append(("tta_network_websocket_connections",
                                   float(message.websocket_connections), ""))
                return _batch(message.component, ts, labels, values)
            case ErrorEvent():
                return self.error(message, received_ms)
            case MonitoringStarted() | MonitoringStopped():
                detail = {"session_id": message.session_id}
                if isinstance(message, MonitoringStarted):
                    kind = "monitoring_started"
                    detail.update(version=message.version, host=message.host)
                else:
                    kind = "monitoring_stopped"
                    detail["reason"] = self.scrubber.scrub(message.reason)
                return ComponentEvent(kind=kind, component=message.component,
                                      environment=message.environment, timestamp_ms=ts,
                                      detail=detail)
            case EngagementEvent():
                return self._engagement(message, ts)
            case Heartbeat():
                return None
        raise TypeError(f"cannot convert {type(message).__name__}")

    def error(self, event: ErrorEvent, received_ms: int) -> ErrorRecorded:
        """Scrub an error event, fingerprint it, and say whether it is critical."""
        scrub = self.scrubber.scrub
        clean = ErrorEvent(
            component=event.component, environment=event.environment,
            timestamp_ms=event.timestamp_ms or received_ms, error_type=event.error_type,
            message=scrub(event.message), severity=event.severity,
            stack=[StackFrame(f.module, f.function, f.filename, f.lineno, f.in_app,
                              self._scrub_vars(f.vars)) for f in event.stack],
            context=self.scrubber.scrub_mapping(event.context),
            user_session_id=self._pseudonym(event.user_session_id),
            release=event.release, fingerprint=event.fingerprint,
        )
        critical = event.severity == "critical" or event.component in self.critical_components
        # Fingerprint the scrubbed event: the same path with different personal data
        # then groups together, and no group is named after a person.
        return ErrorRecorded(event=clean, fingerprint=fingerprint(clean), title=title(clean),
                             received_ms=received_ms, critical=critical)

    def _ai(self, message: AIMetrics, base: Labels, ts: int) -> MetricBatch:
        labels = _with(base, model=message.model, operation=message.operation)
        values = [
            ("tta_ai_inference_duration_seconds", message.inference_time_ms / 1000, "seconds"),
            ("tta_ai_tokens_in", float(message.tokens_in), "tokens"),
            ("tta_ai_tokens_out", float(message.tokens_out), "tokens"),
            ("tta_ai_inference_failed", float(not message.success), ""),
        ]
        if message.gpu_utilization is not None:
            values.append(("tta_ai_gpu_utilization_percent", message.gpu_utilization, "percent"))
        if message.energy_joules is not None:
            values.append(("tta_ai_energy_joules", message.energy_joules, "joules"))
        return _batch(message.component, ts, labels, values)

    def _remember(self, labels: Labels) -> Labels:
        if len(self._clean_sets) >= LABEL_CACHE:
            self._clean_sets.clear()
        clean = self._clean_sets[labels] = tuple((k, self._label(v)) for k, v in labels)
        return clean

    def _label(self, value: str) -> str:
        """A label value with personal data replaced: labels name series, and a series
        is kept for months, so an e-mail address in an endpoint must not reach it."""
        found = self._clean.get(value)
        if found is None:
            if len(self._clean) >= LABEL_CACHE:
                self._clean.clear()
            found = self._clean[value] = self.scrubber.scrub(value)
        return found

    def _scrub_vars(self, variables: dict[str, str]) -> dict[str, str]:
        # As a mapping, so a variable named like a secret is hidden whole.
        if not variables:
            return variables
        return {key: str(value) for key, value in self.scrubber.scrub_mapping(variables).items()}

    def _engagement(self, message: EngagementEvent, ts: int) -> EngagementRecorded:
        # The allow-list first: a property nobody asked for is dropped, not scrubbed,
        # whatever it holds; what is kept is scrubbed all the same.
        allowed = self._allowed.get(message.event, self._allowed_by_default)
        kept = {k: v for k, v in message.properties.items() if k in allowed}
        self.dropped_fields += len(message.properties) - len(kept)
        clean = self.scrubber.scrub_mapping(kept)
        value = clean.pop("value", None)
        return EngagementRecorded(
            component=message.component, environment=message.environment, timestamp_ms=ts,
            event=message.event, pseudonym=self._pseudonym(message.user_id),
            session=self._pseudonym(message.session_id),
            name=_text(clean.pop("name", None)),
            value=float(value) if isinstance(value, int | float) and not isinstance(
                value, bool) else None,
            chapter=_text(clean.pop("chapter", None)), arc=_text(clean.pop("arc", None)),
            extra=clean)

    def _pseudonym(self, identifier: str | None) -> str | None:
        return None if identifier is None else self.pseudonyms.of(identifier)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _with(base: Labels, **extra: str) -> Labels:
    return tuple(sorted((*base, *((k, v) for k, v in extra.items() if v))))


def _batch(component: str, ts: int, labels: Labels,
           values: list[tuple[str, float, str]]) -> MetricBatch:
    return MetricBatch(
        source=f"ingest:{component}", timestamp_ms=ts,
        points=tuple(MetricPoint(name, value, labels, "gauge", unit)
                     for name, value, unit in values),
    )
