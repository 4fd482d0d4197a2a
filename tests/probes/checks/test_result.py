"""Thresholds, the shared result wording, and the container verdict (pure functions)."""

from __future__ import annotations

import pytest

from ttamond.probes.checks import CheckResult, Thresholds, container_status
from ttamond.probes.checks.result import Findings, duration, figure, percent


def test_higher_is_worse_grades_at_the_limits() -> None:
    limits = Thresholds(warn=80, crit=90)
    assert [limits.grade(value) for value in (79.9, 80, 89, 90, 100)] == [
        "ok", "warn", "warn", "crit", "crit"]


def test_lower_is_worse_grades_at_the_limits() -> None:
    limits = Thresholds(warn=14, crit=3, higher_is_worse=False)
    assert [limits.grade(value) for value in (30, 14, 5, 3, -1)] == [
        "ok", "warn", "warn", "crit", "crit"]


def test_a_level_left_out_is_skipped() -> None:
    assert Thresholds(None, 90).grade(85) == "ok"
    assert Thresholds(80, None).grade(1000) == "warn"
    assert Thresholds(None, None).grade(1e9) == "ok"


def test_limits_in_the_wrong_order_are_refused() -> None:
    with pytest.raises(ValueError, match="warn limit 95 is above crit limit 90"):
        Thresholds(95, 90)
    with pytest.raises(ValueError, match=r"warn limit 3 is below crit limit 14 \(lower is worse"):
        Thresholds(3, 14, higher_is_worse=False)


def test_findings_put_the_worst_first() -> None:
    findings = Findings()
    findings.add("ok", "ignored")
    findings.grade(85, Thresholds(80, 90), "memory at 85%", "%")
    findings.add("crit", "HTTP 500 from http://x/")
    result = findings.result(latency_ms=3.0, ok_message="fine", values={"a": 1.0})
    assert result == CheckResult("crit", 3.0, "HTTP 500 from http://x/; memory at 85% (warn at 80%)",
                                 {"a": 1.0})
    assert Findings().result(latency_ms=1.0, ok_message="fine", values={}).message == "fine"


def test_wording_of_numbers() -> None:
    assert [figure(value) for value in (14.0, 0.85, 1234.5678, 2.345)] == [
        "14", "0.85", "1235", "2.35"]
    assert percent(0.9234) == "92.3%"
    assert [duration(seconds) for seconds in (5 * 86400 - 1, 86400, 150, 30)] == [
        "5 days", "24 hours", "2 minutes", "30 seconds"]


@pytest.mark.parametrize(("health", "state", "status", "message"), [
    ("healthy", "running", "ok", "container is running and healthy"),
    ("starting", "running", "warn", "container is running and starting"),
    ("unhealthy", "running", "crit", "container is running and unhealthy"),
    (None, "running", "ok", "container is running (no healthcheck)"),
    ("none", "running", "ok", "container is running (no healthcheck)"),
    ("odd", "running", "warn", "container is running with unknown health 'odd'"),
    ("healthy", "exited", "crit", "container is exited"),
    (None, "restarting", "warn", "container is restarting"),
    (None, "paused", "warn", "container is paused"),
    (None, "vanished", "crit", "container is vanished"),
])
def test_container_status(health: str | None, state: str, status: str, message: str) -> None:
    result = container_status(health, state)
    assert (result.status, result.message) == (status, message)
    assert result.values == {"running": 1.0 if state == "running" else 0.0}
