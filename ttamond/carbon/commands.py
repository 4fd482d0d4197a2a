"""Control commands of the carbon actor: per-operation sessions, status, reports."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from ttamond.bus import Bus
from ttamond.config import CarbonConfig
from ttamond.control import CommandError, Handler
from ttamond.messages import now_ms
from ttamond.receipts import Ingested, NotStored, Receipt
from ttamond.store.queries import QueryError, Retention

if TYPE_CHECKING:
    from ttamond.actors.carbon import CarbonActor

DAY_MS = 86_400_000


class CarbonFootprintResult(msgspec.Struct, frozen=True):
    """What one operation cost, as the platform names it."""

    session_id: str
    operation: str
    component: str
    model: str
    state: str
    duration_s: float
    energy_kwh: float
    emissions_kg: float
    method: str


def carbon_handlers(actor: Callable[[], CarbonActor | None], bus: Bus, database: Path,
                    config: Callable[[], CarbonConfig],
                    retention: Callable[[], Retention]) -> dict[str, Handler]:
    """Handlers reaching the running carbon actor; `not_available` while it is off."""

    def running() -> CarbonActor:
        found = actor()
        if found is None:
            raise CommandError("not_available", "carbon tracking is off ([carbon] enabled ="
                               " false in the config)")
        return found

    async def start_carbon_tracking(args: dict[str, Any]) -> Any:
        operation = args.get("operation")
        if not isinstance(operation, str) or not operation:
            raise CommandError("bad_request", "'operation' is required (a name for the work)")
        pid = args.get("pid")
        if pid is not None and (not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0):
            raise CommandError("bad_request", "'pid' must be a process id")
        return running().start_session(operation=operation[:128],
                                       component=str(args.get("component", ""))[:64],
                                       model=str(args.get("model", ""))[:128], pid=pid)

    async def stop_carbon_tracking(args: dict[str, Any]) -> Any:
        session_id = args.get("session_id")
        ended = running().stop_session(str(session_id))
        if ended is None:
            raise CommandError("not_found", f"no open carbon session {session_id!r}"
                               " (stopped already, expired, or from before a restart)")
        receipt = Receipt()
        await bus.publish(Ingested(messages=(ended,), receipt=receipt))
        try:
            await receipt.wait()
        except NotStored as exc:
            raise CommandError("not_stored", str(exc)) from None
        return CarbonFootprintResult(
            session_id=ended.session_id, operation=ended.operation, component=ended.component,
            model=ended.model, state=ended.state,
            duration_s=(ended.stopped_ms - ended.started_ms) / 1000,
            energy_kwh=ended.energy_kwh, emissions_kg=ended.emissions_kg, method=ended.method)

    async def get_carbon_metrics(args: dict[str, Any]) -> Any:
        return running().status()

    async def report(args: dict[str, Any]) -> Any:
        from ttamond.carbon.reader import load_report

        tracker = running()
        until = args.get("until_ms") or now_ms()
        since = args.get("since_ms") or until - 7 * DAY_MS
        if not isinstance(since, int) or not isinstance(until, int) or since >= until:
            raise CommandError("bad_request", "since_ms must be an integer before until_ms")
        reading = tracker.reading
        try:
            return await trio.to_thread.run_sync(lambda: load_report(
                database, config(), retention(), since_ms=since, until_ms=until, now_ms=now_ms(),
                estimated=reading.estimated if reading is not None else True,
                methods=reading.methods if reading is not None else {},
                intensity_g_per_kwh=reading.intensity_g_per_kwh if reading is not None else 0.0,
            ))
        except QueryError as exc:
            raise CommandError("bad_request", str(exc)) from None
        except sqlite3.Error as exc:
            raise CommandError("unavailable", f"cannot read {database}: {exc}") from None

    async def analyze_carbon_efficiency(args: dict[str, Any]) -> Any:
        full = await report(args)
        return {"efficiency_score": full.efficiency_score, "per_model": full.per_model,
                "per_component": full.per_component,
                "recommendations": full.recommendations, "estimated": full.estimated}

    return {
        "start_carbon_tracking": start_carbon_tracking,
        "stop_carbon_tracking": stop_carbon_tracking,
        "get_carbon_metrics": get_carbon_metrics,
        "generate_carbon_report": report,
        "analyze_carbon_efficiency": analyze_carbon_efficiency,
    }
