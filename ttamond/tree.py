"""The actor tree: which actors a config runs, how each is built, and the live ones."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

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
from ttamond.bus import Overflow, Subscription
from ttamond.collectors import CollectorPlan, collector_plans
from ttamond.config import Config, IngestConfig
from ttamond.health.components import inhibited
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
from ttamond.overview import heartbeat_states
from ttamond.probes.base import ProbeError
from ttamond.receipts import Ingested
from ttamond.store.queries import retention_of
from ttamond.supervisor import ChildSpec
from ttamond.systemd import inherited_sockets, pick_socket

if TYPE_CHECKING:
    from ttamond.actors.carbon import CarbonActor
    from ttamond.actors.web import WebActor
    from ttamond.daemon import Daemon

log = logging.getLogger(__name__)

LATEST_CAPACITY = 16
ERRORS_CAPACITY = 1024
ANALYTICS_STATE = "analytics-detectors.msgpack"
"""The analytics actor's detectors, in the state directory (ttamond/analytics/persist.py)."""
HEALTH_CAPACITY = 1024
ANALYTICS_CAPACITY = 256


class ActorTree:
    """The supervisor's children for a config, built on the daemon's shared parts (bus,
    paths, stats), with each kind's mailbox and its running actor kept here: status
    and commands read the actors, and a restarted actor finds its mailbox again."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        config = daemon.config
        self.latest: LatestActor | None = None
        self.web: WebActor | None = None
        self.carbon: CarbonActor | None = None
        self.store_mailbox: Subscription[StoreInput] = daemon.bus.subscribe(
            "store",
            (MetricBatch, ProbeFailed, ActorStateChanged, StoreEvent, Ingested,
             DeliveryAttempted, ChannelHealthChanged),
            policy=Overflow.BLOCK,
            capacity=config.store.queue_capacity,
        )
        self.latest_mailbox = daemon.bus.subscribe(
            "latest", (MetricBatch, ProbeFailed, Ingested), policy=Overflow.DROP_OLDEST,
            capacity=LATEST_CAPACITY,
        )
        self.errors_mailbox = daemon.bus.subscribe(
            "errors", (ErrorRecorded, ErrorGroupStateSet), policy=Overflow.BLOCK,
            capacity=ERRORS_CAPACITY,
        )
        self.health_mailbox = daemon.bus.subscribe(
            "health", (CheckCompleted,), policy=Overflow.BLOCK, capacity=HEALTH_CAPACITY,
        )
        self.health: HealthActor | None = None
        # Drop-oldest: the detector reads its own output's bus, and under load it may
        # skip batches (counted on the subscription) rather than hold up the metrics.
        self.analytics_mailbox = daemon.bus.subscribe(
            "analytics", (MetricBatch, Ingested), policy=Overflow.DROP_OLDEST,
            capacity=ANALYTICS_CAPACITY)
        self.analytics: AnalyticsActor | None = None
        self.checks: dict[str, CheckActor] = {}
        # Socket activation hands the control socket over once per process: taken here,
        # once, so every restart of the control actor serves on it.
        self.inherited_control = pick_socket(inherited_sockets(), "control")

    def specs(self, config: Config) -> list[ChildSpec]:
        """The children to run for `config`, in start order."""
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
        specs += self.daemon.alerting.specs(config)
        return specs

    @staticmethod
    def section(config: Config, actor: str) -> Any:
        """The settings an actor runs with: it is restarted on reload when they change."""
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
                database=self.daemon.paths.database,
                spool=self.daemon.paths.spool,
                mailbox=self.store_mailbox,
                stats=self.daemon.store_stats,
                shutdown_grace=config.supervisor.shutdown_grace * 0.8,
                error_events_per_group=config.errors.events_per_group,
            )
            await actor.run(task_status=task_status)

        return run

    async def _run_latest(self, *, task_status: trio.TaskStatus[None]) -> None:
        self.latest = LatestActor(self.latest_mailbox)
        await self.latest.run(task_status=task_status)

    async def _run_errors(self, *, task_status: trio.TaskStatus[None]) -> None:
        await ErrorsActor(self.errors_mailbox, self.daemon.bus,
                          database=self.daemon.paths.database).run(task_status=task_status)

    def _run_control(self, config: Config) -> Callable[..., Any]:
        inherited = self.inherited_control

        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            actor = ControlActor(
                self.daemon.paths.control_socket,
                self.daemon.handlers(),
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
            actor = CollectorActor(plan.name, probe, self.daemon.bus, interval=plan.interval,
                                   lag=self.daemon.lag, unavailable_retry=plan.unavailable_retry)
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

            actor = DockerEventsActor(self.daemon.bus, docker.url, timeout=docker.timeout,
                                      unavailable_retry=docker.unavailable_retry)
            await actor.run()

        return run

    def _run_web(self, config: Config) -> Callable[..., Any]:
        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            # Imported here: hypercorn and starlette cost memory a daemon without
            # [web] enabled should not pay.
            from ttamond.actors.web import WebActor
            from ttamond.web.app import create_app

            daemon = self.daemon
            stats = daemon.store_stats
            handlers = {name: handler for name, handler in daemon.handlers().items()
                        if not getattr(handler, "raw_args", False)}
            app = create_app(latest=self.latest_values, status=daemon.status,
                             ready=lambda: daemon.state == "running",
                             ingest=daemon.ingestor.ingest,
                             max_body_bytes=config.ingest.max_body_bytes,
                             token=ingest_token(config.ingest),
                             commands=handlers,  # type: ignore[arg-type]
                             database=daemon.paths.database,
                             retention=retention_of(config.store),
                             generation=lambda: (stats.batches_committed, stats.events_committed),
                             loop_lag=self._loop_lag)
            unix = (daemon.paths.runtime_dir / config.web.unix_socket
                    if config.web.unix_socket else None)
            actor = WebActor(config.web.bind, app, unix_socket=unix)
            self.web = actor
            await actor.run(task_status=task_status)

        return run

    def _run_carbon(self, config: Config) -> Callable[..., Any]:
        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            # Imported here: with [carbon] off, neither CodeCarbon nor pandas loads.
            from ttamond.actors.carbon import CarbonActor

            actor = CarbonActor(self.daemon.bus, config.carbon,
                                workdir=self.daemon.paths.state_dir / "codecarbon")
            self.carbon = actor
            try:
                await actor.run(task_status=task_status)
            finally:
                self.carbon = None

        return run

    def _run_health(self, config: Config) -> Callable[..., Any]:
        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            actor = HealthActor(
                self.health_mailbox, self.daemon.bus, config.health,
                heartbeats=lambda: heartbeat_states(self.daemon.sessions.snapshot(now_ms())),
                predict=lambda: self.daemon.forecaster.run_once(self.daemon.config))
            self.health = actor
            await actor.run(task_status=task_status)

        return run

    def _run_analytics(self, config: Config) -> Callable[..., Any]:
        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            # Kept across a crash restart with the same settings: the detectors keep
            # what they learnt (days of rhythm) rather than start over. New settings
            # take over what still applies; a new daemon reads back the saved file.
            previous = self.analytics
            actor = previous
            if actor is None or actor.settings != config.analytics:
                actor = AnalyticsActor(self.analytics_mailbox, self.daemon.bus, config.analytics,
                                       self.daemon.paths.state_dir / ANALYTICS_STATE)
                if previous is None:
                    await trio.to_thread.run_sync(actor.restore)
                else:
                    actor.adopt(previous)
                self.analytics = actor
            await actor.run(task_status=task_status)

        return run

    def _run_check(self, spec: Any) -> Callable[..., Any]:
        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            # Imported here: the check probes (h11, cryptography) cost a daemon with no
            # checks configured about 9 MB it should not pay.
            from ttamond.health.run import make_check

            check = make_check(spec, latest=self.latest_by_prefix)
            actor = CheckActor(spec, self.daemon.bus, check)
            self.checks[spec.name] = actor
            await actor.run(task_status=task_status)

        return run

    def latest_by_prefix(self, prefix: str) -> list[LatestValue]:
        """The newest values of series whose name starts with `prefix`."""
        return self.latest.query(prefix) if self.latest is not None else []

    def _loop_lag(self) -> float:
        for value in self.latest.query("ttamond_loop_lag_seconds") if self.latest else []:
            return value.value
        return 0.0

    def latest_values(self) -> list[LatestValue]:
        """The newest value of every series (for /metrics)."""
        return self.latest.query() if self.latest is not None else []

    def _run_selfmon(self, config: Config) -> Callable[..., Any]:
        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            daemon = self.daemon
            actor = SelfmonActor(daemon.bus, actors=daemon.supervisor.snapshot,
                                 store=daemon.store_stats, lag=daemon.lag,
                                 interval=config.selfmon.interval, ingest=daemon.ingestor.stats)
            await actor.run(task_status=task_status)

        return run

    def health_view(self) -> HealthView:
        """What the health monitor says now, for the alert escalator."""
        actor = self.health
        if actor is None:
            return HealthView()
        components = {name: h.level for name, h in actor.components.items()}
        owners = {c.name: c.component_name for c in self.daemon.config.health.checks}
        checks = {snap.check: (snap.state, owners.get(snap.check, snap.check))
                  for snap in actor.checks()}
        return HealthView(components, checks, inhibited(actor.components))


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
