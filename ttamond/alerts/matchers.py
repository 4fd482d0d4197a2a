"""Label matchers for silences and inhibitions, in the selector syntax:
`{alertname="DiskFull", instance=~"web.*"}`, or a bare alert name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ttamond.selector import Matcher, SelectorError, parse_selector


def parse_matchers(text: str) -> tuple[Matcher, ...]:
    """Matchers from `{label="value", ...}`; a leading name means `alertname="name"`.

    Raises SelectorError naming what could not be read.
    """
    text = text.strip()
    if not text:
        raise SelectorError("no matchers given: expected {label=\"value\", ...} or an alert name")
    selector = parse_selector(text)
    matchers = list(selector.matchers)
    if selector.name is not None:
        matchers.insert(0, Matcher(label="alertname", op="=", value=selector.name))
    return tuple(matchers)


def matches(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher holds for `labels` (a missing label reads as empty)."""
    return all(matcher.matches(labels) for matcher in matchers)


def describe(matchers: Sequence[Matcher]) -> str:
    """The matchers back in the syntax they were written in."""
    return "{" + ", ".join(f'{m.label}{m.op}"{m.value}"' for m in matchers) + "}"
