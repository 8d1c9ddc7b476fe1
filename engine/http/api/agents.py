"""Agents (log in, pause, resume, log out: as the keypad's feature codes do), hold and transfer, and dispositions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from engine.config.acd import login_queues
from engine.core import agent as ag
from engine.http.server import STATUS
from engine.http.api.base import ApiError, endpoint, engine_of
from engine.http.api.schemas import NAME, QUEUE_NAMES, STR, obj, ref

if TYPE_CHECKING:
    from engine.runtime.view import EngineView as Engine

__all__: list[str] = []


def _agent(engine: Engine, agent_id: str) -> Any:
    agent = next((a for a in engine.config.agents if a.id == agent_id), None)
    if agent is None:
        raise ApiError(404, f"no agent {agent_id!r} in the configuration")
    return agent


async def _agent_request(request: web.Request, event: ag.Event) -> Any:
    engine = engine_of(request)
    agent_id = request.match_info["agent_id"]
    _agent(engine, agent_id)
    await engine.agent_request(agent_id, event)     # Rejected -> 409
    snap = await request.app[STATUS].snapshot()
    return next(a for a in snap["agents"] if a["id"] == agent_id)


@endpoint("POST", "/agents/{agent_id}/login", "Log an agent in (as *11 does; no PIN: the token is the credential)",
          body=obj((), True, queues={**QUEUE_NAMES, "description": "default: the agent's queues, or every queue "
                                     "they qualify for"},
                   endpoint={"type": "string", "pattern": r"^[A-Za-z0-9_-]+/\S+$", "maxLength": 100,
                             "description": "the phone, e.g. PJSIP/agent9001 (default: the agent's own)"}),
          answer=ref("Agent"), errors=(404, 409))
async def login(request: web.Request, body: dict[str, Any]) -> Any:
    engine = engine_of(request)
    agent = _agent(engine, request.match_info["agent_id"])
    queues = frozenset(body.get("queues") or login_queues(agent, engine.config.queues))
    unknown = sorted(queues - {q.name for q in engine.config.queues})
    if unknown:
        raise ApiError(400, f"queues: unknown queue(s) {', '.join(unknown)}", field="queues")
    return await _agent_request(request, ag.LogIn(queues, body.get("endpoint", "")))


@endpoint("POST", "/agents/{agent_id}/pause", "Pause an agent with a reason (name or keypad code)",
          body=obj(("reason",), True, reason={**NAME, "description": "a pause_reasons name (lunch) or code (2)"}),
          answer=ref("Agent"), errors=(404, 409))
async def pause(request: web.Request, body: dict[str, Any]) -> Any:
    reasons = engine_of(request).config.pause_reasons
    reason = reasons.get(body["reason"], body["reason"])
    if reason not in reasons.values():
        raise ApiError(400, f"reason: unknown pause reason {body['reason']!r}; expected one of "
                            f"{', '.join(reasons.values())} (or their codes)", field="reason")
    return await _agent_request(request, ag.Pause(reason))


@endpoint("POST", "/agents/{agent_id}/resume", "End an agent's pause", answer=ref("Agent"), errors=(404, 409))
async def resume(request: web.Request, _: None) -> Any:
    return await _agent_request(request, ag.Unpause())


@endpoint("POST", "/agents/{agent_id}/logout", "Log an agent out (after the call, if on one)", answer=ref("Agent"),
          errors=(404, 409))
async def logout(request: web.Request, _: None) -> Any:
    return await _agent_request(request, ag.LogOut())


# -- hold -----------------------------------------------------------------------------------------

def _hold(held: bool) -> None:
    async def handler(request: web.Request, _: None) -> Any:
        call_id = request.match_info["call_id"]
        await engine_of(request).hold(call_id, held)     # Rejected -> 409
        return {"call_id": call_id, "held": held}
    handler.__name__ = "hold" if held else "unhold"
    summary = ("Put the caller of a connected call on hold, as the agent's hold key does: music for the caller, "
               "the agent on_hold" if held else "Take the caller of a connected call off hold")
    endpoint("POST", f"/calls/{{call_id}}/{handler.__name__}", summary,
             answer=obj(("call_id", "held"), call_id=STR, held={"type": "boolean"}), errors=(409,))(handler)


_hold(True)
_hold(False)


@endpoint("POST", "/calls/{call_id}/transfer",
          "Blind-transfer the caller of a connected call, as the agent's transfer key does: to a queue (a new stay, "
          "the caller keeping their priority and their place by call time), an agent (in line for them alone), an "
          "IVR tree or node, or a number through the carrier (back to the queue if it does not answer)",
          body={**obj((), True, queue=NAME, agent=NAME, ivr={**NAME, "description": "tree or tree/node"},
                      number={"type": "string", "pattern": r"^\+?[0-9]{3,20}$"}),
                "minProperties": 1, "maxProperties": 1, "description": "give queue, agent, ivr or number"},
          answer=obj(("call_id", "kind", "target"), call_id=STR, kind={"enum": ["queue", "agent", "ivr", "number"]},
                     target=STR),
          errors=(409,))
async def transfer(request: web.Request, body: dict[str, Any]) -> Any:
    engine = engine_of(request)
    call_id = request.match_info["call_id"]
    kind, target = next(iter(body.items()))
    cfg = engine.config
    tree, _, node = target.partition("/")
    known = {"queue": lambda: target in {q.name for q in cfg.queues},
             "agent": lambda: any(a.id == target for a in cfg.agents),
             "ivr": lambda: tree in cfg.trees and (not node or node in cfg.trees[tree].tree.nodes),
             "number": lambda: True}[kind]
    if not known():
        raise ApiError(400, f"{kind}: no {kind} {target!r} in the configuration", field=kind)
    await engine.transfer(call_id, kind, target)     # Rejected -> 409
    return {"call_id": call_id, "kind": kind, "target": target}


# -- dispositions -------------------------------------------------------------------------------

@endpoint("POST", "/calls/{call_id}/disposition",
          "The disposition of a call in wrap-up (as *16 does: it ends the wrap-up; outbound: retries, DNC)",
          body={**obj((), True, code={"type": "string", "pattern": r"^\d{1,10}$"}, name=NAME),
                "minProperties": 1, "maxProperties": 1, "description": "give code or name"},
          answer=obj(("call_id", "agent_id", "code", "name"), call_id=STR, agent_id=STR, code=STR, name=STR),
          errors=(409,))
async def disposition(request: web.Request, body: dict[str, Any]) -> Any:
    engine = engine_of(request)
    call_id = request.match_info["call_id"]
    agent = next((a for a in engine.agents().values()
                  if a.call_id == call_id and a.phase is ag.AgentPhase.WRAP_UP), None)
    if agent is None:
        raise ApiError(409, f"no agent is in wrap-up on call {call_id}: a disposition is given during wrap-up")
    codes = engine.disposition_codes(call_id)
    code = body.get("code") or next((c for c, n in codes.items() if n == body.get("name")), None)
    if code not in codes:
        field = "code" if "code" in body else "name"
        raise ApiError(400, f"{field}: unknown disposition {body[field]!r} for this call; expected one of "
                            + ", ".join(f"{c} ({n})" for c, n in sorted(codes.items())), field=field)
    ok, why = await engine.disposition(agent.id, code)
    if not ok:
        raise ApiError(409, why)
    return {"call_id": call_id, "agent_id": agent.id, "code": code, "name": codes[code]}

