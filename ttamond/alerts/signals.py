"""Error signals for alert rules: new groups, regressions, critical errors and error rates."""

from __future__ import annotations

from collections import deque
from typing import Literal

import msgspec

ErrorSignal = Literal["new_group", "regression", "critical"]
MAX_GROUPS = 10_000
MAX_RATE_EVENTS = 100_000


class ErrorSeen(msgspec.Struct):
    """The newest event of one kind for one error group."""

    fingerprint: str
    title: str
    component: str
    last_ms: int


class ErrorSignals:
    """What the error rules read, kept from the errors actor's messages: for each kind,
    the groups seen and when last; and each component's recent error times."""

    def __init__(self, *, rate_horizon_ms: int = 3_600_000) -> None:
        self.rate_horizon_ms = rate_horizon_ms
        self.seen: dict[ErrorSignal, dict[str, ErrorSeen]] = {
            "new_group": {}, "regression": {}, "critical": {}}
        self._times: dict[str, deque[int]] = {}
        self.dropped = 0
        """Signals not kept because a limit was reached (counted, shown)."""

    def note(self, kind: ErrorSignal, *, fingerprint: str, title: str, component: str,
             timestamp_ms: int) -> None:
        """An error group was opened, regressed, or had a critical error."""
        groups = self.seen[kind]
        found = groups.get(fingerprint)
        if found is not None:
            found.last_ms = max(found.last_ms, timestamp_ms)
            return
        if len(groups) >= MAX_GROUPS:
            self.dropped += 1
            return
        groups[fingerprint] = ErrorSeen(fingerprint, title, component, timestamp_ms)

    def count(self, component: str, timestamp_ms: int) -> None:
        """One error event from `component`, for the rate rules."""
        times = self._times.setdefault(component, deque())
        if len(times) >= MAX_RATE_EVENTS:
            times.popleft()
            self.dropped += 1
        times.append(timestamp_ms)

    def per_minute(self, since_ms: int, until_ms: int) -> dict[str, float]:
        """Errors per minute of each component between the two times."""
        minutes = max((until_ms - since_ms) / 60_000, 1e-9)
        return {component: sum(1 for t in times if t >= since_ms) / minutes
                for component, times in self._times.items()}

    def forget(self, now_ms: int, keep_ms: int) -> None:
        """Drop what no rule can still be alerting on."""
        for groups in self.seen.values():
            stale = [fp for fp, seen in groups.items() if now_ms - seen.last_ms > keep_ms]
            for fingerprint in stale:
                del groups[fingerprint]
        for component, times in list(self._times.items()):
            while times and now_ms - times[0] > self.rate_horizon_ms:
                times.popleft()
            if not times:
                del self._times[component]
