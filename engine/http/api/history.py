"""Call history: calls by number and time, and one call with everything that happened to it."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from engine.store import history
from engine.http.api.base import MAX_CALLS, ApiError, endpoint, engine_of, pool_of, row
from engine.http.api.edge import QUERY
from engine.http.api.schemas import obj, ref

__all__: list[str] = []   # the routes register themselves


@endpoint("GET", "/calls", "Calls, newest first: by number (caller or dialed) and time",
          query={"number": {"type": "string"}, "from": {"type": "string", "format": "date-time"},
                 "to": {"type": "string", "format": "date-time"},
                 "limit": {"type": "integer", "minimum": 1, "maximum": MAX_CALLS, "default": 50}},
          answer=obj(("calls",), calls={"type": "array", "items": ref("Call")}), errors=(503,))
async def list_calls(request: web.Request, _: None) -> Any:
    q = request[QUERY]      # checked and typed at the edge
    rows = await history.find_calls(pool_of(engine_of(request)), q.get("number"), q.get("from"), q.get("to"),
                                    q["limit"])
    return {"calls": [row(r) for r in rows]}


@endpoint("GET", "/calls/{call_id}",
          "One call with its history: events, IVR path, queue stays, offers and why, dispositions, and for "
          "outbound the dial and the compliance decision", answer=ref("CallDetail"), errors=(404, 503))
async def get_call(request: web.Request, _: None) -> Any:
    text = request.match_info["call_id"]
    try:
        call_id = uuid.UUID(text)
    except ValueError:
        raise ApiError(404, f"no call {text!r} (call ids are UUIDs)") from None
    found = await history.call_history(pool_of(engine_of(request)), call_id)
    if found is None:
        raise ApiError(404, f"no call {text}")
    out = row(found["call"])
    for part in ("events", "ivr_steps", "queue_entries", "offers", "dispositions"):
        json_columns = ("requirement", "candidates") if part == "offers" else ()
        out[part] = [row(r, json_columns=json_columns) for r in found[part]]
    attempt = found["dial_attempt"]
    out["dial_attempt"] = None
    if attempt is not None:
        a = row(attempt, json_columns=("rules",))
        decision = {"at": a.pop("d_at"), "mode": a.pop("d_mode"),
                    **{k: a.pop(k) for k in ("allowed", "reason", "detail", "rules")}}
        out["dial_attempt"] = {**a, "decision": decision if decision["at"] is not None else None}
    return out

