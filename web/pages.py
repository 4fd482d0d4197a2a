"""The status page's routes: pages whose panels load on their own, the panel fragments,
SVG charts of any series, and the report document."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ttamond.control import CommandError
from ttamond.messages import now_ms
from ttamond.selector import SelectorError
from ttamond.store.queries import QueryError
from ttamond.web.dashboard import Dashboard, Unavailable, parse_range
from ttamond.web.detail import PANELS
from ttamond.web.html import e
from ttamond.web.svg import line_chart

log = logging.getLogger(__name__)

LOADING = '<p class="note">loading…</p>'
ErrorResponse = Callable[[int, str, str], Response]
PageSpec = tuple[str, list[tuple[str, str]]]
"""A page's title and its panels as (panel name, query string)."""

NAV = (("/", "Overview"), ("/alerts", "Alerts"), ("/errors", "Errors"), ("/carbon", "Carbon"),
       ("/engagement", "Engagement"), ("/daemon", "Daemon"), ("/report", "Report (7 days)"))
REPORT_TYPES = {"html": "text/html; charset=utf-8", "md": "text/markdown; charset=utf-8",
                "json": "application/json"}

_SCRIPT = """
const panels = document.querySelectorAll("[data-panel]");
async function load(panel) {
  let wait = 30;
  const body = panel.querySelector(".body");
  try {
    const answer = await fetch(panel.dataset.panel, {cache: "no-store"});
    body.innerHTML = await answer.text();
    panel.classList.toggle("failed", !answer.ok);
    wait = Number(answer.headers.get("X-Refresh")) || 30;
  } catch (error) {
    panel.classList.add("failed");
    body.textContent = "The daemon did not answer (" + error + "); retrying.";
  }
  panel.setAttribute("aria-busy", "false");
  setTimeout(() => load(panel), wait * 1000);
}
// Panels that came with the page reload later; the others load now.
panels.forEach(panel => panel.getAttribute("aria-busy") === "true" ? load(panel)
  : setTimeout(() => load(panel), 15000));
"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
SECURITY_HEADERS = {
    # Only this page's own script runs: text that slipped past escaping still cannot.
    "Content-Security-Policy": (f"default-src 'self'; script-src 'sha256-{_SCRIPT_HASH}';"
                                " style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
                                " frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d232a;background:#f4f6f8}
header{background:#1d2b3a;color:#fff;padding:.6em 1.2em}
header{display:flex;gap:1.5em;align-items:center}
header nav{display:flex;gap:1em}header a{color:#cfe0f1;text-decoration:none}
header a.here{color:#fff;font-weight:600}
main{padding:1em 1.2em;display:grid;gap:1em}
main{grid-template-columns:repeat(auto-fill,minmax(560px,1fr))}
section.panel{background:#fff;border:1px solid #d8dee4;border-radius:6px;padding:.4em 1em 1em}
section.panel.wide{grid-column:1/-1}section.panel.failed{border-color:#c62828}
h1{font-size:1.1em;margin:0}h2{font-size:1.05em}h3{font-size:.95em}
table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:.25em .5em;border-bottom:1px solid #eef1f4;vertical-align:top}
.badge{padding:0 .45em;border-radius:3px;font-size:.85em;background:#9aa5b1;color:#fff}
.badge.ok{background:#2e7d32}.badge.warn{background:#ed6c02}.badge.crit{background:#c62828}
.note,.empty{color:#5f6b76}.crit{color:#c62828;font-weight:600}
pre{background:#f6f8fa;padding:.6em;overflow:auto;white-space:pre-wrap}figure{margin:0 0 .8em}
figcaption{font-size:.85em;color:#5f6b76}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:.6em}
svg.chart{width:100%;height:auto}form{display:inline}
"""


class Pages:
    """Page shells, panels and charts over one Dashboard."""

    def __init__(self, dashboard: Dashboard, *, version: str,
                 error_response: ErrorResponse) -> None:
        self.dashboard = dashboard
        self.version = version
        self.error_response = error_response

    def routes(self) -> list[Route]:
        """Every page, the panel fragments and the chart endpoint."""
        return [
            Route("/", self.page(lambda p: ("Overview", [(name, "") for name in (
                "health", "alerts", "host", "gpus", "containers", "carbon", "errors",
                "anomalies")]))),
            Route("/alerts", self.page(lambda p: ("Alerts", [("alerts", "")]))),
            Route("/errors", self.page(lambda p: ("Errors", [
                ("errors-list", _query(state=p.get("state", "")))]))),
            Route("/errors/{group}", self.page(lambda p: (f"Error {p['group']}", [
                ("error", _query(group=p["group"]))]))),
            Route("/components/{name:path}", self.page(lambda p: (p["name"], [
                ("component", _query(name=p["name"]))]))),
            Route("/carbon", self.page(lambda p: ("Carbon", [
                ("carbon", ""), ("carbon-report", _query(range=p.get("range", "7d")))]))),
            Route("/engagement", self.page(lambda p: ("Engagement", [("engagement", "")]))),
            Route("/daemon", self.page(lambda p: ("The daemon", [("daemon", "")]))),
            Route("/panels/{panel}", self.panel),
            Route("/report", self.report),
            Route("/charts/series.svg", self.chart),
        ]

    def page(self, spec: Callable[[Mapping[str, str]], PageSpec],
             ) -> Callable[[Request], Awaitable[Response]]:
        """A page: header, then its panels. A panel whose render is in the cache comes
        with the page; the others are placeholders that load themselves, so the page
        never waits for a panel. With `?inline=1` every panel is rendered into the page
        (no script needed)."""

        async def endpoint(request: Request) -> Response:
            params = {**request.query_params, **request.path_params}
            inline = request.query_params.get("inline") == "1"
            path = request.url.path
            document = await self.dashboard.cached(
                ("page", path, str(request.query_params)),
                lambda: self._document(path, spec(params), inline=inline))
            return HTMLResponse(document, headers=SECURITY_HEADERS)

        return endpoint

    async def _document(self, path: str, spec: PageSpec, *, inline: bool) -> str:
        title, panels = spec
        sections = []
        for name, query in panels:
            heading, _ = PANELS[name]
            url = f"/panels/{name}{'?' + query if query else ''}"
            params = _parse(query)
            body: str | None
            if inline:
                body, _ = await self._render_safely(name, params)
            else:
                found = self.dashboard.cache.peek(_key(name, params))
                body = found.decode() if isinstance(found, bytes) else found
            wide = " wide" if name not in ("health", "alerts", "gpus", "containers",
                                           "carbon", "errors", "anomalies",
                                           ) or len(panels) == 1 else ""
            busy = "false" if body is not None else "true"
            sections.append(
                f'<section class="panel{wide}" id="{e(name)}" data-panel="{e(url)}"'
                f' aria-busy="{busy}"><h2>{e(heading)}</h2>'
                f'<div class="body">{body or LOADING}</div></section>')
        nav = "".join(f'<a href="{href}"{" class=here" if href == path else ""}>{e(text)}'
                      "</a>" for href, text in NAV)
        script = "" if inline else f"<script>{_SCRIPT}</script>"
        return ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
                '<meta name="viewport" content="width=device-width,initial-scale=1">'
                f'<link rel="icon" href="data:,"><title>{e(title)} · ttamond</title>'
                f"<style>{_STYLE}</style></head><body>"
                f"<header><h1>ttamond {e(self.version)}</h1><nav>{nav}</nav></header>"
                f"<main>{''.join(sections)}</main>"
                '<noscript><p>Panels load with a script; <a href="?inline=1">this page'
                " without it</a>.</p></noscript>"
                f"{script}</body></html>")

    async def panel(self, request: Request) -> Response:
        """One panel's fragment, with how long to wait before reloading it."""
        name = request.path_params["panel"]
        if name not in PANELS:
            return self.error_response(404, "not_found", f"no panel {name!r}")
        body, ok = await self._render_safely(name, dict(request.query_params))
        if not ok:
            return HTMLResponse(body, status_code=500,
                                headers={**SECURITY_HEADERS, "X-Refresh": "30"})
        alerts = self.dashboard.sources.status().get("alerts") or {}
        wait = self.dashboard.refresh_seconds(firing=bool(alerts.get("firing")))
        return HTMLResponse(body, headers={**SECURITY_HEADERS, "X-Refresh": str(wait),
                                           "Cache-Control": "no-store"})

    async def _render_safely(self, name: str, params: Mapping[str, str]) -> tuple[str, bool]:
        """A panel's HTML through the cache, and whether it rendered. One broken panel
        must not take the page with it: it says what broke, here and in the log."""
        _, render = PANELS[name]
        try:
            return await self.dashboard.cached(_key(name, params),
                                               lambda: render(self.dashboard, params)), True
        except Exception as exc:
            log.exception("web: panel %s failed", name)
            return (f'<p class="crit">This panel failed: {e(type(exc).__name__)}: {e(exc)}'
                    " (the daemon's log has the details)</p>"), False

    async def report(self, request: Request) -> Response:
        """`/report?since=7d&format=html|md|json`: the `ttamond report` document, to
        take into a meeting (HTML opens in the browser; md and json download)."""
        params = request.query_params
        unknown = sorted(set(params) - {"since", "format"})
        if unknown:
            return self.error_response(400, "bad_request",
                                       f"unknown parameter {unknown[0]!r} (allowed: since, format)")
        output = params.get("format", "html")
        media = REPORT_TYPES.get(output)
        if media is None:
            return self.error_response(400, "bad_request", "format must be html, md or json")
        try:
            span = parse_range(params.get("since", "7d"))
        except ValueError as exc:
            return self.error_response(400, "bad_request", str(exc))

        async def render() -> str:
            reply = await self.dashboard.command("generate_report",
                                                 {"since_ms": now_ms() - span, "format": output})
            return str(reply["text"])

        try:
            text = await self.dashboard.cached(("report", span, output), render)
        except CommandError as exc:
            return self.error_response(400 if exc.code == "bad_request" else 503, exc.code,
                                       str(exc))
        except Unavailable as exc:
            return self.error_response(503, "not_available", str(exc))
        headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
        if output != "html":
            headers["Content-Disposition"] = f'attachment; filename="ttamond-report.{output}"'
        return Response(text, media_type=media, headers=headers)

    async def chart(self, request: Request) -> Response:
        """`/charts/series.svg?selector=...&since=7d[&rate=1][&title=...]`: an SVG line
        chart of the selected series (at most 8), from the coarsest tier that fits."""
        params = request.query_params
        selector = params.get("selector", "")
        if not selector:
            return self.error_response(400, "bad_request", "selector is required")
        try:
            span = parse_range(params.get("since", "6h"))
        except ValueError as exc:
            return self.error_response(400, "bad_request", str(exc))
        rate = params.get("rate") in ("1", "true")
        title = params.get("title") or selector

        async def render() -> str:
            series, unit, step = await self.dashboard.chart(selector, span_ms=span, rate=rate)
            now = now_ms()
            return line_chart(series, unit=unit, start_ms=now - span, end_ms=now, title=title,
                              step_ms=step)

        try:
            svg = await self.dashboard.cached(("svg", selector, span, rate, title), render)
        except (QueryError, SelectorError) as exc:
            return self.error_response(400, "bad_request", str(exc))
        except Unavailable as exc:
            return self.error_response(503, "not_available", str(exc))
        return Response(svg, media_type="image/svg+xml",
                        headers={"Cache-Control": "no-store", **SECURITY_HEADERS})


def _key(panel: str, params: Mapping[str, str]) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    return ("panel", panel, tuple(sorted(params.items())))


def _query(**params: str) -> str:
    return urlencode({k: v for k, v in params.items() if v})


def _parse(query: str) -> dict[str, Any]:
    return dict(parse_qsl(query))
