"""Decoding a batch of reported messages: each one on its own, so one bad message costs
only itself, with an error naming its index and field path."""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

import msgspec

from ttamond.messages import MetricSamples, ReportedMessage

AckMode = Literal["durable", "accepted"]


class IngestRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The body of POST /api/v1/ingest and the args of the `ingest` command."""

    messages: list[msgspec.Raw]
    ack: AckMode = "durable"
    batch_id: Annotated[str, msgspec.Meta(min_length=8, max_length=64)] | None = None
    """Set by a client that may send the batch again: the store writes it once."""


class Rejection(msgspec.Struct, frozen=True):
    """One message refused, and why."""

    index: int
    error: str


class BatchRefused(Exception):
    """The whole batch is refused (not a batch, too many messages); `code` for replies."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


request_decoder = msgspec.json.Decoder(IngestRequest)
_message_decoder = msgspec.json.Decoder(ReportedMessage)

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
RESERVED_LABELS = frozenset({"component", "environment"})
MAX_LABELS = 16
MAX_LABEL_VALUE = 256
_TYPE = r"(?:int|float|str|bool|null|object|array|bytes)"
_TYPES = re.compile(rf"`({_TYPE}(?: \| {_TYPE})*)`")
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


def decode_request(body: bytes | msgspec.Raw) -> IngestRequest:
    """Decode the envelope; raises BatchRefused("bad_request") naming what is wrong."""
    try:
        return request_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise BatchRefused("bad_request", f"not an ingest batch: {explain(str(exc))}") from None


def decode_messages(
    raws: list[msgspec.Raw], *, now_ms: int, max_future_ms: int
) -> tuple[list[ReportedMessage], list[Rejection]]:
    """Decode and check each message; valid ones in order, and the rejections."""
    valid: list[ReportedMessage] = []
    rejected: list[Rejection] = []
    latest = now_ms + max_future_ms
    for index, raw in enumerate(raws):
        try:
            message = _message_decoder.decode(raw)
        except msgspec.DecodeError as exc:
            rejected.append(Rejection(index, f"[{index}]{explain(str(exc), joined=True)}"))
            continue
        problem = check(message, latest_ms=latest)
        if problem is not None:
            rejected.append(Rejection(index, f"[{index}]{problem}"))
            continue
        valid.append(message)
    return valid, rejected


def check(message: ReportedMessage, *, latest_ms: int) -> str | None:
    """What msgspec's types cannot say: names, labels, finite values, sane timestamps.
    Returns the problem as a path-prefixed text (`.samples[2].name: ...`), or None."""
    if not 0 <= message.timestamp_ms <= latest_ms:
        return f".timestamp_ms: {message.timestamp_ms} is {_when(message.timestamp_ms)}"
    if isinstance(message, MetricSamples):
        # A message's samples mostly repeat a few names and label sets: check each once.
        good_names: set[str] = set()
        good_labels: set[tuple[tuple[str, str], ...]] = set()
        for position, sample in enumerate(message.samples):
            if sample.name not in good_names:
                if not METRIC_NAME.fullmatch(sample.name):
                    return (f".samples[{position}].name: {sample.name!r} is not a metric name"
                            " ([a-zA-Z_:][a-zA-Z0-9_:]*)")
                good_names.add(sample.name)
            if not math.isfinite(sample.value):
                return f".samples[{position}].value: must be a finite number"
            if not 0 <= sample.timestamp_ms <= latest_ms:
                when = _when(sample.timestamp_ms)
                return f".samples[{position}].timestamp_ms: {sample.timestamp_ms} is {when}"
            if sample.labels:
                key = tuple(sample.labels.items())
                if key not in good_labels:
                    problem = _check_labels(sample.labels)
                    if problem is not None:
                        return f".samples[{position}].labels{problem}"
                    good_labels.add(key)
    return None


def _check_labels(labels: dict[str, str]) -> str | None:
    if len(labels) > MAX_LABELS:
        return f": {len(labels)} labels (at most {MAX_LABELS})"
    for name, value in labels.items():
        if name in RESERVED_LABELS:
            return f".{name}: set from the message's {name}; remove the label"
        if not LABEL_NAME.fullmatch(name) or name.startswith("__"):
            return f": {name!r} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)"
        if len(value) > MAX_LABEL_VALUE:
            return f".{name}: value longer than {MAX_LABEL_VALUE} characters"
    return None


def _when(timestamp_ms: int) -> str:
    return "negative" if timestamp_ms < 0 else "too far in the future (is the clock right?)"


def explain(raw: str, *, joined: bool = False) -> str:
    """msgspec's `Expected `float`, got `str` - at `$.duration_ms`` as
    `.duration_ms: expected float, got str` (joined) or `duration_ms: ...`."""
    found = _AT.match(raw)
    message = found.group("message") if found else raw
    path = (found.group("path") if found else None) or ""
    # Type names read best bare (`expected float, got str`), field names quoted.
    message = _TYPES.sub(r"\1", message).replace("`", "'")
    message = message[:1].lower() + message[1:]
    if joined:
        return f"{path}: {message}"
    return f"{path.lstrip('.')}: {message}" if path else message
