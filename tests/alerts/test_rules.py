"""Alert rules in ttamond.toml: one-line errors for what is wrong, warnings for what
may never fire."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ttamond.alerts.lint import rule_warnings
from ttamond.alerts.templates import render
from ttamond.config import ConfigError, parse_config

RULE = '[[alerts.rules]]\nkind = "metric"\nname = "X"\nthreshold = 1\n'


@pytest.mark.parametrize(("text", "message"), [
    (RULE + 'series = "cpu{"\n', r"rule 'X': series: bad selector 'cpu\{'"),
    (RULE + 'series = "cpu"\nfor = "5m"\n', r"alerts\.rules\.0\.for: expected a number"),
    (RULE + 'series = "cpu"\nclear = 5\n', r"clear \(5\) must be at or below the threshold"),
    (RULE + 'series = "cpu"\nannotations = { summary = "{{ $valu }}" }\n',
     r"unknown placeholder \{\{ \$valu \}\}"),
    (RULE + 'series = "cpu"\nlabels = { severity = "x" }\n',
     r"label 'severity' is set by ttamond"),
    (RULE + 'series = "cpu"\nescalation = "pager"\n',
     r"no escalation policy 'pager' \(have: default\)"),
    ('[[alerts.escalations]]\nname = "default"\n[[alerts.escalations.levels]]\n'
     'channels = ["lgo"]\n', r"no channel 'lgo' in \[\[notify.channels\]\] \(did you mean 'log'\?\)"),
    ('[[notify.channels]]\nkind = "alertmanager"\nname = "am"\nurls = ["http://a:9093"]\n'
     '[[notify.channels]]\nkind = "log"\nname = "log"\n'
     '[[alerts.escalations]]\nname = "default"\n[[alerts.escalations.levels]]\n'
     'channels = ["am"]\n', r"'am' is an Alertmanager channel"),
    ('[[alerts.rules]]\nkind = "health"\nname = "H"\nstates = ["crit"]\n',
     r"states for a component are critical, degraded, unknown"),
    ('[[alerts.escalations]]\nname = "default"\n[[alerts.escalations.levels]]\n'
     'after_minutes = 10\nchannels = ["log"]\n[[alerts.escalations.levels]]\n'
     'after_minutes = 5\nchannels = ["log"]\n', r"after_minutes must increase"),
    ('[[alerts.inhibit]]\nsource = "{x=}"\ntarget = "y"\n', r"inhibit source: bad selector"),
])
def test_bad_rules_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_unknown_series_is_a_warning_not_an_error(tmp_path: Path) -> None:
    config = parse_config(RULE + 'series = "host_cpu_precent"\n'
                          + RULE.replace('"X"', '"Y"') + 'series = "tta_requests_total"\n')
    (warning,) = rule_warnings(config.alerts.rules)
    assert warning == ("rule 'X': no probe produces a series named 'host_cpu_precent' (did you"
                       " mean 'host_cpu_percent'?); it fires only if a component reports it")
    path = tmp_path / "ttamond.toml"
    path.write_text(RULE + 'series = "host_cpu_precent"\n')
    checked = subprocess.run([sys.executable, "-m", "ttamond", "config", "check", str(path)],
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0
    assert "warning: rule 'X': no probe produces" in checked.stderr


def test_templates_fill_values_and_labels() -> None:
    text = "{{ $labels.host }} at {{$value}} (limit {{ $threshold }}){{ $labels.none }}"
    assert render(text, labels={"host": "a"}, value=93.456, threshold=90) == \
        "a at 93.46 (limit 90)"


def test_an_anomaly_rule_wanting_high_scores_in_a_row_is_a_warning() -> None:
    config = parse_config('[[alerts.rules]]\nname = "A"\nkind = "anomaly"\nsamples = 3\n'
                          '[[alerts.rules]]\nname = "B"\nkind = "anomaly"\n')
    (warning,) = rule_warnings(config.alerts.rules)
    assert warning.startswith("rule 'A': samples = 3, but the detector scores an event high once")
