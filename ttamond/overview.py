"""Summaries of the daemon's parts for status replies: the platform's `SystemStatus`,
and the health and carbon lines of `ttamond status`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ttamond.messages import now_ms
from ttamond.sessions import MonitoringSession

if TYPE_CHECKING:
    from ttamond.actors.carbon import CarbonActor
    from ttamond.actors.health import HealthActor
    from ttamond.health.forecast import Forecast

_SESSION_RANK = {"active": 0, "silent": 1, "stopped": 2}


def heartbeat_states(sessions: Sequence[MonitoringSession]) -> dict[str, str]:
    """Each reporting component's state: its best session's (one live replica means
    the component is up)."""
    states: dict[str, str] = {}
    for session in sessions:
        known = states.get(session.component)
        if known is None or _SESSION_RANK[session.state] < _SESSION_RANK[known]:
            states[session.component] = session.state
    return states


def health_summary(health: HealthActor | None) -> dict[str, Any] | None:
    """Overall level, each component in words, how many checks; None when off."""
    if health is None:
        return None
    return {"overall": health.level,
            "components": {name: h.describe() for name, h in sorted(health.components.items())},
            "checks": len(health.states)}


def carbon_summary(carbon: CarbonActor | None) -> dict[str, Any] | None:
    """Energy and emissions so far, how they were obtained; None when tracking is off."""
    if carbon is None:
        return None
    reading = carbon.reading
    return {
        "tracking": reading is not None,
        "error": carbon.error,
        "method": carbon.ledger.method if reading is not None else "",
        "estimated": reading.estimated if reading is not None else None,
        "energy_kwh": reading.energy_kwh if reading is not None else None,
        "emissions_kg": reading.emissions_kg if reading is not None else None,
        "open_sessions": len(carbon.ledger.sessions),
    }


def system_status(*, daemon_state: str, sessions: Sequence[MonitoringSession],
                  health: HealthActor | None, forecasts: Sequence[Forecast],
                  carbon: CarbonActor | None) -> dict[str, Any]:
    """The platform's `SystemStatus`: overall health, each component, what is not
    measured yet said as such, and when this was computed."""
    components = heartbeat_states(sessions)
    silent = sorted(name for name, state in components.items() if state == "silent")
    summary = health.summary() if health is not None else None
    if summary is not None and summary["overall"] != "unknown":
        overall = str(summary["overall"])
    elif daemon_state == "running" and not silent:
        overall = "ok"
    else:
        overall = "degraded" if daemon_state in ("running", "degraded") else "unknown"
    return {
        "overall": overall,
        "daemon": daemon_state,
        "components": components,
        "component_health": summary["components"] if summary is not None else None,
        "silent_components": silent,
        "sessions": list(sessions),
        "predictions": list(forecasts),
        "active_alerts": None,
        "performance_summary": None,
        "carbon": carbon_summary(carbon),
        "not_measured": ["active_alerts (alert escalator)",
                         "performance_summary (report generator)"]
        + ([] if carbon is not None else ["carbon ([carbon] enabled = false)"]),
        "last_updated_ms": now_ms(),
    }
