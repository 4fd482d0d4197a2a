"""What every probe is: a named reader of MetricPoints that raises ProbeError."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Protocol

import msgspec

from ttamond.messages import MetricKind, MetricPoint


class ProbeError(Exception):
    """The probe could not read; str() is a message a person can act on."""


class ProbeUnavailable(ProbeError):
    """What the probe reads is not there at all (no GPU driver, no container engine).

    The collector reports it once, then retries rarely and quietly.
    """


class FieldInfo(msgspec.Struct, frozen=True):
    """One series a probe produces: its kind, unit, labels and meaning."""

    kind: MetricKind
    unit: str
    labels: tuple[str, ...]
    description: str


class Probe(Protocol):
    """A synchronous reader. A probe with `blocking = False` must be quick (it runs on
    the event loop); one with `blocking = True` (network or SDK calls) runs on a worker
    thread."""

    fields: ClassVar[Mapping[str, FieldInfo]]
    blocking: ClassVar[bool]

    def read(self) -> list[MetricPoint]:
        """Read once. Raises ProbeError when the world cannot be read."""
        ...
