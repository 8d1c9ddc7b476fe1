"""Where a request enters the API: the token, the body and its check against the route's
documented schema, and the mapping of every failure to a JSON answer (:func:`setup` registers
each route of :data:`~engine.api.base.ROUTES` wrapped in this)."""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from ..core.common import Rejected
from ..db import UNAVAILABLE
from ..logsetup import get_logger
from .base import CALLER, PREFIX, ROUTES, ApiError, Route, engine_of

__all__ = ["check", "setup"]

log = get_logger("api")


# -- request checking (the JSON Schema subset the bodies use) -----------------------------------

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "null": lambda v: v is None,
}


def check(schema: Mapping[str, Any], value: Any, where: str = "") -> None:
    """Raise :class:`ApiError` 400 naming the first field that does not fit ``schema``."""
    def fail(message: str) -> None:
        raise ApiError(400, f"{where or 'the body'}: {message}", field=where or "body")

    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_TYPES[k](value) for k in kinds):
            fail(f"expected {' or '.join(kinds)}, got {json.dumps(value)[:60]}")
    if "enum" in schema and value not in schema["enum"]:
        fail(f"expected one of {', '.join(map(str, schema['enum']))}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1 << 30):
            fail(f"expected {schema.get('minLength', 0)} to {schema.get('maxLength', 'any')} characters")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            fail(f"does not match {schema['pattern']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < schema.get("minimum", float("-inf")) or value > schema.get("maximum", float("inf")):
            fail(f"expected a number from {schema.get('minimum')} to {schema.get('maximum')}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 1 << 30):
            fail(f"expected {schema.get('minItems', 0)} to {schema.get('maxItems', 'any')} items")
        for i, item in enumerate(value):
            check(schema.get("items", {}), item, f"{where}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", ()):
            if key not in value:
                raise ApiError(400, f"missing field {_join(where, key)!r}", field=_join(where, key))
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                check(props[key], item, _join(where, key))
            elif extra is False:
                raise ApiError(400, f"unknown field {_join(where, key)!r}; expected one of: {', '.join(props)}",
                               field=_join(where, key))
            elif isinstance(extra, dict):
                check(extra, item, _join(where, key))
        if not schema.get("minProperties", 0) <= len(value) <= schema.get("maxProperties", 1 << 30):
            fail(f"expected {schema.get('minProperties', 0)} to {schema.get('maxProperties', 'any')} fields")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key



# -- the wrapper --------------------------------------------------------------------------------

def _authorize(request: web.Request) -> str:
    """Who is asking (``api:token<N>``, for the record); 403 when the API has no token, 401 when
    the request does not carry one of them."""
    tokens = engine_of(request).config.http.tokens
    if not tokens:
        raise ApiError(403, "the API is disabled: no token is configured (set http.tokens)")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and given:
        for n, token in enumerate(tokens, 1):
            if hmac.compare_digest(given.strip().encode(), token.encode()):
                return f"api:token{n}"
    raise ApiError(401, "a valid token is required: Authorization: Bearer <token> (http.tokens)")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def _wrap(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            if not route.public:
                request[CALLER] = _authorize(request)
            body = None
            if route.body is not None:
                try:
                    body = await request.json() if request.can_read_body else {}
                except ValueError:   # not JSON, or not UTF-8
                    raise ApiError(400, "the body is not JSON", field="body") from None
                check(route.body, body)
            answer = await route.handler(request, body)
        except ApiError as exc:
            headers = {"WWW-Authenticate": 'Bearer realm="callcenter"'} if exc.status == 401 else None
            return web.json_response(exc.body, status=exc.status, headers=headers)
        except Rejected as exc:
            return web.json_response({"error": str(exc)}, status=409)
        except UNAVAILABLE as exc:
            return web.json_response({"error": f"the database cannot be reached ({type(exc).__name__})"}, status=503)
        except Exception:
            log.exception("api.crashed", method=route.method, path=route.path)
            return web.json_response({"error": "internal error (logged)"}, status=500)
        return web.json_response(answer, status=route.status, dumps=_dumps)
    return handle


def setup(app: web.Application) -> None:
    """Register every declared route under /api/v1 (called by engine.http.build_app)."""
    for r in ROUTES:
        app.router.add_route(r.method, PREFIX + r.path, _wrap(r), name=f"api.{r.handler.__name__}")
