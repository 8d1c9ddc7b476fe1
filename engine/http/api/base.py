"""What every endpoint module uses: the route declaration (:func:`endpoint` into :data:`ROUTES`),
:class:`ApiError`, and the helpers handlers share (the engine, the pool, rows as JSON)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from engine.http.server import ENGINE

if TYPE_CHECKING:
    from engine.runtime.view import EngineView as Engine

__all__ = ["CALLER", "DB_AWAY", "MAX_CALLS", "PREFIX", "ROUTES", "SPEED_TO_LEAD_PRIORITY", "ApiError", "Route", "endpoint",
           "engine_of", "pool_of", "row"]

PREFIX = "/api/v1"
SPEED_TO_LEAD_PRIORITY = 1000   # API leads go ahead of every imported fresh lead (import priorities: -1000..1000)
MAX_CALLS = 500
DB_AWAY = "the database cannot be reached"

Handler = Callable[[web.Request, Any], Awaitable[Any]]
CALLER = web.RequestKey("caller", str)     # who asked: api:token<N> (stored with what they changed)


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.body = status, {"error": message, **extra}


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str                       # under PREFIX, aiohttp and OpenAPI style: /agents/{agent_id}/login
    handler: Handler
    summary: str
    body: Mapping[str, Any] | None  # JSON Schema of the request body (None: no body)
    query: Mapping[str, Mapping[str, Any]]
    answer: Mapping[str, Any]       # JSON Schema of the success answer
    status: int
    errors: tuple[int, ...]
    public: bool = False
    record: str | None = None       # what it stores, answered only once stored ("the lead"); else None


ROUTES: list[Route] = []


def endpoint(method: str, path: str, summary: str, *, answer: Mapping[str, Any], body: Mapping[str, Any] | None = None,
             query: Mapping[str, Mapping[str, Any]] | None = None, status: int = 200, errors: tuple[int, ...] = (),
             public: bool = False, record: str | None = None) -> Callable[[Handler], Handler]:
    """Declare a route. The errors every route of its shape can give are added here: 401 and 403
    (unless public), 400 when it takes input (a body, query or path parameters: the edge checks
    them), 413 with a body (over :data:`engine.http.server.MAX_BODY_BYTES`), 503 for a ``record`` (a
    write answered only once it is in PostgreSQL: while the database is away, it is refused)."""
    takes_input = body is not None or bool(query) or "{" in path
    implied = {*(() if public else (401, 403)), *((400,) if takes_input else ()), *((413,) if body is not None else ()),
               *((503,) if record else ())}

    def register(fn: Handler) -> Handler:
        ROUTES.append(Route(method, path, fn, summary, body, query or {}, answer, status,
                            tuple(sorted({*errors, *implied})), public, record))
        return fn
    return register


def engine_of(request: web.Request) -> Engine:
    return request.app[ENGINE]


def pool_of(engine: Engine) -> Any:
    """The pool, or 503 while the database is not connected."""
    pool = engine.pool()
    if pool is None:
        raise ApiError(503, f"{DB_AWAY}; try again")
    return pool


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def row(record: Any, *, json_columns: tuple[str, ...] = ()) -> dict[str, Any]:
    """A database record as JSON-ready values (times in ISO 8601, UUIDs as text)."""
    out = {k: _iso(v) for k, v in dict(record).items()}
    for k in json_columns:
        if isinstance(out.get(k), str):
            out[k] = json.loads(out[k])
    return out
