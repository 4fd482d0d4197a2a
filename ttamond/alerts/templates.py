"""Annotation templates: Prometheus' everyday subset, `{{ $value }}` and `{{ $labels.x }}`."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

_PLACEHOLDER = re.compile(r"\{\{\s*(?P<expr>[^}]*?)\s*\}\}")
_EXPR = re.compile(r"^\$(?:(?P<plain>value|threshold)|labels\.(?P<label>[A-Za-z_][A-Za-z0-9_]*))$")


def check_template(text: str) -> str | None:
    """Why `text` is not a valid template, or None when it is."""
    for found in _PLACEHOLDER.finditer(text):
        if not _EXPR.match(found["expr"]):
            return (f"unknown placeholder {{{{ {found['expr']} }}}} (use $value, $threshold"
                    " or $labels.NAME)")
    if "{{" in _PLACEHOLDER.sub("", text):
        return "an opening '{{' has no closing '}}'"
    return None


def render(text: str, *, labels: Mapping[str, str], value: float | None,
           threshold: float | None = None) -> str:
    """Fill the placeholders; a label the alert lacks renders empty, like Prometheus."""

    def fill(found: re.Match[str]) -> str:
        expr = _EXPR.match(found["expr"])
        if expr is None:
            return found.group(0)
        if expr["label"]:
            return labels.get(expr["label"], "")
        number = value if expr["plain"] == "value" else threshold
        return format_number(number)

    return _PLACEHOLDER.sub(fill, text)


def format_number(number: float | None) -> str:
    """A value as a person reads it: 93.4, 1.2e+06, 12."""
    if number is None:
        return ""
    if math.isnan(number) or math.isinf(number):
        return str(number)
    if number == int(number) and abs(number) < 1e15:
        return str(int(number))
    return f"{number:.4g}"
