"""The ingestion pipeline both transports share: decode, check, make private, publish,
and wait for the store when the sender asked for a durable acknowledgement."""

from __future__ import annotations

import logging

import msgspec
import trio

from ttamond.bus import Bus
from ttamond.config import IngestConfig
from ttamond.ingest.convert import Converter
from ttamond.ingest.decode import AckMode, BatchRefused, Rejection, decode_messages
from ttamond.messages import (
    AnyMessage,
    ErrorRecorded,
    Heartbeat,
    MetricBatch,
    MonitoringStarted,
    MonitoringStopped,
    now_ms,
)
from ttamond.receipts import Ingested, NotStored, Receipt
from ttamond.sessions import Sessions

log = logging.getLogger(__name__)


class IngestResult(msgspec.Struct, frozen=True):
    """The reply to a batch: how many messages were taken, and each one refused."""

    accepted: int
    rejected: list[Rejection]
    ack: AckMode


class IngestStats(msgspec.Struct):
    """Counters for status and self-metrics."""

    batches: int = 0
    accepted: int = 0
    rejected: int = 0
    samples: int = 0
    errors: int = 0
    not_stored: int = 0
    refused_batches: int = 0
    last_rejection: str = ""


class Ingestor:
    """Takes batches from the control socket and HTTP alike.

    Each message is decoded on its own: a bad one is refused with its index and field
    path, the rest are kept. Accepted messages go to the store as one `Ingested`
    envelope, so a batch is written in one transaction; with `ack="durable"` the
    reply waits until that transaction commits (or the spool has it on disk).
    """

    def __init__(self, bus: Bus, config: IngestConfig, converter: Converter,
                 sessions: Sessions) -> None:
        self.bus = bus
        self.config = config
        self.converter = converter
        self.sessions = sessions
        self.stats = IngestStats()

    async def ingest(self, raws: list[msgspec.Raw], ack: AckMode = "durable",
                     batch_id: str | None = None) -> IngestResult:
        """Ingest one batch. Raises BatchRefused for a batch over the size limit, and
        NotStored when a durable acknowledgement cannot be given in time."""
        if len(raws) > self.config.max_messages:
            self.stats.refused_batches += 1
            raise BatchRefused(
                "batch_too_large",
                f"{len(raws)} messages in one batch; at most {self.config.max_messages}"
                " (ingest.max_messages)",
            )
        received = now_ms()
        valid, rejected = decode_messages(
            raws, now_ms=received, max_future_ms=int(self.config.max_future_seconds * 1000)
        )
        converted: list[AnyMessage] = []
        errors: list[ErrorRecorded] = []
        for message in valid:
            if isinstance(message, MonitoringStarted | MonitoringStopped | Heartbeat):
                self.sessions.apply(message, received)
            for result in self.converter.convert_all(message, received):
                converted.append(result)
                if isinstance(result, MetricBatch):
                    self.stats.samples += len(result.points)
                elif isinstance(result, ErrorRecorded):
                    self.stats.errors += 1
                    errors.append(result)
        self._count(len(valid), rejected)
        if converted:
            await self._publish(converted, errors, ack, batch_id)
        return IngestResult(accepted=len(valid), rejected=rejected, ack=ack)

    async def _publish(self, converted: list[AnyMessage], errors: list[ErrorRecorded],
                       ack: AckMode, batch_id: str | None) -> None:
        receipt = Receipt() if ack == "durable" else None
        with trio.move_on_after(self.config.ack_timeout) as scope:
            await self.bus.publish(Ingested(messages=tuple(converted), receipt=receipt,
                                            batch_id=batch_id))
            for error in errors:
                await self.bus.publish(error)
            if receipt is not None:
                try:
                    await receipt.wait()
                except NotStored:
                    self.stats.not_stored += 1
                    raise
        if scope.cancelled_caught:
            self.stats.not_stored += 1
            raise NotStored(f"the store did not take the batch within {self.config.ack_timeout:g} s"
                            " (ingest.ack_timeout); send it again")

    def _count(self, accepted: int, rejected: list[Rejection]) -> None:
        self.stats.batches += 1
        self.stats.accepted += accepted
        self.stats.rejected += len(rejected)
        if rejected:
            self.stats.last_rejection = rejected[-1].error
            log.debug("ingest: refused %d of %d messages; last: %s", len(rejected),
                      accepted + len(rejected), rejected[-1].error)
