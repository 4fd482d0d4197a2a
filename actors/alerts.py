"""The alerts actor: feeds the escalator from the bus, evaluates it on a schedule, stores
every change durably, then hands notifications to the notifier."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping

import trio

from ttamond.alerts.escalator import Escalator, Outcome
from ttamond.bus import Bus, Subscription
from ttamond.messages import (
    ActorStateChanged,
    ChannelHealthChanged,
    CriticalErrorRaised,
    ErrorGroupChanged,
    ErrorRecorded,
    Message,
    MetricBatch,
    now_ms,
)
from ttamond.receipts import Ingested, NotStored, Receipt

log = logging.getLogger(__name__)

AlertsInput = (MetricBatch | Ingested | ErrorRecorded | ErrorGroupChanged | CriticalErrorRaised
               | ActorStateChanged | ChannelHealthChanged)
ALERTS_INPUTS = (MetricBatch, Ingested, ErrorRecorded, ErrorGroupChanged, CriticalErrorRaised,
                 ActorStateChanged, ChannelHealthChanged)
PERSIST_TIMEOUT = 10.0
"""Seconds a round waits for its changes to be committed before notifying anyway: a
notification sent twice after a crash beats one never sent."""


class HealthView:
    """What the health monitor tells the escalator each round."""

    def __init__(self, components: Mapping[str, str] | None = None,
                 checks: Mapping[str, tuple[str, str]] | None = None,
                 down_dependents: Collection[str] = ()) -> None:
        self.components = dict(components or {})
        self.checks = dict(checks or {})
        self.down_dependents = set(down_dependents)


class AlertsActor:
    """Runs the escalator: takes metrics, error signals, actor and channel health from its
    mailbox, evaluates every `evaluate_every` seconds (at once after a critical error or
    a failing channel, and when a notification group falls due), and for each round
    first makes its changes durable, then publishes its notifications.

    The escalator outlives the actor (the daemon owns it), so a restart after a crash or
    a reload keeps the alert state and the metric windows.
    """

    def __init__(self, escalator: Escalator, mailbox: Subscription[AlertsInput], bus: Bus, *,
                 evaluate_every: float, health: Callable[[], HealthView] = HealthView,
                 clock: Callable[[], int] = now_ms) -> None:
        self.escalator = escalator
        self.mailbox = mailbox
        self.bus = bus
        self.evaluate_every = evaluate_every
        self.health = health
        self.clock = clock
        self.rounds = 0
        self.not_stored = 0
        """Rounds whose changes the store did not confirm in time (notified anyway)."""
        self._wake = trio.Event()
        self._lock = trio.Lock()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Consume and evaluate until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._consume)
            task_status.started()
            undelivered, self.escalator.outbox = self.escalator.outbox, []
            if undelivered:
                log.info("alerts: delivering %d notifications left undelivered at the"
                         " last stop", len(undelivered))
            for notification in undelivered:
                await self.bus.publish(notification)
            while True:
                due = await self.evaluate_once()
                wait = self.evaluate_every
                if due is not None:
                    wait = min(wait, max(0.0, (due - self.clock()) / 1000))
                with trio.move_on_after(wait):
                    await self._wake.wait()
                self._wake = trio.Event()

    def wake(self) -> None:
        """Evaluate now rather than at the next tick."""
        self._wake.set()

    async def evaluate_once(self) -> int | None:
        """One round; returns when the next notification group falls due (ms), if any."""
        async with self._lock:
            view = self.health()
            outcome = self.escalator.evaluate(self.clock(), components=view.components,
                                              checks=view.checks,
                                              down_dependents=view.down_dependents)
            self.rounds += 1
            await self._deliver(outcome)
            return outcome.next_due_ms

    async def persist(self, saves: list[Message]) -> None:
        """Store changes and wait for the commit (bounded by PERSIST_TIMEOUT).

        Raises NotStored when the store refused them or did not answer in time.
        """
        if not saves:
            return
        receipt = Receipt()
        await self.bus.publish(Ingested(messages=tuple(saves), receipt=receipt))  # type: ignore[arg-type]
        with trio.move_on_after(PERSIST_TIMEOUT):
            await receipt.wait()
            return
        raise NotStored(f"the store did not commit alert state within {PERSIST_TIMEOUT:g} s")

    async def _deliver(self, outcome: Outcome) -> None:
        # Notifications join the outbox in the same commit as the state that decided
        # them; the store takes each out once its delivery ends (Alertmanager syncs
        # are periodic and need no outbox).
        outbox = [n for n in outcome.notifications if n.reason != "sync"]
        try:
            await self.persist([*outcome.saves, *outbox])
        except NotStored as exc:
            self.not_stored += 1
            log.warning("alert state not stored (%s); notifying anyway", exc)
        for notification in outcome.notifications:
            await self.bus.publish(notification)

    async def _consume(self) -> None:
        async for message in self.mailbox:
            self.take(message)
            if isinstance(message, CriticalErrorRaised | ChannelHealthChanged):
                self._wake.set()

    def take(self, message: AlertsInput | Message) -> None:
        """Apply one bus message to the escalator's inputs."""
        escalator = self.escalator
        match message:
            case MetricBatch(timestamp_ms=ts, points=points):
                for point in points:
                    escalator.windows.add(point.name, point.labels, point.timestamp_ms or ts,
                                          point.value)
            case Ingested(messages=messages):
                for inner in messages:
                    if isinstance(inner, MetricBatch):
                        self.take(inner)
            case ErrorRecorded(event=event, received_ms=received):
                escalator.signals.count(event.component, event.timestamp_ms or received)
            case ErrorGroupChanged(change=change):
                escalator.signals.note(change, fingerprint=message.fingerprint,
                                       title=message.title, component=message.component,
                                       timestamp_ms=message.timestamp_ms)
            case CriticalErrorRaised():
                escalator.signals.note("critical", fingerprint=message.fingerprint,
                                       title=message.title, component=message.component,
                                       timestamp_ms=message.timestamp_ms)
            case ActorStateChanged(actor=actor, state=state, error=error):
                if state == "failed":
                    escalator.failed_actors[actor] = error or "restart limit reached"
                elif state == "running":
                    escalator.failed_actors.pop(actor, None)
            case ChannelHealthChanged(channel=channel, failing=failing, error=error):
                if failing:
                    escalator.failing_channels[channel] = error
                else:
                    escalator.failing_channels.pop(channel, None)
            case _:
                raise TypeError(f"alerts actor cannot take {type(message).__name__}")
