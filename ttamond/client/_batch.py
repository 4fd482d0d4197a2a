"""Buffered records into encoded messages, and messages into size-bounded ingest requests."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, get_args

import msgspec

from ttamond.messages import Environment, MetricSamples, Name, Reported, Sample, ShortText

SampleRecord = tuple[str, float, Mapping[str, Any] | None, str, str, int]
"""What a recording call stores: name, value, labels, kind, unit, timestamp in ms.
A tuple because it is the cheapest thing to build on the caller's thread."""

Record = SampleRecord | Reported
"""One buffered record: a sample, or a message built already (an event)."""

DROPPED_METRIC = "ttamond_client_dropped_total"
SAMPLES_PER_MESSAGE = 2_000
REQUEST_OVERHEAD = 256
"""Bytes around the messages in one request line: envelope, ack, id."""

FUTURE_MS = 600_000
"""How far ahead of now a timestamp may be (the daemon's default ingest.max_future_seconds)."""
_NAME_MAX: int = get_args(Name)[1].max_length
_UNIT_MAX: int = get_args(ShortText)[1].max_length
_KINDS = frozenset(("gauge", "counter"))
_encode = msgspec.json.Encoder().encode


class Outgoing:
    """One encoded message and the buffered records it carries (given back to the buffer
    when it cannot be delivered)."""

    __slots__ = ("dropped_total", "encoded", "records")

    def __init__(self, encoded: bytes, records: list[Record], dropped_total: int = 0) -> None:
        self.encoded = encoded
        self.records = records
        self.dropped_total = dropped_total
        """Nonzero for the drop-count report, which carries no buffered record."""

    @property
    def count(self) -> int:
        """How many records it carries."""
        return len(self.records)


def to_sample(record: SampleRecord) -> Sample | str:
    """The Sample a record stands for, or why it cannot be one (its types and bounds).
    Label keys and values become strings. The daemon's own rules on names and labels
    are applied to whole messages in `encode_records`."""
    name, value, labels, kind, unit, timestamp_ms = record
    if type(name) is not str or not 1 <= len(name) <= _NAME_MAX:
        return f"a sample name must be a string of 1 to {_NAME_MAX} characters"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"sample {name!r}: the value is not a number"
    if not math.isfinite(number):
        return f"sample {name!r}: the value must be finite"
    if kind not in _KINDS:
        return f"sample {name!r}: kind must be 'gauge' or 'counter'"
    if type(unit) is not str or len(unit) > _UNIT_MAX:
        return f"sample {name!r}: unit must be a string of at most {_UNIT_MAX} characters"
    if not labels:
        texts: dict[str, str] = {}
    elif all(type(key) is str and type(item) is str for key, item in labels.items()):
        texts = labels  # type: ignore[assignment]
    else:
        texts = {str(key): str(item) for key, item in labels.items()}
    return Sample(name, number, texts, kind, unit, timestamp_ms)  # type: ignore[arg-type]


def encode_records(
    records: Sequence[Record], *, component: str, environment: Environment, limit: int
) -> tuple[list[Outgoing], list[tuple[str, int]]]:
    """Encode buffered records as messages, each at most `limit` bytes.

    Samples are grouped into MetricSamples messages; every other record is its own
    message. Returns the messages and, for records that cannot be sent, (why, how many).
    """
    samples: list[Sample] = []
    sampled: list[Record] = []
    outgoing: list[Outgoing] = []
    refused: list[tuple[str, int]] = []
    for record in records:
        if isinstance(record, tuple):
            checked = to_sample(record)
            if isinstance(checked, str):
                refused.append((checked, 1))
            else:
                samples.append(checked)
                sampled.append(record)
            continue
        try:
            encoded = _encode(record)
        except (TypeError, ValueError, OverflowError) as exc:
            refused.append((f"{type(record).__name__} cannot be encoded: {exc}", 1))
            continue
        if len(encoded) + REQUEST_OVERHEAD > limit:
            refused.append((f"a {type(record).__name__} message exceeds {limit} bytes", 1))
        else:
            outgoing.append(Outgoing(encoded, [record]))
    for start in range(0, len(samples), SAMPLES_PER_MESSAGE):
        end = start + SAMPLES_PER_MESSAGE
        _add_metrics(outgoing, refused, samples[start:end], sampled[start:end],
                     component=component, environment=environment, limit=limit)
    return outgoing, refused


def _add_metrics(
    outgoing: list[Outgoing], refused: list[tuple[str, int]], samples: list[Sample],
    records: list[Record], *, component: str, environment: Environment, limit: int,
) -> None:
    # Samples travel many to a message and the daemon refuses a whole message for one
    # bad sample, so its own check runs here first. Halving finds the samples to blame
    # (a bad name, a lone surrogate in a label) and sends the rest.
    # Imported here, in the sender thread: it builds the daemon's decoders, which the
    # application's import of the client need not wait for.
    from ttamond.ingest.decode import check

    message = MetricSamples(component=component, environment=environment, samples=samples)
    problem = check(message, latest_ms=time.time_ns() // 1_000_000 + FUTURE_MS)
    encoded = b""
    if problem is None:
        try:
            encoded = _encode(message)
        except (TypeError, ValueError) as exc:
            problem = f".samples[0]: cannot be encoded: {exc}"
    if problem is None and len(encoded) + REQUEST_OVERHEAD <= limit:
        outgoing.append(Outgoing(encoded, records))
    elif len(samples) == 1:
        detail = (problem or f".samples[0]: exceeds {limit} bytes").removeprefix(".samples[0]")
        refused.append((f"sample {samples[0].name!r}: {detail.lstrip('.: ')}", 1))
    else:
        half = len(samples) // 2
        for part in (slice(None, half), slice(half, None)):
            _add_metrics(outgoing, refused, samples[part], records[part],
                         component=component, environment=environment, limit=limit)


def dropped_report(total: int, *, component: str, environment: Environment,
                   timestamp_ms: int) -> Outgoing:
    """The message that tells the daemon how many records this client dropped in all."""
    sample = Sample(DROPPED_METRIC, float(total), {}, "counter", "", timestamp_ms)
    message = MetricSamples(component=component, environment=environment, samples=[sample])
    return Outgoing(_encode(message), [], dropped_total=total)


def pack(outgoing: Sequence[Outgoing], limit: int) -> list[list[Outgoing]]:
    """Group messages, in order, into requests of at most `limit` bytes each."""
    requests: list[list[Outgoing]] = []
    current: list[Outgoing] = []
    size = REQUEST_OVERHEAD
    for message in outgoing:
        length = len(message.encoded) + 1
        if current and size + length > limit:
            requests.append(current)
            current, size = [], REQUEST_OVERHEAD
        current.append(message)
        size += length
    if current:
        requests.append(current)
    return requests


def ingest_arguments(request: Sequence[Outgoing], ack: str, batch_id: str) -> bytes:
    """The `args` object of an ingest request, as JSON."""
    return (b'{"messages":[' + b",".join(message.encoded for message in request)
            + b'],"ack":' + _encode(ack) + b',"batch_id":' + _encode(batch_id) + b"}")
