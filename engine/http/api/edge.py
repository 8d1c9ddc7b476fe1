"""Where a request enters the API, and the one place its input is checked before any handler
sees it: the token; path and query parameters; the body (its size, its JSON, its depth, then the
route's documented schema); and the mapping of every failure to a JSON answer. :func:`setup`
registers each route of :data:`~engine.http.api.base.ROUTES` wrapped in this.

What the edge refuses, each a 4xx ``{"error", "field"}`` naming the field:

- **text PostgreSQL cannot store**, anywhere (body values and field names, query and path
  parameters): NUL (U+0000; ``text`` and ``jsonb`` refuse it) and unpaired surrogates (``"\\ud800"``
  is valid JSON but not Unicode: it has no UTF-8 form). Refused here, a value can never reach
  the write queue and be dropped there as ``db.write_rejected`` after the API said yes;
- **a body over** :data:`engine.http.server.MAX_BODY_BYTES` (413), not UTF-8, not JSON (``NaN`` and
  ``Infinity`` are not JSON), or nesting arrays and objects deeper than :data:`MAX_DEPTH` (the
  documented bodies nest two levels);
- **wrong types**: the body against the route's schema (:func:`check`), query parameters by
  their documented schema (integers, date-times, strings).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from engine.core.common import Rejected
from engine.store.db import UNAVAILABLE
from engine.http.server import MAX_BODY_BYTES, MAX_BODY_TEXT
from engine.shared.logsetup import get_logger
from engine.http.api.base import CALLER, DB_AWAY, PREFIX, ROUTES, ApiError, Route, engine_of

__all__ = ["MAX_DEPTH", "QUERY", "check", "check_text", "parse_body", "setup"]

log = get_logger("api")

MAX_DEPTH = 8
QUERY = web.RequestKey("query", dict)     # the route's query parameters, checked and typed (defaults filled in)
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")


# -- text, bodies, parameters -------------------------------------------------------------------

def check_text(text: str, where: str, *, name: bool = False) -> None:
    """400 naming ``where`` when ``text`` holds a character PostgreSQL text cannot store (``name``:
    the text is a field's name, not its value)."""
    found = _NOT_TEXT.search(text)
    if found is None:
        return
    char = found.group()
    what = ("a NUL character (U+0000), which PostgreSQL cannot store" if char == "\x00" else
            f"an unpaired surrogate (U+{ord(char):04X}), which is not Unicode text")
    raise ApiError(400, f"{where}: {'a field name contains' if name else 'contains'} {what}", field=where)


def _too_deep() -> ApiError:
    return ApiError(400, f"the body nests arrays and objects deeper than {MAX_DEPTH} levels", field="body")


def _no_constant(word: str) -> Any:
    raise ApiError(400, f"the body is not JSON: {word} is not a JSON number", field="body")


def parse_body(raw: bytes) -> Any:
    """The body's JSON value (an empty body is ``{}``), or :class:`ApiError` 400: not UTF-8, not
    JSON, deeper than :data:`MAX_DEPTH`, or holding text PostgreSQL cannot store."""
    if not raw:
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"the body is not UTF-8 (byte {exc.start})", field="body") from None
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:     # the parser's own limit, far past ours
        raise _too_deep() from None
    except ValueError:
        raise ApiError(400, "the body is not JSON", field="body") from None
    _scan(value)
    return value


def _scan(value: Any) -> None:
    """Every string and field name in ``value`` is storable text, no deeper than MAX_DEPTH (no recursion)."""
    todo: list[tuple[Any, str, int]] = [(value, "", 1)]
    while todo:
        item, where, depth = todo.pop()
        if isinstance(item, str):
            check_text(item, where or "body")
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth > MAX_DEPTH:
            raise _too_deep()
        children: Iterable[tuple[str, Any]]
        if isinstance(item, dict):
            for key in item:
                check_text(key, where or "body", name=True)
            children = ((_join(where, key), v) for key, v in item.items())
        else:
            children = ((f"{where}[{i}]", v) for i, v in enumerate(item))
        todo.extend((v, path, depth + 1) for path, v in reversed(list(children)))


async def _read_body(request: web.Request, schema: Mapping[str, Any]) -> Any:
    too_large = ApiError(413, f"the body is larger than {MAX_BODY_TEXT}: nothing was done", field="body")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise too_large
    try:
        raw = await request.read() if request.can_read_body else b""
    except web.HTTPRequestEntityTooLarge:   # no Content-Length: aiohttp counts as it reads (client_max_size)
        raise too_large from None
    value = parse_body(raw)
    check(schema, value)
    return value


def _query_value(name: str, schema: Mapping[str, Any], text: str) -> Any:
    if schema.get("type") == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        number = int(text) if re.fullmatch(r"-?[0-9]{1,18}", text) else None
        if number is None or (low is not None and number < low) or (high is not None and number > high):
            span = f" from {low} to {high}" if low is not None and high is not None else ""
            raise ApiError(400, f"{name}: expected a whole number{span}, got {text[:40]!r}", field=name)
        return number
    if schema.get("format") == "date-time":
        try:
            at = datetime.fromisoformat(text)
            return (at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
        except (ValueError, OverflowError):
            raise ApiError(400, f"{name}: expected an ISO 8601 time such as 2026-11-24T09:00:00Z, got {text[:40]!r}",
                           field=name) from None
    check(schema, text, name)
    return text


def _read_query(route: Route, request: web.Request) -> dict[str, Any]:
    """The route's documented query parameters, checked and typed (others are ignored: nothing reads them)."""
    out: dict[str, Any] = {}
    for name, schema in route.query.items():
        text = request.query.get(name)
        if text is not None:
            check_text(text, name)
            out[name] = _query_value(name, schema, text)
        elif "default" in schema:
            out[name] = schema["default"]
    return out


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
        offered = given.strip().encode("utf-8", "surrogateescape")   # header bytes that are not UTF-8 stay bytes
        for n, token in enumerate(tokens, 1):
            if hmac.compare_digest(offered, token.encode()):
                return f"api:token{n}"
    raise ApiError(401, "a valid token is required: Authorization: Bearer <token> (http.tokens)")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def _unavailable(route: Route, why: str) -> web.Response:
    """503: the database is away. For a record, say it is not stored (sending it again is safe:
    each record's write is idempotent, or answers 409 when it did land)."""
    tail = f", so {route.record} is not stored: send it again" if route.record else "; try again"
    return web.json_response({"error": f"{DB_AWAY} ({why}){tail}"}, status=503)


def _wrap(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            if not route.public:
                request[CALLER] = _authorize(request)
            for name, value in request.match_info.items():
                check_text(value, name)
            request[QUERY] = _read_query(route, request)
            body = None if route.body is None else await _read_body(request, route.body)
            answer = await route.handler(request, body)
        except ApiError as exc:
            if exc.status == 503 and route.record:
                return _unavailable(route, "not connected")
            headers = {"WWW-Authenticate": 'Bearer realm="callcenter"'} if exc.status == 401 else None
            return web.json_response(exc.body, status=exc.status, headers=headers)
        except Rejected as exc:
            return web.json_response({"error": str(exc)}, status=409)
        except UNAVAILABLE as exc:
            return _unavailable(route, type(exc).__name__)
        except Exception:
            log.exception("api.crashed", method=route.method, path=route.path)
            return web.json_response({"error": "internal error (logged)"}, status=500)
        return web.json_response(answer, status=route.status, dumps=_dumps)
    return handle


@web.middleware
async def _json_errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                       ) -> web.StreamResponse:
    """What aiohttp's router answers under /api/v1 (no such path, a method the path does not
    take) in JSON too, like every other API error."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith(PREFIX + "/"):
            raise
        headers = None
        if isinstance(exc, web.HTTPMethodNotAllowed):
            headers = {"Allow": ", ".join(sorted(exc.allowed_methods))}
            message = f"{request.method} is not allowed on {request.path}; it takes {headers['Allow']}"
        elif isinstance(exc, web.HTTPNotFound):
            message = f"no endpoint {request.path} (see {PREFIX}/openapi.json)"
        else:
            message = exc.reason
        return web.json_response({"error": message}, status=exc.status, headers=headers)


def setup(app: web.Application) -> None:
    """Register every declared route under /api/v1 (called by engine.http.build_app), and the
    JSON answers for what the router refuses there."""
    app.middlewares.append(_json_errors)
    for r in ROUTES:
        app.router.add_route(r.method, PREFIX + r.path, _wrap(r), name=f"api.{r.handler.__name__}")
