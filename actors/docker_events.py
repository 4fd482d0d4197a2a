"""The Docker events actor: follows the engine's container events and stores the telling ones."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import docker
import docker.errors
import requests.exceptions
import trio

from ttamond.bus import Bus
from ttamond.messages import StoreEvent
from ttamond.probes.docker import engine_url, parse_time, unreachable_reason

log = logging.getLogger(__name__)

ACTIONS = frozenset({"start", "die", "oom", "health_status", "restart"})
"""Container actions worth storing; the others (create, exec, attach...) are skipped."""

_GONE = frozenset({"destroy", "remove"})

_EventKey = tuple[int, str, str]

_REMEMBERED = 4096
"""Recent events remembered to drop the ones a reconnect replays (it replays the whole
second it resumes from)."""

_HEALTH_SETTLE = 2.0
"""How long to wait for the result of a health check whose event names no status."""

_HEALTH_POLL = 0.1


class EngineUnavailable(Exception):
    """The engine cannot be reached; str() says where and why."""


class DockerEventsActor:
    """Publishes a StoreEvent for each container start, die (with its exit code), oom,
    restart and change of health-check status the engine reports.

    kind is "container_" + the action; detail is JSON with the container's name, short
    id and image, plus exit_code (die) or health (health_status). timestamp_ms is the
    engine's time of the event.

    Health: Docker reports a status only when it changes; podman reports every check
    it runs, and podman 4 names no status, so the actor asks the container for the
    result of that check (waiting up to 2 s for it). Either way a health_status event
    is stored only when the status differs from the last one stored since the
    container started.

    The engine's event stream is a blocking generator: it runs on a worker thread that
    hands each event to trio and waits while the bus applies back-pressure. Cancelling
    the actor closes the stream, which ends that thread. When the engine cannot be
    reached, or the stream ends, the actor logs it once and reconnects every
    `unavailable_retry` seconds; on reconnecting it asks for the events since the last
    one it saw, so an engine that kept its event log (podman does) loses nothing. Any
    other engine error crashes the actor for the supervisor to restart.
    """

    def __init__(
        self,
        bus: Bus,
        url: str = "",
        *,
        timeout: float = 5.0,
        unavailable_retry: float = 60.0,
    ) -> None:
        self.bus = bus
        self.url = engine_url(url)
        self.timeout = timeout
        self.unavailable_retry = unavailable_retry
        self.published = 0
        self.connections = 0
        self.unavailable = False
        self._since: int | None = None  # time (s) a reconnect replays from
        self._seen: dict[_EventKey, None] = {}  # the newest events, oldest first
        self._health: dict[str, str] = {}  # container id -> last health status stored
        self._limiter = trio.CapacityLimiter(1)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the engine until cancelled; reports started once the stream is open or
        the engine is known to be unavailable."""
        started = False
        while True:
            try:
                api, stream = await trio.to_thread.run_sync(self._open, limiter=self._limiter)
            except EngineUnavailable as exc:
                if not self.unavailable:
                    log.warning("docker events: %s (retrying every %g s)", exc,
                                self.unavailable_retry)
                self.unavailable = True
                if not started:
                    task_status.started()
                    started = True
                await trio.sleep(self.unavailable_retry)
                continue
            if self.unavailable:
                log.info("docker events: following %s again", self.url)
            self.unavailable = False
            self.connections += 1
            if not started:
                task_status.started()
                started = True
            opened_at = trio.current_time()
            try:
                await self._follow(api, stream)
            finally:
                api.close()
            log.warning("docker events: lost the event stream from %s (retrying every %g s)",
                        self.url, self.unavailable_retry)
            self.unavailable = True
            if trio.current_time() - opened_at < self.unavailable_retry:
                # A stream that ends as soon as it opens must not become a busy loop.
                await trio.sleep(self.unavailable_retry)

    def _open(self) -> tuple[Any, Any]:
        """Connect and open the event stream (worker thread). Raises EngineUnavailable."""
        api = None
        try:
            api = docker.APIClient(base_url=self.url, timeout=self.timeout)
            if self._since is None:
                # Where a later reconnect replays from; the stream covers what follows.
                self._since = int(time.time())
                stream = api.events(decode=True, filters={"type": "container"})
            else:
                stream = api.events(decode=True, filters={"type": "container"},
                                    since=self._since)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            if api is not None:
                api.close()
            reason = unreachable_reason(exc)
            if reason is None:
                raise
            raise EngineUnavailable(f"Docker engine unavailable at {self.url}: {reason}") from exc
        return api, stream

    async def _follow(self, api: Any, stream: Any) -> None:
        """Publish events until the stream ends; closes the stream when cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._close_when_cancelled, stream)
            await trio.to_thread.run_sync(self._pump, api, stream, nursery,
                                          limiter=self._limiter)
            nursery.cancel_scope.cancel()

    @staticmethod
    async def _close_when_cancelled(stream: Any) -> None:
        try:
            await trio.sleep_forever()
        finally:
            # Shuts the socket down: the worker thread's read returns and its loop ends.
            stream.close()

    def _pump(self, api: Any, stream: Any, nursery: trio.Nursery) -> None:
        """Hand each event of the stream to trio (worker thread); returns when the
        stream ends or the engine goes away."""
        try:
            for event in stream:
                trio.from_thread.run(self._handle, api, event, nursery)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            if unreachable_reason(exc) is None:
                raise
            log.debug("docker events: %s went away: %s", self.url, exc)

    async def _handle(self, api: Any, event: dict[str, Any], nursery: trio.Nursery) -> None:
        """Publish what one engine event says, unless it was seen before a reconnect."""
        time_ns = int(event.get("timeNano") or int(event.get("time") or 0) * 1_000_000_000)
        time_ns = time_ns or time.time_ns()
        actor = event.get("Actor") or {}
        container_id = str(actor.get("ID") or event.get("id") or "")
        # Docker writes "health_status: healthy"; podman writes "health_status".
        action, _, suffix = str(event.get("Action") or event.get("status") or "").partition(":")
        if self._replayed((time_ns, container_id, action + suffix), time_ns // 1_000_000_000):
            return
        if action in _GONE or action in ("start", "die"):
            self._health.pop(container_id, None)  # a started container's health starts over
        if action not in ACTIONS:
            return
        attributes = actor.get("Attributes") or {}
        detail: dict[str, object] = {
            "container": attributes.get("name", ""),
            "id": container_id[:12],
            "image": attributes.get("image") or event.get("from") or "",
        }
        if action == "die":
            detail["exit_code"] = _exit_code(attributes)
        if action != "health_status":
            await self._publish(action, time_ns, detail)
        elif status := suffix.strip() or attributes.get("health_status"):
            await self._publish_health(container_id, str(status), time_ns, detail)
        else:
            nursery.start_soon(self._resolve_health, api, container_id, time_ns, detail)

    async def _resolve_health(self, api: Any, container_id: str, time_ns: int,
                              detail: dict[str, object]) -> None:
        """Publish the result of the check an event without a status announced, once
        the container's health log holds it (or after _HEALTH_SETTLE seconds)."""
        deadline = trio.current_time() + _HEALTH_SETTLE
        while True:
            try:
                status, settled = await trio.to_thread.run_sync(
                    _health_after, api, container_id, time_ns / 1e9)
            except (docker.errors.DockerException,
                    requests.exceptions.RequestException) as exc:
                if unreachable_reason(exc) is None:
                    raise
                return  # the engine went away; the stream's end says so
            if settled or trio.current_time() >= deadline:
                break
            await trio.sleep(_HEALTH_POLL)
        await self._publish_health(container_id, status, time_ns, detail)

    async def _publish_health(self, container_id: str, status: str, time_ns: int,
                              detail: dict[str, object]) -> None:
        if self._health.get(container_id) == status:
            return
        self._health[container_id] = status
        await self._publish("health_status", time_ns, {**detail, "health": status})

    async def _publish(self, action: str, time_ns: int, detail: dict[str, object]) -> None:
        await self.bus.publish(StoreEvent(kind=f"container_{action}",
                                          timestamp_ms=time_ns // 1_000_000,
                                          detail=json.dumps(detail, sort_keys=True),
                                          source="collector:docker"))
        self.published += 1

    def _replayed(self, key: _EventKey, second: int) -> bool:
        """True for an event seen before (a reconnect replays the second it resumes
        from); remembers the others and the newest second seen."""
        if key in self._seen:
            return True
        self._seen[key] = None
        if len(self._seen) > _REMEMBERED:
            del self._seen[next(iter(self._seen))]
        if self._since is None or second > self._since:
            self._since = second
        return False


def _health_after(api: Any, container_id: str, since: float) -> tuple[str, bool]:
    """The container's health status, and whether its health log holds a check that
    ended at or after `since` (worker thread)."""
    try:
        details = api.inspect_container(container_id)
    except docker.errors.NotFound:
        return "unknown", True
    health = (details.get("State") or {}).get("Health") or {}
    ends = [parse_time(entry.get("End")) or 0.0 for entry in health.get("Log") or ()]
    return str(health.get("Status") or "none"), max(ends, default=0.0) >= since


def _exit_code(attributes: dict[str, Any]) -> int | None:
    value = attributes.get("exitCode", attributes.get("containerExitCode"))
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None
