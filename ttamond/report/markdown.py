"""The report as Markdown: headings and aligned tables, readable in a terminal and on
GitHub. Charts are left out (the HTML report draws them)."""

from __future__ import annotations

import re

from ttamond.report.document import Block, Figure, Heading, Paragraph, Table, outline
from ttamond.report.model import Report

# Characters that could make outside text (an error title, a component's name) into
# markup: links, code, HTML, or a new table cell.
_SPECIAL = re.compile(r"([\\`|<>\[\]])")


def escape(text: str) -> str:
    """`text` as literal Markdown on one line."""
    return _SPECIAL.sub(r"\\\1", " ".join(text.split()))


def render_markdown(report: Report) -> str:
    """The whole report as Markdown text, ending with a newline."""
    parts = [_block(block) for block in outline(report) if not isinstance(block, Figure)]
    return "\n\n".join(parts) + "\n"


def _block(block: Block) -> str:
    match block:
        case Heading(level=level, text=text):
            return "#" * level + " " + escape(text)
        case Paragraph(text=text):
            return escape(text)
        case Table():
            return _table(block)
    raise TypeError(f"no Markdown for {type(block).__name__}")


def _table(table: Table) -> str:
    rows = [[escape(cell) for cell in row] for row in [table.headers, *table.rows]]
    widths = [max(3, *(len(row[i]) for row in rows)) for i in range(len(table.headers))]

    def line(cells: list[str]) -> str:
        padded = [cell.rjust(width) if numeric else cell.ljust(width)
                  for cell, width, numeric in zip(cells, widths, table.numeric, strict=True)]
        return "| " + " | ".join(padded) + " |"

    rule = "| " + " | ".join("-" * (width - 1) + ":" if numeric else "-" * width
                             for width, numeric in zip(widths, table.numeric, strict=True)) + " |"
    return "\n".join([line(rows[0]), rule, *(line(row) for row in rows[1:])])
