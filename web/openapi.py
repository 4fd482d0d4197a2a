"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json and checked
against the running server by schemathesis in the tests."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_ERROR: Schema = {"$ref": "#/components/schemas/Error"}
_OBJECT: Schema = {"type": "object"}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Schema]:
    why = {400: "a parameter or the body is malformed (the message names it)",
           401: "from another host without a valid bearer token",
           403: "from another host while no token is configured",
           404: "no such thing", 409: "a reference that matches several things",
           413: "the body is too large",
           503: "the part that answers this is off or not ready (the message says which)"}
    return {str(code): _json(_ERROR, why[code]) for code in codes}


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def _path(name: str, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
            "description": description}


_RANGE: Schema = {"type": "string", "pattern": "^[1-9][0-9]{0,4}[mhdw]$"}
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_MATCHER = (r'\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:!?=\s*"[^"\\]*"'
            r'|[=!]~\s*"(?:[A-Za-z0-9_:/ -]|\.\*?|\.\+|\|)*")\s*')
_MATCHERS = rf"{_MATCHER}(?:,{_MATCHER})*,?\s*"
SELECTOR_PATTERN = rf"^\s*(?:{_NAME}\s*(?:\{{(?:{_MATCHERS})?\s*\}})?|\{{{_MATCHERS}\}})\s*$"
"""The selector grammar (ttamond/selector.py) for documentation and generated tests.
The server takes any regular expression after =~ and !~; the document promises only
those made of words, `.`, `.*`, `.+` and `|`, which always compile."""
_SELECTOR: Schema = {"type": "string", "maxLength": 2000, "pattern": SELECTOR_PATTERN}
_TEXT: Schema = {"type": "string", "minLength": 1, "maxLength": 200,
                 "pattern": r"[^\s\x1c-\x1f\x85\ufeff]"}
"""Not blank by either Python's or JavaScript's idea of whitespace (silences.is_blank)."""
_LIMIT = {"type": "integer", "minimum": 1}
_ACK_ARGS: Schema = {"type": "object", "required": ["by"], "properties": {
    "by": _TEXT, "comment": {"type": "string", "maxLength": 2000}}}
_SILENCE_ARGS: Schema = {
    "type": "object", "required": ["matchers", "duration_s", "author", "comment"],
    "properties": {
        "matchers": {**_SELECTOR, "description": 'an alert name and/or label matchers, e.g.'
                     ' DiskFull{host="a"}'},
        "duration_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 31_536_000},
        "author": _TEXT,
        "comment": {**_TEXT, "maxLength": 2000}}}


def _get(summary: str, schema: Schema, *, params: list[Schema] | None = None,
         errors: tuple[int, ...] = (400,)) -> Schema:
    return {"get": {"summary": summary, "parameters": params or [],
                    "responses": {"200": _json(schema, summary), **_errors(*errors)}}}


def _post(summary: str, body: Schema | None, *, params: list[Schema],
          errors: tuple[int, ...], body_required: bool = False) -> Schema:
    operation: Schema = {"summary": summary, "parameters": params,
                         "responses": {"200": _json(_OBJECT, "done"),
                                       **_errors(400, 401, 403, 413, *errors)}}
    if body is not None:
        operation["requestBody"] = {"required": body_required,
                                    "content": {"application/json": {"schema": body}}}
    return {"post": operation}


def document(version: str) -> Schema:
    """The whole document, for this daemon's version."""
    series = {"type": "object", "required": ["name", "labels", "kind", "unit"], "properties": {
        "name": {"type": "string"}, "labels": {"type": "object",
                                               "additionalProperties": {"type": "string"}},
        "kind": {"type": "string"}, "unit": {"type": "string"}}}
    points = {"type": "array", "description": "[timestamp_ms, value] pairs, oldest first",
              "items": {"type": "array", "items": {"type": "number"}, "minItems": 2,
                        "maxItems": 2}}
    query_result = {"type": "object",
                    "required": ["tier", "step_ms", "aggregate", "start_ms", "end_ms", "series"],
                    "properties": {"tier": {"enum": ["raw", "1m", "1h"]},
                                   "step_ms": {"type": "integer"},
                                   "aggregate": {"type": "string"},
                                   "start_ms": {"type": "integer"},
                                   "end_ms": {"type": "integer"},
                                   "series": {"type": "array", "items": {"allOf": [series, {
                                       "type": "object", "required": ["points"],
                                       "properties": {"points": points}}]}}}}
    group = {"type": "object", "required": ["id", "fingerprint", "title", "state", "count"],
             "properties": {"id": {"type": "integer"}, "fingerprint": {"type": "string"},
                            "title": {"type": "string"}, "state": {"type": "string"},
                            "count": {"type": "integer"}}}
    paths: Schema = {
        "/api/v1/status": _get("The daemon's status (what `ttamond status` shows)", {
            "type": "object", "required": ["state", "version", "pid", "actors", "store"]},
            errors=()),
        "/api/v1/actors": _get("The supervised actors", {
            "type": "object", "required": ["actors"],
            "properties": {"actors": {"type": "array", "items": {
                "type": "object", "required": ["name", "state", "restarts", "critical"]}}}},
            errors=()),
        "/api/v1/components": _get("Overall health, components, checks and predictions", {
            "type": "object", "required": ["overall", "components", "checks"]},
            errors=(503,)),
        "/api/v1/components/{name}": _get("One component's health", {
            "type": "object", "required": ["component", "level"]},
            params=[_path("name", "the component's name")], errors=(400, 404, 503)),
        "/api/v1/series": _get("Stored series, optionally those a selector matches", {
            "type": "object", "required": ["series"],
            "properties": {"series": {"type": "array", "items": series}}},
            params=[_query("match", _SELECTOR, 'a selector: name{label="value", other=~"re.*"}'),
                    _query("limit", {**_LIMIT, "maximum": 100_000}, "at most this many")],
            errors=(400, 503)),
        "/api/v1/series/query": _get("Points of the selected series over a range", query_result,
            params=[{**_query("selector", _SELECTOR,
                              'a selector, e.g. host_cpu_percent{cpu="total"}'),
                     "required": True},
                    _query("since", _RANGE, "how far back from end_ms (default 1h)"),
                    _query("end_ms", {"type": "integer", "minimum": 0, "maximum": 2**53},
                           "where the range ends (default now)"),
                    _query("step", {"type": "string", "pattern": "^(auto|raw|[1-9][0-9]{0,6}"
                                    "[smhd])$"}, "bucket width; auto gives ~240 points"),
                    _query("aggregate", {"enum": ["avg", "min", "max", "sum", "count", "last"]},
                           "how each bucket folds its samples")],
            errors=(400, 503)),
        "/api/v1/alerts": _get("Alerts, silences and notification figures", {
            "type": "object", "required": ["alerts", "silences", "fatigue"]},
            params=[_query("state", {"enum": ["pending", "firing", "resolved", "all"]},
                           "default: pending and firing")], errors=(400, 503)),
        "/api/v1/alerts/{alert}/ack": _post("Acknowledge an alert (stops its escalation)",
                                            _ACK_ARGS, params=[_path("alert", "fingerprint")],
                                            errors=(404, 409, 503), body_required=True),
        "/api/v1/alerts/{alert}/resolve": _post("Resolve an alert by hand", None,
                                                params=[_path("alert", "fingerprint")],
                                                errors=(404, 409, 503)),
        "/api/v1/silences": _post("Create a silence", _SILENCE_ARGS, params=[],
                                  errors=(503,), body_required=True),
        "/api/v1/silences/{silence}": {"delete": {
            "summary": "Expire a silence", "parameters": [_path("silence", "the silence's id")],
            "responses": {"200": _json(_OBJECT, "expired"),
                          **_errors(400, 401, 403, 404, 409, 413, 503)}}},
        "/api/v1/errors": _get("Error groups, most recently seen first", {
            "type": "object", "required": ["groups"],
            "properties": {"groups": {"type": "array", "items": group}}},
            params=[_query("state", {"enum": ["unresolved", "resolved", "ignored", "regressed"]},
                           "only groups in this state"),
                    _query("component", {"type": "string", "minLength": 1, "maxLength": 64},
                           "only this component's groups"),
                    _query("limit", {**_LIMIT, "maximum": 1000}, "at most this many")],
            errors=(400, 503)),
        "/api/v1/errors/{group}": _get("One error group with its latest events", {
            "type": "object", "required": ["group", "events"]},
            params=[_path("group", "the group's id or fingerprint (prefix)"),
                    _query("events", {**_LIMIT, "maximum": 100}, "latest events to show")],
            errors=(400, 404, 409, 503)),
        "/api/v1/errors/{group}/resolve": _post(
            "Mark an error group resolved", {"type": "object", "properties": {
                "resolved_in": {"type": "string", "maxLength": 200}}},
            params=[_path("group", "the group's id or fingerprint (prefix)")],
            errors=(404, 409, 503)),
        "/api/v1/carbon/report": _get("Energy and emissions over a range", {
            "type": "object", "required": ["total_energy_kwh", "total_emissions_kg",
                                           "estimated"]},
            params=[_query("since", _RANGE, "default 7d")], errors=(400, 503)),
        "/api/v1/engagement/report": _get("k-anonymous engagement aggregates", {
            "type": "object", "required": ["since_ms", "k", "people"]},
            params=[_query("since", _RANGE, "default 30d")], errors=(400, 503)),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "ttamond", "version": version,
                 "description": "The per-host monitoring daemon of the TTA platform. Writes"
                 " are accepted from loopback, or with `Authorization: Bearer <token>`"
                 " ([ingest] token) from other hosts."},
        "paths": paths,
        "components": {"schemas": {"Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["code", "message"],
                                     "properties": {"code": {"type": "string"},
                                                    "message": {"type": "string"}}}}}}},
    }
