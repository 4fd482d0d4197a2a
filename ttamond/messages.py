"""Every message that crosses the bus: frozen, tagged msgspec structs and their union."""

from __future__ import annotations

import time
from typing import Literal

import msgspec

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


class MetricPoint(msgspec.Struct, frozen=True, array_like=True):
    """One value of one series. Not a bus message on its own: it travels in a batch."""

    name: str
    value: float
    labels: Labels = ()
    kind: MetricKind = "gauge"
    unit: str = ""


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


AnyMessage = MetricBatch | ProbeFailed | ActorStateChanged | StoreEvent

message_decoder = msgspec.json.Decoder(AnyMessage)
message_encoder = msgspec.json.Encoder()
