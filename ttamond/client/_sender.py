"""The sender thread: takes buffered records, ingests them, backs off while the daemon is away."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import msgspec

from ttamond.client._batch import (
    Outgoing,
    Record,
    dropped_report,
    encode_records,
    ingest_arguments,
    pack,
)
from ttamond.client._buffer import Buffer
from ttamond.client._transport import Connection, ServiceError, ServiceUnavailable
from ttamond.messages import Environment

log = logging.getLogger("ttamond.client")

Ack = Literal["durable", "accepted"]

RETRY_INITIAL = 0.5
RETRY_MAX = 10.0
MIN_REQUEST_BYTES = 16 * 1024
MAX_LOGGED_ERRORS = 256
"""Distinct rejection texts logged; past that, rejections are only counted."""

WAIT_CODES = frozenset(("not_stored", "busy", "unavailable", "not_available"))
"""Error replies that say "later": the records are kept and sent again."""
UNSUPPORTED_CODES = frozenset(("unknown_command", "unsupported_version"))
"""Error replies from a daemon that does not take ingestion (yet): keep buffering."""
TOO_LARGE_CODES = frozenset(("request_too_large", "batch_too_large"))


class _Rejection(msgspec.Struct, frozen=True):
    index: int
    error: str = "rejected"


class _IngestResult(msgspec.Struct, frozen=True):
    accepted: int = 0
    rejected: list[_Rejection] = msgspec.field(default_factory=list)


class Sender:
    """Delivers a Buffer to the daemon from a daemon thread.

    Never raises into the recording threads. A connection failure or a "later" reply
    gives the records back and waits (0.5 s doubling to 10 s) before trying again;
    records the daemon refuses are counted and not sent again, with one warning per
    distinct reason. Drops are reported once the daemon takes records again.
    """

    def __init__(
        self, buffer: Buffer, path: Path, *, component: str, environment: Environment,
        ack: Ack, batch_size: int, flush_interval: float, request_bytes: int, timeout: float,
        periodic: Callable[[float], float],
    ) -> None:
        self.buffer = buffer
        self.path = path
        self.component = component
        self.environment = environment
        self.ack = ack
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.request_bytes = request_bytes
        self.timeout = timeout
        self.periodic = periodic
        """Called on every wake with the monotonic time: queues what is due (heartbeats,
        counter totals) and returns seconds until something is due again."""
        self.sent = 0
        self.rejected = 0
        self.last_error = ""
        self.failing = False
        self._connection = Connection(path, timeout=timeout)
        self._retry_at = 0.0
        self._delay = RETRY_INITIAL
        self._dropped_reported = 0
        self._unsent: tuple[Record, int, list[str]] | None = None
        """The records of requests that failed (first record, how many) and their batch
        ids: sent again as the same batches, so the daemon can tell a batch it already
        wrote (the reply was lost) and write it once."""
        self._logged_errors: set[str] = set()
        self._flushes = threading.Condition()
        self._flush_asked = 0
        self._flush_done = 0
        self._flush_ok = False
        self._stopping = False
        self._thread = self._new_thread()

    @property
    def connected(self) -> bool:
        """Whether the sender holds a connection to a daemon that takes its records."""
        return self._connection.is_open and not self.failing

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def flush(self, timeout: float) -> bool:
        """Ask the thread to deliver everything now, back-off or not, and wait for it.

        True when the buffer was empty afterwards; False when an attempt failed, the
        thread is not running, or `timeout` passed first.
        """
        deadline = time.monotonic() + timeout
        with self._flushes:
            self._flush_asked += 1
            ticket = self._flush_asked
        self.buffer.wake.set()
        with self._flushes:
            while self._flush_done < ticket:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._flushes.wait(min(remaining, 0.1))
            return self._flush_ok

    def stop(self, timeout: float) -> bool:
        """Flush, then end the thread; True when everything was delivered."""
        deadline = time.monotonic() + timeout
        delivered = self.flush(timeout)
        self._stopping = True
        self.buffer.wake.set()
        if self._thread.is_alive():
            self._thread.join(max(0.0, deadline - time.monotonic()))
        return delivered

    def restart_after_fork(self) -> None:
        """In a forked child: drop the parent's connection and run a thread of its own."""
        self._connection = Connection(self.path, timeout=self.timeout)
        self._flushes = threading.Condition()
        self._flush_asked = self._flush_done = 0
        if not self._stopping:
            self._thread = self._new_thread()
            self._thread.start()

    def _new_thread(self) -> threading.Thread:
        return threading.Thread(target=self._run, name="ttamond-client", daemon=True)

    def _run(self) -> None:
        while not self._stopping:
            now = time.monotonic()
            try:
                wait = min(self.flush_interval, self.periodic(now))
                if self.failing and self._retry_at > now:
                    wait = min(wait, self._retry_at - now)
                self.buffer.wake.wait(wait)
                self.buffer.wake.clear()
                self._cycle()
            except Exception:
                # The thread is the monitor's only way out: a bug in one cycle must not
                # end delivery for the life of the process. Logged, then tried again.
                log.exception("ttamond client: sender cycle failed")
                self._back_off("sender cycle failed (see log)")
        self._connection.close()

    def _cycle(self) -> None:
        with self._flushes:
            ticket = self._flush_asked
        urgent = ticket > self._flush_done
        # Again after the wait: a flush must carry what became due while it slept.
        self.periodic(time.monotonic())
        delivered = False
        if urgent or not self.failing or time.monotonic() >= self._retry_at:
            delivered = self._drain()
        if urgent:
            with self._flushes:
                self._flush_done = ticket
                self._flush_ok = delivered and self.buffer.pending() == 0
                self._flushes.notify_all()

    def _drain(self) -> bool:
        """Send batches until the buffer is empty (True) or an attempt fails (False).
        Bounded, so a producer faster than the daemon cannot hold it here forever."""
        rounds = self.buffer.capacity // self.batch_size + 2
        for _ in range(rounds):
            if not self.buffer.records and self.buffer.dropped <= self._dropped_reported:
                return self.buffer.pending() == 0
            # Connect before taking records: no encoding work while the daemon is away.
            try:
                self._connection.connect()
            except ServiceUnavailable as exc:
                self._back_off(str(exc))
                return False
            limit, ids, report = self.batch_size, None, None
            unsent, self._unsent = self._unsent, None
            records = self.buffer.records
            if unsent is not None and records and records[0] is unsent[0]:
                # The same records, encoded the same way, make the same batches.
                limit, ids = unsent[1], unsent[2]
            else:
                report = self._dropped_report()
            batch = self.buffer.take(limit)
            try:
                if not self._deliver(batch, report, ids):
                    return False
            finally:
                self.buffer.settle(len(batch))
        return self.buffer.pending() == 0

    def _dropped_report(self) -> Outgoing | None:
        dropped = self.buffer.dropped
        if dropped <= self._dropped_reported:
            return None
        return dropped_report(dropped, component=self.component, environment=self.environment,
                              timestamp_ms=time.time_ns() // 1_000_000)

    def _deliver(self, batch: list[Record], report: Outgoing | None,
                 ids: list[str] | None = None) -> bool:
        outgoing, refused = encode_records(batch, component=self.component,
                                           environment=self.environment,
                                           limit=self.request_bytes)
        for reason, count in refused:
            self._count_rejected(reason, count)
        if report is not None:
            outgoing.insert(0, report)
        requests = pack(outgoing, self.request_bytes)
        if ids is None or len(ids) != len(requests):
            ids = [uuid.uuid4().hex for _ in requests]
        for number, request in enumerate(requests):
            undelivered = self._send(request, ids[number])
            if undelivered:
                later = [message for rest in requests[number + 1:] for message in rest]
                records = [record for message in undelivered + later
                           for record in message.records]
                if undelivered is request and records:
                    self._unsent = (records[0], len(records), ids[number:])
                self.buffer.give_back(records)
                return False
        return True

    def _send(self, request: list[Outgoing], batch_id: str | None = None) -> list[Outgoing]:
        """Ingest one request; returns the messages to send again (none on success)."""
        arguments = ingest_arguments(request, self.ack, batch_id or uuid.uuid4().hex)
        try:
            result = self._connection.request_encoded("ingest", arguments)
        except ServiceUnavailable as exc:
            self._back_off(str(exc))
            return request
        except ServiceError as exc:
            return self._refused(request, exc, len(arguments))
        self._recovered()
        self._count(request, result)
        return []

    def _refused(self, request: list[Outgoing], error: ServiceError, size: int) -> list[Outgoing]:
        if error.code in WAIT_CODES:
            self._back_off(f"{error.code}: {error.message}")
            return request
        if error.code in UNSUPPORTED_CODES:
            self._back_off(f"the daemon at {self.path} does not take ingestion "
                           f"({error.code}: {error.message})")
            return request
        if error.code in TOO_LARGE_CODES:
            # The daemon's limit is lower than ours: halve ours and encode again, which
            # splits big messages too; at the floor, split the request itself.
            smaller = max(MIN_REQUEST_BYTES, min(self.request_bytes, size // 2))
            # Encoded before the limit last came down, a request may still exceed it;
            # re-encoding splits it, unless it is one record (which then is refused).
            splittable = sum(len(message.records) for message in request) > 1
            if smaller < self.request_bytes or (size > self.request_bytes and splittable):
                self.request_bytes = smaller
                return self._resend(request)
            if len(request) > 1:
                half = len(request) // 2
                undelivered = self._send(request[:half])
                if undelivered:
                    return undelivered + request[half:]
                return self._send(request[half:])
        # Anything else refuses these records for good: sending them again would meet
        # the same answer and hold back everything behind them.
        self._recovered()
        for message in request:
            self._reject(f"{error.code}: {error.message}", message)
        return []

    def _resend(self, request: list[Outgoing]) -> list[Outgoing]:
        """Encode a request's records again under the current limit and send them; the
        drop report, which carries no record, is offered again with the next batch."""
        records = [record for message in request for record in message.records]
        outgoing, refused = encode_records(records, component=self.component,
                                           environment=self.environment,
                                           limit=self.request_bytes)
        for reason, count in refused:
            self._count_rejected(reason, count)
        requests = pack(outgoing, self.request_bytes)
        for number, part in enumerate(requests):
            undelivered = self._send(part)
            if undelivered:
                return undelivered + [m for rest in requests[number + 1:] for m in rest]
        return []

    def _count(self, request: list[Outgoing], result: object) -> None:
        try:
            outcome = msgspec.convert(result, _IngestResult)
        except msgspec.ValidationError as exc:
            self.last_error = f"unexpected ingest result: {exc}"
            outcome = _IngestResult()
        refused = {r.index: _reason(r.error) for r in outcome.rejected
                   if 0 <= r.index < len(request)}
        for index, message in enumerate(request):
            if index in refused:
                self._reject(refused[index], message)
            elif message.dropped_total:
                self._announce_drops(message.dropped_total)
            else:
                self.sent += message.count

    def _announce_drops(self, total: int) -> None:
        log.warning(
            "ttamond client %s: %d record(s) dropped because the buffer of %d was full "
            "(reported as ttamond_client_dropped_total)",
            self.component, total - self._dropped_reported, self.buffer.capacity,
        )
        self._dropped_reported = total

    def _reject(self, reason: str, message: Outgoing) -> None:
        if message.dropped_total:
            # Not a record of the application's: never offer it again, or a daemon that
            # refuses it would be asked on every batch.
            self._dropped_reported = message.dropped_total
        self._count_rejected(reason, message.count)

    def _count_rejected(self, reason: str, count: int) -> None:
        self.rejected += count
        self.last_error = reason
        if reason in self._logged_errors or len(self._logged_errors) >= MAX_LOGGED_ERRORS:
            return
        self._logged_errors.add(reason)
        log.warning("ttamond client %s: the daemon refuses records: %s "
                    "(counted, not sent again; this reason is not logged again)",
                    self.component, reason)

    def _back_off(self, reason: str) -> None:
        self.last_error = reason
        if not self.failing:
            log.warning("ttamond client %s: cannot deliver: %s; buffering up to %d records "
                        "and retrying", self.component, reason, self.buffer.capacity)
        else:
            log.debug("ttamond client %s: retry in %.1f s: %s", self.component, self._delay,
                      reason)
        self.failing = True
        self._retry_at = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, RETRY_MAX)

    def _recovered(self) -> None:
        if self.failing:
            log.info("ttamond client %s: delivering to %s again", self.component, self.path)
        self.failing = False
        self._delay = RETRY_INITIAL


def _reason(error: str) -> str:
    """A rejection's text without the message's index (`[3].protocol: ...`), so the same
    problem reads the same wherever it was in its batch."""
    if error.startswith("["):
        closing = error.find("]")
        if closing > 0 and error[1:closing].isdigit():
            error = error[closing + 1:].lstrip(".")
    return error
