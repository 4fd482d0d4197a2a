"""One check's reported state: N-of-M confirmation, flapping with hysteresis, staleness."""

from __future__ import annotations

from collections import deque
from typing import Literal

import msgspec

Status = Literal["ok", "warn", "crit"]
"""What one run of a check says."""

State = Literal["unknown", "ok", "warn", "crit"]
"""What a check reports: a confirmed status, or unknown (no result yet, or stale)."""

STATUSES: tuple[Status, ...] = ("ok", "warn", "crit")
SEVERITY: dict[Status, int] = {"ok": 0, "warn": 1, "crit": 2}
_WORSE_FIRST: tuple[Status, ...] = ("crit", "warn")
_BETTER_FIRST: tuple[Status, ...] = ("ok", "warn")

STALE_INTERVALS = 3
"""A check whose last result is older than this many intervals reports unknown."""

FLAP_LOW_WEIGHT = 0.8
FLAP_HIGH_WEIGHT = 1.2
"""Weights of the oldest and of the newest transition in the flap window (Nagios's curve)."""


class Transition(msgspec.Struct, frozen=True, kw_only=True):
    """The reported state or the flapping flag of a check changed (or both did)."""

    check: str
    from_state: State
    to_state: State
    was_flapping: bool
    flapping: bool
    ts_ms: int
    message: str
    percent_change: float = 0.0
    """The weighted percent state change when the transition happened."""

    @property
    def state_changed(self) -> bool:
        """Whether the reported state changed (rather than only the flapping flag)."""
        return self.from_state != self.to_state

    @property
    def flapping_changed(self) -> bool:
        """Whether flapping started or stopped."""
        return self.was_flapping != self.flapping


class CheckSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A check's reported state at one moment, for status pages and the API."""

    check: str
    state: State
    since_ms: int
    """When the reported state was entered; 0 while no result ever arrived."""
    message: str
    """The message of the last result, or why the check went unknown."""
    last_result_ms: int
    """0: no result yet."""
    consecutive_failures: int
    """Raw results in a row that were not ok (warn or crit), up to the last one."""
    flapping: bool
    percent_change: float


class CheckState:
    """The reported state of one check, fed its raw results one at a time.

    Confirmation (the Monit rule "fails N times within M runs"): the state becomes
    worse, say warn to crit, only when at least N of the last M results were at least
    that bad (`fail_after=(N, M)`, default (2, 3): one blip does not page anybody). It
    becomes better when at least N2 of the last M2 results were at least that good
    (`recover_after=(N2, M2)`, default (1, 1): one good run shows the recovery; a
    recovery that does not hold is what flap detection is for). Failing wins: a
    recovery never goes below what the fail rule confirms, so with `fail_after=(1, 3)`
    a failure holds until it drops out of the last three runs instead of the state
    alternating between recovering and failing again. The first result after start, or
    after the check went stale, is reported as it is: there is no history to confirm it
    against, and showing unknown for M runs would hide a service that is down at boot.

    Flapping (Nagios's method): the last `flap_history` raw results (default 21) give
    up to 20 transitions between consecutive results; a transition that changed the
    status counts with a weight rising linearly from 0.8 (oldest) to 1.2 (newest). The
    percent state change is 100 times the summed weights over the number of possible
    transitions (flap_history - 1), so it lies in [0, 100]. A history that is not yet
    full counts as if padded with unchanged results at its old end (Nagios fills its
    history with the first state): a few early changes do not make a check flap.
    Flapping starts when the percent goes above `flap_high` (default 50) and stops
    only when it goes below `flap_low` (default 25). While flapping, the reported state
    is the worst raw status in the flap window, so it does not change on every run;
    once flapping stops, confirmation resumes from that state. `flap_high=100`
    disables flap detection.
    """

    def __init__(
        self,
        check: str,
        *,
        fail_after: tuple[int, int] = (2, 3),
        recover_after: tuple[int, int] = (1, 1),
        flap_history: int = 21,
        flap_high: float = 50.0,
        flap_low: float = 25.0,
    ) -> None:
        """Raises ValueError when a window or a threshold cannot work."""
        _check_window(check, "fail_after", fail_after)
        _check_window(check, "recover_after", recover_after)
        if flap_history < 3:
            raise ValueError(
                f"check {check!r}: flap_history must be at least 3, got {flap_history}"
            )
        if not 0.0 <= flap_low <= flap_high <= 100.0:
            raise ValueError(
                f"check {check!r}: need 0 <= flap_low <= flap_high <= 100, "
                f"got flap_low={flap_low}, flap_high={flap_high}"
            )
        self.check = check
        self._fail_after = fail_after
        self._recover_after = recover_after
        self._flap_history = flap_history
        self._flap_high = flap_high
        self._flap_low = flap_low
        self._recent: deque[Status] = deque(
            maxlen=max(fail_after[1], recover_after[1], flap_history)
        )
        self._state: State = "unknown"
        self._since_ms = 0
        self._message = ""
        self._last_result_ms = 0
        self._consecutive_failures = 0
        self._flapping = False
        self._percent_change = 0.0

    @property
    def state(self) -> State:
        """The reported state."""
        return self._state

    @property
    def flapping(self) -> bool:
        """Whether the check is flapping."""
        return self._flapping

    def update(self, status: str, ts_ms: int, message: str = "") -> Transition | None:
        """Apply one raw result (`ok`, `warn` or `crit`) taken at `ts_ms`.

        Returns the Transition when the reported state or the flapping flag changed,
        else None. Results are applied in the order given, whatever their timestamps
        (a wall clock stepping back must not wedge a check). Raises ValueError for any
        other status.
        """
        raw = _as_status(self.check, status)
        from_state, was_flapping = self._state, self._flapping
        self._recent.append(raw)
        self._last_result_ms = ts_ms
        self._message = message
        self._consecutive_failures = 0 if raw == "ok" else self._consecutive_failures + 1
        self._percent_change = self._weighted_percent_change()
        if self._flapping:
            self._flapping = self._percent_change >= self._flap_low
        else:
            self._flapping = self._percent_change > self._flap_high

        to_state: State
        if from_state == "unknown":
            to_state = raw
        elif self._flapping:
            to_state = _worst(self._flap_window())
        else:
            to_state = self._confirmed(from_state)
        return self._move(from_state, to_state, was_flapping, ts_ms, message)

    def stale(self, now_ms: int, interval_s: float) -> Transition | None:
        """Report unknown when the last result is older than 3 intervals at `now_ms`.

        The probe that feeds this check died or is stuck, so what it said last is no
        longer known. The history is dropped with it: the next result is reported as
        it is, and flapping ends. Returns the Transition into unknown, or None when the
        check is fresh or already unknown. Raises ValueError for a non-positive interval.
        """
        if interval_s <= 0:
            raise ValueError(f"check {self.check!r}: interval must be positive, got {interval_s}")
        if self._state == "unknown":
            return None
        age_ms = now_ms - self._last_result_ms
        if age_ms <= STALE_INTERVALS * interval_s * 1000:
            return None
        from_state, was_flapping = self._state, self._flapping
        self._recent.clear()
        self._flapping = False
        self._percent_change = 0.0
        message = (
            f"no result for {age_ms / 1000:.0f} s "
            f"(more than {STALE_INTERVALS} intervals of {interval_s:g} s)"
        )
        self._message = message
        return self._move(from_state, "unknown", was_flapping, now_ms, message)

    def snapshot(self) -> CheckSnapshot:
        """The reported state and what led to it."""
        return CheckSnapshot(
            check=self.check,
            state=self._state,
            since_ms=self._since_ms,
            message=self._message,
            last_result_ms=self._last_result_ms,
            consecutive_failures=self._consecutive_failures,
            flapping=self._flapping,
            percent_change=self._percent_change,
        )

    def _move(
        self, from_state: State, to_state: State, was_flapping: bool, ts_ms: int, message: str
    ) -> Transition | None:
        self._state = to_state
        if from_state != to_state:
            self._since_ms = ts_ms
        elif was_flapping == self._flapping:
            return None
        return Transition(
            check=self.check,
            from_state=from_state,
            to_state=to_state,
            was_flapping=was_flapping,
            flapping=self._flapping,
            ts_ms=ts_ms,
            message=message,
            percent_change=self._percent_change,
        )

    def _confirmed(self, current: Status) -> Status:
        """The state the N-of-M rules move `current` to, given the recent results."""
        # The floor is the worst level the fail rule confirms, the ceiling the best one
        # the recovery rule confirms. Failing wins over recovering: a recovery below the
        # floor would be undone by the fail rule on the next run.
        needed, runs = self._fail_after
        window = self._last(runs)
        floor: Status = "ok"
        for level in _WORSE_FIRST:
            if sum(SEVERITY[result] >= SEVERITY[level] for result in window) >= needed:
                floor = level
                break
        needed, runs = self._recover_after
        window = self._last(runs)
        ceiling: Status = "crit"
        for level in _BETTER_FIRST:
            if sum(SEVERITY[result] <= SEVERITY[level] for result in window) >= needed:
                ceiling = level
                break
        return _worst([floor, min(current, ceiling, key=SEVERITY.__getitem__)])

    def _weighted_percent_change(self) -> float:
        history = self._flap_window()
        possible = self._flap_history - 1
        # A short history sits at the newest end of the window: its transitions take the
        # newest positions and weights, the missing older ones count as unchanged.
        offset = possible - (len(history) - 1)
        weighted = 0.0
        for index in range(1, len(history)):
            if history[index] != history[index - 1]:
                position = offset + index - 1
                weighted += FLAP_LOW_WEIGHT + (FLAP_HIGH_WEIGHT - FLAP_LOW_WEIGHT) * position / (
                    possible - 1
                )
        # Rounding may take a full window of changes a hair past 100, which would make
        # flap_high=100 flap after all.
        return min(100.0, 100.0 * weighted / possible)

    def _flap_window(self) -> list[Status]:
        return self._last(self._flap_history)

    def _last(self, runs: int) -> list[Status]:
        recent = list(self._recent)
        return recent[-runs:]


def _as_status(check: str, status: str) -> Status:
    for known in STATUSES:
        if status == known:
            return known
    raise ValueError(f"check {check!r}: unknown status {status!r} (expected ok, warn or crit)")


def _worst(results: list[Status]) -> Status:
    return max(results, key=SEVERITY.__getitem__)


def _check_window(check: str, name: str, window: tuple[int, int]) -> None:
    needed, runs = window
    if needed < 1 or runs < needed:
        raise ValueError(
            f"check {check!r}: {name} must be (N, M) with 1 <= N <= M, got ({needed}, {runs})"
        )
