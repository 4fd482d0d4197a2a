"""The ingest decoders under junk, truncation and generated messages (hypothesis)."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttamond.ingest.decode import BatchRefused, decode_messages, decode_request, explain
from ttamond.messages import ReportedMessage

NOW = 1_800_000_000_000
MAX_FUTURE = 600_000

names = st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True)
components = st.from_regex(r"[a-z][a-z0-9_.-]{0,15}", fullmatch=True)
environments = st.sampled_from(["dev", "prototype", "prod"])
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)

samples = st.fixed_dictionaries(
    {"name": names, "value": finite},
    optional={"labels": st.dictionaries(names.filter(lambda n: not n.startswith("__") and n
                                                     not in ("component", "environment")),
                                        st.text(max_size=20), max_size=4),
              "kind": st.sampled_from(["gauge", "counter"]),
              "timestamp_ms": st.integers(0, NOW)},
)
metric_messages = st.fixed_dictionaries({
    "type": st.just("metrics"), "component": components, "environment": environments,
    "samples": st.lists(samples, max_size=5)})
db_messages = st.fixed_dictionaries({
    "type": st.just("db_operation"), "component": components, "environment": environments,
    "database": names.filter(bool), "operation": names.filter(bool),
    "duration_ms": st.floats(0, 1e6)}, optional={"rows": st.integers(0, 10**6)})
error_messages = st.fixed_dictionaries({
    "type": st.just("error"), "component": components, "environment": environments,
    "error_type": names.filter(bool), "message": st.text(max_size=200)},
    optional={"severity": st.sampled_from(["warning", "error", "critical"]),
              "context": st.dictionaries(st.text(max_size=10),
                                         st.one_of(st.none(), st.booleans(), st.integers(),
                                                   st.text(max_size=20)), max_size=3)})
valid_messages = st.one_of(metric_messages, db_messages, error_messages)
junk_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), finite, st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=20,
)


def body(messages: list[object]) -> bytes:
    return json.dumps({"messages": messages}).encode()


@given(st.lists(valid_messages, max_size=8))
def test_valid_messages_are_all_accepted(messages: list[dict[str, object]]) -> None:
    request = decode_request(body(list(messages)))
    valid, rejected = decode_messages(request.messages, now_ms=NOW, max_future_ms=MAX_FUTURE)
    assert rejected == []
    assert len(valid) == len(messages)
    for original, decoded in zip(messages, valid, strict=True):
        again = msgspec.json.decode(msgspec.json.encode(decoded), type=ReportedMessage)
        assert again == decoded and original["component"] == decoded.component


@given(st.lists(st.one_of(valid_messages, junk_values), max_size=8))
def test_junk_costs_only_itself(messages: list[object]) -> None:
    request = decode_request(body(messages))
    valid, rejected = decode_messages(request.messages, now_ms=NOW, max_future_ms=MAX_FUTURE)
    assert len(valid) + len(rejected) == len(messages)
    for rejection in rejected:
        assert rejection.error.startswith(f"[{rejection.index}]")


@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_refused_cleanly(data: bytes) -> None:
    try:
        request = decode_request(data)
    except BatchRefused as exc:
        assert exc.code == "bad_request" and exc.message.startswith("not an ingest batch")
        return
    decode_messages(request.messages, now_ms=NOW, max_future_ms=MAX_FUTURE)


@settings(max_examples=50)
@given(st.lists(valid_messages, min_size=1, max_size=4), st.data())
def test_truncated_batches_are_refused(messages: list[object], data: st.DataObject) -> None:
    encoded = body(messages)
    cut = data.draw(st.integers(1, len(encoded) - 1))
    with pytest.raises(BatchRefused, match="not an ingest batch"):
        decode_request(encoded[:cut])


def test_field_errors_name_index_and_path() -> None:
    request = decode_request(body([
        {"type": "db_operation", "component": "x", "environment": "dev", "database": "redis",
         "operation": "get", "duration_ms": "slow"},
        {"type": "metrics", "component": "x", "environment": "dev",
         "samples": [{"name": "ok", "value": 1, "labels": {"component": "y"}}]},
        {"type": "metrics", "component": "bad component!", "environment": "dev", "samples": []},
        {"type": "metrics", "component": "x", "environment": "dev", "timestamp_ms": NOW * 2,
         "samples": []},
        {"type": "metrics", "component": "x", "environment": "dev", "samples": [],
         "extra": 1},
    ]))
    _, rejected = decode_messages(request.messages, now_ms=NOW, max_future_ms=MAX_FUTURE)
    assert [r.error for r in rejected] == [
        "[0].duration_ms: expected float, got str",
        "[1].samples[0].labels.component: set from the message's component; remove the label",
        "[2].component: expected str matching regex '^[A-Za-z0-9][A-Za-z0-9_.-]*$'",
        f"[3].timestamp_ms: {NOW * 2} is too far in the future (is the clock right?)",
        "[4]: object contains unknown field 'extra'",
    ]


def test_explain_without_a_path() -> None:
    assert explain("Expected `array`, got `int`") == "expected array, got int"
