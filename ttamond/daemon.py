"""The daemon: root nursery, signals, sd_notify, reload, and the actor tree."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from ttamond import __version__
from ttamond.actors.alerts import HealthView
from ttamond.actors.analytics import AnalyticsActor
from ttamond.actors.check import CheckActor
from ttamond.actors.collector import CollectorActor
from ttamond.actors.control import ControlActor
from ttamond.actors.errors import ErrorsActor
from ttamond.actors.health import HealthActor
from ttamond.actors.latest import LatestActor, LatestValue
from ttamond.actors.selfmon import SelfmonActor
from ttamond.actors.store import StoreActor, StoreInput
from ttamond.alerts.wiring import Alerting
from ttamond.bus import Bus, Overflow, Subscription
from ttamond.carbon.commands import carbon_handlers
from ttamond.collectors import CollectorPlan, collector_plans
from ttamond.commands import command_handlers
from ttamond.config import Config, ConfigError, IngestConfig, load_config
from ttamond.control import Handler, RawHandler
from ttamond.errors.commands import error_handlers
from ttamond.health.commands import health_handlers
from ttamond.health.components import inhibited
from ttamond.health.forecast import Forecaster
from ttamond.ingest.convert import Converter
from ttamond.ingest.pipeline import Ingestor
from ttamond.logs import set_level
from ttamond.looplag import LagMeter
from ttamond.messages import (
    ActorStateChanged,
    ChannelHealthChanged,
    CheckCompleted,
    DeliveryAttempted,
    ErrorGroupStateSet,
    ErrorRecorded,
    MetricBatch,
    ProbeFailed,
    StoreEvent,
    now_ms,
)
from ttamond.overview import carbon_summary, health_summary, heartbeat_states, system_status
from ttamond.paths import Paths, resolve_paths
from ttamond.privacy import Scrubber
from ttamond.probes.base import ProbeError
from ttamond.pseudonyms import Pseudonyms, load_or_create_key
from ttamond.receipts import Ingested
from ttamond.service import service_handlers
from ttamond.sessions import Sessions
from ttamond.store.queries import retention_of
from ttamond.store.stats import StoreStats
from ttamond.supervisor import (
    ChildSpec,
    CriticalActorFailed,
    RestartPolicy,
    Supervisor,
)
from ttamond.systemd import Notifier, watchdog_interval

if TYPE_CHECKING:
    from ttamond.actors.carbon import CarbonActor
    from ttamond.actors.web import WebActor

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
        self._latest: LatestActor | None = None
        self._web: WebActor | None = None
        self._carbon: CarbonActor | None = None
        self._stop = trio.Event()
        self.sessions = Sessions()
        self.ingestor: Ingestor  # opened in main(), once the state directory is locked
        self._store_mailbox: Subscription[StoreInput] = self.bus.subscribe(
            "store",
            (MetricBatch, ProbeFailed, ActorStateChanged, StoreEvent, Ingested,
             DeliveryAttempted, ChannelHealthChanged),
            policy=Overflow.BLOCK,
            capacity=config.store.queue_capacity,
        )
        self._latest_mailbox = self.bus.subscribe(
            "latest", (MetricBatch, ProbeFailed, Ingested), policy=Overflow.DROP_OLDEST,
            capacity=LATEST_CAPACITY,
        )
        self._errors_mailbox = self.bus.subscribe(
            "errors", (ErrorRecorded, ErrorGroupStateSet), policy=Overflow.BLOCK,
            capacity=ERRORS_CAPACITY,
        )
        self._health_mailbox = self.bus.subscribe(
            "health", (CheckCompleted,), policy=Overflow.BLOCK, capacity=HEALTH_CAPACITY,
        )
        self._health: HealthActor | None = None
        # Drop-oldest: the detector reads its own output's bus, and under load it may
        # skip batches (counted on the subscription) rather than hold up the metrics.
        self._analytics_mailbox = self.bus.subscribe(
            "analytics", (MetricBatch, Ingested), policy=Overflow.DROP_OLDEST,
            capacity=ANALYTICS_CAPACITY)
        self._analytics: AnalyticsActor | None = None
        self._checks: dict[str, CheckActor] = {}
        self.forecaster = Forecaster(self.bus, self.paths.database)
        self.alerting = Alerting(self.bus, config, self.paths.database, self._health_view)

    def _open_ingestor(self) -> Ingestor:
        # The pseudonym key lives in the state directory, so this runs once it exists.
        key = load_or_create_key(self.paths.state_dir / "pseudonym.key")
        self._pseudonyms = Pseudonyms(key)
        return Ingestor(self.bus, self.config.ingest, self._converter(self.config), self.sessions)

    def _converter(self, config: Config) -> Converter:
        return Converter(Scrubber(config.privacy.names), self._pseudonyms,
                         critical_components=config.errors.critical_components)

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
                await root.start(self.supervisor.run, self._specs(self.config))
                self.state = "running"
                self.notifier.notify("READY=1", f"STATUS={self._summary()}",
                                     f"MAINPID={os.getpid()}")
                log.info("ttamond %s ready: database %s, control socket %s", __version__,
                         self.paths.database, self.paths.control_socket)
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
        self.ingestor.converter = self._converter(new)
        pending = [name for name in ("paths", "control")
                   if getattr(old, name) != getattr(new, name)]
        if old.alerts.enabled != new.alerts.enabled:
            pending.append("alerts] enabled = [...")
        old_specs = {spec.name: spec for spec in self._specs(old)}
        restarted: list[str] = []
        self.supervisor.policy = self._policy(new)
        for spec in self._specs(new):
            if self._section(old, spec.name) != self._section(new, spec.name):
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

    # The actor tree.

    def _specs(self, config: Config) -> list[ChildSpec]:
        specs = [
            ChildSpec("store", self._run_store(config), critical=True),
            ChildSpec("latest", self._run_latest),
            ChildSpec("errors", self._run_errors),
            ChildSpec("control", self._run_control(config), critical=True),
        ]
        specs += [ChildSpec(plan.name, self._run_collector(plan))
                  for plan in collector_plans(config)]
        docker = config.collectors.docker
        if docker.enabled and docker.events:
            specs.append(ChildSpec("docker:events", self._run_docker_events(config)))
        if config.selfmon.enabled:
            specs.append(ChildSpec("selfmon", self._run_selfmon(config)))
        if config.web.enabled:
            specs.append(ChildSpec("web", self._run_web(config)))
        if config.carbon.enabled:
            specs.append(ChildSpec("carbon", self._run_carbon(config)))
        if config.health.enabled:
            specs.append(ChildSpec("health", self._run_health(config)))
            specs += [ChildSpec(f"check:{check.name}", self._run_check(check))
                      for check in config.health.checks]
        if config.analytics.enabled:
            specs.append(ChildSpec("analytics", self._run_analytics(config)))
        specs += self.alerting.specs(config)
        return specs

    @staticmethod
    def _section(config: Config, actor: str) -> Any:
        sections: dict[str, Any] = {
            "store": (config.store, config.errors.events_per_group),
            "selfmon": config.selfmon,
            "web": (config.web, config.ingest),
            "docker:events": config.collectors.docker,
            "carbon": config.carbon,
            "health": config.health,
            "analytics": config.analytics,
        }
        sections.update(Alerting.sections(config))
        sections.update((f"check:{check.name}", check) for check in config.health.checks)
        sections.update((plan.name, plan.section) for plan in collector_plans(config))
        return sections.get(actor)

    def _run_store(self, config: Config) -> Callable[..., Any]:
        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            actor = StoreActor(
                config.store,
                database=self.paths.database,
                spool=self.paths.spool,
                mailbox=self._store_mailbox,
                stats=self.store_stats,
                shutdown_grace=config.supervisor.shutdown_grace * 0.8,
                error_events_per_group=config.errors.events_per_group,
            )
            await actor.run(task_status=task_status)

        return run

    async def _run_latest(self, *, task_status: trio.TaskStatus[None]) -> None:
        self._latest = LatestActor(self._latest_mailbox)
        await self._latest.run(task_status=task_status)

    async def _run_errors(self, *, task_status: trio.TaskStatus[None]) -> None:
        await ErrorsActor(self._errors_mailbox, self.bus,
                          database=self.paths.database).run(task_status=task_status)

    def _run_control(self, config: Config) -> Callable[..., Any]:
        # Socket activation hands the socket over once per process, so it is taken when
        # the first specs are built and every restart of the actor serves on it. Specs
        # built later (on reload) find nothing to take; reload never replaces this child.
        from ttamond.systemd import inherited_sockets, pick_socket

        inherited = pick_socket(inherited_sockets(), "control")

        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            actor = ControlActor(
                self.paths.control_socket,
                self._handlers(),
                mode=config.control.socket_mode,
                max_request_bytes=config.control.max_request_bytes,
                max_connections=config.control.max_connections,
                inherited=inherited,
            )
            await actor.run(task_status=task_status)

        return run

    def _run_collector(self, plan: CollectorPlan) -> Callable[..., Any]:
        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            probe = plan.make_probe()
            actor = CollectorActor(plan.name, probe, self.bus, interval=plan.interval,
                                   lag=self.lag, unavailable_retry=plan.unavailable_retry)
            try:
                await actor.run(task_status=task_status)
            finally:
                close = getattr(probe, "close", None)
                if close is not None:
                    try:
                        close()
                    except ProbeError as exc:
                        log.warning("%s: %s", plan.name, exc)

        return run

    def _run_docker_events(self, config: Config) -> Callable[..., Any]:
        docker = config.collectors.docker

        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            from ttamond.probes.docker import engine_url, missing_socket

            # Without an engine socket, wait for one rather than import the SDK (~20 MB).
            url = engine_url(docker.url)
            task_status.started()
            if missing_socket(url) is not None:
                log.info("docker events: no engine at %s; looking again every %g s",
                         url, docker.unavailable_retry)
                # A file appearing has no event to wait on: look again now and then.
                while missing_socket(url) is not None:  # noqa: ASYNC110
                    await trio.sleep(docker.unavailable_retry)
            from ttamond.actors.docker_events import DockerEventsActor

            actor = DockerEventsActor(self.bus, docker.url, timeout=docker.timeout,
                                      unavailable_retry=docker.unavailable_retry)
            await actor.run()

        return run

    def _run_web(self, config: Config) -> Callable[..., Any]:
        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            # Imported here: hypercorn and starlette cost memory a daemon without
            # [web] enabled should not pay.
            from ttamond.actors.web import WebActor
            from ttamond.web.app import create_app

            app = create_app(latest=self._latest_values, status=self.status,
                             ready=lambda: self.state == "running",
                             ingest=self.ingestor.ingest,
                             max_body_bytes=config.ingest.max_body_bytes,
                             token=ingest_token(config.ingest),
                             commands=self.alerting.handlers())
            actor = WebActor(config.web.bind, app)
            self._web = actor
            await actor.run(task_status=task_status)

        return run

    def _run_carbon(self, config: Config) -> Callable[..., Any]:
        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            # Imported here: with [carbon] off, neither CodeCarbon nor pandas loads.
            from ttamond.actors.carbon import CarbonActor

            actor = CarbonActor(self.bus, config.carbon,
                                workdir=self.paths.state_dir / "codecarbon")
            self._carbon = actor
            try:
                await actor.run(task_status=task_status)
            finally:
                self._carbon = None

        return run

    def _run_health(self, config: Config) -> Callable[..., Any]:
        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            actor = HealthActor(
                self._health_mailbox, self.bus, config.health,
                heartbeats=lambda: heartbeat_states(self.sessions.snapshot(now_ms())),
                predict=lambda: self.forecaster.run_once(self.config))
            self._health = actor
            await actor.run(task_status=task_status)

        return run

    def _run_analytics(self, config: Config) -> Callable[..., Any]:
        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            # Kept across a crash restart with the same settings: the detectors keep
            # what they learnt (days of rhythm) rather than start over.
            actor = self._analytics
            if actor is None or actor.settings != config.analytics:
                actor = AnalyticsActor(self._analytics_mailbox, self.bus, config.analytics)
                self._analytics = actor
            await actor.run(task_status=task_status)

        return run

    def _run_check(self, spec: Any) -> Callable[..., Any]:
        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            # Imported here: the check probes (h11, cryptography) cost a daemon with no
            # checks configured about 9 MB it should not pay.
            from ttamond.health.run import make_check

            check = make_check(spec, latest=self._latest_by_prefix)
            actor = CheckActor(spec, self.bus, check)
            self._checks[spec.name] = actor
            await actor.run(task_status=task_status)

        return run

    def _latest_by_prefix(self, prefix: str) -> list[LatestValue]:
        return self._latest.query(prefix) if self._latest is not None else []

    def _latest_values(self) -> list[LatestValue]:
        return self._latest.query() if self._latest is not None else []

    def _run_selfmon(self, config: Config) -> Callable[..., Any]:
        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            actor = SelfmonActor(self.bus, actors=self.supervisor.snapshot,
                                 store=self.store_stats, lag=self.lag,
                                 interval=config.selfmon.interval, ingest=self.ingestor.stats)
            await actor.run(task_status=task_status)

        return run

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

    def _handlers(self) -> dict[str, Handler | RawHandler]:
        handlers: dict[str, Handler | RawHandler] = {}
        handlers.update(command_handlers(self))
        handlers.update(service_handlers(self))
        handlers.update(error_handlers(self.paths.database, self.bus))
        handlers.update(health_handlers(self))
        handlers.update(carbon_handlers(lambda: self._carbon, self.bus, self.paths.database,
                                        lambda: self.config.carbon,
                                        lambda: retention_of(self.config.store)))
        handlers.update(self.alerting.handlers())
        return handlers

    def health_actor(self) -> HealthActor | None:
        """The running health actor, if any."""
        return self._health

    def check_actors(self) -> dict[str, CheckActor]:
        """Running check actors by check name."""
        return dict(self._checks)

    def _health_view(self) -> HealthView:
        actor = self._health
        if actor is None:
            return HealthView()
        components = {name: h.level for name, h in actor.components.items()}
        owners = {c.name: c.component_name for c in self.config.health.checks}
        checks = {snap.check: (snap.state, owners.get(snap.check, snap.check))
                  for snap in actor.checks()}
        return HealthView(components, checks, inhibited(actor.components))

    def latest_view(self) -> LatestActor | None:
        """The running latest-values view, if it has started."""
        return self._latest

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
            "carbon": carbon_summary(self._carbon),
            "health": health_summary(self._health),
            "alerts": self.alerting.status(),
            "analytics": ({**self._analytics.summary(), "top": self._analytics.scores()[:5]}
                          if self._analytics is not None and self.config.analytics.enabled
                          else None),
        }

    def system_status(self) -> dict[str, Any]:
        """The platform's `SystemStatus` (see ttamond/overview.py)."""
        return system_status(daemon_state=self.status()["state"],
                             sessions=self.sessions.snapshot(now_ms()), health=self._health,
                             forecasts=self.forecaster.forecasts, carbon=self._carbon)

    def _web_status(self) -> dict[str, Any] | None:
        if self._web is None or self._web.port is None:
            return None
        host = self.config.web.bind.rpartition(":")[0]
        return {"url": f"http://{host}:{self._web.port}/"}

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


def ingest_token(config: IngestConfig) -> str:
    """The HTTP ingest token: the token file's first line when set, else `token`.

    Raises OSError naming the file when it cannot be read.
    """
    if config.token_file:
        path = Path(config.token_file)
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise OSError(exc.errno, f"ingest.token_file {path}: {exc.strerror}") from None
    return config.token


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
