"""Control commands of the health monitor: summary, one component, its dependencies,
a check run now, predictions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ttamond.control import CommandError, Handler

if TYPE_CHECKING:
    from ttamond.actors.health import HealthActor
    from ttamond.daemon import Daemon


def health_handlers(daemon: Daemon) -> dict[str, Handler]:
    """Handlers reading the running health actor; `not_available` while it is off."""

    def running() -> HealthActor:
        actor = daemon.health_actor()
        if actor is None:
            raise CommandError("not_available", "the health monitor is off ([health] enabled"
                               " = false) or still starting")
        return actor

    def component(args: dict[str, Any]) -> str:
        name = args.get("component")
        if not isinstance(name, str) or not name:
            raise CommandError("bad_request", "'component' is required")
        if name not in running().components:
            known = ", ".join(sorted(running().components)) or "none configured"
            raise CommandError("not_found", f"no component {name!r} (known: {known})")
        return name

    async def summary(args: dict[str, Any]) -> Any:
        return {**running().summary(), "predictions": daemon.forecaster.forecasts}

    async def monitor_component_health(args: dict[str, Any]) -> Any:
        name = component(args)
        return {"component": name, **running().summary()["components"][name]}  # type: ignore[index]

    async def check_dependency_health(args: dict[str, Any]) -> Any:
        name = component(args)
        actor = running()
        spec = next(s for s in actor.specs if s.name == name)
        return {dependency: {"level": actor.components[dependency].level,
                             "status": actor.components[dependency].describe()}
                for dependency in spec.depends_on if dependency in actor.components}

    async def perform_health_check(args: dict[str, Any]) -> Any:
        name = args.get("check")
        checks = daemon.check_actors()
        if not isinstance(name, str) or name not in checks:
            known = ", ".join(sorted(checks)) or "none configured"
            raise CommandError("not_found", f"no check {name!r} (known: {known})")
        return await checks[name].run_once()

    async def predict_system_issues(args: dict[str, Any]) -> Any:
        return daemon.forecaster.forecasts

    return {
        "health": summary,
        "get_system_health_summary": summary,
        "monitor_component_health": monitor_component_health,
        "check_dependency_health": check_dependency_health,
        "perform_health_check": perform_health_check,
        "predict_system_issues": predict_system_issues,
    }
