"""A one-line progress bar on a terminal, shown only once the work has taken a while."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """`[######....] 3/5 alerts` on `stream`, rewritten in place at each step.

    Nothing is written when `stream` is not a terminal, nor before `delay` seconds
    have passed since it was made: a quick report shows no bar at all.
    """

    def __init__(self, stream: TextIO, total: int, *, delay: float = 1.0, width: int = 10,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.total = total
        self.delay = delay
        self.width = width
        self.clock = clock
        self.enabled = stream.isatty()
        self.started = clock()
        self.steps = 0
        self._shown = 0
        """Length of the line on screen (0: nothing shown)."""

    def step(self, name: str) -> None:
        """Count one step, named `name`, and show the bar if it is time to."""
        self.steps += 1
        if not self.enabled or self.clock() - self.started <= self.delay:
            return
        filled = self.width * min(self.steps, self.total) // self.total
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {self.steps}/{self.total} {name}"
        self.stream.write("\r" + line.ljust(self._shown))
        self.stream.flush()
        self._shown = max(self._shown, len(line))

    def finish(self) -> None:
        """Clear the bar, if one is shown, so what follows starts on a clean line."""
        if self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
            self._shown = 0
