"""Event-loop lag, measured on wakeups the daemon makes anyway (no timer of its own)."""

from __future__ import annotations

import trio


class LagMeter:
    """The worst lateness of timed wakeups since it was last read.

    Actors that sleep until a deadline report how late they woke (`observe`); selfmon
    reads and resets the worst (`take_worst`). A dedicated lag probe would cost a
    wakeup of its own several times a second, more than the host collector's reads
    (see benchmarks/README.md); the price is that a stall is seen only when it covers
    one of those deadlines, i.e. it is sampled at the collectors' rate.
    """

    def __init__(self) -> None:
        self._worst = 0.0
        self.samples = 0

    def observe(self, deadline: float) -> None:
        """Record a wakeup that was due at `deadline` (trio clock)."""
        self._worst = max(self._worst, trio.current_time() - deadline)
        self.samples += 1

    def take_worst(self) -> float:
        """The worst lag in seconds since the previous call, and start a new window."""
        worst, self._worst = self._worst, 0.0
        return worst
