"""The report's output formats: Markdown, one self-contained HTML file, or JSON."""

from __future__ import annotations

import msgspec

from ttamond.report import FORMATS, Format
from ttamond.report.html_page import render_html
from ttamond.report.markdown import render_markdown
from ttamond.report.model import Report


def render_json(report: Report) -> str:
    """The report as one JSON object; keys keep the order of the structs' fields."""
    return msgspec.json.format(msgspec.json.encode(report), indent=2).decode() + "\n"


def render(report: Report, output: Format) -> str:
    """The report in `output` format. Raises ValueError for an unknown format."""
    match output:
        case "md":
            return render_markdown(report)
        case "html":
            return render_html(report)
        case "json":
            return render_json(report)
    raise ValueError(f"unknown report format {output!r} (one of: {', '.join(FORMATS)})")
