"""Plain-text rendering of control replies for a person at a terminal."""

from __future__ import annotations

import time
from typing import Any


def render_status(status: dict[str, Any]) -> str:
    """The `ttamond status` table."""
    store = status["store"]
    reload = status["config"]["reload"]
    lines = [
        f"ttamond {status['version']}: {status['state'].upper()}"
        f" (pid {status['pid']}, up {_duration(status['uptime_s'])})",
        f"config    {status['config']['path'] or 'embedded defaults'}"
        f"  (last reload: {'ok' if reload['ok'] else 'FAILED'}: {reload['message']})",
        f"database  {store['database']} ({_bytes(store['database_bytes'])}), store {store['mode']}",
        f"          committed {store['batches_committed']} batches, {store['points_committed']}"
        f" points, {store['events_committed']} events; last batch {store['last_batch_ms']:.1f} ms",
        f"spool     {_bytes(store['spool_bytes'])} in {store['spool_frames']} frames;"
        f" replayed {store['replayed_batches']} batches; dropped {store['spool_dropped_batches']}"
        f" batches ({store['spool_dropped_points']} points);"
        f" torn tails {store['spool_torn_tails']}, bad frames {store['spool_corrupt_frames']}",
    ]
    if store["last_error"]:
        lines.append(f"          last write error: {store['last_error']}")
    ingest = status.get("ingest")
    if ingest:
        lines.append(
            f"ingest    {ingest['batches']} batches: {ingest['accepted']} messages accepted"
            f" ({ingest['samples']} samples, {ingest['errors']} errors), {ingest['rejected']}"
            f" rejected, {ingest['refused_batches']} batches refused,"
            f" {ingest['not_stored']} not stored")
        if ingest["last_rejection"]:
            lines.append(f"          last rejection: {ingest['last_rejection']}")
    health = status.get("health")
    if health and not health["checks"] and not health["components"]:
        lines.append("health    no checks or components configured ([health] in ttamond.toml)")
    elif health:
        parts = ", ".join(f"{name} {text}" for name, text in health["components"].items())
        lines.append(f"health    {health['overall'].upper()}: {health['checks']} checks"
                     + (f"; {parts}" if parts else ""))
    alerts = status.get("alerts")
    if alerts:
        counters = alerts["counters"]
        suppressed = sum(v for k, v in counters.items() if k.startswith("suppressed"))
        lines.append(f"alerts    {alerts['firing']} firing ({alerts['muted']} muted);"
                     f" {counters['notifications']} notifications sent, {suppressed}"
                     " suppressed (`ttamond alerts list`)")
    privacy = status.get("privacy")
    if privacy:
        lines.append(f"privacy   key epoch {privacy['epoch']} ({privacy['keys']} keys kept);"
                     f" {privacy['dropped_fields']} properties dropped by the allow-list;"
                     f" {privacy['scan_hits']} stored fields redacted by the scan")
    analytics = status.get("analytics")
    if analytics:
        top = ", ".join(f"{t['name']} {t['score']:.2f}" for t in analytics["top"][:3])
        restored = analytics.get("restored", 0)
        lines.append(f"anomaly   {analytics['tracked']} series scored"
                     + (f" ({restored} carried over, not learnt afresh)" if restored else "")
                     + f", {analytics['alarms']} scores at or above {analytics['threshold']:g}"
                     + (f"; highest: {top}" if top else "")
                     + (f"; {analytics['save_errors']} saves of the detectors failed"
                        if analytics.get("save_errors") else ""))
    carbon = status.get("carbon")
    if carbon:
        if carbon["tracking"]:
            estimated = " ESTIMATED" if carbon["estimated"] else ""
            lines.append(
                f"carbon    {carbon['energy_kwh'] * 1000:.2f} Wh,"
                f" {carbon['emissions_kg'] * 1000:.2f} g CO2e since start{estimated}"
                f" ({carbon['method']}); {carbon['open_sessions']} sessions open")
        else:
            lines.append(f"carbon    not tracking yet {carbon['error']}".rstrip())
    web = status.get("web")
    also = f" and {web['unix_socket']}" if web and web.get("unix_socket") else ""
    lines.append(f"web       {web['url']}{also} (status page, /api/v1, /metrics)"
                 if web else "web       off")
    lines += ["", "ACTOR                STATE        RESTARTS  SINCE     LAST ERROR"]
    now = time.time() * 1000
    for actor in status["actors"]:
        name = actor["name"] + (" *" if actor["critical"] else "")
        since = _duration((now - actor["since_ms"]) / 1000)
        lines.append(f"{name:<20} {actor['state']:<12} {actor['restarts']:>8}  {since:<9} "
                     f"{actor['last_error']}".rstrip())
    lines += ["", "QUEUE                POLICY       DEPTH/CAP    DELIVERED    DROPPED"]
    for sub in status["bus"]["subscriptions"]:
        depth = f"{sub['depth']}/{sub['capacity']}"
        lines.append(f"{sub['name']:<20} {sub['policy']:<12} {depth:>9} {sub['delivered']:>12}"
                     f" {sub['dropped']:>10}")
    lines.append("(* critical: its failure ends the process)")
    return "\n".join(lines)


def render_latest(reply: dict[str, Any]) -> str:
    """The `ttamond latest` listing."""
    lines = []
    for value in reply["values"]:
        labels = ",".join(f'{k}="{v}"' for k, v in value["labels"].items())
        series = f"{value['name']}{{{labels}}}" if labels else value["name"]
        lines.append(f"{series:<70} {value['value']:>16.6g} {value['unit']}".rstrip())
    for failure in reply["failures"]:
        lines.append(f"! {failure['source']}: {failure['error']}")
    return "\n".join(lines) if lines else "(no values yet)"


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def _bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def render_query(reply: dict[str, Any]) -> str:
    """The `ttamond query` listing: one block per series, one line per point."""
    step = f"{reply['step_ms'] // 1000} s steps" if reply["step_ms"] else "raw points"
    lines = [f"# tier {reply['tier']}, {step}, {reply['aggregate']}"]
    for series in reply["series"]:
        labels = ",".join(f'{k}="{v}"' for k, v in series["labels"].items())
        lines.append(f"{series['name']}{{{labels}}} ({series['unit'] or series['kind']})")
        for ts, value in series["points"]:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts / 1000))
            lines.append(f"  {stamp}  {value:.6g}")
    if not reply["series"]:
        lines.append("(no series match)")
    return "\n".join(lines)


def render_health(reply: dict[str, Any]) -> str:
    """The `ttamond health` listing: overall, components, checks, predictions."""
    if not reply["checks"] and not reply["components"]:
        lines = ["no checks or components configured: add [[health.checks]] and"
                 " [[health.components]] to ttamond.toml (see the file in the repository)"]
    else:
        lines = [f"overall: {reply['overall'].upper()}"]
    for name, component in reply["components"].items():
        cause = "" if component["root_cause"] or component["level"] == "ok" else "  (derived)"
        lines.append(f"  {name:<24} {component['status']}{cause}")
    if reply["checks"]:
        lines += ["", "CHECK                STATE    SINCE               FLAPPING  MESSAGE"]
    for check in reply["checks"]:
        since = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(check["since_ms"] / 1000))
                 if check["since_ms"] else "-")
        lines.append(f"{check['check']:<20} {check['state']:<8} {since:<19} "
                     f"{'yes' if check['flapping'] else 'no':<9} {check['message']}".rstrip())
    if reply.get("predictions"):
        lines += ["", "PREDICTIONS"]
        lines += [f"  {p['text']}" + (f" (trend {p['trend']})" if p["trend"] else "")
                  for p in reply["predictions"]]
    return "\n".join(lines)
