"""Server-side SVG charts: well-formed output, gaps, escaping, bad data, ticks, units."""

from __future__ import annotations

import math
import re
import time
import xml.etree.ElementTree as ET

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ttamond.web.svg import ChartSeries, format_value, line_chart, nice_ticks, sparkline

NS = "{http://www.w3.org/2000/svg}"
T0 = 1_764_000_000_000
MINUTE = 60_000
SCRIPT = "<script>alert(1)</script>"


def parse(svg: str) -> ET.Element:
    """The root element; fails the test unless the text is well-formed XML."""
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    return root


def lines(root: ET.Element) -> list[ET.Element]:
    return [p for p in root.iter(f"{NS}path") if "line" in p.get("class", "").split()]


def coords(d: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", d)]


def grid_ys(root: ET.Element) -> list[float]:
    grid = next(p for p in root.iter(f"{NS}path") if p.get("class") == "grid")
    return [y for _, y in coords(grid.get("d", ""))]


def texts(root: ET.Element, group: str) -> list[str]:
    g = next(e for e in root.iter(f"{NS}g") if e.get("class") == group)
    return [t.text or "" for t in g.iter(f"{NS}text")]


def minutes(values: list[float], start: int = T0, every: int = MINUTE) -> list[tuple[int, float]]:
    return [(start + i * every, v) for i, v in enumerate(values)]


def test_chart_is_a_standalone_accessible_svg() -> None:
    svg = line_chart([ChartSeries("cpu", minutes([1.0, 2.0, 3.0]))], unit="percent",
                     title="CPU", width=500, height=150)
    root = parse(svg)
    assert root.get("class") == "chart"
    assert root.get("role") == "img"
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("500", "150",
                                                                           "0 0 500 150")
    assert root.find(f"{NS}title") is not None
    assert root.findtext(f"{NS}title") == "CPU"
    style = root.findtext(f"{NS}style") or ""
    assert "svg.chart .s0" in style and "svg.chart .s7" in style
    assert "<script" not in svg and "href" not in svg  # no JavaScript, nothing external
    assert [p.get("class") for p in lines(root)] == ["line s0"]
    assert all(label.endswith("%") for label in texts(root, "axis y"))


def test_one_path_per_series_with_finite_data() -> None:
    series = [
        ChartSeries("a", minutes([1.0, 2.0])),
        ChartSeries("empty", []),
        ChartSeries("nan", minutes([math.nan, math.inf, -math.inf])),
        ChartSeries("b", minutes([3.0, 4.0])),
    ]
    root = parse(line_chart(series))
    assert [p.get("class") for p in lines(root)] == ["line s0", "line s3"]
    # More than one series: a legend with every label.
    assert texts(root, "legend") == ["a", "empty", "nan", "b"]


def test_no_legend_for_a_single_series() -> None:
    root = parse(line_chart([ChartSeries("only", minutes([1.0, 2.0]))]))
    assert not [g for g in root.iter(f"{NS}g") if g.get("class") == "legend"]


def test_colours_repeat_after_eight_series() -> None:
    series = [ChartSeries(f"s{i}", minutes([float(i), i + 1.0])) for i in range(10)]
    classes = [p.get("class") for p in lines(parse(line_chart(series)))]
    assert classes == [f"line s{i % 8}" for i in range(10)]


def test_gap_bigger_than_two_steps_starts_a_new_subpath() -> None:
    points = minutes([1.0, 2.0, 3.0]) + minutes([4.0, 5.0], start=T0 + 10 * MINUTE)
    d = lines(parse(line_chart([ChartSeries("a", points)], step_ms=MINUTE)))[0].get("d", "")
    assert d.count("M") == 2
    assert len(coords(d)) == 5
    # Two steps apart is still one line.
    near = minutes([1.0, 2.0]) + minutes([3.0], start=T0 + 3 * MINUTE)
    d = lines(parse(line_chart([ChartSeries("a", near)], step_ms=MINUTE)))[0].get("d", "")
    assert d.count("M") == 1


def test_gap_without_step_uses_the_median_spacing() -> None:
    points = minutes([1.0] * 10) + minutes([2.0] * 10, start=T0 + 20 * MINUTE)
    d = lines(parse(line_chart([ChartSeries("a", points)])))[0].get("d", "")
    assert d.count("M") == 2
    steady = minutes([1.0, 2.0, 3.0, 4.0])
    d = lines(parse(line_chart([ChartSeries("a", steady)])))[0].get("d", "")
    assert d.count("M") == 1


def test_isolated_point_between_gaps_is_drawn() -> None:
    points = [(T0, 1.0), (T0 + MINUTE, 2.0), (T0 + 10 * MINUTE, 3.0),
              (T0 + 20 * MINUTE, 4.0), (T0 + 21 * MINUTE, 5.0)]
    d = lines(parse(line_chart([ChartSeries("a", points)], step_ms=MINUTE)))[0].get("d", "")
    assert d.count("M") == 3
    assert "h0" in d  # the lone point shows as a dot through the round line cap


@pytest.mark.parametrize("field", ["label", "title", "unit"])
def test_outside_text_is_escaped(field: str) -> None:
    label, title, unit = (SCRIPT if field == name else "x" for name in ("label", "title", "unit"))
    series = [ChartSeries(label, minutes([1.0, 2.0])), ChartSeries("other", minutes([3.0]))]
    svg = line_chart(series, title=title, unit=unit)
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    root = parse(svg)
    assert any(SCRIPT in (e.text or "") for e in root.iter())


def test_quotes_in_labels_stay_inside_text() -> None:
    svg = line_chart([ChartSeries('a "b" & \'c\'', minutes([1.0]))], title='t "q"')
    root = parse(svg)
    assert root.findtext(f"{NS}title") == 't "q"'


def test_characters_xml_forbids_are_replaced() -> None:
    svg = line_chart([ChartSeries("a\x1fb\ud800", minutes([1.0])), ChartSeries("c", [])],
                     title="t\x00")
    root = parse(svg)
    assert root.findtext(f"{NS}title") == "t\ufffd"
    assert "a\ufffdb\ufffd" in texts(root, "legend")


@pytest.mark.parametrize("series", [
    [],
    [ChartSeries("a", [])],
    [ChartSeries("a", minutes([math.nan, math.inf])), ChartSeries("b", [])],
])
def test_no_data(series: list[ChartSeries]) -> None:
    root = parse(line_chart(series, title="Disk"))
    assert root.get("class") == "chart"
    assert "no data" in [t.text for t in root.iter(f"{NS}text")]
    assert not lines(root)
    assert int(root.get("height", "0")) < 200


def test_points_outside_the_range_are_clipped() -> None:
    points = minutes([1.0, 2.0, 3.0, 4.0, 5.0])
    svg = line_chart([ChartSeries("a", points)], start_ms=T0 + MINUTE, end_ms=T0 + 3 * MINUTE)
    xy = coords(lines(parse(svg))[0].get("d", ""))
    assert len(xy) == 3
    outside = line_chart([ChartSeries("a", points)], start_ms=T0 + 9 * MINUTE)
    assert "no data" in outside


def test_explicit_range_places_data_inside_it() -> None:
    points = minutes([1.0, 2.0])
    root = parse(line_chart([ChartSeries("a", points)], start_ms=T0 - 60 * MINUTE,
                            end_ms=T0 + 60 * MINUTE, width=640))
    xs = [x for x, _ in coords(lines(root)[0].get("d", ""))]
    assert 300 < xs[0] < xs[1] < 340  # in the middle of the plot, not at its edges


def test_single_point_is_a_dot_with_axes() -> None:
    root = parse(line_chart([ChartSeries("a", [(T0, 5.0)])], unit="watts"))
    circles = list(root.iter(f"{NS}circle"))
    assert len(circles) == 1
    assert circles[0].get("class") == "dot s0"
    assert len(lines(root)) == 1
    assert len(texts(root, "axis y")) >= 3
    assert texts(root, "axis x")
    ys = grid_ys(root)
    assert min(ys) < float(circles[0].get("cy", "0")) < max(ys)


@pytest.mark.parametrize("value", [0.0, 42.0, -3.0, 1e9])
def test_constant_series_is_a_flat_line_in_the_middle(value: float) -> None:
    root = parse(line_chart([ChartSeries("a", minutes([value] * 5))]))
    ys = {y for _, y in coords(lines(root)[0].get("d", ""))}
    assert len(ys) == 1
    grid = grid_ys(root)
    top, bottom = min(grid), max(grid)
    assert top + 0.25 * (bottom - top) <= ys.pop() <= top + 0.75 * (bottom - top)


def test_nan_and_inf_are_skipped() -> None:
    points = minutes([1.0, math.nan, 2.0, math.inf, 3.0, -math.inf, 4.0])
    d = lines(parse(line_chart([ChartSeries("a", points)])))[0].get("d", "")
    assert len(coords(d)) == 4
    assert "nan" not in d and "inf" not in d


def test_negative_values_are_inside_the_y_range() -> None:
    root = parse(line_chart([ChartSeries("a", minutes([-40.0, 5.0, -12.0]))]))
    grid = grid_ys(root)
    assert all(min(grid) <= y <= max(grid) for _, y in coords(lines(root)[0].get("d", "")))
    labels = texts(root, "axis y")
    assert labels[0].startswith("-") and "0" in labels


def test_coordinates_have_at_most_one_decimal() -> None:
    points = [(T0 + i * 7_919, math.sin(i) * 1234.5678) for i in range(200)]
    svg = line_chart([ChartSeries("a", points), ChartSeries("b", points[::3])])
    for d in re.findall(r' d="([^"]*)"', svg):
        assert not re.search(r"\d\.\d\d", d)


def test_time_axis_labels_suit_the_range() -> None:
    def x_labels(span_ms: int) -> list[str]:
        points = [(T0, 1.0), (T0 + span_ms, 2.0)]
        return texts(parse(line_chart([ChartSeries("a", points)])), "axis x")

    hour = x_labels(60 * MINUTE)
    assert hour and all(re.fullmatch(r"\d\d:\d\d", label) for label in hour)
    week = x_labels(7 * 24 * 60 * MINUTE)
    assert week and all(re.fullmatch(r"\w+ \d\d", label) for label in week)
    months = x_labels(90 * 24 * 60 * MINUTE)
    assert months and all(re.fullmatch(r"\d\d-\d\d", label) for label in months)
    assert 2 <= len(hour) <= 9 and 2 <= len(week) <= 9 and 2 <= len(months) <= 9


def is_nice_step(step: float) -> bool:
    mantissa = step / 10 ** math.floor(math.log10(step))
    # Ticks near large values are only as exact as the floats there.
    return any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 5, 10))


def check_ticks(lo: float, hi: float) -> None:
    ticks = nice_ticks(lo, hi)
    assert 3 <= len(ticks) <= 6
    assert ticks[0] <= lo and ticks[-1] >= hi
    step = (ticks[-1] - ticks[0]) / (len(ticks) - 1)
    assert is_nice_step(step)
    for tick in ticks:  # every tick a multiple of the step
        assert math.isclose(tick / step, round(tick / step), rel_tol=1e-6, abs_tol=1e-6)


@pytest.mark.parametrize(("lo", "hi"), [
    (0, 1), (0, 100), (3, 3), (0, 0), (-7, 13), (0.1, 0.3), (-40, -12), (1e9, 1.0001e9),
    (0.000123, 0.000456), (12, 97), (0, 1e12),
])
def test_ticks_are_nice_and_cover_the_data(lo: float, hi: float) -> None:
    check_ticks(lo, hi)


@given(st.floats(-1e12, 1e12), st.floats(0, 1e12))
def test_ticks_property(lo: float, span: float) -> None:
    # A span below a millionth of the values is beyond what floats (and labels) resolve.
    assume(span == 0 or span >= abs(lo) * 1e-6)
    check_ticks(lo, lo + span)


def test_tick_labels_print_nice_values() -> None:
    root = parse(line_chart([ChartSeries("a", minutes([0.0, 37.0, 81.0]))], unit="percent"))
    assert texts(root, "axis y") == ["0%", "20%", "40%", "60%", "80%", "100%"]


@pytest.mark.parametrize(("low", "high", "labels"), [
    (0.2, 2.7, ["0 B", "1 GiB", "2 GiB", "3 GiB"]),
    (0.2, 1.3, ["0 B", "512 MiB", "1 GiB", "1.5 GiB"]),
])
def test_byte_ticks_are_nice_in_binary_units(low: float, high: float,
                                             labels: list[str]) -> None:
    gib = 1024.0**3
    root = parse(line_chart([ChartSeries("a", minutes([low * gib, high * gib]))],
                            unit="bytes"))
    assert texts(root, "axis y") == labels


@pytest.mark.parametrize(("value", "unit", "text"), [
    (42.5, "percent", "42.5%"),
    (42.5, "%", "42.5%"),
    (100.0, "percent", "100%"),
    (0.0, "percent", "0%"),
    (1.2 * 1024**3, "bytes", "1.2 GiB"),
    (1023.9, "bytes", "1 KiB"),
    (512.0, "bytes", "512 B"),
    (0.0, "bytes", "0 B"),
    (-3 * 1024.0**2, "bytes", "-3 MiB"),
    (1.2 * 1024**2, "bytes/s", "1.2 MiB/s"),
    (1.2 * 1024**2, "bytes_per_second", "1.2 MiB/s"),
    (0.12, "seconds", "120 ms"),
    (1.5, "seconds", "1.5 s"),
    (1.5, "s", "1.5 s"),
    (192.0, "seconds", "3.2 min"),
    (7200.0, "seconds", "2 h"),
    (0.0, "seconds", "0 s"),
    (0.000_25, "seconds", "250 µs"),
    (230.0, "watts", "230 W"),
    (1500.0, "watts", "1.5 kW"),
    (3.21, "kwh", "3.21 kWh"),
    (0.456, "kg", "0.456 kg"),
    (12.3456, "", "12.3"),
    (1234.0, "", "1.23k"),
    (4.5e6, "", "4.5M"),
    (7.2e9, "", "7.2G"),
    (-2500.0, "", "-2.5k"),
    (999.7, "", "1k"),
    (0.000123, "", "0.000123"),
    (0.0, "", "0"),
    (0.5, "seconds/s", "500 ms/s"),
    (math.nan, "percent", "n/a"),
    (math.inf, "bytes", "∞"),
])
def test_format_value(value: float, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


def test_sparkline() -> None:
    root = parse(sparkline(minutes([1.0, 3.0, 2.0, 5.0]), label="load"))
    assert root.get("class") == "sparkline"
    assert root.findtext(f"{NS}title") == "load"
    paths = list(root.iter(f"{NS}path"))
    assert len(paths) == 1
    xy = coords(paths[0].get("d", ""))
    assert len(xy) == 4
    circle = next(root.iter(f"{NS}circle"))
    assert (float(circle.get("cx", "0")), float(circle.get("cy", "0"))) == xy[-1]
    assert not list(root.iter(f"{NS}text"))  # no axes


@pytest.mark.parametrize("points", [[], [(T0, math.nan)]])
def test_empty_sparkline_has_no_path(points: list[tuple[int, float]]) -> None:
    root = parse(sparkline(points))
    assert root.get("class") == "sparkline"
    assert not list(root.iter(f"{NS}path"))


def test_sparkline_escapes_its_label_and_handles_one_point() -> None:
    svg = sparkline([(T0, 3.0)], label=SCRIPT, width=100, height=20)
    assert "<script>" not in svg
    root = parse(svg)
    assert root.findtext(f"{NS}title") == SCRIPT
    assert len(list(root.iter(f"{NS}path"))) == 1
    circle = next(root.iter(f"{NS}circle"))
    assert (circle.get("cx"), circle.get("cy")) == ("50.0", "10.0")


def test_sparkline_flat_and_negative() -> None:
    flat = coords(next(parse(sparkline(minutes([2.0] * 4), height=24)).iter(f"{NS}path"))
                  .get("d", ""))
    assert {y for _, y in flat} == {12.0}
    low = coords(next(parse(sparkline(minutes([-5.0, -1.0]), height=24)).iter(f"{NS}path"))
                 .get("d", ""))
    assert all(0 <= y <= 24 for _, y in low)


def test_a_week_of_four_series_renders_quickly() -> None:
    step = 7 * 24 * 60 * MINUTE // 2000
    series = [ChartSeries(f"s{j}", [(T0 + i * step, 50 + 40 * math.sin(i / 50 + j))
                                    for i in range(2000)]) for j in range(4)]
    line_chart(series, unit="percent")  # warm up
    started = time.perf_counter()
    for _ in range(5):
        svg = line_chart(series, unit="percent")
    elapsed = (time.perf_counter() - started) / 5
    assert len(lines(parse(svg))) == 4
    # Some 5 ms on a developer machine; generous so that a loaded CI host passes.
    assert elapsed < 0.05
