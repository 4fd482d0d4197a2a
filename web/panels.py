"""The overview's panels, each an HTML fragment the page loads on its own."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

from ttamond.control import CommandError
from ttamond.messages import now_ms
from ttamond.selector import SelectorError
from ttamond.store.database import HOUR_MS
from ttamond.store.queries import QueryError
from ttamond.web.dashboard import Dashboard, Unavailable
from ttamond.web.html import ago, badge, e, note, table
from ttamond.web.svg import ChartSeries, format_value, line_chart, sparkline

Params = Mapping[str, str]
Panel = Callable[[Dashboard, Params], Awaitable[str]]
OVERVIEW_SPAN_MS = 6 * HOUR_MS


async def health(d: Dashboard, params: Params) -> str:
    """Overall health and each component with its state and a sparkline."""
    try:
        summary = await d.command("health")
    except (Unavailable, CommandError) as exc:
        return note(f"Health checks are not available: {exc}")
    lines = await d.sparklines("ttamond_component_health", "component")
    rows = []
    for name, component in summary["components"].items():
        reason = component.get("root_cause") or component.get("reason") or ""
        rows.append((f'<a href="/components/{e(quote(name, safe=""))}">{e(name)}</a>',
                     badge(component["level"]),
                     e(reason),
                     sparkline(lines.get(name, []), label=f"{name}: health level, last 6 h"
                               " (0 ok, 1 degraded, 2 critical, 3 unknown)")))
    predictions = summary.get("predictions") or []
    soon = sorted((p for p in predictions if p.get("seconds") is not None),
                  key=lambda p: float(p["seconds"]))[:5]
    extra = "".join(f"<li>{e(p['text'])}</li>" for p in soon)
    checks = len(summary.get("checks") or [])
    return (f"<p>Overall: {badge(summary['overall'])} · {checks} checks</p>"
            + table(("Component", "State", "Why", "Last 6 h"), rows,
                    empty="No components configured ([[health.components]] in ttamond.toml).")
            + (f"<h3>Predicted</h3><ul>{extra}</ul>" if extra else ""))


async def host(d: Dashboard, params: Params) -> str:
    """CPU, memory, disk and network of the host over the last six hours."""
    charts = [
        ("CPU", 'host_cpu_percent{cpu="total"}', (), False),
        ("Memory", "host_memory_percent", (), False),
        ("Disk used", 'host_disk_percent{mount!~"/run.*|/sys.*|/proc.*|/dev.*"}', ("mount",),
         False),
    ]
    out = []
    for title, selector, label_by, rate in charts:
        out.append(await _chart(d, title, selector, label_by=label_by, rate=rate))
    out.append(await _network(d))
    return '<div class="charts">' + "".join(out) + "</div>"


async def _chart(d: Dashboard, title: str, selector: str, *, label_by: tuple[str, ...] = (),
                 rate: bool = False, span_ms: int = OVERVIEW_SPAN_MS) -> str:
    try:
        series, unit, step = await d.chart(selector, span_ms=span_ms, label_by=label_by,
                                           rate=rate)
    except (Unavailable, QueryError, SelectorError) as exc:
        return f"<figure>{note(f'{title}: {exc}')}</figure>"
    now = now_ms()
    return ("<figure>" + line_chart(series, unit=unit, start_ms=now - span_ms, end_ms=now,
                                    title=title, step_ms=step)
            + f"<figcaption>{e(title)}</figcaption></figure>")


async def _network(d: Dashboard) -> str:
    title = "Network"
    try:
        received, unit, step = await d.chart('host_net_received_bytes_total{interface!="lo"}',
                                             span_ms=OVERVIEW_SPAN_MS, label_by=("interface",),
                                             rate=True, limit=4)
        sent, _, _ = await d.chart('host_net_sent_bytes_total{interface!="lo"}',
                                   span_ms=OVERVIEW_SPAN_MS, label_by=("interface",), rate=True,
                                   limit=4)
    except (Unavailable, QueryError, SelectorError) as exc:
        return f"<figure>{note(f'{title}: {exc}')}</figure>"
    series = ([ChartSeries(label=f"in {s.label}", points=s.points) for s in received]
              + [ChartSeries(label=f"out {s.label}", points=s.points) for s in sent])
    now = now_ms()
    return ("<figure>" + line_chart(series, unit=unit or "bytes/s", start_ms=now - OVERVIEW_SPAN_MS,
                                    end_ms=now, title=title, step_ms=step)
            + f"<figcaption>{e(title)}</figcaption></figure>")


async def gpus(d: Dashboard, params: Params) -> str:
    """Each GPU's newest figures, or why there are none."""
    return await _devices(d, "gpu_", "gpu", ("gpu_utilization_percent", "gpu_memory_used_bytes",
                                             "gpu_memory_total_bytes", "gpu_temperature_celsius",
                                             "gpu_power_watts"), "No GPU")


async def containers(d: Dashboard, params: Params) -> str:
    """Each container's state and newest figures, or why there are none."""
    return await _devices(d, "container_", "container",
                          ("container_up", "container_cpu_percent", "container_memory_used_bytes",
                           "container_memory_limit_bytes", "container_restarts_total"),
                          "No containers")


async def _devices(d: Dashboard, prefix: str, key: str, columns: tuple[str, ...],
                   none: str) -> str:
    try:
        reply = await d.command("latest", {"prefix": prefix})
    except (Unavailable, CommandError) as exc:
        return note(f"{none}: {exc}")
    by_device: dict[str, dict[str, Any]] = defaultdict(dict)
    for value in reply["values"]:
        labels = value["labels"]
        name = labels.get(key) or labels.get("name") or labels.get("index") or labels.get(
            "uuid", "")
        if value["name"] in columns and name:
            by_device[name][value["name"]] = value
    rows = []
    for name, values in sorted(by_device.items()):
        cells = [e(name)]
        for column in columns:
            found = values.get(column)
            cells.append(e(format_value(found["value"], found["unit"])) if found else "-")
        rows.append(cells)
    failures = [f for f in reply.get("failures", []) if str(f.get("source", "")).endswith(
        key) or key in str(f.get("source", ""))]
    why = "; ".join(str(f.get("message") or f.get("error") or f) for f in failures)
    headers = (key.title(), *(c.removeprefix(prefix).replace("_", " ") for c in columns))
    return table(headers, rows, empty=f"{none}{': ' + why if why else ''}.")


async def carbon(d: Dashboard, params: Params) -> str:
    """Energy and emissions so far, marked "estimated" where they are."""
    figures = d.status().get("carbon")
    if figures is None:
        return note("Carbon tracking is off ([carbon] enabled = true turns it on).")
    if not figures["tracking"]:
        return note(f"Not tracking yet: {figures.get('error') or 'CodeCarbon is starting'}.")
    estimated = ' <span class="badge warn">estimated</span>' if figures["estimated"] else ""
    return (f"<p><strong>{figures['energy_kwh'] * 1000:.2f} Wh</strong> and"
            f" <strong>{figures['emissions_kg'] * 1000:.2f} g CO2e</strong> since the tracker"
            f" started{estimated}; {int(figures['open_sessions'])} operations tracked now.</p>"
            + note(f"How: {figures['method']}.") + '<p><a href="/carbon">Carbon report</a></p>')


async def errors(d: Dashboard, params: Params) -> str:
    """The error groups seen most recently."""
    try:
        groups = await d.command("errors_list", {"limit": 8, "state": "unresolved"})
    except (Unavailable, CommandError) as exc:
        return note(f"Error tracking is not available: {exc}")
    now = now_ms()
    rows = [(f'<a href="/errors/{int(g["id"])}">{e(g["title"])}</a>', e(g["error_type"]),
             badge(g["severity"]), str(int(g["count"])), ago(g["last_seen_ms"], now))
            for g in groups]
    return (table(("Error", "Type", "Severity", "Count", "Last seen"), rows,
                  empty="No unresolved error groups.") + '<p><a href="/errors">All errors</a></p>')


async def alerts(d: Dashboard, params: Params) -> str:
    """Firing and pending alerts with their buttons, silences, fatigue figures."""
    section = d.alerts_section
    if section is None:
        return note("Alerting is off ([alerts] enabled).")
    return await section()


async def anomalies(d: Dashboard, params: Params) -> str:
    """The series the anomaly detector finds least usual now, with their last 6 hours."""
    found = d.status().get("analytics")
    if found is None:
        return note("Anomaly detection is off ([analytics] enabled).")
    try:
        result = await d.query("ttamond_anomaly_score", span_ms=OVERVIEW_SPAN_MS,
                               aggregate="max")
        lines = {tuple(sorted(s.labels.items())): s.points for s in result.series}
    except (Unavailable, QueryError):
        lines = {}
    rows = []
    for top in found["top"]:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(top["labels"].items()))
        key = tuple(sorted({**top["labels"], "series": top["name"]}.items()))
        rows.append((e(top["name"]) + (f"<br><small>{e(labels)}</small>" if labels else ""),
                     badge("firing") if top["anomalous"] else "", f"{top['score']:.2f}",
                     sparkline(lines.get(key, []),
                               label=f"{top['name']}: anomaly score, last 6 h")))
    return (f"<p>{int(found['tracked'])} series watched, {int(found['alarms'])} alarms since"
            f" start, alarm above {found['threshold']:g}"
            + (f"; {int(found['dropped'])} series over the limit not watched"
               if found["dropped"] else "") + "</p>"
            + table(("Series", "", "Score", "Last 6 h"), rows, empty="No scores yet."))


OVERVIEW: dict[str, tuple[str, Panel]] = {
    "health": ("Health", health),
    "alerts": ("Alerts", alerts),
    "host": ("Host", host),
    "gpus": ("GPUs", gpus),
    "containers": ("Containers", containers),
    "carbon": ("Carbon", carbon),
    "errors": ("Top errors", errors),
    "anomalies": ("Anomalies", anomalies),
}
