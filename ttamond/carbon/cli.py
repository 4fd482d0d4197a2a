"""`ttamond carbon report|status`: the carbon figures from the CLI."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from ttamond.cliparts import Ask, finish_action


def add_carbon_commands(
    commands: Any,
    *,
    common: Callable[[argparse.ArgumentParser], None],
    duration: Callable[[str], int],
    ask: Ask,
) -> None:
    """Register `carbon` and its actions on `commands` (a subparsers object)."""
    carbon = commands.add_parser("carbon", help="energy and CO2: report, status")
    actions = carbon.add_subparsers(metavar="ACTION", required=True)

    report = actions.add_parser("report", help="emissions, energy, efficiency, advice")
    report.add_argument("--since", type=duration, default=7 * 86_400_000, metavar="DURATION",
                        help="how far back (default 7d)")
    finish_action(report, common, lambda a: ask(a, "generate_carbon_report", render_report,
                                          {"since_ms": int(time.time() * 1000) - a.since}))

    status = actions.add_parser("status", help="the tracker's latest reading and sessions")
    finish_action(status, common, lambda a: ask(a, "get_carbon_metrics", render_status, {}))


def render_report(reply: dict[str, Any]) -> str:
    """The report as Markdown, by the report module's own renderer."""
    import msgspec

    from ttamond.carbon.report import CarbonReport, render_markdown

    return render_markdown(msgspec.convert(reply, CarbonReport))


def render_status(reply: dict[str, Any]) -> str:
    """The latest reading, how it was obtained, and the open sessions."""
    reading = reply.get("reading")
    if reading is None:
        return f"carbon: not tracking yet{': ' + reply['error'] if reply.get('error') else ''}"
    lines = [
        f"energy     {reading['energy_kwh'] * 1000:.3f} Wh since the tracker started",
        f"emissions  {reading['emissions_kg'] * 1000:.3f} g CO2e"
        f" at {reading['intensity_g_per_kwh']:.0f} g/kWh",
        f"power      cpu {reading['cpu_power_w']:.1f} W, gpu {reading['gpu_power_w']:.1f} W,"
        f" ram {reading['ram_power_w']:.1f} W",
        f"method     {reply['method']}",
    ]
    if reply.get("estimated"):
        lines.append("           these figures are ESTIMATES (no hardware energy counter)")
    sessions = reply.get("open_sessions") or []
    lines.append(f"sessions   {len(sessions)} open")
    lines += [f"  {s['session_id']}  {s['operation']:<24} {s['energy_kwh'] * 1000:.3f} Wh"
              for s in sessions]
    return "\n".join(lines)
