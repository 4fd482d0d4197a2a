"""The example fleet configurations in deploy/ pass their tools' own checkers."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False,
                          cwd=DEPLOY)


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool not installed (Debian package `prometheus`)")
def test_prometheus_config_and_rules_are_valid() -> None:
    checked = run("promtool", "check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = run("promtool", "check", "rules", "ttamond-rules.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr


@pytest.mark.skipif(shutil.which("amtool") is None,
                    reason="amtool not installed (Debian package `prometheus-alertmanager`)")
def test_alertmanager_route_tree_is_valid_and_routes_ttamond_labels() -> None:
    checked = run("amtool", "check-config", "alertmanager.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    def route(*labels: str) -> str:
        found = run("amtool", "config", "routes", "test", "--config.file=alertmanager.yml",
                    *labels)
        assert found.returncode == 0, found.stderr
        return found.stdout.strip()

    assert route("severity=critical", "component=narrative") == "pager,oncall-email"
    assert route("severity=critical", "component=redis") == "oncall-email"
    assert route("alertname=NotificationChannelFailing", "severity=critical") == "oncall-email"
    assert route("alertname=ActorFailed", "severity=warning") == "ops-chat"
    assert route("severity=warning", "component=narrative") == "team-chat"


def test_grafana_dashboard_is_json_with_prometheus_queries() -> None:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] == "ttamond-fleet"
    assert all(panel["targets"][0]["expr"] for panel in dashboard["panels"])
    # The queries themselves run against a real Prometheus in tests/test_fleet.py.
