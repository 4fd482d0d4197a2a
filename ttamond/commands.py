"""The control socket's commands: what each request type answers, and with what errors."""

from __future__ import annotations

import os
import sqlite3
from typing import TYPE_CHECKING, Any

import trio

from ttamond import __version__
from ttamond.control import CommandError, Handler
from ttamond.messages import now_ms
from ttamond.selector import SelectorError
from ttamond.store.queries import QueryError, retention_of, run_query

if TYPE_CHECKING:
    from ttamond.daemon import Daemon


def command_handlers(daemon: Daemon) -> dict[str, Handler]:
    """One handler per command name, reading the daemon's live state."""

    async def ping(args: dict[str, Any]) -> Any:
        return {"pong": True, "pid": os.getpid(), "version": __version__}

    async def status(args: dict[str, Any]) -> Any:
        return daemon.status()

    async def actors(args: dict[str, Any]) -> Any:
        return daemon.supervisor.snapshot()

    async def latest(args: dict[str, Any]) -> Any:
        prefix = args.get("prefix", "")
        if not isinstance(prefix, str):
            raise CommandError("bad_request", "latest: 'prefix' must be a string")
        view = daemon.latest_view()
        if view is None:
            raise CommandError("unavailable", "latest values are not available yet")
        return {"values": view.query(prefix), "failures": list(view.failures.values())}

    async def query(args: dict[str, Any]) -> Any:
        retention = retention_of(daemon.config.store)
        database = daemon.paths.database
        try:
            return await trio.to_thread.run_sync(run_query, args, database, retention, now_ms())
        except (QueryError, SelectorError) as exc:
            raise CommandError("bad_request", str(exc)) from None
        except sqlite3.Error as exc:
            raise CommandError("unavailable", f"cannot read {database}: {exc}") from None

    return {"ping": ping, "status": status, "actors": actors, "latest": latest, "query": query}
