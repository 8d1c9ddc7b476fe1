"""Call history: calls by number and time, and one call with everything that happened to it."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from .base import MAX_CALLS, ApiError, endpoint, engine_of, pool_of, row
from .edge import QUERY
from .schemas import obj, ref

__all__ = ["CALL_COLUMNS"]


CALL_COLUMNS = """id, direction, caller_number, caller_name, dialed_number, started_at, answered_at, ended_at,
                  hangup_cause, hangup_cause_text, ended_by, ivr_tree, ivr_version"""


@endpoint("GET", "/calls", "Calls, newest first: by number (caller or dialed) and time",
          query={"number": {"type": "string"}, "from": {"type": "string", "format": "date-time"},
                 "to": {"type": "string", "format": "date-time"},
                 "limit": {"type": "integer", "minimum": 1, "maximum": MAX_CALLS, "default": 50}},
          answer=obj(("calls",), calls={"type": "array", "items": ref("Call")}), errors=(503,))
async def list_calls(request: web.Request, _: None) -> Any:
    q = request[QUERY]      # checked and typed at the edge
    rows = await pool_of(engine_of(request)).fetch(f"""
        SELECT {CALL_COLUMNS} FROM calls
        WHERE ($1::text IS NULL OR caller_number = $1 OR dialed_number = $1)
          AND ($2::timestamptz IS NULL OR started_at >= $2) AND ($3::timestamptz IS NULL OR started_at < $3)
        ORDER BY started_at DESC LIMIT $4""", q.get("number"), q.get("from"), q.get("to"), q["limit"])
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
    async with pool_of(engine_of(request)).acquire() as conn:
        call = await conn.fetchrow(f"SELECT {CALL_COLUMNS} FROM calls WHERE id = $1", call_id)
        if call is None:
            raise ApiError(404, f"no call {text}")
        out = row(call)
        out["events"] = [row(r) for r in await conn.fetch(
            "SELECT at, kind, detail FROM call_events WHERE call_id = $1 ORDER BY at", call_id)]
        out["ivr_steps"] = [row(r) for r in await conn.fetch(
            "SELECT seq, at, tree, node, verb, input, result FROM ivr_steps WHERE call_id = $1 ORDER BY seq", call_id)]
        out["queue_entries"] = [row(r) for r in await conn.fetch("""
            SELECT queue, priority, entered_at, left_at, outcome, wait_seconds, agent_id FROM queue_entries
            WHERE call_id = $1 ORDER BY entered_at""", call_id)]
        out["offers"] = [row(r, json_columns=("requirement", "candidates")) for r in await conn.fetch("""
            SELECT queue, agent_id, offered_at, ended_at, result, strategy, requirement, expansion_step, candidates,
                   reason FROM queue_offers WHERE call_id = $1 ORDER BY offered_at""", call_id)]
        out["dispositions"] = [row(r) for r in await conn.fetch(
            "SELECT agent_id, code, name, at FROM dispositions WHERE call_id = $1 ORDER BY at", call_id)]
        attempt = await conn.fetchrow("""
            SELECT a.id, a.campaign, a.lead_id, a.number, a.mode, a.placed_at, a.answered_at, a.connected_at,
                   a.ended_at, a.amd_status, a.outcome, a.disposition, a.agent_id,
                   d.at AS d_at, d.mode AS d_mode, d.allowed, d.reason, d.detail, d.rules
            FROM dial_attempts a LEFT JOIN dial_decisions d ON d.id = a.decision_id
            WHERE a.call_id = $1 ORDER BY a.placed_at DESC LIMIT 1""", call_id)
    out["dial_attempt"] = None
    if attempt is not None:
        a = row(attempt, json_columns=("rules",))
        decision = {"at": a.pop("d_at"), "mode": a.pop("d_mode"),
                    **{k: a.pop(k) for k in ("allowed", "reason", "detail", "rules")}}
        out["dial_attempt"] = {**a, "decision": decision if decision["at"] is not None else None}
    return out

