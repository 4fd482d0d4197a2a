"""The alert escalator and the notifier inside the daemon: their mailboxes, their state
across restarts and reloads, their actors, commands and status."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from ttamond.alerts.commands import alert_handlers, fatigue
from ttamond.alerts.escalator import Escalator
from ttamond.alerts.seed import seed_windows
from ttamond.bus import Bus, Overflow, Subscription
from ttamond.control import Handler
from ttamond.messages import Notification, now_ms
from ttamond.store.alerts import load_alert_state
from ttamond.store.queries import retention_of
from ttamond.supervisor import ChildSpec

if TYPE_CHECKING:
    from ttamond.actors.alerts import AlertsActor, AlertsInput, HealthView
    from ttamond.actors.notify import NotifyActor
    from ttamond.config import Config

log = logging.getLogger(__name__)

ALERTS_CAPACITY = 1024
NOTIFY_CAPACITY = 256


class Alerting:
    """Owns the escalator (alert state, metric windows) and the notifier's queues, so a
    restarted or reloaded actor carries on where the last one stopped. State is read
    from the database once, when the escalator actor first starts."""

    def __init__(self, bus: Bus, config: Config, database: Path,
                 health: Callable[[], HealthView]) -> None:
        from ttamond.actors.alerts import ALERTS_INPUTS

        self.bus = bus
        self.database = database
        self.health = health
        self.enabled = config.alerts.enabled
        self.escalator: Escalator | None = None
        self.actor: AlertsActor | None = None
        self.notifier: NotifyActor | None = None
        self._notifier_channels: object = None
        # Subscribed only when enabled at start: a mailbox nobody reads would block the
        # metrics publishers (its policy is `block`, as nothing about alerts may be lost).
        if self.enabled:
            self._mailbox: Subscription[AlertsInput] = bus.subscribe(
                "alerts", ALERTS_INPUTS, policy=Overflow.BLOCK, capacity=ALERTS_CAPACITY)
            self._notify_mailbox = bus.subscribe("notify", (Notification,),
                                                 policy=Overflow.BLOCK,
                                                 capacity=NOTIFY_CAPACITY)

    def specs(self, config: Config) -> list[ChildSpec]:
        """The escalator and notifier actors, when alerting is on."""
        if not self.enabled:
            return []
        return [ChildSpec("notify", self._run_notify(config)),
                ChildSpec("alerts", self._run_alerts(config))]

    @staticmethod
    def sections(config: Config) -> dict[str, Any]:
        """What each actor's settings are, to restart it on reload when they change."""
        return {"alerts": (config.alerts, config.notify, config.errors.critical_components),
                "notify": config.notify}

    def handlers(self) -> dict[str, Handler]:
        """The control commands."""
        return alert_handlers(lambda: self.escalator, lambda: self.actor,
                              lambda: self.notifier, self.database)

    def status(self) -> dict[str, Any] | None:
        """Firing alerts and fatigue figures for `ttamond status`."""
        if self.escalator is None:
            return None
        figures = fatigue(self.escalator, self.notifier)
        return {"firing": figures["firing"], "muted": len(figures["muted"]),
                "counters": figures["counters"],
                "rounds": self.actor.rounds if self.actor else 0}

    def _escalator_for(self, config: Config) -> Escalator:
        alertmanagers = {c.name: c.resend_every for c in config.notify.channels  # type: ignore[union-attr]
                         if c.kind == "alertmanager"}
        settings: dict[str, Any] = {
            "host": config.alerts.instance or socket.gethostname(),
            "alertmanagers": alertmanagers,
            "channels": [c.name for c in config.notify.channels],
            "therapy_critical": config.errors.critical_components,
        }
        if self.escalator is None:
            self.escalator = Escalator(config.alerts, started_ms=now_ms(), **settings)
            added = seed_windows(self.escalator.windows, self.database, now_ms=now_ms(),
                                 retention=retention_of(config.store))
            if added:
                log.info("alerts: refilled rule windows with %d stored points", added)
            state = load_alert_state(self.database)
            self.escalator.restore(state.records, state.silences, state.groups,
                                   state.counters, state.outbox)
            if state.records or state.silences:
                log.info("alerts: restored %d alerts, %d silences, %d notification groups,"
                         " %d undelivered notifications", len(state.records),
                         len(state.silences), len(state.groups), len(state.outbox))
        else:
            self.escalator.configure(config.alerts, **settings)
        return self.escalator

    def _run_alerts(self, config: Config) -> Callable[..., Any]:
        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            from ttamond.actors.alerts import AlertsActor

            escalator = await trio.to_thread.run_sync(self._escalator_for, config)
            actor = AlertsActor(escalator, self._mailbox, self.bus,
                                evaluate_every=config.alerts.evaluate_every, health=self.health)
            self.actor = actor
            try:
                await actor.run(task_status=task_status)
            finally:
                self.actor = None

        return run

    def _run_notify(self, config: Config) -> Callable[..., Any]:
        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            from ttamond.actors.notify import NotifyActor

            # Kept across restarts with the same channels, so queued notifications wait.
            if self.notifier is None or self._notifier_channels != config.notify.channels:
                self.notifier = NotifyActor(self._notify_mailbox, self.bus,
                                            config.notify.channels)
                self._notifier_channels = config.notify.channels
            await self.notifier.run(task_status=task_status)

        return run
