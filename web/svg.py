"""Server-side SVG charts for the status page and the HTML reports.

Charts are plain SVG strings: no JavaScript and no external resources. Each chart carries
its own <style>, so it looks the same inline in a page and in a standalone report file.
All text that comes from outside (series labels, titles, units) is escaped, and
coordinates are rounded to one decimal to keep pages small.

`line_chart` draws axes, gridlines, a legend and one `path.line` per series;
`sparkline` draws a bare trend line; `format_value` prints a number in its unit the way
the axes do.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from html import escape
from itertools import pairwise
from statistics import median
from typing import Final

import msgspec

__all__ = ["ChartSeries", "format_value", "line_chart", "nice_ticks", "sparkline"]

_S, _MIN, _H, _DAY = 1000, 60_000, 3_600_000, 86_400_000
# Candidate x-axis tick steps; the smallest one that keeps the labels apart is used.
_TIME_STEPS: Final = (10 * _S, 15 * _S, 30 * _S, _MIN, 2 * _MIN, 5 * _MIN, 10 * _MIN,
                      15 * _MIN, 30 * _MIN, _H, 2 * _H, 3 * _H, 6 * _H, 12 * _H, _DAY,
                      2 * _DAY, 7 * _DAY, 14 * _DAY, 28 * _DAY)
_COLOURS: Final = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759",
                   "#76b7b2", "#edc948", "#b07aa1", "#9c755f")  # Tableau 10
_CHAR_W: Final = 6.5  # rough width of an 11px sans-serif character, for layout only
# Inline <style> rules apply to the whole page, so every rule is scoped to svg.chart;
# the .line rule comes after the colours so that lines are not filled.
_STYLE: Final = (
    "svg.chart{font:11px sans-serif}svg.chart text{fill:#555}"
    "svg.chart .grid{stroke:#e3e3e3;fill:none}svg.chart .axis-line{stroke:#999;fill:none}"
    + "".join(f"svg.chart .s{i}{{stroke:{c};fill:{c}}}" for i, c in enumerate(_COLOURS))
    + "svg.chart .line{fill:none;stroke-width:1.5;stroke-linejoin:round;"
    "stroke-linecap:round}"
)

# Scales for `_scaled`, largest first; each has the factor 1 among them for zero.
_BINARY: Final = tuple((1024.0**i, p) for i, p in enumerate(
    ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")))[::-1]
_DECIMAL: Final = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))
_DURATION: Final = ((86400.0, " d"), (3600.0, " h"), (60.0, " min"), (1.0, " s"),
                    (1e-3, " ms"), (1e-6, " µs"))
_PERCENT: Final = frozenset({"percent", "%", "pct"})
_BYTES: Final = frozenset({"bytes", "byte", "b"})
_BYTE_RATES: Final = frozenset({"bytes/s", "bytes_per_second", "b/s"})
_SECONDS: Final = frozenset({"seconds", "second", "s", "sec"})
# Units spelled out in the data but printed as their symbols; SI-prefixed ones take k, M...
_SYMBOLS: Final = {"watts": "W", "watt": "W", "joules": "J", "kwh": "kWh", "hertz": "Hz",
                   "celsius": "°C"}
_SI_PREFIXED: Final = frozenset({"W", "J", "Hz"})
_NOT_XML: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class ChartSeries(msgspec.Struct, frozen=True):
    """One line of a chart: its legend text and (timestamp_ms, value) points, oldest first."""

    label: str
    points: Sequence[tuple[int, float]]


def format_value(value: float, unit: str) -> str:
    """`value` in `unit` to three significant digits: `42.5%`, `1.2 GiB`, `1.2 MiB/s`,
    `120 ms`, `3.2 min`, `230 W`, `1.5k` (no unit)."""
    if not math.isfinite(value):
        return "n/a" if math.isnan(value) else ("-∞" if value < 0 else "∞")
    key = unit.strip().lower()
    if key in _PERCENT:
        return f"{_sig3(value)}%"
    if key in _BYTES:
        return _scaled(value, _BINARY, " ")
    if key in _BYTE_RATES:
        return _scaled(value, _BINARY, " ") + "/s"
    if key in _SECONDS:
        return _scaled(value, _DURATION, "")
    if key.endswith("/s") and key[:-2]:
        # A per-second rate of some other unit, e.g. "seconds/s" of CPU time.
        return format_value(value, unit.strip()[:-2]) + "/s"
    if not key:
        return _scaled(value, _DECIMAL, "")
    symbol = _SYMBOLS.get(key, unit.strip())
    if symbol in _SI_PREFIXED:
        return _scaled(value, _DECIMAL, " ") + symbol
    return f"{_scaled(value, _DECIMAL, '')} {symbol}"


def _sig3(x: float) -> str:
    """`x` to three significant digits, without an exponent or trailing zeros."""
    if x == 0:
        return "0"
    text = f"{x:.{max(0, 2 - math.floor(math.log10(abs(x))))}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _scaled(value: float, scales: Sequence[tuple[float, str]], space: str) -> str:
    """`value` in the largest of `scales` (largest first) that it reaches once rounded,
    so that 1023.9 bytes reads `1 KiB` rather than `1024 B`; `space` goes before the
    prefix."""
    if value == 0:
        factor, prefix = next(s for s in scales if s[0] == 1)
    else:  # the first scale that it reaches, else the smallest one
        factor, prefix = next((s for s in scales if abs(float(_sig3(value / s[0]))) >= 1),
                              scales[-1])
    return f"{_sig3(value / factor)}{space}{prefix}"


def nice_ticks(lo: float, hi: float) -> list[float]:
    """3 to 6 evenly spaced ticks, multiples of 1, 2 or 5 x 10^n, covering [lo, hi]."""
    # A flat series sits in the middle of the range; spans near the ends of the float
    # range would overflow the powers of ten below.
    if not hi - lo > 1e-290:
        pad = abs(lo) * 0.1 if abs(lo) > 1e-280 else 1.0
        lo, hi = lo - pad, hi + pad
    if not hi - lo < 1e300:
        return [lo, lo / 2 + hi / 2, hi]
    exponent = math.floor(math.log10(hi - lo)) - 1
    # The first step always gives over 6 ticks, so the step that fits gives at least 3;
    # 10^(e+1) exceeds the span, so the loop ends there at the latest.
    while True:
        for mantissa in (1, 2, 5):
            first = math.floor(lo / (mantissa * 10.0**exponent))
            last = math.ceil(hi / (mantissa * 10.0**exponent))
            # The divisions round: make sure that the end ticks really cover the data.
            first -= _tick(first, mantissa, exponent) > lo
            last += _tick(last, mantissa, exponent) < hi
            if last - first <= 5:
                return [_tick(k, mantissa, exponent) for k in range(first, last + 1)]
        exponent += 1


def _tick(k: int, mantissa: int, exponent: int) -> float:
    """k x mantissa x 10^exponent, multiplying or dividing by an exact power of ten so
    that 3 x 0.1 comes out as 0.3."""
    if exponent >= 0:
        return k * mantissa * 10.0**exponent
    return k * mantissa / 10.0**-exponent


def _time_ticks(t0: int, t1: int, max_ticks: int) -> list[tuple[int, str]]:
    """Ticks at round local times in [t0, t1] and their labels (14:00, Mon 12, 11-26)."""
    span = t1 - t0
    step = next((s for s in _TIME_STEPS if span / s <= max_ticks),
                math.ceil(span / max_ticks / _DAY) * _DAY)
    # Align to local midnight so that 6-hourly ticks fall on 00:00, 06:00...
    offset = time.localtime(t0 / 1000).tm_gmtoff * 1000
    first = -((-(t0 + offset)) // step) * step - offset
    ticks: list[tuple[int, str]] = []
    for t in range(first, t1 + 1, step):
        local = time.localtime(t / 1000)
        if step < _MIN:
            fmt = "%H:%M:%S"
        elif step < _DAY:
            at_midnight = local.tm_hour == 0 and local.tm_min == 0 and span > _DAY
            fmt = "%a %d" if at_midnight else "%H:%M"
        else:
            fmt = "%a %d" if step < 7 * _DAY else "%m-%d"
        ticks.append((t, time.strftime(fmt, local)))
    return ticks


class _Frame:
    """Maps (time, value) onto a plot rectangle; SVG's y axis grows downwards."""

    def __init__(self, box: tuple[float, float, float, float],
                 times: tuple[int, int], values: tuple[float, float]) -> None:
        self.left, self.top, self.right, self.bottom = box
        (self.t0, self.t1), self.lo = times, values[0]
        self.kx = (self.right - self.left) / (times[1] - times[0])
        self.ky = (self.bottom - self.top) / (values[1] - values[0])

    def x(self, t: float) -> float:
        return self.left + (t - self.t0) * self.kx

    def y(self, v: float) -> float:
        return self.bottom - (v - self.lo) * self.ky

    def path(self, points: Sequence[tuple[int, float]], gap: float) -> str:
        """Path data through `points`, starting a new subpath after each gap wider than
        `gap` ms; a point alone gets `h0`, which the round line cap draws as a dot."""
        left, t0, kx, bottom, lo, ky = self.left, self.t0, self.kx, self.bottom, self.lo, self.ky
        # The hot loop: %-formatting is measurably faster than an f-string here.
        coords = ["%.1f,%.1f" % (left + (t - t0) * kx, bottom - (v - lo) * ky)  # noqa: UP031
                  for t, v in points]
        breaks = [i for i, (a, b) in enumerate(pairwise(points), 1) if b[0] - a[0] > gap]
        edges = [0, *breaks, len(points)]
        return " ".join("M" + " L".join(coords[a:b]) + (" h0" if b - a == 1 else "")
                        for a, b in pairwise(edges))


def _gap_limit(points: Sequence[tuple[int, float]], step_ms: int) -> float:
    """The widest spacing still drawn as a line: 2 steps, or 3 x the median spacing."""
    if step_ms > 0:
        return 2.0 * step_ms
    spacing = median([b[0] - a[0] for a, b in pairwise(points)] or [0])
    return 3.0 * spacing if spacing > 0 else math.inf


def _finite(points: Sequence[tuple[int, float]], start: float, end: float,
            ) -> list[tuple[int, float]]:
    return [(t, v) for t, v in points if start <= t <= end and math.isfinite(v)]


def _escape(text: str) -> str:
    """`text` safe inside an element or an attribute: markup escaped, and characters that
    XML forbids outright (control characters, lone surrogates) replaced."""
    return escape(_NOT_XML.sub("\ufffd", text), quote=True)


def _text(x: float, y: float, text: str, anchor: str = "start") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{_escape(text)}</text>'


def _open(width: int, height: int, cls: str, name: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" class="{cls}">'
            f"<title>{_escape(name)}</title>")


def _legend(labels: Sequence[str], width: int) -> tuple[list[str], int]:
    """Legend items flowed left to right across the top, and the height they take."""
    parts, x, y = ['<g class="legend">'], 8.0, 12
    for i, label in enumerate(labels):
        item = 18 + _CHAR_W * len(label)
        if x > 8 and x + item > width:
            x, y = 8.0, y + 14
        parts.append(f'<rect class="s{i % 8}" x="{x:.1f}" y="{y - 8}" width="10" height="10"/>'
                     + _text(x + 14, y + 1, label))
        x += item + 12
    return [*parts, "</g>"], y + 6


def line_chart(series: Sequence[ChartSeries], *, unit: str = "", start_ms: int | None = None,
               end_ms: int | None = None, width: int = 640, height: int = 200,
               title: str = "", step_ms: int = 0) -> str:
    """An SVG line chart of `series` over [start_ms, end_ms] (by default the data's
    extent): y axis with nice ticks in `unit`, local-time x axis, one
    `<path class="line s{i}">` per series with finite points (broken across gaps wider
    than 2 x `step_ms`, or 3 x the median spacing when it is 0), a legend when there is
    more than one series. NaN and infinities are skipped; no data gives a "no data" svg."""
    name = title or ", ".join(s.label for s in series) or "chart"
    lo_t = -math.inf if start_ms is None else start_ms
    hi_t = math.inf if end_ms is None else end_ms
    if lo_t > hi_t:
        lo_t, hi_t = hi_t, lo_t
    data = [_finite(s.points, lo_t, hi_t) for s in series]
    drawn = [points for points in data if points]
    if not drawn:
        small = min(height, 48)
        return (_open(width, small, "chart", name) + f"<style>{_STYLE}</style>"
                + _text(width / 2, small / 2 + 4, "no data", "middle") + "</svg>")
    t0 = int(lo_t) if start_ms is not None else min(p[0][0] for p in drawn)
    t1 = int(hi_t) if end_ms is not None else max(p[-1][0] for p in drawn)
    if t1 <= t0:  # a single instant: centre it in a window of a step either side
        pad = max(step_ms, _MIN)
        t0, t1 = t0 - pad, t1 + pad
    values = [v for points in drawn for _, v in points]
    ticks = _value_ticks(min(values), max(values), unit)
    labels = [format_value(v, unit) for v in ticks]
    parts = [_open(width, height, "chart", name), f"<style>{_STYLE}</style>"]
    top = 8
    if len(series) > 1:
        legend, top = _legend([s.label for s in series], width)
        parts += legend
    left = 10 + _CHAR_W * max(len(label) for label in labels)
    box = (left, top + 6.0, max(left + 1, width - 20.0), max(top + 7.0, height - 20.0))
    frame = _Frame(box, (t0, t1), (ticks[0], ticks[-1]))
    parts += _axes(frame, ticks, labels, max(2, int(box[2] - box[0]) // 70))
    for i, points in enumerate(data):
        if points:
            parts.append(f'<path class="line s{i % 8}" '
                         f'd="{frame.path(points, _gap_limit(points, step_ms))}"/>')
        if len(points) == 1:
            t, v = points[0]
            parts.append(f'<circle class="dot s{i % 8}" cx="{frame.x(t):.1f}" '
                         f'cy="{frame.y(v):.1f}" r="3"/>')
    return "".join(parts) + "</svg>"


def _value_ticks(lo: float, hi: float, unit: str) -> list[float]:
    """Nice ticks; for byte units nice in the binary unit the axis prints (0.5 GiB, not
    500000000 B)."""
    scale = 1.0
    if unit.strip().lower() in _BYTES | _BYTE_RATES:
        biggest = max(abs(lo), abs(hi))
        scale = next((f for f, _ in _BINARY if biggest >= f), 1.0)
    return [tick * scale for tick in nice_ticks(lo / scale, hi / scale)]


def _axes(frame: _Frame, ticks: Sequence[float], labels: Sequence[str],
          max_time_ticks: int) -> list[str]:
    """Gridlines, tick labels and the axis lines of both axes."""
    left, top, right, bottom = frame.left, frame.top, frame.right, frame.bottom
    ys = [frame.y(v) for v in ticks]
    grid = "".join(f"M{left:.1f},{y:.1f}H{right:.1f}" for y in ys)
    parts = [f'<path class="grid" d="{grid}"/>', '<g class="axis y">']
    parts += [_text(left - 4, y + 4, label, "end") for y, label in zip(ys, labels, strict=True)]
    parts.append('</g><g class="axis x">')
    for t, label in _time_ticks(frame.t0, frame.t1, max_time_ticks):
        x = frame.x(t)
        parts.append(f'<path class="axis-line" d="M{x:.1f},{bottom:.1f}v4"/>'
                     + _text(x, bottom + 15, label, "middle"))
    parts.append(f'</g><path class="axis-line" d="M{left:.1f},{top:.1f}'
                 f'V{bottom:.1f}H{right:.1f}"/>')
    return parts


def sparkline(points: Sequence[tuple[int, float]], *, width: int = 120, height: int = 24,
              label: str = "") -> str:
    """A compact `<svg class="sparkline">`: one path through the finite `points` in the
    current text colour, the last point marked by a dot, no axes; `label` is its
    `<title>`. No finite point gives a well-formed svg without a path."""
    head = _open(width, height, "sparkline", label or "sparkline")
    finite = _finite(points, -math.inf, math.inf)
    if not finite:
        return head + "</svg>"
    t0, t1 = finite[0][0], finite[-1][0]
    lo, hi = min(v for _, v in finite), max(v for _, v in finite)
    # Pad a single instant or a flat series so that it sits in the middle.
    times = (t0, t1) if t1 > t0 else (t0 - 1, t0 + 1)
    pad = max(abs(lo) * 0.1, 1.0)
    values = (lo, hi) if hi > lo else (lo - pad, lo + pad)
    frame = _Frame((2.0, 2.0, width - 2.0, height - 2.0), times, values)
    t, v = finite[-1]
    return (head + f'<path d="{frame.path(finite, _gap_limit(finite, 0))}" fill="none" '
            'stroke="currentColor" stroke-width="1.2" stroke-linejoin="round" '
            f'stroke-linecap="round"/><circle cx="{frame.x(t):.1f}" cy="{frame.y(v):.1f}" '
            'r="1.8" fill="currentColor"/></svg>')
