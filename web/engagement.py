"""The page's engagement section: k-anonymous aggregates only, never a pseudonym."""

from __future__ import annotations

import html
from typing import Any


def render_section(reply: dict[str, Any]) -> str:
    """Headline figures of the engagement report over the last 30 days."""
    def fmt(value: float | None, unit: str = "") -> str:
        return "suppressed (fewer than k players)" if value is None else f"{value:.3g}{unit}"

    suppressed = sum(int(v) for v in reply.get("suppressed", {}).values())
    rows = [("players", str(reply["people"])), ("sessions", str(reply["sessions"])),
            ("mean session", fmt(reply["mean_session_seconds"], " s")),
            ("interactions per minute", fmt(reply["interactions_per_minute"])),
            ("completion rate", fmt(reply["completion_rate"])),
            ("groups held back (k-anonymity)", str(suppressed))]
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                    for k, v in rows)
    return (f'<h2 id="engagement">Engagement (last 30 days, k = {int(reply["k"])})</h2>\n'
            f"<table>{cells}</table>")
