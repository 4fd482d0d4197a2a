"""The report in each format: JSON with stable keys, Markdown tables, one
self-contained, well-formed HTML file with inline SVG charts; "no data" when empty."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.report import known
from ttamond.config import Config
from ttamond.report.markdown import escape
from ttamond.report.model import Report
from ttamond.report.render import render
from ttamond.report.summary import build_report

TOP_KEYS = ["host", "since_ms", "until_ms", "generated_ms", "performance", "errors", "alerts",
            "carbon", "engagement", "charts"]
VOID = {"meta", "link", "br", "hr", "img", "input", "wbr", "area", "base", "col", "source"}


@pytest.fixture(scope="module")
def report(known_db: Path) -> Report:
    return build_report(known_db, Config(), known.window("minute"), generated_ms=known.NOW)


@pytest.fixture
def empty_report(empty_db: Path) -> Report:
    return build_report(empty_db, Config(), known.window("minute"), generated_ms=known.NOW)


class StrictPage(HTMLParser):
    """Every element closed in order; notes the tags, attributes and text seen."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problems: list[str] = []
        self.tags: set[str] = set()
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.urls += [value or "" for name, value in attrs
                      if name in ("src", "href", "action")
                      or (name != "xmlns" and (value or "").startswith("http"))]
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:]}")
        else:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_json_is_one_object_with_every_section(report: Report) -> None:
    data = json.loads(render(report, "json"))
    assert list(data) == TOP_KEYS
    assert data["host"] == report.host and data["generated_ms"] == known.NOW
    assert data["performance"]["overall"]["operations"] == known.OPERATIONS
    assert data["performance"]["overall"]["response_peak_s"] == known.RESPONSE_PEAK
    assert data["errors"]["events"] == 4 and data["alerts"]["fired"] == 3
    assert data["carbon"]["estimated"] is True and data["engagement"]["people"] == 5
    assert render(report, "json") == render(report, "json")


def test_markdown_has_the_tables(report: Report) -> None:
    text = render(report, "md")
    for heading in ("# ttamond report for", "## Performance", "### Operations by component",
                    "### Availability by component", "### Host resources",
                    "## Error patterns", "### Top groups", "## Alerts", "### By alert",
                    "### Deliveries by channel", "## Carbon", "## Engagement"):
        assert f"\n{heading}" in "\n" + text, heading
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| component | kind"))
    assert lines[header + 1].startswith("| --------- | ------------ | ---------: |")
    assert lines[header + 2].split("|")[1:5] == [" narrative ", " ai_inference ",
                                                 "          4 ", "   0.000556 "]
    assert "| response time, mean           |    907 ms |" in text
    assert "| narrative |       77.78% |" in text
    assert "These figures are estimated" in text and "1 kWh (estimated)" in text
    # An error title cannot open HTML or a new table cell.
    assert "ValueError: \\<script\\>" in text and re.search(r"(?<!\\)<", text) is None
    assert not any(pseudonym in text for pseudonym in known.pseudonyms())


def test_markdown_escaping() -> None:
    assert escape("a|b <i>[x](y)</i>\nnext") == r"a\|b \<i\>\[x\](y)\</i\> next"


def test_html_is_self_contained_and_well_formed(report: Report) -> None:
    page = render(report, "html")
    parser = StrictPage()
    parser.feed(page)
    parser.close()
    assert parser.problems == [] and parser.open == []
    assert page.startswith("<!DOCTYPE html>")
    assert "script" not in parser.tags and parser.urls == []
    assert page.count("<svg") == 3 and "<table>" in page and "<style>" in page
    # The error title is text, escaped, never markup.
    assert "ValueError: &lt;script&gt;alert(" in page
    text = "".join(parser.text)
    assert "ValueError: <script>alert(" in text
    assert not any(pseudonym in page for pseudonym in known.pseudonyms())


@pytest.mark.parametrize("output", ["md", "html"])
def test_an_empty_database_says_no_data(empty_report: Report, output: str) -> None:
    text = render(empty_report, output)  # type: ignore[arg-type]
    assert "no data" in text
    assert "No operations reported by components: no data." in text
    assert "Carbon tracking recorded nothing in the window: no data." in text
    assert "fewer than k = 5 people" in text


def test_an_empty_database_in_json(empty_report: Report) -> None:
    data = json.loads(render(empty_report, "json"))
    assert list(data) == TOP_KEYS
    assert data["carbon"] is None and data["performance"]["availability"] is None
    assert data["performance"]["overall"]["response_avg_s"] is None


def test_an_unknown_format_is_refused(report: Report) -> None:
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        render(report, "pdf")  # type: ignore[arg-type]
