"""The web server over real TCP on loopback; shared helpers for its tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from ttamond.actors.latest import LatestValue
from ttamond.actors.web import WebActor
from ttamond.store.stats import StoreStats
from ttamond.web.app import create_app


def value(name: str, number: float, kind: str = "gauge", unit: str = "",
          source: str = "collector:host", **labels: str) -> LatestValue:
    """A LatestValue as the latest-values view hands it out."""
    return LatestValue(name=name, labels=labels, value=number, kind=kind, unit=unit,
                       timestamp_ms=1_764_000_000_000, source=source)


class FakeDaemon:
    """What the web app reads from the daemon, over plain data a test can change."""

    def __init__(self, values: list[LatestValue]) -> None:
        self.values = values
        self.state = "starting"
        self.stats = StoreStats(database="/tmp/ttamond.db", mode="live", points_committed=7)

    def latest(self) -> list[LatestValue]:
        return list(self.values)

    def ready(self) -> bool:
        return self.state == "running"

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "database": Path("/var/lib/ttamond/ttamond.db"),
                "store": self.stats, "actors": [{"name": "web", "state": "running"}]}


@asynccontextmanager
async def serve_web(daemon: FakeDaemon, bind: str = "127.0.0.1:0",
                    ) -> AsyncIterator[WebActor]:
    """A WebActor serving the app over `daemon`, started and listening; cancelled after."""
    actor = WebActor(bind, create_app(latest=daemon.latest, status=daemon.status,
                                      ready=daemon.ready))
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        yield actor
        nursery.cancel_scope.cancel()


def base_url(actor: WebActor) -> str:
    """http://127.0.0.1:PORT of a started actor."""
    if actor.port is None:
        raise RuntimeError("the web actor has not started")
    return f"http://127.0.0.1:{actor.port}"
