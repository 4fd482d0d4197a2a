"""The errors of notification delivery: a failed try, and an unknown channel."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ttamond.notify.settings import AnyChannel


class DeliveryFailed(Exception):
    """One try to deliver a notification failed; the message is one actionable line.

    `permanent`: trying again cannot help (a 4xx answer, a refused login, a missing
    command), so the retry loop gives up at once. `retry` narrows what the next try
    sends to: an Alertmanager channel holding only the URLs that did not accept it.
    `partial`: some of the targets accepted it (it did reach somebody).
    """

    def __init__(self, message: str, *, permanent: bool = False,
                 retry: AnyChannel | None = None, partial: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry = retry
        self.partial = partial


class UnknownChannel(LookupError):
    """A channel name that no configured channel has."""

    def __init__(self, name: str, known: list[str]) -> None:
        listing = ", ".join(sorted(known)) if known else "none configured"
        super().__init__(f"unknown channel {name!r} (known: {listing})")
        self.name = name
        self.known = sorted(known)

    def __str__(self) -> str:
        # LookupError would print the repr of the argument, quotes and all.
        return str(self.args[0])


def describe(exc: BaseException) -> str:
    """The plainest words for a network or OS failure: "connection refused" rather than
    the wrapper a library put around it. Walks causes and exception groups to the first
    OS error with a reason; falls back to the exception's own text."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            # Some wrappers (trio's connect) put their own words in strerror; the
            # errno's standard text is the plain reason. Resolver errors have their
            # own negative codes, which os.strerror does not know.
            words = (os.strerror(current.errno)
                     if isinstance(current.errno, int) and current.errno > 0
                     else current.strerror)
            return words[:1].lower() + words[1:]
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(c for c in (current.__cause__, current.__context__) if c is not None)
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())
