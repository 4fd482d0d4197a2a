"""The panels of the pages behind the overview: a component, the errors and one error
group with its stack traces, the carbon report, engagement, the daemon itself."""

from __future__ import annotations

from typing import Any

from ttamond.control import CommandError
from ttamond.messages import now_ms
from ttamond.store.database import HOUR_MS
from ttamond.web.dashboard import Dashboard, Unavailable, parse_range
from ttamond.web.engagement import render_section as engagement_section
from ttamond.web.html import ago, badge, e, note, table, when
from ttamond.web.panels import OVERVIEW, Panel, Params, _chart


async def component(d: Dashboard, params: Params) -> str:
    """One component: its state and why, its dependencies, its series, its errors."""
    name = params.get("name", "")
    try:
        found = await d.command("monitor_component_health", {"component": name})
    except (Unavailable, CommandError) as exc:
        return note(str(exc))
    down = ", ".join(found.get("down_dependencies") or []) or "none"
    failing = ", ".join(found.get("failing_checks") or []) or "none"
    head = (f"<p>{badge(found['level'])} {e(found.get('status', ''))}</p>"
            f"<p>Failing checks: {e(failing)} · dependencies down: {e(down)}</p>")
    selector = f'ttamond_component_health{{component="{_quote(name)}"}}'
    chart = await _chart(d, "Health level (0 ok, 1 degraded, 2 critical, 3 unknown), 24 h",
                         selector, span_ms=24 * HOUR_MS)
    try:
        groups = await d.command("errors_list", {"component": name, "limit": 10})
    except (Unavailable, CommandError) as exc:
        groups, head = [], head + note(f"Errors: {exc}")
    rows = [(f'<a href="/errors/{int(g["id"])}">{e(g["title"])}</a>', badge(g["state"]),
             str(int(g["count"]))) for g in groups]
    return (head + chart + "<h3>Errors</h3>"
            + table(("Error", "State", "Count"), rows, empty="No errors from this component."))


async def errors_list(d: Dashboard, params: Params) -> str:
    """Error groups, filtered by state."""
    state = params.get("state") or None
    args: dict[str, Any] = {"limit": 100}
    if state:
        args["state"] = state
    try:
        groups = await d.command("errors_list", args)
    except (Unavailable, CommandError) as exc:
        return note(str(exc))
    now = now_ms()
    rows = [(f'<a href="/errors/{int(g["id"])}">{e(g["title"])}</a>', e(g["error_type"]),
             badge(g["state"]), e(g["severity"]), str(int(g["count"])),
             ago(g["first_seen_ms"], now), ago(g["last_seen_ms"], now)) for g in groups]
    filters = " · ".join(f'<a href="/errors?state={s}">{s}</a>'
                         for s in ("unresolved", "regressed", "resolved", "ignored"))
    return (f"<p>Show: <a href=\"/errors\">all</a> · {filters}</p>"
            + table(("Error", "Type", "State", "Severity", "Count", "First seen", "Last seen"),
                    rows, empty="No error groups."))


async def error_group(d: Dashboard, params: Params) -> str:
    """One group with its latest events, their stack traces and context."""
    try:
        found = await d.command("errors_show", {"group": params.get("group", ""), "events": 5})
    except (Unavailable, CommandError) as exc:
        return note(str(exc))
    group = found["group"]
    resolve = ""
    if d.csrf is not None and group["state"] != "resolved":
        resolve = ('<form method="post" action="/alerts/action">'
                   f'<input type="hidden" name="csrf" value="{e(d.csrf)}">'
                   '<input type="hidden" name="action" value="resolve_error">'
                   f'<input type="hidden" name="group" value="{int(group["id"])}">'
                   "<button>Resolve</button></form>")
    out = [f"<h3>{e(group['title'])}</h3>",
           f"<p>{badge(group['state'])} {int(group['count'])} events, first"
           f" {when(group['first_seen_ms'])}, last {when(group['last_seen_ms'])}"
           + (f", resolved in {e(group['resolved_in'])}" if group["resolved_in"] else "")
           + f" {resolve}</p>"]
    for event in found["events"]:
        frames = "\n".join(
            f"  {frame.get('filename') or frame.get('module', '?')}:{frame.get('lineno', '?')}"
            f" in {frame.get('function', '?')}"
            for frame in event["stack"])
        context = ", ".join(f"{k}={v}" for k, v in sorted(event["context"].items()))
        out.append(f"<article><p>{when(event['timestamp_ms'])} · {e(event['component'])}"
                   f" · {e(event['release'] or 'no release')}</p>"
                   f"<pre>{e(event['message'])}\n{e(frames)}</pre>"
                   + (f"<p class=\"note\">{e(context)}</p>" if context else "") + "</article>")
    return "".join(out)


async def carbon_report(d: Dashboard, params: Params) -> str:
    """Energy and emissions over a range, per model and per component."""
    span = _span(params, "7d")
    try:
        report = await d.command("generate_carbon_report", {"since_ms": now_ms() - span})
    except (Unavailable, CommandError) as exc:
        return note(f"No carbon report: {exc}")
    estimated = ' <span class="badge warn">estimated</span>' if report["estimated"] else ""
    rows = [(e(c.get("component", "")), f"{c['energy_kwh'] * 1000:.2f}",
             f"{c['emissions_kg'] * 1000:.2f}") for c in report["per_component"]]
    models = [(e(m.get("model", "")), f"{m['energy_kwh'] * 1000:.2f}",
               f"{m['emissions_kg'] * 1000:.2f}") for m in report["per_model"]]
    tips = "".join(f"<li>{e(r['message'])}</li>"
                   for r in report["recommendations"])
    return (f"<p><strong>{report['total_energy_kwh'] * 1000:.2f} Wh</strong>,"
            f" <strong>{report['total_emissions_kg'] * 1000:.2f} g CO2e</strong>{estimated}</p>"
            + "<h3>Per component</h3>"
            + table(("Component", "Wh", "g CO2e"), rows, empty="No component figures.")
            + "<h3>Per model</h3>"
            + table(("Model", "Wh", "g CO2e"), models, empty="No model figures.")
            + (f"<h3>Recommendations</h3><ul>{tips}</ul>" if tips else ""))


async def engagement(d: Dashboard, params: Params) -> str:
    """k-anonymous engagement aggregates; never a pseudonym."""
    try:
        return engagement_section(await d.command("engagement_report", {}))
    except (Unavailable, CommandError) as exc:
        return note(str(exc))


async def daemon(d: Dashboard, params: Params) -> str:
    """The daemon's own health: actors, queues and drops, the store and its spool."""
    status = d.status()
    now = now_ms()
    actors = [(e(a["name"]), badge(a["state"]), str(int(a["restarts"])),
               "yes" if a["critical"] else "", ago(a["since_ms"], now), e(a["last_error"]))
              for a in status["actors"]]
    queues = [(e(q["name"]), e(q["policy"]), f"{int(q['depth'])}/{int(q['capacity'])}",
               str(int(q["delivered"])),
               f'<span class="{"crit" if q["dropped"] else ""}">{int(q["dropped"])}</span>')
              for q in status["bus"]["subscriptions"]]
    store = status["store"]
    cache = d.cache.stats
    lag = d.sources.loop_lag() if d.sources.loop_lag is not None else 0.0
    return (f"<p>{badge(status['state'])} ttamond {e(status['version'])}, pid"
            f" {int(status['pid'])}, up {int(status['uptime_s'])} s</p>"
            + "<h3>Actors</h3>"
            + table(("Actor", "State", "Restarts", "Critical", "Since", "Last error"), actors,
                    empty="No actors.")
            + "<h3>Queues</h3>"
            + table(("Mailbox", "When full", "Depth", "Delivered", "Dropped"), queues,
                    empty="No mailboxes.")
            + "<h3>Store</h3>"
            + f"<p>{e(store['mode'])}; {int(store['batches_committed'])} batches,"
            f" {int(store['points_committed'])} points committed; spool {int(store['spool_bytes'])}"
            f" bytes in {int(store['spool_frames'])} frames; dropped"
            f" {int(store['spool_dropped_points'])} points; write errors"
            f" {int(store['write_errors'])}</p>"
            + (note(f"last write error: {store['last_error']}") if store["last_error"] else "")
            + "<h3>Page cache</h3>"
            + f"<p>{cache.hits} hits, {cache.stale} answered with the previous render while"
            f" the next was made, {cache.misses} renders, {cache.waits} waits for a first"
            f" render; {cache.entries} entries, {cache.bytes / 1024:.0f} KiB; event loop lag"
            f" {lag * 1000:.1f} ms</p>")


def _span(params: Params, default: str) -> int:
    try:
        return parse_range(params.get("range") or default)
    except ValueError:
        return parse_range(default)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


PANELS: dict[str, tuple[str, Panel]] = {
    **OVERVIEW,
    "component": ("Component", component),
    "errors-list": ("Errors", errors_list),
    "error": ("Error group", error_group),
    "carbon-report": ("Carbon report", carbon_report),
    "engagement": ("Engagement", engagement),
    "daemon": ("The daemon", daemon),
}
"""Every panel by the name in its URL (/panels/NAME)."""
