"""one_for_one supervision with Erlang/OTP restart semantics, back-off and cool-down."""

from __future__ import annotations

import enum
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import trio

from ttamond.messages import ActorStateChanged, ActorStateName, now_ms

log = logging.getLogger(__name__)

ActorRun = Callable[..., Awaitable[Any]]
"""`async def run(*, task_status)`: calls task_status.started() once it can serve."""


class RestartType(enum.Enum):
    """When a child that ended is started again (OTP's restart types)."""

    PERMANENT = "permanent"
    """Always, whether it crashed or returned."""
    TRANSIENT = "transient"
    """Only after a crash."""
    TEMPORARY = "temporary"
    """Never."""


@dataclass(frozen=True)
class RestartPolicy:
    """Restart intensity and pacing.

    More than `max_restarts` restarts within `max_seconds` ends the child's restarts:
    a critical child then ends the supervisor, any other is marked failed and tried
    again after `cooldown` seconds.
    """

    max_restarts: int = 5
    max_seconds: float = 60.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    cooldown: float = 300.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay before restart number `attempt` (1-based) of a run of failures:
        exponential, capped, with "equal jitter" (half fixed, half random)."""
        ceiling = min(self.backoff_max, self.backoff_initial * 2.0 ** max(attempt - 1, 0))
        return ceiling / 2 + float(rng.uniform(0, ceiling / 2))


@dataclass(frozen=True)
class ChildSpec:
    """How to run and restart one actor."""

    name: str
    run: ActorRun
    restart: RestartType = RestartType.PERMANENT
    critical: bool = False


class ActorStatus(msgspec.Struct, frozen=True):
    """What `ttamond status` shows for one actor."""

    name: str
    state: ActorStateName
    restarts: int
    critical: bool
    since_ms: int
    last_error: str


class CriticalActorFailed(Exception):
    """A critical actor exhausted its restart intensity; the process must end."""

    def __init__(self, actor: str, error: str) -> None:
        super().__init__(f"critical actor {actor!r} exceeded its restart intensity: {error}")
        self.actor = actor
        self.error = error


@dataclass(eq=False)
class _Child:
    spec: ChildSpec
    state: ActorStateName = "starting"
    restarts: int = 0
    since_ms: int = field(default_factory=now_ms)
    last_error: str = ""
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)
    restart_times: deque[float] = field(default_factory=deque)
    failures_in_a_row: int = 0


StateListener = Callable[[ActorStateChanged], None]


class Supervisor:
    """Starts children in order, restarts them one at a time, stops them in reverse."""

    def __init__(
        self,
        policy: RestartPolicy,
        *,
        on_change: StateListener | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self._on_change = on_change
        self._rng = rng or random.Random()
        self._children: dict[str, _Child] = {}
        self._nursery: trio.Nursery | None = None

    async def run(
        self,
        specs: Sequence[ChildSpec] = (),
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Start `specs` in order, then report started; lives until cancelled.

        Started means every critical child is running and every other child has
        either started or is backing off. Raises CriticalActorFailed.
        """
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for spec in specs:
                await self.start_child(spec)
            task_status.started()
            await trio.sleep_forever()

    async def start_child(self, spec: ChildSpec) -> None:
        """Add a child and wait until it started (see `run`)."""
        if self._nursery is None:
            raise RuntimeError("supervisor is not running")
        if spec.name in self._children and not self._children[spec.name].done.is_set():
            raise ValueError(f"actor {spec.name!r} is already supervised")
        child = _Child(spec)
        self._children[spec.name] = child
        await self._nursery.start(self._keep, child)

    async def stop_child(self, name: str) -> None:
        """Cancel one child and wait until it has ended."""
        child = self._children[name]
        child.scope.cancel()
        await child.done.wait()

    async def replace_child(self, spec: ChildSpec) -> None:
        """Stop the child of that name (if any) and start `spec` in its place."""
        if spec.name in self._children:
            await self.stop_child(spec.name)
        await self.start_child(spec)

    async def shutdown(self) -> None:
        """Stop every child, the last started first, so consumers drain last."""
        for child in reversed(list(self._children.values())):
            child.scope.cancel()
            await child.done.wait()

    def snapshot(self) -> list[ActorStatus]:
        """Each child's state and restart count, in start order."""
        return [
            ActorStatus(
                name=child.spec.name,
                state=child.state,
                restarts=child.restarts,
                critical=child.spec.critical,
                since_ms=child.since_ms,
                last_error=child.last_error,
            )
            for child in self._children.values()
        ]

    async def _keep(self, child: _Child, *, task_status: trio.TaskStatus[None]) -> None:
        reported = False
        escalated = False

        def report() -> None:
            nonlocal reported
            if not reported:
                reported = True
                task_status.started()

        try:
            with child.scope:
                while True:
                    self._set(child, "starting")
                    began = trio.current_time()
                    error = await self._run_once(child, report)
                    if not self._should_restart(child.spec.restart, error):
                        self._set(child, "stopped", error)
                        report()
                        return
                    if trio.current_time() - began > self.policy.max_seconds:
                        child.failures_in_a_row = 0
                    child.failures_in_a_row += 1
                    if self._intensity_exceeded(child):
                        if child.spec.critical:
                            escalated = True
                            self._set(child, "failed", error or "exited")
                            raise CriticalActorFailed(child.spec.name, child.last_error)
                        self._set(child, "failed", error)
                        report()
                        await trio.sleep(self.policy.cooldown)
                        child.restart_times.clear()
                        child.failures_in_a_row = 0
                    else:
                        self._set(child, "backing-off", error)
                        if not child.spec.critical:
                            report()
                        await trio.sleep(self.policy.backoff(child.failures_in_a_row, self._rng))
                    child.restarts += 1
        finally:
            if child.state != "stopped" and not escalated:
                self._set(child, "stopped")
            child.done.set()

    async def _run_once(self, child: _Child, report: Callable[[], None]) -> str | None:
        """Run the child once; return None for a normal exit, else the crash text."""
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(child.spec.run)
                self._set(child, "running")
                report()
        except Exception as exc:  # a crash becomes a restart decision, never silence
            cause = _unwrap(exc)
            log.error("actor %s crashed: %s", child.spec.name, _describe(cause), exc_info=cause)
            return _describe(cause)
        return None

    @staticmethod
    def _should_restart(restart: RestartType, error: str | None) -> bool:
        if restart is RestartType.PERMANENT:
            return True
        if restart is RestartType.TRANSIENT:
            return error is not None
        return False

    def _intensity_exceeded(self, child: _Child) -> bool:
        now = trio.current_time()
        child.restart_times.append(now)
        while child.restart_times and child.restart_times[0] <= now - self.policy.max_seconds:
            child.restart_times.popleft()
        return len(child.restart_times) > self.policy.max_restarts

    def _set(self, child: _Child, state: ActorStateName, error: str | None = None) -> None:
        if error is not None:
            child.last_error = error
        if state == child.state and state != "starting":
            return
        child.state = state
        child.since_ms = now_ms()
        log.log(
            logging.WARNING if state in ("failed", "backing-off") else logging.DEBUG,
            "actor %s: %s%s",
            child.spec.name,
            state,
            f" ({error})" if error and state != "running" else "",
        )
        if self._on_change is not None:
            self._on_change(
                ActorStateChanged(
                    actor=child.spec.name,
                    state=state,
                    restarts=child.restarts,
                    timestamp_ms=child.since_ms,
                    error=error or "",
                )
            )


def _unwrap(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
