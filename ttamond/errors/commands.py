"""Control commands for error tracking: list, show, resolve, ignore, reopen, patterns."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import trio

from ttamond.bus import Bus
from ttamond.control import CommandError, Handler
from ttamond.errors import queries
from ttamond.messages import ErrorGroupStateSet, now_ms
from ttamond.receipts import Ingested, NotStored, Receipt
from ttamond.store.readonly import open_reader

T = TypeVar("T")
DAY_MS = 86_400_000


def error_handlers(database: Path, bus: Bus) -> dict[str, Handler]:
    """Handlers reading the database read-only and changing state through the store."""

    async def read(function: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            conn = open_reader(database)
            try:
                return function(conn)
            finally:
                conn.close()

        try:
            return await trio.to_thread.run_sync(run)
        except queries.GroupNotFound as exc:
            raise CommandError("not_found", str(exc)) from None
        except ValueError as exc:
            raise CommandError("bad_request", str(exc)) from None
        except sqlite3.Error as exc:
            raise CommandError("unavailable", f"cannot read {database}: {exc}") from None

    async def errors_list(args: dict[str, Any]) -> Any:
        state = _optional_str(args, "state")
        component = _optional_str(args, "component")
        since = _optional_int(args, "since_ms")
        limit = _optional_int(args, "limit") or 50
        return await read(lambda c: queries.list_groups(c, state=state, component=component,
                                                        since_ms=since, limit=limit))

    async def errors_show(args: dict[str, Any]) -> Any:
        group = _required_str(args, "group")
        events = _optional_int(args, "events") or 10
        return await read(lambda c: queries.show_group(c, group, events=events))

    async def set_state(args: dict[str, Any], state: str) -> Any:
        group = await read(lambda c: queries.find_group(c, _required_str(args, "group")))
        resolved_in = _optional_str(args, "resolved_in") or ""
        receipt = Receipt()
        change = ErrorGroupStateSet(group_id=group.id, state=state,  # type: ignore[arg-type]
                                    resolved_in=resolved_in, timestamp_ms=now_ms(),
                                    fingerprint=group.fingerprint)
        await bus.publish(Ingested(messages=(change,), receipt=receipt))
        try:
            await receipt.wait()
        except NotStored as exc:
            raise CommandError("not_stored", str(exc)) from None
        await bus.publish(change)  # the errors actor mirrors group states
        return {"group": group.id, "state": state, "resolved_in": resolved_in,
                "previous_state": group.state}

    async def resolve_error(args: dict[str, Any]) -> Any:
        return await set_state(args, "resolved")

    async def ignore_error(args: dict[str, Any]) -> Any:
        return await set_state(args, "ignored")

    async def reopen_error(args: dict[str, Any]) -> Any:
        return await set_state(args, "unresolved")

    async def analyze_error_patterns(args: dict[str, Any]) -> Any:
        until = _optional_int(args, "until_ms") or now_ms()
        since = _optional_int(args, "since_ms") or until - DAY_MS
        if since >= until:
            raise CommandError("bad_request", "since_ms must be before until_ms")
        return await read(lambda c: queries.analyze_patterns(c, since_ms=since, until_ms=until))

    async def get_error_metrics(args: dict[str, Any]) -> Any:
        since = _optional_int(args, "since_ms") or now_ms() - DAY_MS
        return await read(lambda c: queries.error_metrics(c, since_ms=since))

    return {
        "errors_list": errors_list, "errors_show": errors_show,
        "resolve_error": resolve_error, "ignore_error": ignore_error,
        "reopen_error": reopen_error, "analyze_error_patterns": analyze_error_patterns,
        "get_error_metrics": get_error_metrics,
    }


def _required_str(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        raise CommandError("bad_request", f"{key!r} is required (a group id or fingerprint)")
    return value


def _optional_str(args: dict[str, Any], key: str) -> str | None:
    value = args.get(key)
    if value is not None and not isinstance(value, str):
        raise CommandError("bad_request", f"{key!r} must be a string")
    return value


def _optional_int(args: dict[str, Any], key: str) -> int | None:
    value = args.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise CommandError("bad_request", f"{key!r} must be a non-negative integer")
    return value
