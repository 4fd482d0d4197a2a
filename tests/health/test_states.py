"""One check's state machine: N-of-M confirmation, the first result, staleness, flapping."""

from __future__ import annotations

import pytest

from ttamond.health.states import CheckState, Transition

T0 = 1_800_000_000_000
INTERVAL_S = 10.0


def feed(check: CheckState, statuses: list[str], *, start: int = 0) -> list[Transition | None]:
    """Apply results one interval apart; the transitions, one per result."""
    return [
        check.update(status, T0 + (start + index) * int(INTERVAL_S * 1000), f"run {status}")
        for index, status in enumerate(statuses)
    ]


def test_first_result_is_reported_as_it_is() -> None:
    check = CheckState("redis_ping")
    assert check.state == "unknown"
    assert check.snapshot().since_ms == 0
    transition = check.update("crit", T0, "connection refused")
    assert transition == Transition(check="redis_ping", from_state="unknown", to_state="crit",
                                    was_flapping=False, flapping=False, ts_ms=T0,
                                    message="connection refused", percent_change=0.0)
    assert transition.state_changed and not transition.flapping_changed
    assert check.snapshot().since_ms == T0


def test_two_of_three_one_failure_does_not_change_the_state() -> None:
    check = CheckState("redis_ping", fail_after=(2, 3))
    assert feed(check, ["ok", "crit", "ok", "ok", "crit", "ok"])[1:] == [None] * 5
    assert check.state == "ok"


def test_two_of_three_two_failures_within_three_runs_do() -> None:
    check = CheckState("redis_ping", fail_after=(2, 3))
    transitions = feed(check, ["ok", "crit", "ok", "crit"])
    assert transitions[1:3] == [None, None]
    last = transitions[3]
    assert last is not None
    assert (last.from_state, last.to_state, last.message) == ("ok", "crit", "run crit")
    assert check.snapshot().since_ms == T0 + 3 * 10_000


def test_two_failures_four_runs_apart_are_not_within_three() -> None:
    check = CheckState("redis_ping", fail_after=(2, 3))
    feed(check, ["ok", "crit", "ok", "ok", "crit"])
    assert check.state == "ok"


def test_worse_state_needs_its_own_count() -> None:
    # Two of three runs were at least warn, only one was crit: warn, not crit.
    check = CheckState("disk_root", fail_after=(2, 3))
    feed(check, ["ok", "warn", "crit"])
    assert check.state == "warn"
    feed(check, ["crit"], start=3)
    assert check.snapshot().state == "crit"


def test_recovery_after_one_good_run_by_default() -> None:
    check = CheckState("redis_ping")
    feed(check, ["crit", "ok"])
    assert check.state == "ok"


def test_recovery_two_of_three() -> None:
    check = CheckState("redis_ping", recover_after=(2, 3))
    transitions = feed(check, ["crit", "ok", "crit", "ok"])
    assert transitions[1:3] == [None, None]
    assert check.state == "ok"


def test_recovery_to_a_state_in_between() -> None:
    # Two of three runs at least as good as warn, only one ok: recovery stops at warn.
    check = CheckState("disk_root", recover_after=(2, 3))
    feed(check, ["crit", "warn", "ok"])
    assert check.state == "warn"


def test_failing_wins_over_recovering() -> None:
    # One crit within three runs is confirmed, so a good run cannot recover from it
    # until the crit drops out of the window (else the state would alternate).
    check = CheckState("redis_ping", fail_after=(1, 3))
    transitions = feed(check, ["ok", "crit", "ok", "ok", "ok"])
    assert [t.to_state if t else None for t in transitions] == ["ok", "crit", None, None, "ok"]


def test_no_transition_while_nothing_changes() -> None:
    check = CheckState("redis_ping")
    assert feed(check, ["ok", "ok", "ok"])[1:] == [None, None]
    snapshot = check.snapshot()
    assert (snapshot.state, snapshot.since_ms, snapshot.last_result_ms) == ("ok", T0, T0 + 20_000)
    assert snapshot.message == "run ok"


def test_consecutive_failures_count_warn_and_crit() -> None:
    check = CheckState("redis_ping")
    feed(check, ["crit", "ok", "warn", "crit", "crit"])
    assert check.snapshot().consecutive_failures == 3
    feed(check, ["ok"], start=5)
    assert check.snapshot().consecutive_failures == 0


def test_stale_after_three_intervals() -> None:
    check = CheckState("redis_ping")
    check.update("crit", T0, "connection refused")
    assert check.stale(T0 + 30_000, INTERVAL_S) is None
    transition = check.stale(T0 + 30_001, INTERVAL_S)
    assert transition is not None
    assert (transition.from_state, transition.to_state, transition.ts_ms) == (
        "crit", "unknown", T0 + 30_001)
    assert transition.message == "no result for 30 s (more than 3 intervals of 10 s)"
    snapshot = check.snapshot()
    assert (snapshot.state, snapshot.since_ms, snapshot.last_result_ms) == (
        "unknown", T0 + 30_001, T0)
    assert check.stale(T0 + 90_000, INTERVAL_S) is None


def test_first_result_after_stale_is_reported_as_it_is() -> None:
    check = CheckState("redis_ping", fail_after=(2, 3))
    feed(check, ["ok", "ok"])
    check.stale(T0 + 60_000, INTERVAL_S)
    transition = check.update("crit", T0 + 70_000, "connection refused")
    assert transition is not None
    assert (transition.from_state, transition.to_state) == ("unknown", "crit")


def test_stale_without_any_result_stays_unknown() -> None:
    assert CheckState("redis_ping").stale(T0, INTERVAL_S) is None


def test_percent_change_weights_recent_transitions_more() -> None:
    # One change among 20 possible transitions: newest weighs 1.2, oldest 0.8.
    newest = CheckState("x")
    feed(newest, ["ok"] * 20 + ["crit"])
    assert newest.snapshot().percent_change == pytest.approx(100 * 1.2 / 20)
    oldest = CheckState("x")
    feed(oldest, ["ok"] + ["crit"] * 20)
    assert oldest.snapshot().percent_change == pytest.approx(100 * 0.8 / 20)
    every = CheckState("x")
    feed(every, ["ok", "crit"] * 10 + ["ok"])
    assert every.snapshot().percent_change == pytest.approx(100.0)


def test_a_short_history_counts_as_padded_with_unchanged_results() -> None:
    check = CheckState("x")
    feed(check, ["ok", "crit"])
    assert check.snapshot().percent_change == pytest.approx(100 * 1.2 / 20)
    assert not check.flapping


def test_flapping_starts_above_the_high_mark() -> None:
    check = CheckState("redis_ping", fail_after=(2, 3))
    transitions = feed(check, ["ok", "crit"] * 5)
    percents = []
    started = None
    for index, transition in enumerate(transitions):
        if transition is not None and transition.flapping_changed:
            started = index
            percents.append(transition.percent_change)
    assert started == 9
    assert percents[0] > 50.0
    assert check.flapping and check.snapshot().flapping
    transition = transitions[9]
    assert transition is not None
    assert (transition.was_flapping, transition.flapping) == (False, True)


def test_flapping_does_not_start_at_the_high_mark_or_below() -> None:
    check = CheckState("redis_ping")
    for index, status in enumerate(["ok", "crit"] * 5):
        check.update(status, T0 + index, "")
        if check.snapshot().percent_change <= 50.0:
            assert not check.flapping


def test_reported_state_holds_at_the_worst_while_flapping() -> None:
    check = CheckState("redis_ping")
    feed(check, ["ok", "crit"] * 5)
    assert check.flapping and check.state == "crit"
    # Without flap detection the state would follow every run; while flapping it holds.
    assert feed(check, ["ok", "crit", "ok", "warn", "ok"], start=10) == [None] * 5
    assert check.state == "crit"


def test_flapping_stops_only_below_the_low_mark() -> None:
    check = CheckState("redis_ping")
    feed(check, ["ok", "crit"] * 5)
    percents = []
    stopped = None
    for index in range(30):
        transition = check.update("ok", T0 + (10 + index) * 10_000, "PONG")
        percents.append(check.snapshot().percent_change)
        if transition is not None:
            stopped = transition
            break
    # Hysteresis: between the marks it went on flapping, holding crit.
    assert any(25.0 <= percent < 50.0 for percent in percents[:-1])
    assert all(percent >= 25.0 for percent in percents[:-1])
    assert stopped is not None
    assert percents[-1] < 25.0
    assert (stopped.was_flapping, stopped.flapping) == (True, False)
    # Confirmation resumes from the held state: one good run recovers.
    assert (stopped.from_state, stopped.to_state) == ("crit", "ok")


def test_stale_ends_flapping() -> None:
    check = CheckState("redis_ping")
    feed(check, ["ok", "crit"] * 5)
    transition = check.stale(T0 + 200_000, INTERVAL_S)
    assert transition is not None
    assert (transition.to_state, transition.was_flapping, transition.flapping) == (
        "unknown", True, False)
    assert check.snapshot().percent_change == 0.0


def test_flap_detection_can_be_disabled() -> None:
    check = CheckState("redis_ping", fail_after=(1, 1), flap_high=100.0)
    transitions = feed(check, ["ok", "crit"] * 15)
    assert all(transition is not None for transition in transitions)
    assert not check.flapping


def test_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match=r"check 'redis_ping': unknown status 'critical' "
                                         r"\(expected ok, warn or crit\)"):
        CheckState("redis_ping").update("critical", T0, "")


@pytest.mark.parametrize(("keyword", "window"), [("fail_after", (0, 3)),
                                                 ("recover_after", (3, 2))])
def test_unworkable_windows_are_refused(keyword: str, window: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match=rf"check 'x': {keyword} must be \(N, M\) with "
                                         rf"1 <= N <= M, got \({window[0]}, {window[1]}\)"):
        if keyword == "fail_after":
            CheckState("x", fail_after=window)
        else:
            CheckState("x", recover_after=window)


def test_unworkable_flap_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"check 'x': need 0 <= flap_low <= flap_high <= 100"):
        CheckState("x", flap_high=20.0, flap_low=30.0)
    with pytest.raises(ValueError, match=r"check 'x': flap_history must be at least 3, got 2"):
        CheckState("x", flap_history=2)
    with pytest.raises(ValueError, match=r"check 'x': interval must be positive, got 0"):
        CheckState("x").stale(T0, 0)
