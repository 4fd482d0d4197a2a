"""The report as one self-contained HTML file: inline CSS, charts as inline SVG, no
scripts and nothing fetched from elsewhere; all text from outside is escaped."""

from __future__ import annotations

from html import escape

from ttamond.report.document import Block, Figure, Heading, Paragraph, Table, outline
from ttamond.report.model import Chart, Report
from ttamond.web.svg import ChartSeries, line_chart

CHART_WIDTH = 760
# The policy forbids scripts and remote resources to any browser that opens the file,
# should something get past the escaping.
_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_STYLE = (
    "body{font:14px/1.45 system-ui,sans-serif;color:#222;margin:0;background:#fafafa}"
    "main{max-width:980px;margin:0 auto;padding:16px 24px 48px;background:#fff}"
    "h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:28px 0 8px;"
    "border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}"
    "table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}"
    "th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
    "figure{margin:10px 0}figcaption{font-weight:600;font-size:13px;margin-bottom:4px}"
    "svg{max-width:100%;height:auto}"
)


def render_html(report: Report) -> str:
    """The whole report as an HTML document."""
    body = "\n".join(_block(block, report) for block in outline(report))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>ttamond report for {escape(report.host)}</title>\n"
        f"<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _block(block: Block, report: Report) -> str:
    match block:
        case Heading(level=level, text=text):
            return f"<h{level}>{escape(text)}</h{level}>"
        case Paragraph(text=text):
            return f"<p>{escape(text)}</p>"
        case Table():
            return _table(block)
        case Figure(chart=chart):
            return _figure(chart, report)
    raise TypeError(f"no HTML for {type(block).__name__}")


def _table(table: Table) -> str:
    def cells(tag: str, row: list[str]) -> str:
        return "".join(f'<{tag} class="n">{escape(cell)}</{tag}>' if numeric
                       else f"<{tag}>{escape(cell)}</{tag}>"
                       for cell, numeric in zip(row, table.numeric, strict=True))

    rows = "\n".join(f"<tr>{cells('td', row)}</tr>" for row in table.rows)
    return (f"<table>\n<thead><tr>{cells('th', table.headers)}</tr></thead>\n"
            f"<tbody>\n{rows}\n</tbody>\n</table>")


def _figure(chart: Chart, report: Report) -> str:
    # Buckets start on round times, the first one before the window's start.
    start = report.since_ms - report.since_ms % chart.step_ms if chart.step_ms else None
    svg = line_chart([ChartSeries(line.label, line.points) for line in chart.lines],
                     unit=chart.unit, start_ms=start, end_ms=report.until_ms,
                     width=CHART_WIDTH, title=chart.title, step_ms=chart.step_ms)
    return f"<figure>\n<figcaption>{escape(chart.title)}</figcaption>\n{svg}\n</figure>"
