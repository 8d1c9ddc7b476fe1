"""Do-not-call: a number put on a list through the API. A compliance record: the answer is 201
only once the row is in PostgreSQL (the view's ``add_dnc``: the gate's, with ``store_in``), never
for a write merely queued; while the database is away, 503 says the entry is not stored."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from engine.services import dnc
from engine.http.api.base import CALLER, ApiError, endpoint, engine_of, pool_of
from engine.http.api.campaigns import campaign_of
from engine.http.api.schemas import NUMBER, STR, obj

__all__: list[str] = []


@endpoint("POST", "/dnc", "Put a number on a do-not-call list: answered once it is stored (503 while the database "
          "is away); the gate refuses it from then on", record="the number's do-not-call entry", errors=(404,),
          body=obj(("number",), True, number=NUMBER,
                   list={"type": "string", "pattern": r"^(global|national|campaign:[a-z0-9][a-z0-9_-]{0,62})$",
                         "description": "global (default), national or campaign:NAME"},
                   reason={"type": "string", "maxLength": 500},
                   region={"type": "string", "pattern": "^[A-Z]{2}$", "description": "for numbers without a "
                           "country code (default US)"}),
          status=201, answer=obj(("number", "list", "source"), number=STR, list=STR, source=STR, reason=STR))
async def add_dnc(request: web.Request, body: dict[str, Any]) -> Any:
    engine = engine_of(request)
    scope = body.get("list", "global")
    if scope.startswith("campaign:"):
        campaign_of(engine, scope.split(":", 1)[1])
    number = dnc.normalize(body["number"], body.get("region", "US"))
    if number is None:
        raise ApiError(400, f"number: {body['number']!r} is not a phone number", field="number")
    source = request[CALLER]
    # A compliance record: written directly and awaited, not queued; 201 only once it is stored.
    await engine.add_dnc(number, now=time.time(), source=source, reason=body.get("reason", ""), scope=scope,
                         region=body.get("region", "US"), store_in=pool_of(engine))
    return {"number": number, "list": scope, "source": source, "reason": body.get("reason", "")}

