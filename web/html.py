"""Small HTML building blocks for the status page; everything from outside is escaped
here, so panels cannot forget to."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence

LEVEL_CLASS = {"ok": "ok", "healthy": "ok", "running": "ok", "up": "ok", "active": "ok",
               "degraded": "warn", "warn": "warn", "pending": "warn", "backing-off": "warn",
               "silent": "warn", "critical": "crit", "crit": "crit", "firing": "crit",
               "failed": "crit", "down": "crit", "resolved": "ok", "unresolved": "warn",
               "regressed": "crit", "error": "warn"}


def e(text: object) -> str:
    """`text` escaped for HTML text and attribute values."""
    return html.escape(str(text), quote=True)


def badge(state: str) -> str:
    """A coloured state word."""
    return f'<span class="badge {LEVEL_CLASS.get(state, "unknown")}">{e(state)}</span>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str) -> str:
    """A table whose cells are already HTML (escape outside text with `e` first)."""
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    if not body:
        return f'<p class="empty">{e(empty)}</p>'
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def when(ms: int | None) -> str:
    """A local date and time, or a dash."""
    if not ms:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def ago(ms: int | None, now_ms: int) -> str:
    """`3 min ago`, with the exact time as a tooltip."""
    if not ms:
        return "-"
    seconds = max(0, (now_ms - ms) // 1000)
    if seconds < 90:
        text = f"{seconds} s ago"
    elif seconds < 5400:
        text = f"{seconds // 60} min ago"
    elif seconds < 172_800:
        text = f"{seconds // 3600} h ago"
    else:
        text = f"{seconds // 86_400} d ago"
    return f'<time title="{e(when(ms))}">{text}</time>'


def note(text: str) -> str:
    """A muted explanatory line."""
    return f'<p class="note">{e(text)}</p>'
