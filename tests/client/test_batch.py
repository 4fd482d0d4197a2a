"""Records into messages and requests: every type round-trips, samples are checked as the
daemon's decoder would, and no request outgrows its limit."""

from __future__ import annotations

from typing import Any, get_args

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from ttamond.client._batch import (
    DROPPED_METRIC,
    REQUEST_OVERHEAD,
    Record,
    SampleRecord,
    dropped_report,
    encode_records,
    ingest_arguments,
    pack,
    to_sample,
)
from ttamond.ingest.decode import decode_messages
from ttamond.messages import (
    AIMetrics,
    DatabaseOperation,
    EngagementEvent,
    ErrorEvent,
    Heartbeat,
    MetricSamples,
    MonitoringStarted,
    MonitoringStopped,
    NetworkActivity,
    Reported,
    ReportedMessage,
    Sample,
    StackFrame,
)

decoder = msgspec.json.Decoder(ReportedMessage)
sample_decoder = msgspec.json.Decoder(Sample)
request_decoder = msgspec.json.Decoder(dict[str, Any])
messages_decoder = msgspec.json.Decoder(list[ReportedMessage])
LIMIT = 512 * 1024
WHO: dict[str, Any] = {"component": "narrative", "environment": "prod", "timestamp_ms": 1_700}

EVENTS: list[Reported] = [
    MonitoringStarted(**WHO, session_id="s1", version="1.2", host="h", pid=7,
                      heartbeat_interval=5.0),
    MonitoringStopped(**WHO, session_id="s1", reason="closed"),
    Heartbeat(**WHO, session_id="s1"),
    AIMetrics(**WHO, model="llama", inference_time_ms=12.5, operation="chat", tokens_in=3,
              tokens_out=9, gpu_utilization=40.0, energy_joules=1.5, success=False),
    DatabaseOperation(**WHO, database="neo4j", operation="match", duration_ms=2.0, rows=4),
    NetworkActivity(**WHO, protocol="websocket", endpoint="/play", bytes_sent=10,
                    bytes_received=20, latency_ms=1.0, websocket_connections=3),
    ErrorEvent(**WHO, error_type="KeyError", message="'x'", severity="critical",
               stack=[StackFrame(module="m", function="f", filename="/a.py", lineno=3,
                                 in_app=False)],
               context={"n": 1, "ok": True, "none": None}, user_session_id="u",
               release="1.2", fingerprint="fp"),
    EngagementEvent(**WHO, event="choice", session_id="s", user_id="p",
                    properties={"scene": "forest"}),
]


def test_every_reported_type_round_trips_through_the_daemons_decoder() -> None:
    sample: SampleRecord = ("latency", 1.5, {"route": "/play"}, "gauge", "s", 1_800)
    records: list[Record] = [*EVENTS, sample]
    outgoing, refused = encode_records(records, component="narrative", environment="prod",
                                       limit=LIMIT)
    assert refused == []
    decoded = [decoder.decode(message.encoded) for message in outgoing]
    assert decoded[: len(EVENTS)] == EVENTS
    assert decoded[-1] == MetricSamples(
        component="narrative", environment="prod",
        samples=[Sample("latency", 1.5, {"route": "/play"}, "gauge", "s", 1_800)],
    )
    sent_types = {type(message) for message in decoded}
    assert sent_types == set(get_args(ReportedMessage))


def test_an_ingest_request_carries_the_messages_the_ack_and_the_batch_id() -> None:
    outgoing, _ = encode_records(EVENTS, component="c", environment="dev", limit=LIMIT)
    arguments = request_decoder.decode(ingest_arguments(outgoing, "durable", "b" * 32))
    assert arguments["ack"] == "durable" and arguments["batch_id"] == "b" * 32
    assert messages_decoder.decode(msgspec.json.encode(arguments["messages"])) == EVENTS


def test_labels_become_strings_and_values_floats() -> None:
    sample = to_sample(("gpu", 3, {"index": 0, "busy": True}, "counter", "", 5))
    assert sample == Sample("gpu", 3.0, {"index": "0", "busy": "True"}, "counter", "", 5)


names = st.text(st.characters(codec="utf-8"), max_size=140)
texts = st.text(st.characters(codec="utf-8"), max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    name=names,
    value=st.floats(allow_nan=True, allow_infinity=True),
    labels=st.dictionaries(texts, texts, max_size=3),
    kind=st.sampled_from(["gauge", "counter", "histogram", ""]),
    unit=st.text(max_size=3) | st.text(min_size=250, max_size=260),
)
def test_sample_checks_agree_with_the_daemons_decoder(
    name: str, value: float, labels: dict[str, str], kind: str, unit: str
) -> None:
    raw = msgspec.json.encode({"name": name, "value": value, "labels": labels, "kind": kind,
                               "unit": unit, "timestamp_ms": 9})
    try:
        expected: Sample | None = sample_decoder.decode(raw)
    except msgspec.ValidationError:
        expected = None
    checked = to_sample((name, value, labels, kind, unit, 9))
    if expected is None:
        assert isinstance(checked, str)
    else:
        assert checked == expected


def test_bad_samples_are_refused_alone_and_the_rest_sent() -> None:
    records: list[Record] = [
        ("ok", 1.0, None, "gauge", "", 1),
        ("", 1.0, None, "gauge", "", 1),
        ("nan", float("nan"), None, "gauge", "", 1),
        ("text", "many", None, "gauge", "", 1),  # type: ignore[list-item]
        ("latency.ms", 1.0, None, "gauge", "", 1),
        ("surrogate", 1.0, {"scene": "\ud800"}, "gauge", "", 1),
        ("reserved", 1.0, {"component": "other"}, "gauge", "", 1),
        ("ok2", 2.0, None, "gauge", "", 1),
    ]
    outgoing, refused = encode_records(records, component="c", environment="dev", limit=LIMIT)
    reasons = [reason for reason, _ in refused]
    assert reasons[:3] == [
        "a sample name must be a string of 1 to 128 characters",
        "sample 'nan': the value must be finite",
        "sample 'text': the value is not a number",
    ]
    assert reasons[3] == ("sample 'latency.ms': name: 'latency.ms' is not a metric name "
                          "([a-zA-Z_:][a-zA-Z0-9_:]*)")
    assert reasons[4].startswith("sample 'surrogate': cannot be encoded: ")
    assert reasons[5] == ("sample 'reserved': labels.component: set from the message's "
                          "component; remove the label")
    sent = [s.name for m in outgoing for s in decoder.decode(m.encoded).samples]
    assert sent == ["ok", "ok2"]
    assert sum(message.count for message in outgoing) == 2


label_names = st.sampled_from(["route", "scene", "component", "__x", "9lives", "ok_1"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(
    st.sampled_from(["ok", "ok:sub", "bad.name", "", "x" * 129]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.dictionaries(label_names, st.text(max_size=3) | st.just("v" * 300), max_size=3),
), max_size=30))
def test_nothing_sent_is_refused_by_the_daemons_decoder(
    samples: list[tuple[str, float, dict[str, str]]],
) -> None:
    records: list[Record] = [(name, value, labels, "gauge", "", 1_000)
                             for name, value, labels in samples]
    outgoing, refused = encode_records(records, component="c", environment="dev", limit=LIMIT)
    assert sum(m.count for m in outgoing) + sum(count for _, count in refused) == len(records)
    raws = [msgspec.Raw(message.encoded) for message in outgoing]
    _, rejected = decode_messages(raws, now_ms=2_000, max_future_ms=600_000)
    assert rejected == []


def test_large_batches_split_into_messages_and_requests_under_the_limit() -> None:
    limit = 64 * 1024
    records: list[Record] = [
        (f"series_{index}", float(index), {"host": "h" * 40}, "gauge", "", index)
        for index in range(5_000)
    ]
    outgoing, refused = encode_records(records, component="c", environment="dev", limit=limit)
    assert refused == []
    assert all(len(message.encoded) + REQUEST_OVERHEAD <= limit for message in outgoing)
    requests = pack(outgoing, limit)
    assert len(requests) > 1
    for request in requests:
        assert len(ingest_arguments(request, "accepted", "b" * 32)) + 64 <= limit
    values = [sample.value for request in requests for message in request
              for sample in decoder.decode(message.encoded).samples]
    assert values == [float(index) for index in range(5_000)]


def test_a_message_larger_than_any_request_is_refused() -> None:
    huge = EngagementEvent(component="c", environment="dev", event="e",
                           properties={"blob": "x" * 20_000})
    outgoing, refused = encode_records([huge], component="c", environment="dev",
                                       limit=16 * 1024)
    assert outgoing == []
    assert refused == [("a EngagementEvent message exceeds 16384 bytes", 1)]


def test_the_drop_report_is_a_counter_sample_carrying_no_record() -> None:
    report = dropped_report(15, component="c", environment="dev", timestamp_ms=3)
    assert report.count == 0
    assert report.dropped_total == 15
    assert decoder.decode(report.encoded) == MetricSamples(
        component="c", environment="dev",
        samples=[Sample(DROPPED_METRIC, 15.0, {}, "counter", "", 3)],
    )
