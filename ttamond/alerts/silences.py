"""Silences: label matchers over a time range, with an author and a comment."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping

import msgspec

from ttamond.alerts.matchers import matches, parse_matchers
from ttamond.selector import Matcher


class Silence(msgspec.Struct, frozen=True, kw_only=True):
    """Alerts matching every matcher are not notified between `starts_ms` and `ends_ms`."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_ms: int
    ends_ms: int
    author: str
    comment: str
    created_ms: int

    def active(self, now_ms: int) -> bool:
        """Whether it silences anything at `now_ms`."""
        return self.starts_ms <= now_ms < self.ends_ms

    def state(self, now_ms: int) -> str:
        """pending, active or expired."""
        if now_ms < self.starts_ms:
            return "pending"
        return "active" if now_ms < self.ends_ms else "expired"

    def silences(self, labels: Mapping[str, str], now_ms: int) -> bool:
        """Whether an alert with these labels is silenced by this at `now_ms`."""
        return self.active(now_ms) and matches(self.matchers, labels)


class SilenceError(ValueError):
    """A silence that cannot be created; str() says why."""


MAX_MATCHERS = 2000
MAX_AUTHOR = 200
MAX_COMMENT = 2000
MAX_DURATION_S = 31_536_000.0
_BLANK = re.compile(r"[\s\ufeff]*")


def is_blank(text: str) -> bool:
    """Whether `text` says nothing: whitespace only, by Python's reckoning and by
    JavaScript's (which also counts U+FEFF), so a page and the daemon agree."""
    return _BLANK.fullmatch(text) is not None


def new_silence(text: str, *, now_ms: int, duration_s: float, author: str, comment: str,
                starts_ms: int | None = None) -> Silence:
    """A silence from matcher text, starting now (or at `starts_ms`) for `duration_s`.

    Raises SilenceError for bad matchers, a non-positive duration, or an empty author
    or comment (a silence nobody can explain is how alerts get lost).
    """
    if len(text) > MAX_MATCHERS:
        raise SilenceError(f"matchers longer than {MAX_MATCHERS} characters")
    try:
        matchers = parse_matchers(text)
    except ValueError as exc:
        raise SilenceError(str(exc)) from None
    if not 0 < duration_s <= MAX_DURATION_S:
        raise SilenceError(f"duration must be more than 0 and at most a year"
                           f" ({MAX_DURATION_S:g} s), got {duration_s:g} s")
    if is_blank(author) or len(author) > MAX_AUTHOR:
        raise SilenceError(f"a silence needs an author (at most {MAX_AUTHOR} characters)")
    if is_blank(comment) or len(comment) > MAX_COMMENT:
        raise SilenceError(f"a silence needs a comment saying why (at most {MAX_COMMENT}"
                           " characters)")
    start = now_ms if starts_ms is None else starts_ms
    return Silence(id=secrets.token_hex(8), matchers=matchers, starts_ms=start,
                   ends_ms=start + int(duration_s * 1000), author=author.strip(),
                   comment=comment.strip(), created_ms=now_ms)


def silenced_by(silences: Iterable[Silence], labels: Mapping[str, str], now_ms: int) -> list[str]:
    """Ids of the silences muting an alert with `labels` now."""
    return [silence.id for silence in silences if silence.silences(labels, now_ms)]
