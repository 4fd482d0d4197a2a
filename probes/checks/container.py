"""Health of a container from the state and health its engine reports (Docker, Podman)."""

from __future__ import annotations

from ttamond.probes.base import FieldInfo
from ttamond.probes.checks.result import CheckResult, Status

VALUES: dict[str, FieldInfo] = {
    "running": FieldInfo("gauge", "", (), "1 while the container runs, else 0"),
}

_STATES: dict[str, Status] = {
    "running": "ok",
    # A restart policy at work or an operator's pause: look, but it may pass.
    "restarting": "warn",
    "paused": "warn",
    "created": "crit",
    "exited": "crit",
    "dead": "crit",
    "removing": "crit",
}
_HEALTH: dict[str, Status] = {"healthy": "ok", "starting": "warn", "unhealthy": "crit"}


def container_status(health: str | None, state: str) -> CheckResult:
    """Judge a container by its engine's words: `state` as in State.Status ("running",
    "exited", ...) and `health` as in State.Health.Status ("healthy", "starting",
    "unhealthy"; None, "" or "none" without a healthcheck). A container that is not
    running is judged by its state alone; an unknown state or health is crit or warn,
    naming it."""
    running = {"running": 1.0 if state == "running" else 0.0}
    if state != "running":
        status = _STATES.get(state, "crit")
        return CheckResult(status, 0.0, f"container is {state or 'in no known state'}",
                           running)
    if health is None or health in ("", "none"):
        return CheckResult("ok", 0.0, "container is running (no healthcheck)", running)
    if health not in _HEALTH:
        return CheckResult("warn", 0.0, f"container is running with unknown health {health!r}",
                           running)
    return CheckResult(_HEALTH[health], 0.0, f"container is running and {health}", running)
