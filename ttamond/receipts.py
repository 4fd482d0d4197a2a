"""Durable acknowledgement: a one-shot receipt the store settles once a batch is safe."""

from __future__ import annotations

import msgspec
import trio

from ttamond.messages import AnyMessage, Message


class NotStored(Exception):
    """The store could not make a batch durable (spool full, store stopped, timeout)."""


class Receipt:
    """Settled once: by the store after a commit to SQLite or an fsync into the spool,
    or with an error when neither happened."""

    __slots__ = ("_settled", "error")

    def __init__(self) -> None:
        self._settled = trio.Event()
        self.error: str | None = None

    @property
    def settled(self) -> bool:
        """Whether the store has answered."""
        return self._settled.is_set()

    def settle(self, error: str | None = None) -> None:
        """Record the outcome (first call wins) and wake the waiter."""
        if not self._settled.is_set():
            self.error = error
            self._settled.set()

    async def wait(self) -> None:
        """Wait for the outcome; raises NotStored when the batch is not durable."""
        await self._settled.wait()
        if self.error is not None:
            raise NotStored(self.error)


class Ingested(Message, frozen=True, tag="ingested"):
    """Reported messages on their way to the store, with the receipt to settle.
    Never encoded: the store unwraps it, and only the messages reach disk."""

    messages: tuple[AnyMessage, ...]
    receipt: Receipt | None = msgspec.field(default=None)
    batch_id: str | None = None
