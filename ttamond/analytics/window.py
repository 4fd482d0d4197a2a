"""A fixed-size window over a series' latest values, kept sorted for its quantiles."""

from __future__ import annotations

from array import array
from bisect import bisect_left, insort

# The interquartile range of a normal distribution is 1.349 standard deviations.
IQR_PER_SIGMA = 1.349


class RollingWindow:
    """The last `size` values in arrival order and in sorted order.

    The median and the quartiles are one index each; a push costs two binary searches
    and two shifts of a contiguous array of doubles (memmove in C), and the state is
    16 bytes per slot whatever the stream's length.
    """

    __slots__ = ("_next", "_ring", "_sorted", "size")

    def __init__(self, size: int) -> None:
        if size < 4:
            raise ValueError(f"a rolling window needs at least 4 values, got {size}")
        self.size = size
        self._ring = array("d")
        self._sorted = array("d")
        self._next = 0

    def __len__(self) -> int:
        return len(self._ring)

    def push(self, value: float) -> None:
        """Add a finite value, evicting the oldest once the window is full."""
        ring = self._ring
        ordered = self._sorted
        if len(ring) < self.size:
            ring.append(value)
        else:
            oldest = ring[self._next]
            del ordered[bisect_left(ordered, oldest)]
            ring[self._next] = value
            self._next = (self._next + 1) % self.size
        insort(ordered, value)

    def median(self) -> float:
        """The middle value (the upper one of an even count). Raises IndexError when empty."""
        ordered = self._sorted
        return ordered[len(ordered) >> 1]

    def spread(self) -> float:
        """The interquartile range in standard deviations of a normal distribution:
        a spread that a few wild values do not move. Raises IndexError when empty."""
        ordered = self._sorted
        count = len(ordered)
        return (ordered[(3 * count) >> 2] - ordered[count >> 2]) / IQR_PER_SIGMA
