"""The errors actor: sends critical errors straight on to the alert escalator."""

from __future__ import annotations

import logging

import trio

from ttamond.bus import Bus, Subscription
from ttamond.messages import CriticalErrorRaised, ErrorRecorded
from ttamond.receipts import Ingested

log = logging.getLogger(__name__)


class ErrorsActor:
    """Reads every recorded error (grouping itself happens in the store's transaction,
    where the group's row is) and raises `CriticalErrorRaised` for those that must
    reach a person now: severity critical, or from a component critical to therapy
    sessions. The raise is stored as an event too, so it is visible before any
    escalator subscribes to it."""

    def __init__(self, mailbox: Subscription[ErrorRecorded], bus: Bus) -> None:
        self.mailbox = mailbox
        self.bus = bus
        self.critical = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Forward until cancelled."""
        task_status.started()
        async for recorded in self.mailbox:
            if not recorded.critical:
                continue
            event = recorded.event
            raised = CriticalErrorRaised(
                fingerprint=recorded.fingerprint, title=recorded.title,
                component=event.component, environment=event.environment,
                severity=event.severity, timestamp_ms=event.timestamp_ms or recorded.received_ms,
            )
            self.critical += 1
            log.warning("critical error in %s: %s", event.component, recorded.title)
            await self.bus.publish(raised)
            await self.bus.publish(Ingested(messages=(raised,)))
