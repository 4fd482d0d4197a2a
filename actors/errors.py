"""The errors actor: tells the alert escalator of critical errors, new error groups and
regressions."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import trio

from ttamond.bus import Bus, Subscription
from ttamond.errors.lifecycle import GroupState, after_event
from ttamond.messages import (
    CriticalErrorRaised,
    ErrorGroupChanged,
    ErrorGroupStateSet,
    ErrorRecorded,
)
from ttamond.receipts import Ingested
from ttamond.store.readonly import open_reader

log = logging.getLogger(__name__)

MAX_GROUPS = 200_000
"""Groups whose state is remembered; beyond it the oldest are forgotten (counted), and
an event of a forgotten group reads as a new group."""


class ErrorsActor:
    """Reads every recorded error and raises what must reach a person:
    `CriticalErrorRaised` for severity critical or a component critical to therapy
    sessions, and `ErrorGroupChanged` for a new group or a regression.

    Grouping itself happens in the store's transaction, where the group's row is; this
    actor mirrors each group's state (loaded from the database at start, then kept by
    the same rule the store applies, `errors.lifecycle.after_event`). Every raise is
    stored as an event too, so it is visible before any escalator subscribes to it.
    """

    def __init__(self, mailbox: Subscription[ErrorRecorded | ErrorGroupStateSet], bus: Bus,
                 *, database: Path | None = None) -> None:
        self.mailbox = mailbox
        self.bus = bus
        self.database = database
        self.critical = 0
        self.forgotten = 0
        self.groups: dict[str, tuple[GroupState, str]] = {}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Forward until cancelled."""
        if self.database is not None:
            self.groups = await trio.to_thread.run_sync(_load_groups, self.database)
        task_status.started()
        async for message in self.mailbox:
            match message:
                case ErrorRecorded():
                    await self._recorded(message)
                case ErrorGroupStateSet(fingerprint=fp, state=state, resolved_in=version):
                    if fp:
                        self.groups[fp] = (state, version)
                case _:
                    raise TypeError(f"errors actor cannot take {type(message).__name__}")

    async def _recorded(self, recorded: ErrorRecorded) -> None:
        event = recorded.event
        ts = event.timestamp_ms or recorded.received_ms
        known = self.groups.pop(recorded.fingerprint, None)
        if known is None:
            state: GroupState = "unresolved"
            await self._raise(ErrorGroupChanged(
                change="new_group", fingerprint=recorded.fingerprint, title=recorded.title,
                component=event.component, timestamp_ms=ts))
        else:
            state = after_event(known[0], known[1], event.release)
            if state == "regressed" and known[0] == "resolved":
                log.warning("error group regressed in %s: %s", event.component, recorded.title)
                await self._raise(ErrorGroupChanged(
                    change="regression", fingerprint=recorded.fingerprint,
                    title=recorded.title, component=event.component, timestamp_ms=ts))
        self.groups[recorded.fingerprint] = (state, known[1] if known else "")
        if len(self.groups) > MAX_GROUPS:
            del self.groups[next(iter(self.groups))]
            self.forgotten += 1
        if recorded.critical:
            raised = CriticalErrorRaised(
                fingerprint=recorded.fingerprint, title=recorded.title,
                component=event.component, environment=event.environment,
                severity=event.severity, timestamp_ms=ts,
            )
            self.critical += 1
            log.warning("critical error in %s: %s", event.component, recorded.title)
            await self._raise(raised)

    async def _raise(self, message: CriticalErrorRaised | ErrorGroupChanged) -> None:
        await self.bus.publish(message)
        await self.bus.publish(Ingested(messages=(message,)))


def _load_groups(database: Path) -> dict[str, tuple[GroupState, str]]:
    if not database.exists():
        return {}
    conn = open_reader(database)
    try:
        rows = conn.execute("SELECT fingerprint, state, resolved_in FROM error_groups"
                            " ORDER BY last_seen_ms").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return {}
        raise
    finally:
        conn.close()
    return {fp: (state, resolved_in or "") for fp, state, resolved_in in rows[-MAX_GROUPS:]}
