"""Messages are frozen, tagged, and one decoder takes any of them back."""

from __future__ import annotations

import msgspec
import pytest

from ttamond.messages import (
    ActorStateChanged,
    MetricBatch,
    MetricPoint,
    ProbeFailed,
    StoreEvent,
    labels,
    message_decoder,
    message_encoder,
)


@pytest.mark.parametrize(
    "message",
    [
        MetricBatch(source="collector:host", timestamp_ms=1, points=(
            MetricPoint("host_cpu_percent", 12.5, labels(cpu="0"), "gauge", "percent"),)),
        ProbeFailed(source="collector:gpu", timestamp_ms=2, error="NVML not found"),
        ActorStateChanged(actor="store", state="failed", restarts=6, timestamp_ms=3, error="x"),
        StoreEvent(kind="database_recovered", timestamp_ms=4, detail="moved"),
    ],
)
def test_round_trip_through_the_tagged_union(message: object) -> None:
    encoded = message_encoder.encode(message)
    assert message_decoder.decode(encoded) == message


def test_the_tag_names_the_type_and_bad_input_is_one_clear_error() -> None:
    assert b'"type":"probe_failed"' in message_encoder.encode(
        ProbeFailed(source="s", timestamp_ms=1, error="e"))
    with pytest.raises(msgspec.ValidationError, match=r"Invalid value 'nope' - at `\$.type`"):
        message_decoder.decode(b'{"type": "nope"}')
    with pytest.raises(msgspec.ValidationError, match=r"Expected `int`, got `str` - at `\$.timestamp_ms`"):
        message_decoder.decode(b'{"type": "probe_failed", "source": "s", "timestamp_ms": "1", "error": ""}')


def test_messages_are_frozen() -> None:
    event = StoreEvent(kind="k", timestamp_ms=1, detail="d")
    with pytest.raises(AttributeError):
        event.kind = "other"  # type: ignore[misc]


def test_labels_are_canonical() -> None:
    assert labels(b="2", a="1") == (("a", "1"), ("b", "2"))
