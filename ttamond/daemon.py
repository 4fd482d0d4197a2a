"""The daemon: root nursery, signals, sd_notify, reload; its actors are in ttamond/tree.py."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from ttamond import __version__
from ttamond.actors.check import CheckActor
from ttamond.actors.health import HealthActor
from ttamond.actors.latest import LatestActor
from ttamond.alerts.operations import raise_alert
from ttamond.alerts.wiring import Alerting
from ttamond.bus import Bus
from ttamond.carbon.commands import carbon_handlers
from ttamond.commands import command_handlers
from ttamond.config import Config, ConfigError, load_config
from ttamond.control import Handler, RawHandler
from ttamond.engagement.report import engagement_handlers
from ttamond.errors.commands import error_handlers
from ttamond.health.commands import health_handlers
from ttamond.health.forecast import Forecaster
from ttamond.ingest.convert import Converter
from ttamond.ingest.pipeline import Ingestor
from ttamond.logs import set_level
from ttamond.looplag import LagMeter
from ttamond.messages import (
    ActorStateChanged,
    now_ms,
)
from ttamond.overview import carbon_summary, health_summary, system_status
from ttamond.paths import Paths, resolve_paths
from ttamond.privacy import Scrubber
from ttamond.privacyops import (
    EpochPseudonyms,
    keep_keyring,
    open_keyring,
    privacy_handlers,
    privacy_settings_changed,
)
from ttamond.privacyscan import Scanner, scan_forever
from ttamond.receipts import Ingested
from ttamond.service import service_handlers
from ttamond.sessions import Sessions
from ttamond.store.queries import retention_of
from ttamond.store.stats import StoreStats
from ttamond.supervisor import (
    CriticalActorFailed,
    RestartPolicy,
    Supervisor,
)
from ttamond.systemd import Notifier, watchdog_interval
from ttamond.tree import ActorTree

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

STATUS_EVERY = 10.0
LATEST_CAPACITY = 16
ERRORS_CAPACITY = 1024
HEALTH_CAPACITY = 1024
ANALYTICS_CAPACITY = 256
EXIT_CRITICAL = 1


class ReloadStatus(msgspec.Struct):
    """The outcome of the last SIGHUP."""

    ok: bool = True
    at_ms: int = 0
    message: str = "not reloaded since start"


class Daemon:
    """One ttamond process. `main()` returns the exit status."""

    def __init__(self, config: Config, config_path: Path | None) -> None:
        self.config = config
        self.config_path = config_path
        self.paths: Paths = resolve_paths(config.paths)
        self.bus = Bus()
        self.store_stats = StoreStats()
        self.lag = LagMeter()
        self.supervisor = Supervisor(self._policy(config), on_change=self._actor_changed)
        self.notifier = Notifier()
        self.reload_status = ReloadStatus()
        self.started_ms = now_ms()
        self.state = "starting"
        self._stop = trio.Event()
        self.sessions = Sessions()
        self.ingestor: Ingestor  # opened in main(), once the state directory is locked
        self.forecaster = Forecaster(self.bus, self.paths.database)
        self.tree = ActorTree(self)
        self.alerting = Alerting(self.bus, config, self.paths.database, self.tree.health_view)

    def _open_ingestor(self) -> Ingestor:
        # The pseudonym keys live in the state directory, so this runs once it exists.
        self.keyring = open_keyring(self.paths.state_dir, self.config.privacy)
        self._pseudonyms = EpochPseudonyms(self.keyring)
        return Ingestor(self.bus, self.config.ingest, self._converter(self.config), self.sessions)

    def _converter(self, config: Config) -> Converter:
        return Converter(Scrubber(config.privacy.names), self._pseudonyms,
                         critical_components=config.errors.critical_components,
                         engagement_fields=config.privacy.engagement_fields)

    async def main(self) -> int:
        """Run until SIGTERM/SIGINT (exit 0) or a critical actor fails (exit 1)."""
        lock = self._lock_state_dir()
        try:
            self.ingestor = self._open_ingestor()
            return await self._main()
        finally:
            os.close(lock)
            self.notifier.close()

    async def _main(self) -> int:
        try:
            async with trio.open_nursery() as root:
                root.start_soon(self._handle_signals, root.cancel_scope)
                await root.start(self.supervisor.run, self.tree.specs(self.config))
                root.start_soon(keep_keyring, self.keyring, self.bus)
                root.start_soon(self._scan_privacy)
                self.state = "running"
                self.notifier.notify("READY=1", f"STATUS={self._summary()}",
                                     f"MAINPID={os.getpid()}")
                inherited = self.tree.inherited_control
                where = (f"{inherited.getsockname() or 'unnamed'} (from systemd)"
                         if inherited is not None else str(self.paths.control_socket))
                log.info("ttamond %s ready: database %s, control socket %s", __version__,
                         self.paths.database, where)
                if (every := watchdog_interval()) is not None:
                    root.start_soon(self._watchdog, every)
                if self.notifier.enabled:
                    root.start_soon(self._report_status)
                await self._stop.wait()
                await self._shutdown()
                root.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            matched, rest = group.split(CriticalActorFailed)
            if matched is None:
                raise
            failure = _first(matched)
            log.critical("%s; exiting so the service manager restarts ttamond", failure)
            self.notifier.notify(f"STATUS=failed: {failure}", "STOPPING=1")
            if rest is not None:
                raise rest from failure
            return EXIT_CRITICAL
        log.info("ttamond stopped")
        return 0

    async def _shutdown(self) -> None:
        self.state = "stopping"
        self.notifier.notify("STOPPING=1", "STATUS=stopping: flushing the store")
        log.info("stopping: flushing the store")
        with trio.move_on_after(self.config.supervisor.shutdown_grace) as scope:
            await self.supervisor.shutdown()
        if scope.cancelled_caught:
            log.error("shutdown took longer than %.1f s; stopping anyway",
                      self.config.supervisor.shutdown_grace)

    async def _handle_signals(self, root: trio.CancelScope) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    await self.reload()
                elif self.state == "starting":
                    log.info("%s during start-up: stopping", signal.Signals(signum).name)
                    root.cancel()
                else:
                    log.info("%s: stopping", signal.Signals(signum).name)
                    self._stop.set()

    async def reload(self) -> None:
        """Re-read the config file; keep the running config when the new one is bad.

        Actors whose settings changed are restarted with the new ones; settings that
        need a new process (paths, the control socket) are reported and left alone.
        """
        monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notifier.notify("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec}")
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            self.reload_status = ReloadStatus(ok=False, at_ms=now_ms(),
                                              message=f"{exc}; keeping the previous config")
            log.error("reload failed: %s; keeping the previous config", exc)
            self.notifier.notify("READY=1", f"STATUS={self._summary()} (reload failed)")
            return
        old, self.config = self.config, new
        set_level(new.logging.level)
        self.ingestor.config = new.ingest
        dropped = self.ingestor.converter.dropped_fields
        self.ingestor.converter = self._converter(new)
        self.ingestor.converter.dropped_fields = dropped
        if old.privacy != new.privacy:
            await self.bus.publish(Ingested(messages=(privacy_settings_changed(
                old.privacy, new.privacy),)))
            self.keyring.keep_for(new.privacy.keep_keys_days)
        pending = [name for name in ("paths", "control")
                   if getattr(old, name) != getattr(new, name)]
        if old.privacy.rotate_every_days != new.privacy.rotate_every_days:
            pending.append("privacy] rotate_every_days = [...")
        if old.alerts.enabled != new.alerts.enabled:
            pending.append("alerts] enabled = [...")
        old_specs = {spec.name: spec for spec in self.tree.specs(old)}
        restarted: list[str] = []
        self.supervisor.policy = self._policy(new)
        for spec in self.tree.specs(new):
            if self.tree.section(old, spec.name) != self.tree.section(new, spec.name):
                await self.supervisor.replace_child(spec)
                restarted.append(spec.name)
            old_specs.pop(spec.name, None)
        for name in old_specs:
            await self.supervisor.stop_child(name)
            restarted.append(f"-{name}")
        message = f"reloaded {self.config_path or 'defaults'}"
        if restarted:
            message += f"; restarted {', '.join(restarted)}"
        if pending:
            message += f"; changes to [{'], ['.join(pending)}] take effect at the next start"
        self.reload_status = ReloadStatus(ok=True, at_ms=now_ms(), message=message)
        log.info("%s", message)
        self.notifier.notify("READY=1", f"STATUS={self._summary()}")

    @staticmethod
    def _policy(config: Config) -> RestartPolicy:
        sup = config.supervisor
        return RestartPolicy(
            max_restarts=sup.max_restarts,
            max_seconds=sup.max_seconds,
            backoff_initial=sup.backoff_initial,
            backoff_max=sup.backoff_max,
            cooldown=sup.cooldown,
        )

    def _actor_changed(self, event: ActorStateChanged) -> None:
        # Never stall the supervisor: a full store mailbox counts a drop instead.
        self.bus.publish_nowait(event)

    # Control commands.

    def handlers(self) -> dict[str, Handler | RawHandler]:
        """Every control command, by name."""
        handlers: dict[str, Handler | RawHandler] = {}
        handlers.update(command_handlers(self))
        handlers.update(service_handlers(self))
        handlers.update(error_handlers(self.paths.database, self.bus))
        handlers.update(health_handlers(self))
        handlers.update(carbon_handlers(lambda: self.tree.carbon, self.bus, self.paths.database,
                                        lambda: self.config.carbon,
                                        lambda: retention_of(self.config.store)))
        handlers.update(self.alerting.handlers())
        handlers.update(privacy_handlers(lambda: self.keyring, self.bus, self.paths.database))
        handlers.update(engagement_handlers(self.paths.database, lambda: self.config.privacy))
        return handlers

    def health_actor(self) -> HealthActor | None:
        """The running health actor, if any."""
        return self.tree.health

    def check_actors(self) -> dict[str, CheckActor]:
        """Running check actors by check name."""
        return dict(self.tree.checks)

    def latest_view(self) -> LatestActor | None:
        """The running latest-values view, if it has started."""
        return self.tree.latest

    def status(self) -> dict[str, Any]:
        """Everything `ttamond status` shows."""
        actors = self.supervisor.snapshot()
        unhealthy = [a.name for a in actors if a.state in ("failed", "backing-off")]
        overall = self.state
        if overall == "running" and (unhealthy or self.store_stats.mode != "live"):
            overall = "degraded"
        return {
            "state": overall,
            "version": __version__,
            "pid": os.getpid(),
            "started_ms": self.started_ms,
            "uptime_s": round((now_ms() - self.started_ms) / 1000, 1),
            "config": {"path": str(self.config_path) if self.config_path else None,
                       "reload": self.reload_status},
            "paths": self.paths,
            "actors": actors,
            "store": self.store_stats,
            "bus": {"subscriptions": self.bus.stats(), "unrouted": self.bus.unrouted},
            "web": self._web_status(),
            "ingest": self.ingestor.stats if hasattr(self, "ingestor") else None,
            "carbon": carbon_summary(self.tree.carbon),
            "health": health_summary(self.tree.health),
            "alerts": self.alerting.status(),
            "privacy": self._privacy_status(),
            "analytics": ({**self.tree.analytics.summary(), "top": self.tree.analytics.scores()[:5]}
                          if self.tree.analytics is not None and self.config.analytics.enabled
                          else None),
        }

    def system_status(self) -> dict[str, Any]:
        """The platform's `SystemStatus` (see ttamond/overview.py)."""
        return system_status(daemon_state=self.status()["state"],
                             sessions=self.sessions.snapshot(now_ms()), health=self.tree.health,
                             forecasts=self.forecaster.forecasts, carbon=self.tree.carbon)

    async def _scan_privacy(self) -> None:
        self.scanner = Scanner(self.paths.database, self.config.privacy.names)
        await scan_forever(self.scanner, self.bus, every=self.config.privacy.scan_every,
                           raised=self._privacy_failure)

    def _privacy_failure(self, summary: str) -> None:
        escalator = self.alerting.escalator
        if escalator is None:
            return  # alerting is off: the log line and the audit entry say it
        raise_alert(escalator, name="PersonalDataStored", severity="critical",
                    summary=summary, component="ttamond")
        if self.alerting.actor is not None:
            self.alerting.actor.wake()

    def _privacy_status(self) -> dict[str, Any] | None:
        if not hasattr(self, "keyring"):
            return None
        scanner = getattr(self, "scanner", None)
        return {"epoch": self.keyring.epoch_at(time.time()), "keys": len(self.keyring.epochs()),
                "dropped_fields": self.ingestor.converter.dropped_fields,
                "scan_hits": scanner.hits if scanner is not None else 0}

    def _web_status(self) -> dict[str, Any] | None:
        if self.tree.web is None or self.tree.web.port is None:
            return None
        host = self.config.web.bind.rpartition(":")[0]
        unix = self.tree.web.unix_socket
        return {"url": f"http://{host}:{self.tree.web.port}/",
                "unix_socket": str(unix) if unix is not None else None}

    def _summary(self) -> str:
        status = self.status()
        running = sum(a.state == "running" for a in status["actors"])
        return (f"{status['state']}: {running}/{len(status['actors'])} actors running,"
                f" store {self.store_stats.mode}, {self.store_stats.points_committed} points")

    async def _watchdog(self, every: float) -> None:
        while True:
            self.notifier.notify("WATCHDOG=1")
            await trio.sleep(every)

    async def _report_status(self) -> None:
        while True:
            await trio.sleep(STATUS_EVERY)
            self.notifier.notify(f"STATUS={self._summary()}")

    def _lock_state_dir(self) -> int:
        for directory in (self.paths.state_dir, self.paths.runtime_dir,
                          self.paths.database.parent, self.paths.control_socket.parent):
            directory.mkdir(parents=True, exist_ok=True, mode=0o750)
        lock_path = self.paths.database.with_name(self.paths.database.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DaemonAlreadyRunning(
                f"another ttamond (pid {holder}) is using {self.paths.database}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    found: BaseException = group
    while isinstance(found, BaseExceptionGroup):
        found = found.exceptions[0]
    return found


class DaemonAlreadyRunning(Exception):
    """Another daemon holds the database's lock."""


def run_daemon(config: Config, config_path: Path | None) -> int:
    """Run the daemon in this process; returns the exit status."""
    return trio.run(Daemon(config, config_path).main)


__all__ = ["Daemon", "DaemonAlreadyRunning", "run_daemon"]
