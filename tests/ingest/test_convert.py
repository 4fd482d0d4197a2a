"""Reported messages into the daemon's own: labels, derived series, scrubbing,
pseudonyms, critical errors; the pseudonym key file; monitoring sessions."""

from __future__ import annotations

import pytest

from ttamond.ingest.convert import Converter
from ttamond.messages import (
    AIMetrics,
    EngagementEvent,
    EngagementRecorded,
    ErrorEvent,
    ErrorRecorded,
    Heartbeat,
    MetricBatch,
    MetricSamples,
    MonitoringStarted,
    MonitoringStopped,
    NetworkActivity,
    Sample,
    StackFrame,
)
from ttamond.privacy import Scrubber
from ttamond.pseudonyms import Pseudonyms
from ttamond.sessions import Sessions

NOW = 1_800_000_000_000


@pytest.fixture
def converter() -> Converter:
    return Converter(Scrubber(["Alice Liddell"]), Pseudonyms(b"k" * 32),
                     critical_components=["player-interface"])


def test_samples_get_component_and_environment_labels(converter: Converter) -> None:
    message = MetricSamples(component="agents", environment="prod", samples=[
        Sample("tta_turns_total", 3.0, {"world": "forest"}, "counter", "", NOW - 5),
        Sample("tta_queue", 1.0)])
    batch = converter.convert(message, NOW)
    assert isinstance(batch, MetricBatch)
    first, second = batch.points
    assert first.labels == (("component", "agents"), ("environment", "prod"), ("world", "forest"))
    assert (first.kind, first.timestamp_ms) == ("counter", NOW - 5)
    assert second.timestamp_ms == NOW  # no timestamp anywhere: when received


def test_ai_invocations_become_series(converter: Converter) -> None:
    batch = converter.convert(AIMetrics(component="agents", environment="dev", model="m1",
                                        inference_time_ms=250.0, tokens_out=10,
                                        energy_joules=3.5, success=False), NOW)
    assert isinstance(batch, MetricBatch)
    values = {p.name: p.value for p in batch.points}
    assert values["tta_ai_inference_duration_seconds"] == 0.25
    assert values["tta_ai_energy_joules"] == 3.5 and values["tta_ai_inference_failed"] == 1.0
    assert "tta_ai_gpu_utilization_percent" not in values  # not reported, not invented
    assert dict(batch.points[0].labels)["model"] == "m1"


def test_errors_are_scrubbed_pseudonymised_and_fingerprinted(converter: Converter) -> None:
    event = ErrorEvent(
        component="narrative", environment="prod", error_type="ValueError",
        message="Alice Liddell (alice@example.org, +44 20 7946 0958) sent a bad choice",
        stack=[StackFrame("narrative.engine", "choose",
                          vars={"email": "alice@example.org", "password": "hunter2"})],
        context={"card": "4111 1111 1111 1111", "api_key": "abc", "turn": 7},
        user_session_id="player-session-1",
    )
    result = converter.convert(event, NOW)
    assert isinstance(result, ErrorRecorded)
    text = repr(result)
    for secret in ("Alice", "alice@example.org", "7946", "4111", "abc", "player-session-1",
                   "hunter2"):
        assert secret not in text
    assert result.event.message.startswith("<name> (<email>, <phone>)")
    assert result.event.context["turn"] == 7
    assert result.event.user_session_id == Pseudonyms(b"k" * 32).of("player-session-1")
    assert not result.critical and result.event.timestamp_ms == NOW
    again = converter.convert(event, NOW + 1)
    assert isinstance(again, ErrorRecorded) and again.fingerprint == result.fingerprint


def test_critical_by_severity_or_by_component(converter: Converter) -> None:
    def error(component: str, severity: str) -> ErrorRecorded:
        result = converter.convert(ErrorEvent(component=component, environment="prod",
                                              error_type="E", message="m",
                                              severity=severity), NOW)  # type: ignore[arg-type]
        assert isinstance(result, ErrorRecorded)
        return result

    assert error("narrative", "critical").critical
    assert error("player-interface", "warning").critical
    assert not error("narrative", "error").critical


def test_engagement_keeps_no_identifier(converter: Converter) -> None:
    event = converter.convert(EngagementEvent(component="player-interface", environment="prod",
                                              event="chapter_completed", user_id="u-77",
                                              properties={"note": "mail me at a@b.org"}), NOW)
    assert event is not None and "u-77" not in repr(event) and "a@b.org" not in repr(event)


def test_sessions_go_silent_and_stop() -> None:
    sessions = Sessions()
    sessions.apply(MonitoringStarted(component="agents", environment="dev", session_id="s1",
                                     heartbeat_interval=10.0), NOW)
    assert sessions.get("s1", NOW + 29_000).state == "active"  # type: ignore[union-attr]
    assert sessions.get("s1", NOW + 31_000).state == "silent"  # type: ignore[union-attr]
    sessions.apply(Heartbeat(component="agents", environment="dev", session_id="s1"),
                   NOW + 31_000)
    assert sessions.get("s1", NOW + 32_000).state == "active"  # type: ignore[union-attr]
    sessions.apply(MonitoringStopped(component="agents", environment="dev", session_id="s1",
                                     reason="deploy"), NOW + 40_000)
    stopped = sessions.get("s1", NOW + 40_000)
    assert stopped is not None and (stopped.state, stopped.reason) == ("stopped", "deploy")
    # A heartbeat from a session the daemon never saw start (it restarted) brings it back.
    sessions.apply(Heartbeat(component="world", environment="dev", session_id="s2"), NOW)
    assert {s.session_id: s.state for s in sessions.snapshot(NOW)} == {
        "s1": "stopped", "s2": "active"}


def test_engagement_properties_pass_an_allow_list_per_event_kind() -> None:
    converter = Converter(Scrubber(), Pseudonyms(b"k" * 32),
                          engagement_fields={"*": ["chapter"], "choice": ["choice"]})
    choice = converter.convert(EngagementEvent(
        component="narrative", environment="prod", event="choice", user_id="u-1",
        properties={"choice": "harbour", "chapter": "2", "note": "u-1 said hi"}), NOW)
    start = converter.convert(EngagementEvent(
        component="narrative", environment="prod", event="session_start", user_id="u-1",
        properties={"choice": "harbour", "chapter": "1"}), NOW)
    assert isinstance(choice, EngagementRecorded) and isinstance(start, EngagementRecorded)
    assert (choice.chapter, choice.extra) == ("2", {"choice": "harbour"})
    assert (start.chapter, start.extra) == ("1", {})
    assert converter.dropped_fields == 2  # the choice's note, the start's choice
    assert choice.pseudonym is not None and "u-1" not in repr(choice)


def test_label_values_are_scrubbed_like_text(converter: Converter) -> None:
    # Series live for months: an e-mail address in a label or an endpoint is personal
    # data kept as long as the series, so labels go through the scrubber too.
    samples = MetricSamples(component="ui", environment="prod", samples=[
        Sample("tta_views", 1.0, {"viewer": "alice@example.org", "page": "home"}),
        Sample("tta_views", 2.0, {"viewer": "alice@example.org", "page": "home"}),
    ])
    network = NetworkActivity(component="ui", environment="prod", protocol="https",
                              endpoint="/users/Alice Liddell/notes?mail=bob@example.org")
    for _ in range(2):  # the second time from the converter's cache of clean labels
        batch = converter.convert(samples, NOW)
        assert isinstance(batch, MetricBatch)
        assert {dict(p.labels)["viewer"] for p in batch.points} == {"<email>"}
        traffic = converter.convert(network, NOW)
        assert isinstance(traffic, MetricBatch)
        assert dict(traffic.points[0].labels)["endpoint"] == "/users/<name>/notes?mail=<email>"
