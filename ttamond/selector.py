"""Series selectors in Prometheus' syntax: `name{label="v", other!="x", re=~"a.*"}`."""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_MATCHER = re.compile(
    r'\s*(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*'
)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t"}
"""Backslash escapes in quoted values, as in Prometheus: \\" \\\\ \\n \\t."""
_SELECTOR = re.compile(rf"^\s*(?P<name>{_NAME})?\s*(?:\{{(?P<body>.*)\}})?\s*$", re.DOTALL)


class SelectorError(ValueError):
    """A selector that does not parse; str() says where."""


class Matcher(msgspec.Struct, frozen=True):
    """One label condition."""

    label: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a series with these labels (and `__name__`) satisfies it."""
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


class Selector(msgspec.Struct, frozen=True):
    """A metric name (optional) and label matchers."""

    name: str | None
    matchers: tuple[Matcher, ...]

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        """Whether the series `name{labels}` is selected."""
        if self.name is not None and name != self.name:
            return False
        full = {**labels, "__name__": name}
        return all(matcher.matches(full) for matcher in self.matchers)


def parse_selector(text: str) -> Selector:
    """Parse `name{label="value", ...}`. Raises SelectorError naming the problem."""
    found = _SELECTOR.match(text)
    if found is None:
        raise SelectorError(f"bad selector {text!r}: expected name{{label=\"value\", ...}}")
    name, body = found["name"], found["body"]
    matchers: list[Matcher] = []
    if body is not None and body.strip():
        position = 0
        while position < len(body):
            matcher = _MATCHER.match(body, position)
            if matcher is None:
                raise SelectorError(
                    f"bad selector {text!r}: cannot read a label matcher at {body[position:]!r}"
                )
            value = _ESCAPE.sub(lambda e: _ESCAPES.get(e[1], e[1]), matcher["value"])
            if matcher["op"] in ("=~", "!~"):
                try:
                    re.compile(value)
                except re.error as exc:
                    raise SelectorError(f"bad selector {text!r}: regex {value!r}: {exc}") from None
            matchers.append(Matcher(label=matcher["label"], op=matcher["op"], value=value))
            position = matcher.end()
            if position < len(body):
                if body[position] != ",":
                    raise SelectorError(
                        f"bad selector {text!r}: expected ',' at {body[position:]!r}"
                    )
                position += 1
                if not body[position:].strip():
                    break  # a trailing comma
    if name is None and not matchers:
        raise SelectorError(f"bad selector {text!r}: give a metric name or a label matcher")
    return Selector(name=name, matchers=tuple(matchers))
