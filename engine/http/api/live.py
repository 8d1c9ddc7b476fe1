"""Live status: queues, agents and campaigns now (from :class:`engine.http.status.LiveStatus`, with each
campaign's stored start / pause / stop)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from engine.http.server import STATUS
from engine.http.api.base import endpoint, engine_of
from engine.http.api.schemas import NUM, obj, ref

__all__ = ["snapshot"]


async def snapshot(request: web.Request) -> dict[str, Any]:
    snap = await request.app[STATUS].snapshot()
    control = engine_of(request).campaign_controls()
    for c in snap["campaigns"]:
        c["state"] = control.get(c["name"]) or ("running" if c["active"] else "paused")
        c["active"] = c["state"] == "running"   # the stored control, even before the dialer applied it
        c["controlled_by"] = "api" if c["name"] in control else "config"
    return snap


@endpoint("GET", "/status", "Queues, agents and campaigns now", answer=ref("Status"))
async def get_status(request: web.Request, _: None) -> Any:
    return await snapshot(request)


def _part(key: str, schema: str, summary: str) -> None:
    async def handler(request: web.Request, _: None) -> Any:
        snap = await snapshot(request)
        return {"at": snap["at"], key: snap[key]}
    handler.__name__ = f"get_{key}"
    endpoint("GET", f"/{key}", summary, answer=obj(("at", key), at=NUM, **{key: {"type": "array", "items": ref(schema)}}))(
        handler)


_part("queues", "Queue", "Each queue now: waiting callers, longest wait, agents by state, service level today")
_part("agents", "Agent", "Each agent now: state, pause reason, time in state, call")
_part("campaigns", "Campaign", "Each campaign now: state, dial rate, lines, abandon rate in its window")

