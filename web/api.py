"""The JSON API under /api/v1 (besides alerts and ingestion): status, components, series,
errors, carbon and engagement reports, actors. Each route is a thin layer over the
control command the Unix socket serves, so the page, the API and the CLI agree."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
import trio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ttamond.control import CommandError
from ttamond.messages import now_ms
from ttamond.selector import Selector, SelectorError, parse_selector
from ttamond.store.database import HOUR_MS
from ttamond.store.queries import AGGREGATES, MAX_POINTS, QueryError, Reader
from ttamond.web.dashboard import Dashboard, Unavailable, parse_range
from ttamond.web.ingest import ErrorResponse, check_access

JsonResponse = Callable[[Any, int], Response]
Endpoint = Callable[[Request], Awaitable[Response]]
STATUS_OF = {"bad_request": 400, "not_found": 404, "ambiguous": 409, "conflict": 409,
             "not_available": 503, "not_stored": 503, "unavailable": 503}
_STEP = re.compile(r"^(?P<number>[1-9][0-9]{0,6})(?P<unit>s|m|h|d)$")
_STEP_MS = {"s": 1000, "m": 60_000, "h": HOUR_MS, "d": 24 * HOUR_MS}
MAX_BODY = 64 * 1024


class BadRequest(Exception):
    """A parameter that is missing or malformed; str() names it."""


class Api:
    """The read routes and the error-group writes."""

    def __init__(self, dashboard: Dashboard, *, token: str, json_response: JsonResponse,
                 error_response: ErrorResponse) -> None:
        self.dashboard = dashboard
        self.token = token.encode()
        self.json_response = json_response
        self.error_response = error_response

    def routes(self) -> list[Route]:
        """The routes, documented in openapi.py."""
        return [
            Route("/api/v1/status", self._wrap(self.status)),
            Route("/api/v1/actors", self._wrap(self.actors)),
            Route("/api/v1/components", self._wrap(self.components)),
            Route("/api/v1/components/{name}", self._wrap(self.component)),
            Route("/api/v1/series", self._wrap(self.series)),
            Route("/api/v1/series/query", self._wrap(self.query)),
            Route("/api/v1/errors", self._wrap(self.errors)),
            Route("/api/v1/errors/{group}", self._wrap(self.error)),
            Route("/api/v1/errors/{group}/resolve", self._wrap(self.resolve, write=True),
                  methods=["POST"]),
            Route("/api/v1/carbon/report", self._wrap(self.carbon)),
            Route("/api/v1/engagement/report", self._wrap(self.engagement)),
        ]

    def _wrap(self, handler: Callable[[Request], Awaitable[Any]], *,
              write: bool = False) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            if write:
                refused = check_access(request, self.token, self.error_response, what="writes")
                if refused is not None:
                    return refused
            try:
                found = await handler(request)
                if isinstance(found, Response):
                    return found
                return self.json_response(found, 200)
            except BadRequest as exc:
                return self.error_response(400, "bad_request", str(exc))
            except CommandError as exc:
                return self.error_response(STATUS_OF.get(exc.code, 500), exc.code, str(exc))
            except Unavailable as exc:
                return self.error_response(503, "not_available", str(exc))

        return endpoint

    async def status(self, request: Request) -> Any:
        """What `ttamond status` shows."""
        _known(request, ())
        return self.dashboard.sources.status()

    async def actors(self, request: Request) -> Any:
        """Each supervised actor: state, restarts, last error."""
        _known(request, ())
        return {"actors": self.dashboard.sources.status()["actors"]}

    async def components(self, request: Request) -> Any:
        """Overall health, each component, the checks, the predictions."""
        _known(request, ())
        return await self.dashboard.command("health")

    async def component(self, request: Request) -> Any:
        """One component's health."""
        _known(request, ())
        return await self.dashboard.command("monitor_component_health",
                                            {"component": request.path_params["name"]})

    async def series(self, request: Request) -> Any:
        """The stored series matching `match` (every series without it)."""
        _known(request, ("match", "limit"))
        text = request.query_params.get("match")
        limit = _int(request, "limit", 1000, 1, 100_000)
        selector = _selector(text) if text is not None else Selector(name=None, matchers=())
        database = self.dashboard.sources.database
        if database is None:
            raise Unavailable("this daemon has no database")

        def run() -> list[dict[str, Any]]:
            reader = Reader(database)
            try:
                return reader.series_list(selector, limit=limit)
            finally:
                reader.close()

        return {"series": await trio.to_thread.run_sync(run)}

    async def query(self, request: Request) -> Any:
        """Points of the selected series over the `since` before `end_ms`."""
        _known(request, ("selector", "since", "end_ms", "step", "aggregate"))
        params = request.query_params
        selector = params.get("selector")
        if not selector:
            raise BadRequest("selector is required, e.g. selector=host_cpu_percent")
        _selector(selector)
        aggregate = params.get("aggregate", "avg")
        if aggregate not in AGGREGATES:
            raise BadRequest(f"aggregate must be one of {', '.join(AGGREGATES)}")
        end = _int(request, "end_ms", now_ms(), 0, 2**53)
        span = _range(request, "since", "1h")
        step = _step(params.get("step"))
        retention = self.dashboard.sources.retention
        # Like Graphite's maxDataPoints rather than Prometheus' 400: a step too fine for
        # the range is widened, and raw samples come from as far back as they are kept.
        # The reply's start_ms, step_ms and tier say what was answered.
        if step == 0 and retention is not None:
            span = min(span, retention.raw_ms)
        elif step:
            step = max(step, -(-span // MAX_POINTS // 1000) * 1000)

        async def answer() -> bytes:
            try:
                found = await self.dashboard.query(selector, span_ms=span, step_ms=step,
                                                   aggregate=aggregate, end_ms=end)
            except QueryError as exc:
                if step != 0:
                    raise BadRequest(str(exc)) from None
                # Too many raw samples in the range: buckets just wide enough instead.
                found = await self.dashboard.query(
                    selector, span_ms=span, aggregate=aggregate, end_ms=end,
                    step_ms=-(-span // MAX_POINTS // 1000) * 1000)
            return msgspec.json.encode(found)

        body: str | bytes
        if "end_ms" in params:
            body = await answer()
        else:  # up to now: the same answer until new data lands
            body = await self.dashboard.cache.get(("query", selector, span, step, aggregate),
                                                  answer)
        return Response(body, media_type="application/json")

    async def errors(self, request: Request) -> Any:
        """Error groups, most recently seen first."""
        _known(request, ("state", "component", "limit"))
        args: dict[str, Any] = {"limit": _int(request, "limit", 50, 1, 1000)}
        for name in ("state", "component"):
            if name in request.query_params:
                args[name] = request.query_params[name]
        if len(args.get("component", "x")) not in range(1, 65):
            raise BadRequest("component must be 1 to 64 characters")
        return {"groups": await self.dashboard.command("errors_list", args)}

    async def error(self, request: Request) -> Any:
        """One group with its latest events (stack, context)."""
        _known(request, ("events",))
        return await self.dashboard.command("errors_show", {
            "group": request.path_params["group"],
            "events": _int(request, "events", 10, 1, 100)})

    async def resolve(self, request: Request) -> Any:
        """Mark a group resolved, optionally in a release (`{"resolved_in": "1.4.2"}`)."""
        body = await _body(request)
        resolved_in = body.get("resolved_in", "")
        if not isinstance(resolved_in, str) or len(resolved_in) > 200:
            raise BadRequest("resolved_in must be a string of at most 200 characters")
        return await self.dashboard.command("resolve_error", {
            "group": request.path_params["group"], "resolved_in": resolved_in})

    async def carbon(self, request: Request) -> Any:
        """The carbon report over `since` (default 7d)."""
        _known(request, ("since",))
        span = _range(request, "since", "7d")
        return await self.dashboard.command("generate_carbon_report",
                                            {"since_ms": now_ms() - span})

    async def engagement(self, request: Request) -> Any:
        """The k-anonymous engagement report over `since` (default 30d)."""
        _known(request, ("since",))
        span = _range(request, "since", "30d")
        return await self.dashboard.command("engagement_report", {"since_ms": now_ms() - span})


def _known(request: Request, names: tuple[str, ...]) -> None:
    unknown = sorted(set(request.query_params) - set(names))
    if unknown:
        allowed = ", ".join(names) or "none"
        raise BadRequest(f"unknown query parameter {unknown[0]!r} (allowed: {allowed})")


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    if not re.fullmatch(r"-?[0-9]{1,16}", text) or not low <= int(text) <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}, got {text!r}")
    return int(text)


def _range(request: Request, name: str, default: str) -> int:
    try:
        return parse_range(request.query_params.get(name, default))
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from None


def _step(text: str | None) -> int | None:
    """None (pick one for about 240 points), 0 for raw samples, else milliseconds."""
    if text is None or text == "auto":
        return None
    if text == "raw":
        return 0
    found = _STEP.match(text)
    if found is None:
        raise BadRequest(f"step must be auto, raw, or a number and s, m, h or d; got {text!r}")
    return int(found["number"]) * _STEP_MS[found["unit"]]


def _selector(text: str) -> Selector:
    try:
        return parse_selector(text)
    except SelectorError as exc:
        raise BadRequest(str(exc)) from None


async def _body(request: Request) -> Mapping[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise BadRequest(f"body exceeds {MAX_BODY} bytes")
    if not raw.strip():
        return {}
    try:
        found = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from None
    if not isinstance(found, dict):
        raise BadRequest("body must be a JSON object")
    return found

