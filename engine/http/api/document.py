"""The OpenAPI 3.1 document, written from :data:`~engine.http.api.base.ROUTES` (and served by the last of them)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from engine.http.server import MAX_BODY_TEXT
from engine.http.api.base import PREFIX, ROUTES, Route, endpoint
from engine.http.api.edge import MAX_DEPTH
from engine.http.api.schemas import SCHEMAS, ref

__all__ = ["ERROR_TEXT", "openapi"]


ERROR_TEXT = {400: "bad input (the field is named): a wrong type or value, text PostgreSQL cannot store (NUL, "
                   f"unpaired surrogates), a body that is not JSON or nests deeper than {MAX_DEPTH} levels",
              401: "no valid token", 403: "the API is disabled (no token configured)", 404: "not found",
              409: "not allowed in the current state", 413: f"the body is larger than {MAX_BODY_TEXT}",
              503: "the database is away"}


def _error_text(route: Route, status: int) -> str:
    if status == 503 and route.record:
        return f"the database is away: {route.record} is not stored (sending it again is safe)"
    return ERROR_TEXT[status]


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of :data:`ROUTES` (served at /api/v1/openapi.json)."""
    paths: dict[str, dict[str, Any]] = {}
    for r in ROUTES:
        params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
                  for p in re.findall(r"\{(\w+)\}", r.path)]
        params += [{"name": name, "in": "query", "required": False, "schema": dict(schema)}
                   for name, schema in r.query.items()]
        op: dict[str, Any] = {
            "operationId": r.handler.__name__, "summary": r.summary,
            "responses": {str(r.status): {"description": f"done: {r.record} is stored" if r.record else "done",
                                          "content": {"application/json": {"schema": r.answer}}},
                          **{str(s): {"description": _error_text(r, s),
                                      "content": {"application/json": {"schema": ref("Error")}}} for s in r.errors}},
        }
        if params:
            op["parameters"] = params
        if r.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": r.body}}}
        if r.public:
            op["security"] = []
        paths.setdefault(PREFIX + r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "callcenter engine API", "version": "1",
                 "description": "Agents, dispositions, campaigns, leads, DNC, live status and call history. "
                                "Webhooks: see the README (HTTP API)."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "a token from http.tokens"}}},
    }


@endpoint("GET", "/openapi.json", "This document", answer={"type": "object", "required": ["openapi", "paths"]},
          public=True)
async def get_openapi(request: web.Request, _: None) -> Any:
    return openapi()
