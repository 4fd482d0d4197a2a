"""The Starlette application: /metrics, health and readiness probes, the JSON status API."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from ttamond import __version__
from ttamond.actors.latest import LatestValue
from ttamond.control import CommandError
from ttamond.web.alerts import AlertsWeb, Command
from ttamond.web.engagement import render_section as engagement_section
from ttamond.web.ingest import IngestFunction, ingest_endpoint
from ttamond.web.metrics import CONTENT_TYPE, LatestCollector

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
) -> Starlette:
    """The web application over the daemon's live state.

    `latest` gives the newest value of every series (for /metrics), `status` what
    `ttamond status` shows (for /api/v1/status; its "state" also explains a 503 from
    /readyz), `ready` whether the daemon should receive traffic. Each is called once
    per request, on the event loop, so it must be quick and must not block.
    `ingest`, when given, serves POST /api/v1/ingest (loopback freely, other
    addresses with the bearer `token`). `commands`, the control handlers, serve the
    alerts API and the page's alerts section when the escalator's are among them.
    """
    alerts = (AlertsWeb(commands, token=token, json_response=json_response,
                        error_response=error_response)
              if commands is not None and "alerts_list" in commands else None)
    collector = LatestCollector(latest, version=version)

    async def metrics(request: Request) -> Response:
        return Response(collector.render(), media_type=CONTENT_TYPE)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        if ready():
            return PlainTextResponse("ready\n")
        state = status().get("state", "unknown")
        return PlainTextResponse(f"not ready: ttamond is {state}\n", status_code=503)

    async def api_status(request: Request) -> Response:
        return json_response(status())

    async def index(request: Request) -> Response:
        section = await alerts.section() if alerts is not None else ""
        if commands is not None and "engagement_report" in commands:
            try:
                section += "\n" + engagement_section(await commands["engagement_report"]({}))
            except CommandError as exc:
                section += f"\n<h2>Engagement</h2><p>{html.escape(str(exc))}</p>"
        return HTMLResponse(_INDEX.format(version=html.escape(version), alerts=section,
                                          carbon=_carbon_section(status().get("carbon"))))

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
        Route("/", index),
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/api/v1/status", api_status),
    ]
    if ingest is not None:
        endpoint = ingest_endpoint(ingest, max_body_bytes=max_body_bytes, token=token,
                                   json_response=json_response, error_response=error_response)
        routes.append(Route("/api/v1/ingest", endpoint, methods=["POST"]))
    if alerts is not None:
        routes += alerts.routes()
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error},
    )


_INDEX = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>ttamond</title></head>
<body>
<h1>ttamond {version}</h1>
<p>The status page is coming. Meanwhile:</p>
<ul>
<li><a href="/api/v1/status">/api/v1/status</a>: the daemon's status as JSON</li>
<li><a href="/metrics">/metrics</a>: every series for Prometheus</li>
<li><a href="/healthz">/healthz</a> and <a href="/readyz">/readyz</a></li>
</ul>
{alerts}
{carbon}
</body>
</html>
"""


def _carbon_section(carbon: dict[str, Any] | None) -> str:
    """The carbon figures so far, saying how they were obtained and when they are
    estimates; a line saying tracking is off otherwise."""
    if carbon is None:
        return "<h2>Carbon</h2>\n<p>Carbon tracking is off (<code>[carbon] enabled</code>).</p>"
    if not carbon["tracking"]:
        why = html.escape(carbon.get("error") or "CodeCarbon is starting")
        return f"<h2>Carbon</h2>\n<p>Not tracking yet: {why}.</p>"
    estimated = " <strong>(estimated)</strong>" if carbon["estimated"] else ""
    return (
        "<h2>Carbon</h2>\n"
        f"<p>{carbon['energy_kwh'] * 1000:.2f} Wh and {carbon['emissions_kg'] * 1000:.2f} g"
        f" CO2e since the tracker started{estimated}; {carbon['open_sessions']} operations"
        f" tracked now.</p>\n<p>How: {html.escape(carbon['method'])}.</p>"
    )
