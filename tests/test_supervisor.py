"""Supervisor: restart types, intensity, back-off, cool-down, escalation, start and stop order."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Literal

import pytest
import trio
import trio.testing

from ttamond.messages import ActorStateChanged, ActorStateName
from ttamond.supervisor import (
    ActorStatus,
    ChildSpec,
    CriticalActorFailed,
    RestartPolicy,
    RestartType,
    Supervisor,
)

SEED = 20240611
# Virtual seconds under autojump_clock: a regression that never reaches the awaited state
# jumps the clock to this deadline and fails instead of hanging.
WAIT_LIMIT = 3600.0

Step = Literal["crash", "crash-before-started", "return", "serve", "hang-before-started"]


class FakeActor:
    """Follows one step per run, then `then` for every later run.

    crash: start, stay up `runs_for` seconds, raise. crash-before-started: raise at once.
    return: start, stay up `runs_for` seconds, return. serve: start, wait forever.
    hang-before-started: wait forever without starting. Each run's start time is kept in
    `starts`; a cancelled `serve` appends `name` to `cancelled`.
    """

    def __init__(
        self,
        *steps: Step,
        then: Step = "serve",
        runs_for: float = 0.0,
        starts_after: float = 0.0,
        name: str = "",
        cancelled: list[str] | None = None,
    ) -> None:
        self.steps = steps
        self.then = then
        self.runs_for = runs_for
        self.starts_after = starts_after
        self.name = name
        self.cancelled = cancelled if cancelled is not None else []
        self.starts: list[float] = []

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.starts.append(trio.current_time())
        number = len(self.starts)
        step = self.steps[number - 1] if number <= len(self.steps) else self.then
        if step == "crash-before-started":
            raise RuntimeError(f"crash {number}")
        if step == "hang-before-started":
            await trio.sleep_forever()
        if self.starts_after:
            await trio.sleep(self.starts_after)
        task_status.started()
        if step == "serve":
            try:
                await trio.sleep_forever()
            finally:
                # sleep_forever only ends by cancellation
                self.cancelled.append(self.name)
        await trio.sleep(self.runs_for)
        if step == "crash":
            raise RuntimeError(f"crash {number}")


class Recorder:
    """An on_change listener that keeps every event and lets a test wait for one."""

    def __init__(self) -> None:
        self.changes: list[ActorStateChanged] = []
        self._waiters: list[tuple[str, ActorStateName, int | None, trio.Event]] = []

    def __call__(self, change: ActorStateChanged) -> None:
        self.changes.append(change)
        for actor, state, restarts, event in self._waiters:
            if _matches(change, actor, state, restarts):
                event.set()

    async def wait_for(
        self, actor: str, state: ActorStateName, *, restarts: int | None = None
    ) -> None:
        if any(_matches(change, actor, state, restarts) for change in self.changes):
            return
        event = trio.Event()
        self._waiters.append((actor, state, restarts, event))
        await event.wait()

    def states(self, actor: str) -> list[tuple[ActorStateName, int]]:
        return [(c.state, c.restarts) for c in self.changes if c.actor == actor]


def _matches(
    change: ActorStateChanged, actor: str, state: ActorStateName, restarts: int | None
) -> bool:
    return (
        change.actor == actor
        and change.state == state
        and (restarts is None or change.restarts == restarts)
    )


def status_of(supervisor: Supervisor, name: str) -> ActorStatus:
    (status,) = [s for s in supervisor.snapshot() if s.name == name]
    return status


def gaps(times: Sequence[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]


FAST = RestartPolicy(
    max_restarts=3, max_seconds=10.0, backoff_initial=0.1, backoff_max=1.0, cooldown=60.0
)


# --- restart types ---------------------------------------------------------------------


async def test_permanent_is_restarted_after_a_crash(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(WAIT_LIMIT):
        recorder = Recorder()
        supervisor = Supervisor(FAST, on_change=recorder, rng=random.Random(SEED))
        actor = FakeActor("crash", "crash-before-started")
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run, [ChildSpec("a", actor.run, RestartType.PERMANENT)])
            await recorder.wait_for("a", "running", restarts=2)
            status = status_of(supervisor, "a")
            assert (status.state, status.restarts) == ("running", 2)
            assert status.last_error == "RuntimeError: crash 2"
            assert len(actor.starts) == 3
            nursery.cancel_scope.cancel()


async def test_permanent_is_restarted_after_a_normal_return(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(WAIT_LIMIT):
        recorder = Recorder()
        supervisor = Supervisor(FAST, on_change=recorder, rng=random.Random(SEED))
        actor = FakeActor("return", "return")
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run, [ChildSpec("a", actor.run, RestartType.PERMANENT)])
            await recorder.wait_for("a", "running", restarts=2)
            status = status_of(supervisor, "a")
            assert (status.state, status.restarts, status.last_error) == ("running", 2, "")
            assert len(actor.starts) == 3
            nursery.cancel_scope.cancel()


async def test_transient_is_restarted_after_a_crash(autojump_clock: trio.testing.MockClock) -> None:
    with trio.fail_after(WAIT_LIMIT):
        recorder = Recorder()
        supervisor = Supervisor(FAST, on_change=recorder, rng=random.Random(SEED))
        actor = FakeActor("crash")
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run, [ChildSpec("a", actor.run, RestartType.TRANSIENT)])
            await recorder.wait_for("a", "running", restarts=1)
            assert status_of(supervisor, "a").state == "running"
            assert len(actor.starts) == 2
            nursery.cancel_scope.cancel()


async def test_transient_is_not_restarted_after_a_normal_return(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(WAIT_LIMIT):
        recorder = Recorder()
        supervisor = Supervisor(FAST, on_change=recorder, rng=random.Random(SEED))
        actor = FakeActor("return", runs_for=1.0)
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run, [ChildSpec("a", actor.run, RestartType.TRANSIENT)])
            await recorder.wait_for("a", "stopped")
            # well past any back-off or cool-down: still nothing restarts it
            await trio.sleep(FAST.cooldown * 2)
            status = status_of(supervisor, "a")
            assert (status.state, status.restarts, status.last_error) == ("stopped", 0, "")
            assert len(actor.starts) == 1
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize("step", ["crash", "crash-before-started", "return"])
async def test_temporary_is_never_restarted(
    autojump_clock: trio.testing.MockClock, step: Step
) -> None:
    with trio.fail_after(WAIT_LIMIT):
        recorder = Recorder()
        supervisor = Supervisor(FAST, on_change=recorder, rng=random.Random(SEED))
        actor = FakeActor(step)
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run, [ChildSpec("a", actor.run, RestartType.TEMPORARY)])
            await recorder.wait_for("a", "stopped")
            await trio.sleep(FAST.cooldown * 2)
            status = status_of(supervisor, "a")
            assert (status.state, status.restarts) == ("stopped", 0)
            assert status.last_error == ("" if step == "return" else "RuntimeError: crash 1")
            assert len(actor.starts) == 1
            assert "backing-off" not in [state for state, _ in recorder.states("a")]
            nursery.cancel_scope.cancel()


# --- restart intensity and cool-down ---------------------------------------------------


async def test_intensity_exhausted_marks_failed_then_cools_down_and_retries(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(WAIT_LIMIT):
        recorder = Recorder()
        supervisor = Supervisor(FAST, on_change=recorder, rng=random.Random(SEED))
        actor = FakeActor(then="crash-before-started")
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run, [ChildSpec("a", actor.run)])

            await recorder.wait_for("a", "failed")
            # three restarts, the fourth crash within max_seconds exhausts the intensity
            status = status_of(supervisor, "a")
            assert (status.state, status.restarts) == ("failed", 3)
            assert status.last_error == "RuntimeError: crash 4"
            assert len(actor.starts) == 4
            assert actor.starts[-1] - actor.starts[0] < FAST.max_seconds

            # after the cool-down it is tried again, and the count keeps growing
            await recorder.wait_for("a", "failed", restarts=7)
            assert status_of(supervisor, "a").restarts == 7
            assert len(actor.starts) == 8
            assert actor.starts[4] - actor.starts[3] == pytest.approx(FAST.cooldown)
            nursery.cancel_scope.cancel()

        failed_then = ["starting", "backing-off"] * 3 + ["starting", "failed"]
        assert [state for state, _ in recorder.states("a")[:16]] == failed_then * 2


async def test_crashes_spread_wider_than_max_seconds_never_exhaust_intensity(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(WAIT_LIMIT):
        recorder = Recorder()
        supervisor = Supervisor(FAST, on_change=recorder, rng=random.Random(SEED))
        actor = FakeActor(then="crash", runs_for=FAST.max_seconds + 1)
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run, [ChildSpec("a", actor.run)])
            await recorder.wait_for("a", "running", restarts=4 * FAST.max_restarts)
            assert "failed" not in [state for state, _ in recorder.states("a")]
            assert status_of(supervisor, "a").restarts == 4 * FAST.max_restarts
            # each crash is the first of its run of failures: the back-off never grows
            for gap in gaps(actor.starts):
                delay = gap - actor.runs_for
                assert FAST.backoff_initial / 2 <= delay <= FAST.backoff_initial
            nursery.cancel_scope.cancel()


# --- back-off --------------------------------------------------------------------------


def test_backoff_grows_exponentially_is_capped_and_jittered_by_half() -> None:
    policy = RestartPolicy(backoff_initial=0.5, backoff_max=30.0)
    rng = random.Random(SEED)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (50, 30.0)]:
        samples = [policy.backoff(attempt, rng) for _ in range(500)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        # the jitter covers the whole upper half, not one point of it
        assert min(samples) < ceiling * 0.55
        assert max(samples) > ceiling * 0.95


def test_backoff_treats_attempt_zero_as_the_first() -> None:
    policy = RestartPolicy(backoff_initial=2.0, backoff_max=30.0)
    assert policy.backoff(0, random.Random(SEED)) == policy.backoff(1, random.Random(SEED))
    assert 1.0 <= policy.backoff(0, random.Random(SEED)) <= 2.0


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    policy = RestartPolicy()
    first = [policy.backoff(n, random.Random(SEED)) for n in range(1, 10)]
    again = [policy.backoff(n, random.Random(SEED)) for n in range(1, 10)]
    assert first == again


async def test_delays_between_restarts_grow_exponentially_up_to_the_cap(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(WAIT_LIMIT):
        policy = RestartPolicy(
            max_restarts=100, max_seconds=1000.0, backoff_initial=1.0, backoff_max=8.0, cooldown=1.0
        )
        recorder = Recorder()
        supervisor = Supervisor(policy, on_change=recorder, rng=random.Random(SEED))
        crash: Step = "crash"
        crash_early: Step = "crash-before-started"
        steps = [crash] * 4 + [crash_early] * 3
        actor = FakeActor(*steps)
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run, [ChildSpec("a", actor.run)])
            await recorder.wait_for("a", "running", restarts=7)
            nursery.cancel_scope.cancel()

        delays = gaps(actor.starts)
        ceilings = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
        assert len(delays) == len(ceilings)
        for delay, ceiling in zip(delays, ceilings, strict=True):
            assert ceiling / 2 <= delay <= ceiling
        # the supervisor draws its jitter from the rng it was given, and nothing else
        expected_rng = random.Random(SEED)
        expected = [policy.backoff(attempt, expected_rng) for attempt in range(1, 8)]
        assert delays == pytest.approx(expected)


# --- critical children -----------------------------------------------------------------


async def test_critical_child_exhausting_intensity_ends_the_supervisor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(WAIT_LIMIT):
        cancelled: list[str] = []
        sibling = FakeActor(name="sibling", cancelled=cancelled)
        critical = FakeActor(then="crash", runs_for=1.0)
        supervisor = Supervisor(FAST, rng=random.Random(SEED))
        specs = [ChildSpec("sibling", sibling.run), ChildSpec("x", critical.run, critical=True)]

        with pytest.RaisesGroup(
            pytest.RaisesExc(
                CriticalActorFailed,
                match=r"^critical actor 'x' exceeded its restart intensity: RuntimeError: crash 4$",
            )
        ) as caught:
            await supervisor.run(specs)

        (error,) = caught.value.exceptions
        assert isinstance(error, CriticalActorFailed)
        assert (error.actor, error.error) == ("x", "RuntimeError: crash 4")
        assert len(critical.starts) == FAST.max_restarts + 1
        assert cancelled == ["sibling"]
        assert status_of(supervisor, "sibling").state == "stopped"


async def test_critical_escalation_records_the_crash_that_exhausted_intensity(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(WAIT_LIMIT):
        recorder = Recorder()
        critical = FakeActor(then="crash", runs_for=1.0)
        supervisor = Supervisor(FAST, on_change=recorder, rng=random.Random(SEED))
        with pytest.RaisesGroup(CriticalActorFailed):
            await supervisor.run([ChildSpec("x", critical.run, critical=True)])
        # the stored history and `ttamond status` should name the crash that ended it
        assert status_of(supervisor, "x").last_error == "RuntimeError: crash 4"
        assert status_of(supervisor, "x").state == "failed"
        assert (recorder.changes[-1].state, recorder.changes[-1].error) == (
            "failed", "RuntimeError: crash 4"
        )


async def test_critical_child_that_never_starts_fails_startup(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(WAIT_LIMIT):
        critical = FakeActor(then="crash-before-started")
        supervisor = Supervisor(FAST, rng=random.Random(SEED))
        with pytest.RaisesGroup(
            pytest.RaisesExc(
                CriticalActorFailed,
                match=r"^critical actor 'x' exceeded its restart intensity: RuntimeError: crash 4$",
            ),
            flatten_subgroups=True,
        ):
            async with trio.open_nursery() as nursery:
                await nursery.start(supervisor.run, [ChildSpec("x", critical.run, critical=True)])
                pytest.fail("startup reported success without its critical child")


# --- started semantics -----------------------------------------------------------------


async def test_startup_waits_for_critical_children_to_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(WAIT_LIMIT):
        critical = FakeActor("crash-before-started", "crash-before-started", starts_after=5.0)
        supervisor = Supervisor(FAST, rng=random.Random(SEED))
        async with trio.open_nursery() as nursery:
            began = trio.current_time()
            await nursery.start(supervisor.run, [ChildSpec("x", critical.run, critical=True)])
            assert len(critical.starts) == 3
            assert trio.current_time() - critical.starts[-1] == pytest.approx(5.0)
            assert trio.current_time() - began > 5.0
            status = status_of(supervisor, "x")
            assert (status.state, status.restarts) == ("running", 2)
            nursery.cancel_scope.cancel()


async def test_non_critical_child_crashing_before_start_does_not_block_startup(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(WAIT_LIMIT):
        slow = RestartPolicy(max_restarts=3, backoff_initial=100.0, backoff_max=100.0)
        flaky = FakeActor(then="crash-before-started")
        critical = FakeActor(starts_after=5.0)
        supervisor = Supervisor(slow, rng=random.Random(SEED))
        specs = [ChildSpec("flaky", flaky.run), ChildSpec("x", critical.run, critical=True)]
        async with trio.open_nursery() as nursery:
            began = trio.current_time()
            await nursery.start(supervisor.run, specs)
            assert trio.current_time() - began == pytest.approx(5.0)
            assert [(s.name, s.state) for s in supervisor.snapshot()] == [
                ("flaky", "backing-off"),
                ("x", "running"),
            ]
            assert len(flaky.starts) == 1
            nursery.cancel_scope.cancel()


# --- on_change -------------------------------------------------------------------------


async def test_on_change_reports_every_transition_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(WAIT_LIMIT):
        recorder = Recorder()
        supervisor = Supervisor(FAST, on_change=recorder, rng=random.Random(SEED))
        actor = FakeActor("crash")
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run, [ChildSpec("a", actor.run)])
            await recorder.wait_for("a", "running", restarts=1)
            await supervisor.stop_child("a")
            nursery.cancel_scope.cancel()

        assert [(c.actor, c.state, c.restarts) for c in recorder.changes] == [
            ("a", "starting", 0),
            ("a", "running", 0),
            ("a", "backing-off", 0),
            ("a", "starting", 1),
            ("a", "running", 1),
            ("a", "stopped", 1),
        ]
        assert recorder.changes[2].error == "RuntimeError: crash 1"
        assert [c.error for c in recorder.changes[:2]] == ["", ""]
        stamps = [c.timestamp_ms for c in recorder.changes]
        assert stamps == sorted(stamps)
        assert [(s.name, s.state, s.since_ms) for s in supervisor.snapshot()] == [
            ("a", "stopped", stamps[-1])
        ]


# --- stop, replace, shut down ----------------------------------------------------------


async def test_stop_child_ends_only_that_child_and_does_not_restart_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(WAIT_LIMIT):
        cancelled: list[str] = []
        a = FakeActor(name="a", cancelled=cancelled)
        b = FakeActor(name="b", cancelled=cancelled)
        supervisor = Supervisor(FAST, rng=random.Random(SEED))
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run, [ChildSpec("a", a.run), ChildSpec("b", b.run)])
            await supervisor.stop_child("a")
            assert cancelled == ["a"]
            await trio.sleep(FAST.cooldown * 2)
            assert [(s.name, s.state) for s in supervisor.snapshot()] == [
                ("a", "stopped"),
                ("b", "running"),
            ]
            assert (len(a.starts), len(b.starts)) == (1, 1)
            nursery.cancel_scope.cancel()


async def test_replace_child_stops_the_old_one_and_starts_the_new(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(WAIT_LIMIT):
        cancelled: list[str] = []
        old = FakeActor(name="old", cancelled=cancelled)
        new = FakeActor(name="new", cancelled=cancelled)
        supervisor = Supervisor(FAST, rng=random.Random(SEED))
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run, [ChildSpec("a", old.run)])
            await supervisor.replace_child(ChildSpec("a", new.run))
            assert cancelled == ["old"]
            assert len(new.starts) == 1
            status = status_of(supervisor, "a")
            assert (status.state, status.restarts) == ("running", 0)
            assert len(supervisor.snapshot()) == 1

            # a name not yet supervised is simply started
            other = FakeActor(name="other", cancelled=cancelled)
            await supervisor.replace_child(ChildSpec("b", other.run))
            assert [(s.name, s.state) for s in supervisor.snapshot()] == [
                ("a", "running"),
                ("b", "running"),
            ]
            nursery.cancel_scope.cancel()
        assert sorted(cancelled) == ["new", "old", "other"]


async def test_shutdown_stops_children_in_reverse_start_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(WAIT_LIMIT):
        cancelled: list[str] = []
        actors = {name: FakeActor(name=name, cancelled=cancelled) for name in ["a", "b", "c"]}
        supervisor = Supervisor(FAST, rng=random.Random(SEED))
        async with trio.open_nursery() as nursery:
            specs = [ChildSpec(name, actor.run) for name, actor in actors.items()]
            await nursery.start(supervisor.run, specs)
            await supervisor.shutdown()
            assert cancelled == ["c", "b", "a"]
            assert [(s.name, s.state) for s in supervisor.snapshot()] == [
                ("a", "stopped"),
                ("b", "stopped"),
                ("c", "stopped"),
            ]
            nursery.cancel_scope.cancel()


async def test_start_child_refuses_a_running_name_and_accepts_a_stopped_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(WAIT_LIMIT):
        supervisor = Supervisor(FAST, rng=random.Random(SEED))
        first = FakeActor()
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run, [ChildSpec("a", first.run)])
            with pytest.raises(ValueError, match=r"^actor 'a' is already supervised$"):
                await supervisor.start_child(ChildSpec("a", FakeActor().run))
            await supervisor.stop_child("a")
            second = FakeActor()
            await supervisor.start_child(ChildSpec("a", second.run))
            assert (len(first.starts), len(second.starts)) == (1, 1)
            assert status_of(supervisor, "a").state == "running"
            nursery.cancel_scope.cancel()


async def test_start_child_before_run_raises() -> None:
    supervisor = Supervisor(FAST)
    with pytest.raises(RuntimeError, match=r"^supervisor is not running$"):
        await supervisor.start_child(ChildSpec("a", FakeActor().run))


# --- cancellation ----------------------------------------------------------------------


async def test_cancelling_the_enclosing_nursery_ends_run_promptly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slow = RestartPolicy(
        max_restarts=1, max_seconds=1000.0, backoff_initial=100.0, backoff_max=100.0, cooldown=500.0
    )
    cancelled: list[str] = []
    serving = FakeActor(name="serving", cancelled=cancelled)
    backing_off = FakeActor("return", runs_for=120.0)
    failed = FakeActor(then="crash-before-started")
    recorder = Recorder()
    supervisor = Supervisor(slow, on_change=recorder, rng=random.Random(SEED))
    specs = [
        ChildSpec("serving", serving.run),
        ChildSpec("backing-off", backing_off.run),
        ChildSpec("failed", failed.run),
    ]
    with trio.fail_after(WAIT_LIMIT):
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run, specs)
            await recorder.wait_for("failed", "failed")
            await recorder.wait_for("backing-off", "backing-off")
            assert status_of(supervisor, "failed").state == "failed"
            cancelled_at = trio.current_time()
            nursery.cancel_scope.cancel()
    assert trio.current_time() == cancelled_at
    assert cancelled == ["serving"]
    states = {s.name: s.state for s in supervisor.snapshot()}
    assert states["serving"] == "stopped"
    assert states["backing-off"] == "stopped"


async def test_cancelling_during_startup_ends_run_promptly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with trio.fail_after(WAIT_LIMIT):
        never = FakeActor(then="hang-before-started")
        supervisor = Supervisor(FAST, rng=random.Random(SEED))
        with trio.move_on_after(3.0) as scope:
            await supervisor.run([ChildSpec("x", never.run, critical=True)])
        assert scope.cancelled_caught
        assert trio.current_time() == pytest.approx(3.0)
        assert status_of(supervisor, "x").state == "stopped"
