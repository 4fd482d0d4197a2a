"""Alerts on the web: the JSON API (list, acknowledge, resolve, silence, unsilence), the
page's alerts section, and its form actions (CSRF token, loopback or bearer token)."""

from __future__ import annotations

import hmac
import html
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ttamond.control import CommandError
from ttamond.web.api import STATUS_OF
from ttamond.web.html import when
from ttamond.web.ingest import ErrorResponse, check_access

Command = Callable[[dict[str, Any]], Awaitable[Any]]
JsonResponse = Callable[[Any, int], Response]
MAX_BODY = 64 * 1024
MAX_SILENCES_SHOWN = 20


class AlertsWeb:
    """Routes over the control commands of the alert escalator (the same handlers the
    Unix socket serves, so the page, the API and the CLI cannot disagree)."""

    def __init__(self, commands: Mapping[str, Command], *, token: str,
                 json_response: JsonResponse, error_response: ErrorResponse) -> None:
        self.commands = commands
        self.token = token.encode()
        self.csrf = secrets.token_urlsafe(24)
        """Embedded in the page's forms; a page from another site cannot read it."""
        self.json_response = json_response
        self.error_response = error_response

    def routes(self) -> list[Route]:
        """The API and form routes."""
        return [
            Route("/api/v1/alerts", self.api_list),
            Route("/api/v1/alerts/{alert}/ack", self.api_action("alerts_ack"),
                  methods=["POST"]),
            Route("/api/v1/alerts/{alert}/resolve", self.api_action("alerts_resolve"),
                  methods=["POST"]),
            Route("/api/v1/silences", self.api_action("alerts_silence"), methods=["POST"]),
            Route("/api/v1/silences/{silence}", self.api_action("alerts_unsilence"),
                  methods=["DELETE"]),
            Route("/alerts/action", self.form_action, methods=["POST"]),
        ]

    async def _call(self, command: str, args: dict[str, Any]) -> Response:
        try:
            result = await self.commands[command](args)
        except CommandError as exc:
            return self.error_response(STATUS_OF.get(exc.code, 500), exc.code, str(exc))
        return self.json_response(result, 200)

    async def api_list(self, request: Request) -> Response:
        """GET: alerts (`?state=pending|firing|resolved|all`), silences, fatigue."""
        unknown = sorted(set(request.query_params) - {"state"})
        if unknown:
            return self.error_response(400, "bad_request", f"unknown query parameter"
                                       f" {unknown[0]!r} (allowed: state)")
        state = request.query_params.get("state")
        if state is not None and state not in ("pending", "firing", "resolved", "all"):
            return self.error_response(400, "bad_request", "state must be one of pending,"
                                       " firing, resolved or all")
        return await self._call("alerts_list", {"state": state})

    def api_action(self, command: str) -> Callable[[Request], Awaitable[Response]]:
        """A write: loopback or the bearer token; a JSON object body (may be empty)."""

        async def endpoint(request: Request) -> Response:
            refused = check_access(request, self.token, self.error_response, what="writes")
            if refused is not None:
                return refused
            body = await request.body()
            if len(body) > MAX_BODY:
                return self.error_response(413, "request_too_large",
                                           f"body exceeds {MAX_BODY} bytes")
            try:
                args = json.loads(body) if body.strip() else {}
            except ValueError as exc:
                return self.error_response(400, "bad_request", f"body is not JSON: {exc}")
            if not isinstance(args, dict):
                return self.error_response(400, "bad_request", "body must be a JSON object")
            args.update(request.path_params)
            return await self._call(command, args)

        return endpoint

    async def form_action(self, request: Request) -> Response:
        """The page's buttons: acknowledge, silence, unsilence, resolve an error group;
        back to the page."""
        refused = check_access(request, self.token, self.error_response, what="writes")
        if refused is not None:
            return refused
        # The page's forms are urlencoded; parsed here rather than with request.form(),
        # which needs python-multipart for nothing these forms send.
        body = await request.body()
        if len(body) > MAX_BODY:
            return self.error_response(413, "request_too_large", f"body exceeds {MAX_BODY} bytes")
        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        sent = form.get("csrf", "")
        if not hmac.compare_digest(sent.encode(), self.csrf.encode()):
            return self.error_response(403, "csrf", "the form's token is missing or stale:"
                                       " reload the page and try again")
        action = str(form.get("action", ""))
        args: dict[str, Any]
        def text(name: str, default: str = "") -> str:
            return form.get(name) or default

        if action == "ack":
            command, args = "alerts_ack", {"alert": text("alert"), "by": text("by", "web"),
                                           "comment": text("comment")}
        elif action == "silence":
            try:
                hours = float(text("hours", "1"))
            except ValueError:
                return self.error_response(400, "bad_request", "hours must be a number")
            command, args = "alerts_silence", {
                "matchers": text("matchers"), "duration_s": hours * 3600,
                "author": text("author", "web"), "comment": text("comment")}
        elif action == "unsilence":
            command, args = "alerts_unsilence", {"silence": text("silence")}
        elif action == "resolve_error" and "resolve_error" in self.commands:
            command, args = "resolve_error", {"group": text("group")}
        else:
            return self.error_response(400, "bad_request", f"unknown action {action!r}")
        result = await self._call(command, args)
        if result.status_code != 200:
            return result
        if command == "resolve_error":
            return RedirectResponse(f"/errors/{quote(args['group'])}", status_code=303)
        return RedirectResponse("/#alerts", status_code=303)

    async def section(self) -> str:
        """The page's alerts section: firing and pending alerts with their buttons,
        silences, and the fatigue figures."""
        try:
            reply = await self.commands["alerts_list"]({})
        except CommandError as exc:
            return f"<p>{html.escape(str(exc))}</p>"
        return render_section(reply, self.csrf)


def render_section(reply: dict[str, Any], csrf: str) -> str:
    """HTML for the alerts section; every outside string is escaped."""
    e = html.escape
    token = f'<input type="hidden" name="csrf" value="{e(csrf)}">'
    rows = []
    for alert in reply["alerts"]:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(alert["labels"].items())
                           if k not in ("alertname", "severity", "instance"))
        notes = [n for n in (alert["muted"], "flapping" if alert["flapping"] else "",
                             f"acknowledged by {alert['acknowledged_by']}"
                             if alert["acknowledged_by"] else "") if n]
        ack = "" if alert["acknowledged_by"] or alert["state"] != "firing" else (
            f'<form method="post" action="/alerts/action">{token}'
            '<input type="hidden" name="action" value="ack">'
            f'<input type="hidden" name="alert" value="{e(alert["fingerprint"])}">'
            '<button>Acknowledge</button></form>')
        silence = (f'<form method="post" action="/alerts/action">{token}'
                   '<input type="hidden" name="action" value="silence">'
                   f'<input type="hidden" name="matchers" value="{e(alert["alertname"])}">'
                   '<input name="hours" value="1" size="3"> h '
                   '<input name="comment" placeholder="why" required>'
                   '<button>Silence</button></form>')
        rows.append(
            f"<tr><td>{e(alert['priority'])}</td><td>{e(alert['state'])}</td>"
            f"<td>{e(alert['alertname'])}<br><small>{e(labels)}</small></td>"
            f"<td>{e(alert['annotations'].get('summary', ''))}</td>"
            f"<td>{when(alert['fired_ms'] or alert['active_since_ms'])}</td>"
            f"<td>{e('; '.join(notes))}</td><td>{ack}{silence}</td></tr>")
    table = ("<table><tr><th>Priority</th><th>State</th><th>Alert</th><th>Summary</th>"
             "<th>Since</th><th>Notes</th><th></th></tr>" + "".join(rows) + "</table>"
             if rows else "<p>No alerts pending or firing.</p>")
    live = [s for s in reply["silences"] if s["state"] != "expired"]
    silences = "".join(
        f"<li>{e(s['matchers'])} until {when(s['ends_ms'])} ({e(s['author'][:80])}:"
        f" {e(s['comment'][:200])}) <form method=\"post\" action=\"/alerts/action\">{token}"
        '<input type="hidden" name="action" value="unsilence">'
        f'<input type="hidden" name="silence" value="{e(s["id"])}">'
        "<button>Expire</button></form></li>" for s in live[:MAX_SILENCES_SHOWN])
    if len(live) > MAX_SILENCES_SHOWN:
        silences += (f"<li>and {len(live) - MAX_SILENCES_SHOWN} more"
                     ' (<a href="/api/v1/alerts">all of them</a>)</li>')
    counters = reply["fatigue"]["counters"]
    figures = ", ".join(f"{e(k.replace('_', ' '))}: {int(v)}" for k, v in counters.items())
    return (f"{table}\n<h3>Silences</h3>\n"
            f"<ul>{silences or '<li>none</li>'}</ul>\n<h3>Notifications</h3>\n"
            f"<p>{figures}; flapping alerts: {len(reply['fatigue']['flapping'])}</p>")
