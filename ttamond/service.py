"""The platform's service interface on the control socket: one command per call.

TTA code written against the platform's monitoring interfaces calls these through
`ttamond.client.service`. Calls whose actor has not been built answer `not_available`
naming what will provide them, never a silent success.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from ttamond.control import CommandError, Handler, RawHandler, raw_args
from ttamond.ingest.decode import BatchRefused, decode_request
from ttamond.messages import now_ms
from ttamond.receipts import NotStored
from ttamond.store.queries import QueryError, retention_of

if TYPE_CHECKING:
    from ttamond.daemon import Daemon

NOT_BUILT: dict[str, str] = {
    "configure_monitoring": "runtime configuration (edit ttamond.toml and reload with SIGHUP)",
}
DEFAULT_SUMMARY_MS = 86_400_000
"""`get_performance_summary` without `since` or `since_ms` covers the last day."""

_encoder = msgspec.json.Encoder()


def service_handlers(daemon: Daemon) -> dict[str, Handler | RawHandler]:
    """Ingestion, monitoring sessions, reporting calls, and `not_available` stubs."""
    ingestor = daemon.ingestor

    @raw_args
    async def ingest(args: msgspec.Raw) -> Any:
        try:
            request = decode_request(args)
            return await ingestor.ingest(request.messages, request.ack, request.batch_id)
        except BatchRefused as exc:
            raise CommandError(exc.code, exc.message) from None
        except NotStored as exc:
            raise CommandError("not_stored", str(exc)) from None

    async def one(kind: str, args: dict[str, Any]) -> None:
        """Ingest one message built from a call's keyword arguments, durably."""
        raw = msgspec.Raw(_encoder.encode({**args, "type": kind}))
        try:
            result = await ingestor.ingest([raw])
        except NotStored as exc:
            raise CommandError("not_stored", str(exc)) from None
        if result.rejected:
            raise CommandError("bad_request", result.rejected[0].error.removeprefix("[0]")
                               .lstrip(".:").strip())

    def reporting(kind: str) -> Handler:
        async def handler(args: dict[str, Any]) -> Any:
            await one(kind, args)
            return {"accepted": 1}

        return handler

    async def start_monitoring(args: dict[str, Any]) -> Any:
        args = {"environment": "dev", "session_id": uuid.uuid4().hex, **args}
        await one("monitoring_started", args)
        return daemon.sessions.get(str(args["session_id"]), now_ms())

    async def stop_monitoring(args: dict[str, Any]) -> Any:
        session_id = args.get("session_id")
        known = daemon.sessions.get(str(session_id), now_ms()) if session_id else None
        if known is None:
            raise CommandError("not_found", f"no monitoring session {session_id!r}")
        await one("monitoring_stopped", {"component": known.component,
                                         "environment": known.environment, **args})
        return daemon.sessions.get(known.session_id, now_ms())

    async def get_system_status(args: dict[str, Any]) -> Any:
        return daemon.system_status()

    async def get_monitoring_metrics(args: dict[str, Any]) -> Any:
        prefix = args.get("prefix", "")
        if not isinstance(prefix, str):
            raise CommandError("bad_request", "'prefix' must be a string")
        view = daemon.latest_view()
        return [] if view is None else view.query(prefix)

    async def collect_component_metrics(args: dict[str, Any]) -> Any:
        metrics = args.pop("metrics", None)
        if not isinstance(metrics, dict):
            raise CommandError("bad_request", "'metrics' must be an object of name: value")
        samples = [{"name": name, "value": value} for name, value in metrics.items()]
        await one("metrics", {**args, "samples": samples})
        return {"accepted": len(samples)}

    async def get_performance_summary(args: dict[str, Any]) -> Any:
        from ttamond.report.performance import performance_summary
        from ttamond.report.window import Window

        now = now_ms()
        until = _milliseconds(args, "until_ms", now)
        if "since" in args:
            seconds = args["since"]
            if (not isinstance(seconds, int | float) or isinstance(seconds, bool)
                    or seconds <= 0):
                raise CommandError("bad_request", "'since' must be a number of seconds over 0")
            since = until - int(seconds * 1000)
        else:
            since = _milliseconds(args, "since_ms", until - DEFAULT_SUMMARY_MS)
        if since >= until:
            raise CommandError("bad_request", "'since_ms' must be before 'until_ms'")
        window = Window(since_ms=since, until_ms=until, now_ms=now,
                        retention=retention_of(daemon.config.store))
        database = daemon.paths.database
        try:
            summary = await trio.to_thread.run_sync(performance_summary, database, window)
        except QueryError as exc:
            raise CommandError("bad_request", str(exc)) from None
        except sqlite3.Error as exc:
            raise CommandError("unavailable", f"cannot read {database}: {exc}") from None
        return msgspec.to_builtins(summary)

    async def generate_report(args: dict[str, Any]) -> Any:
        from ttamond.report import FORMATS
        from ttamond.report.render import render
        from ttamond.report.summary import build_report
        from ttamond.report.window import Window

        now = now_ms()
        until = _milliseconds(args, "until_ms", now)
        since = _milliseconds(args, "since_ms", until - 7 * 24 * 3_600_000)
        output = args.get("format", "md")
        if output not in FORMATS:
            raise CommandError("bad_request", f"'format' must be one of {', '.join(FORMATS)}")
        if since >= until:
            raise CommandError("bad_request", "'since_ms' must be before 'until_ms'")
        config = daemon.config
        window = Window(since_ms=since, until_ms=until, now_ms=now,
                        retention=retention_of(config.store))
        database = daemon.paths.database
        try:
            report = await trio.to_thread.run_sync(
                lambda: build_report(database, config, window, generated_ms=now))
        except QueryError as exc:
            raise CommandError("bad_request", str(exc)) from None
        except sqlite3.Error as exc:
            raise CommandError("unavailable", f"cannot read {database}: {exc}") from None
        return {"format": output, "text": render(report, output)}

    handlers: dict[str, Handler | RawHandler] = {
        "ingest": ingest,
        "start_monitoring": start_monitoring,
        "stop_monitoring": stop_monitoring,
        "get_system_status": get_system_status,
        "get_monitoring_metrics": get_monitoring_metrics,
        "collect_component_metrics": collect_component_metrics,
        "collect_ai_model_metrics": reporting("ai_metrics"),
        "collect_database_metrics": reporting("db_operation"),
        "collect_network_metrics": reporting("network"),
        "track_error": reporting("error"),
        "track_engagement_event": reporting("engagement"),
        "get_performance_summary": get_performance_summary,
        "generate_report": generate_report,
    }
    handlers.update((name, _not_built(name, owner)) for name, owner in NOT_BUILT.items())
    return handlers


def _milliseconds(args: dict[str, Any], key: str, default: int) -> int:
    value = args.get(key)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise CommandError("bad_request", f"{key!r} must be Unix time in milliseconds")
    return value


def _not_built(name: str, owner: str) -> Handler:
    async def handler(args: dict[str, Any]) -> Any:
        raise CommandError("not_available", f"{name} needs {owner}, which this ttamond"
                           " does not have yet")

    return handler


__all__ = ["NOT_BUILT", "service_handlers"]
