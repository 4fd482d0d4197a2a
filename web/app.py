"""The Starlette application: the status page, the JSON API and its OpenAPI document,
/metrics, and the liveness and readiness probes."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from pathlib import Path
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ttamond import __version__
from ttamond.actors.latest import LatestValue
from ttamond.store.queries import Retention
from ttamond.web.alerts import AlertsWeb, Command
from ttamond.web.api import Api
from ttamond.web.dashboard import Dashboard, Sources
from ttamond.web.ingest import IngestFunction, ingest_endpoint
from ttamond.web.metrics import CONTENT_TYPE, LatestCollector
from ttamond.web.openapi import document
from ttamond.web.pages import Pages

JSON = "application/json"


def _encode_extra(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__} as JSON")


_encoder = msgspec.json.Encoder(enc_hook=_encode_extra)


def json_response(content: Any, status_code: int = 200) -> Response:
    """`content` as JSON (msgspec: structs, dataclasses, paths included)."""
    return Response(_encoder.encode(content), status_code=status_code, media_type=JSON)


def error_response(status_code: int, code: str, message: str,
                   headers: Mapping[str, str] | None = None) -> Response:
    """The API's error shape: `{"error": {"code": ..., "message": ...}}`."""
    response = json_response({"error": {"code": code, "message": message}}, status_code)
    response.headers.update(headers or {})
    return response


def create_app(
    *,
    latest: Callable[[], list[LatestValue]],
    status: Callable[[], dict[str, Any]],
    ready: Callable[[], bool],
    version: str = __version__,
    ingest: IngestFunction | None = None,
    max_body_bytes: int = 4 * 1024 * 1024,
    token: str = "",
    commands: Mapping[str, Command] | None = None,
    database: Path | None = None,
    retention: Retention | None = None,
    generation: Callable[[], Hashable] | None = None,
    loop_lag: Callable[[], float] | None = None,
) -> ASGIApp:
    """The web application over the daemon's live state.

    `latest` gives the newest value of every series (for /metrics), `status` what
    `ttamond status` shows (for /api/v1/status; its "state" also explains a 503 from
    /readyz), `ready` whether the daemon should receive traffic. Each is called once
    per request, on the event loop, so it must be quick and must not block.
    `ingest`, when given, serves POST /api/v1/ingest (loopback freely, other
    addresses with the bearer `token`). `commands`, the control handlers, serve the
    status page's panels and the JSON API; `database` and `retention` its charts and
    series queries. `generation` changes whenever new data lands (it invalidates the
    page's cache); `loop_lag` says how busy the daemon is (panels refresh less often).
    """
    commands = commands or {}
    dashboard = Dashboard(Sources(commands=commands, status=status, latest=latest,
                                  database=database, retention=retention,
                                  generation=generation, loop_lag=loop_lag))
    alerts = (AlertsWeb(commands, token=token, json_response=json_response,
                        error_response=error_response)
              if "alerts_list" in commands else None)
    if alerts is not None:
        dashboard.alerts_section = alerts.section
        dashboard.csrf = alerts.csrf
    collector = LatestCollector(latest, version=version)
    openapi = _encoder.encode(document(version))

    async def metrics(request: Request) -> Response:
        return Response(collector.render(), media_type=CONTENT_TYPE)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        if ready():
            return PlainTextResponse("ready\n")
        state = status().get("state", "unknown")
        return PlainTextResponse(f"not ready: ttamond is {state}\n", status_code=503)

    async def openapi_json(request: Request) -> Response:
        return Response(openapi, media_type=JSON)

    async def http_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):
            raise TypeError(f"http_error cannot handle {type(exc).__name__}") from exc
        if exc.status_code == 404:
            return error_response(404, "not_found",
                                  f"no such path: {request.url.path}")
        if exc.status_code == 405:
            return error_response(405, "method_not_allowed",
                                  f"{request.method} is not allowed on {request.url.path}",
                                  exc.headers)
        return error_response(exc.status_code, "http_error", str(exc.detail), exc.headers)

    routes = [
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/api/v1/openapi.json", openapi_json),
    ]
    routes += Api(dashboard, token=token, json_response=json_response,
                  error_response=error_response).routes()
    if ingest is not None:
        endpoint = ingest_endpoint(ingest, max_body_bytes=max_body_bytes, token=token,
                                   json_response=json_response, error_response=error_response)
        routes.append(Route("/api/v1/ingest", endpoint, methods=["POST"]))
    if alerts is not None:
        routes += alerts.routes()
    routes += Pages(dashboard, version=version, error_response=error_response).routes()
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    return _InvalidateOnWrite(app, dashboard)


class _InvalidateOnWrite:
    """Drops the page's cache after any write (an acknowledgement, a silence), so the
    next render shows it without waiting for new data."""

    def __init__(self, app: ASGIApp, dashboard: Dashboard) -> None:
        self.app = app
        self.dashboard = dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD"):
                self.dashboard.cache.invalidate()


