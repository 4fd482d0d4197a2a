"""The report's figures over the known database, against the values worked out by hand
in tests/report/known.py, read from each tier of the store; and an empty database."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from tests.report import known
from ttamond.config import Config
from ttamond.report.model import Availability, ResourceUse
from ttamond.report.performance import performance_summary
from ttamond.report.summary import SECTIONS, build_report
from ttamond.report.window import Window

MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000


@pytest.mark.parametrize(("length", "step"), [
    (30 * MINUTE, 10_000), (2 * HOUR, MINUTE), (24 * HOUR, 10 * MINUTE), (7 * DAY, HOUR),
    (14 * DAY, 2 * HOUR), (400 * DAY, 2 * DAY),
])
def test_the_step_gives_at_most_200_round_buckets(length: int, step: int) -> None:
    window = Window(since_ms=known.T0, until_ms=known.T0 + length, now_ms=known.NOW,
                    retention=known.RETENTION)
    assert window.step_ms == step
    assert length / step <= 200


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match=r"the window ends .* before it starts"):
        Window(since_ms=known.T0, until_ms=known.T0, now_ms=known.NOW,
               retention=known.RETENTION)


@pytest.mark.parametrize("name", list(known.WINDOWS))
def test_performance_figures_are_the_same_from_every_tier(known_db: Path, name: str) -> None:
    window = known.window(name)
    summary = performance_summary(known_db, window)
    assert summary.step_ms == window.step_ms
    overall = summary.overall
    assert overall.operations == known.OPERATIONS
    assert overall.throughput_per_s == pytest.approx(9 / window.seconds)
    assert overall.response_avg_s == pytest.approx(known.RESPONSE_AVG)
    assert overall.response_peak_s == known.RESPONSE_PEAK
    assert overall.error_rate == pytest.approx(known.ERROR_RATE)

    rows = {(o.component, o.kind): o for o in summary.operations}
    assert sorted(rows) == [("narrative", "ai_inference"), ("narrative", "database"),
                            ("world", "database")]
    ai = rows["narrative", "ai_inference"]
    assert (ai.operations, ai.response_peak_s) == (4, 3.5)
    assert ai.response_avg_s == pytest.approx(2.0) and ai.error_rate == pytest.approx(0.25)
    world = rows["world", "database"]
    assert world.operations == 3 and world.error_rate == pytest.approx(1 / 3)
    assert world.response_avg_s == pytest.approx(0.04)
    assert world.response_peak_s == pytest.approx(0.06)
    assert world.throughput_per_s == pytest.approx(3 / window.seconds)
    assert rows["narrative", "database"].error_rate == 0.0

    # Availability: ok and degraded are up, unknown is left out.
    assert summary.components == [
        Availability(component="narrative", samples=60,
                     availability=pytest.approx(42 / 54),  # type: ignore[arg-type]
                     unknown_samples=6),
        Availability(component="world", samples=12,
                     availability=pytest.approx(9 / 12),  # type: ignore[arg-type]
                     unknown_samples=0),
    ]
    assert summary.availability is not None
    assert summary.availability.availability == pytest.approx(5 / 6)

    assert summary.resources == [
        ResourceUse(resource="cpu", target="", samples=5, avg_percent=30.0, peak_percent=50.0),
        ResourceUse(resource="memory", target="", samples=2, avg_percent=50.0,
                    peak_percent=60.0),
        ResourceUse(resource="disk", target="/", samples=3, avg_percent=72.0,
                    peak_percent=74.0),
        ResourceUse(resource="disk", target="/data", samples=1, avg_percent=10.0,
                    peak_percent=10.0),
    ]


def test_the_report_sections(known_db: Path) -> None:
    started: list[str] = []
    report = build_report(known_db, Config(), known.window("minute"), generated_ms=known.NOW,
                          on_section=started.append)
    assert started == list(SECTIONS)
    assert (report.since_ms, report.until_ms, report.generated_ms) == (
        known.T0 - HOUR, known.T0 + HOUR, known.NOW)

    errors = report.errors
    assert (errors.events, errors.groups, errors.new_groups, errors.regressions) == (4, 2, 1, 1)
    key_error, value_error = errors.top
    assert (key_error.title, key_error.state, key_error.events, key_error.total) == (
        "KeyError: missing chapter", "regressed", 3, 4)
    assert key_error.regressions == 1 and key_error.components == ["narrative"]
    assert key_error.first_seen_ms == known.at(-3 * 24 * 60)
    assert key_error.last_seen_ms == known.at(3)
    assert value_error.title.startswith("ValueError: <script>")
    assert errors.per_hour == [(known.T0, 4)]

    alerts = report.alerts
    assert (alerts.fired, alerts.resolved, alerts.acknowledged, alerts.escalated) == (3, 2, 2, 1)
    assert alerts.mean_time_to_acknowledge_s == pytest.approx((120 + 60) / 2)
    assert alerts.mean_time_to_resolve_s == pytest.approx((600 + 60) / 2)
    assert alerts.firing_now == 1
    high_cpu, component_down = alerts.by_alert
    assert (high_cpu.alertname, high_cpu.severity, high_cpu.fired, high_cpu.resolved) == (
        "HighCpu", "warning", 2, 2)
    assert high_cpu.mean_time_to_acknowledge_s == 120.0
    assert high_cpu.mean_time_to_resolve_s == pytest.approx(330.0)
    assert (component_down.alertname, component_down.severity) == ("ComponentDown", "critical")
    assert component_down.mean_time_to_resolve_s is None
    assert (alerts.notifications_sent, alerts.suppressed_rate_limit) == (2, 1)
    assert [(c.channel, c.sent, c.failed, c.gave_up, c.rate_limited)
            for c in alerts.channels] == [("log", 1, 0, 0, 0), ("oncall", 1, 1, 0, 1),
                                         ("slack", 0, 0, 1, 0)]
    assert alerts.suppressed == {"acknowledged": 1, "flapping": 0, "grouping": 3,
                                 "inhibition": 1, "silence": 2}
    assert alerts.notifications_total == 7 and not alerts.truncated

    carbon = report.carbon
    assert carbon is not None and carbon.estimated
    assert carbon.total_energy_kwh == pytest.approx(1.0)
    assert carbon.total_emissions_kg == pytest.approx(0.4)
    assert carbon.methods == {"cpu": "cpu-load-estimate", "gpu": "none", "ram": "constant"}
    assert [(m.model, m.inferences) for m in carbon.per_model] == [("m1", 4)]

    engagement = report.engagement
    assert (engagement.people, engagement.sessions) == (5, 5)
    assert engagement.mean_session_seconds == pytest.approx(600.0)
    encoded = msgspec.json.encode(report).decode()
    assert not any(pseudonym in encoded for pseudonym in known.pseudonyms())

    titles = [(c.section, c.title, [line.label for line in c.lines]) for c in report.charts]
    assert titles == [("performance", "Host CPU and memory", ["cpu", "memory"]),
                      ("performance", "Response time", ["AI inference", "database"]),
                      ("errors", "Error events per hour", ["errors"])]
    cpu = report.charts[0].lines[0].points
    assert cpu == [(known.at(1 + i), value) for i, value in enumerate(known.CPU)]
    assert report.charts[2].lines[0].points == [(known.T0 - HOUR, 0.0), (known.T0, 4.0)]


def test_until_leaves_out_what_came_after(known_db: Path) -> None:
    window = Window(since_ms=known.T0, until_ms=known.at(4.5), now_ms=known.NOW,
                    retention=known.RETENTION)
    summary = performance_summary(known_db, window)
    assert summary.overall.operations == 4  # the AI invocations only
    report = build_report(known_db, Config(), window, generated_ms=known.NOW)
    assert (report.alerts.fired, report.alerts.acknowledged, report.alerts.resolved) == (1, 1, 0)
    assert report.engagement.sessions == 5 and report.engagement.people == 5


def test_an_empty_database_gives_no_data_not_zeros(empty_db: Path) -> None:
    report = build_report(empty_db, Config(), known.window("minute"), generated_ms=known.NOW)
    performance = report.performance
    assert performance.overall.operations == 0
    overall = performance.overall
    assert (overall.throughput_per_s, overall.response_avg_s, overall.response_peak_s,
            overall.error_rate) == (None, None, None, None)
    assert performance.availability is None
    assert (performance.operations, performance.components, performance.resources) == ([], [], [])
    assert report.errors.events == 0 and report.errors.top == []
    assert report.alerts.fired == 0 and report.alerts.mean_time_to_resolve_s is None
    assert report.carbon is None
    assert report.engagement.people == 0
    assert all(not line.points for chart in report.charts for line in chart.lines)
