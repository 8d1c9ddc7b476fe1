"""The HTTP API under ``/api/v1``: agents, dispositions, campaigns, leads, DNC, live status, call
history; and its OpenAPI 3.1 document (``GET /api/v1/openapi.json``).

Theory of operation
-------------------
Each endpoint is declared once, with :func:`endpoint`: method, path, summary, the JSON Schema of
its body and of its answer, the errors it may give. :func:`setup` registers exactly those routes
and :func:`openapi` writes the document from exactly the same list, so the document cannot list a
route the server does not have, or miss one it has. Request bodies are checked against their
documented schema (:func:`check`, a small JSON Schema subset) before a handler runs: what the
document says is what the server enforces.

- **Auth**: ``Authorization: Bearer <token>``, tokens from ``http.tokens``. No token configured:
  the API is off and says so (403), whatever the bind address; a missing or wrong token is 401.
  Only the OpenAPI document is readable without a token.
- **Errors** are JSON ``{"error": "...", "field": "..."}``: 400 bad input (naming the field), 404
  unknown agent / campaign / call, 409 a request the agent's or call's state does not allow (the
  ACD's ``Refused`` / ``IllegalTransition``), 503 the database is away (for what needs it).
- **Reuse**: agent requests go to the ACD as the keypad's do (:mod:`engine.phones`); a disposition
  is :meth:`engine.phones.Phones.disposition` (the dialer's ``on_disposition``: DNC, retries);
  leads are parsed by :func:`engine.leads.parse_row` as ``import-leads`` does; DNC goes through
  :meth:`engine.gate.Gate.add_dnc` (refused at once, written through the write queue).
"""

from __future__ import annotations

import hmac
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import dnc, hopper
from .acdconf import login_queues
from .core import acd as A
from .core import agent as ag
from .core.common import Rejected
from .db import UNAVAILABLE
from .http import ENGINE, STATUS
from .leads import ColumnMap, _lead_zone, parse_row
from .logsetup import get_logger

if TYPE_CHECKING:
    from .app import Engine

__all__ = ["PREFIX", "ROUTES", "check", "openapi", "setup"]

log = get_logger("api")

PREFIX = "/api/v1"
SPEED_TO_LEAD_PRIORITY = 1000   # API leads go ahead of every imported fresh lead (import priorities: -1000..1000)
MAX_CALLS = 500

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


ROUTES: list[Route] = []


def endpoint(method: str, path: str, summary: str, *, answer: Mapping[str, Any], body: Mapping[str, Any] | None = None,
             query: Mapping[str, Mapping[str, Any]] | None = None, status: int = 200, errors: tuple[int, ...] = (),
             public: bool = False) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ROUTES.append(Route(method, path, fn, summary, body, query or {}, answer, status,
                            tuple(sorted({*errors, *(() if public else (401, 403)), *((400,) if body else ())})),
                            public))
        return fn
    return register


# -- schemas -------------------------------------------------------------------------------------

def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(kind: str, **more: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **more}


def obj(required: tuple[str, ...], closed: bool = False, **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "required": list(required), "properties": properties}
    if closed:
        schema["additionalProperties"] = False
    return schema


TIME = {"type": "string", "format": "date-time"}
NTIME = nullable("string", format="date-time")
STR, INT, NUM, BOOL = {"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}
NAME = {"type": "string", "minLength": 1, "maxLength": 100}
AGENT_STATES = [p.value for p in ag.AgentPhase]
CAMPAIGN_STATES = ["running", "paused", "stopped"]

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": obj(("error",), error={"type": "string", "description": "what is wrong, in one line"},
                 field={"type": "string", "description": "the request field at fault"},
                 reasons={"type": "array", "items": obj(("field", "reason"), field=STR, value=STR, reason=STR)},
                 lead_id=INT),
    "Agent": obj(("id", "state", "reason", "since", "seconds_in_state", "call_id", "queues"),
                 id=STR, state={"enum": AGENT_STATES}, reason=nullable("string"), since=NUM, seconds_in_state=NUM,
                 call_id=nullable("string"), queues={"type": "array", "items": STR},
                 call_queue=nullable("string", description="the queue of the agent's call"),
                 caller=nullable("string", description="the caller number of the agent's call")),
    "Queue": obj(("name", "waiting", "longest_wait_seconds", "agents", "service_level_today", "service_level_target"),
                 name=STR, waiting=INT, longest_wait_seconds=NUM,
                 agents={"type": "object", "additionalProperties": INT, "description": "agents by state"},
                 offered_today=nullable("integer"), answered_today=nullable("integer"),
                 abandoned_today=nullable("integer"),
                 service_level_today=nullable("number", description="answered within target / offered"),
                 service_level_target=obj(("seconds", "percent"), seconds=NUM, percent=NUM)),
    "Campaign": obj(("name", "mode", "active", "state", "abandon_target_percent"),
                    name=STR, mode={"enum": ["preview", "progressive", "predictive", "agentless"]}, active=BOOL,
                    state={"enum": CAMPAIGN_STATES, "description": "what start/pause/stop (or the YAML) set"},
                    controlled_by={"enum": ["api", "config"]}, abandon_target_percent=NUM,
                    dial_rate_per_minute=NUM, lines_in_flight=INT, live_answers=INT, abandoned=INT,
                    abandon_rate=NUM, agents_busy=INT, agents_logged_in=INT),
    "Status": obj(("at", "queues", "agents", "campaigns"), at=NUM,
                  queues={"type": "array", "items": ref("Queue")}, agents={"type": "array", "items": ref("Agent")},
                  campaigns={"type": "array", "items": ref("Campaign")}),
    "Call": obj(("id", "direction", "caller_number", "dialed_number", "started_at", "answered_at", "ended_at"),
                id=STR, direction={"enum": ["inbound", "outbound"]}, caller_number=STR, caller_name=STR,
                dialed_number=STR, started_at=TIME, answered_at=NTIME, ended_at=NTIME,
                hangup_cause=nullable("integer"), hangup_cause_text=nullable("string"), ended_by=nullable("string"),
                ivr_tree=nullable("string"), ivr_version=nullable("string")),
    "Decision": obj(("allowed", "reason", "detail", "rules"), at=TIME, mode=STR, allowed=BOOL,
                    reason={"type": "string", "description": "a stable code: allowed, dnc_global, outside_hours, ..."},
                    detail=STR, rules={"type": "object", "description": "the rule values and facts the gate saw"}),
    "DialAttempt": obj(("id", "campaign", "number", "mode", "placed_at", "outcome", "decision"),
                       id=STR, campaign=STR, lead_id=nullable("integer"), number=STR, mode=STR, placed_at=TIME,
                       answered_at=NTIME, connected_at=NTIME, ended_at=NTIME, amd_status=nullable("string"),
                       outcome=nullable("string"), disposition=nullable("string"), agent_id=nullable("string"),
                       decision={"oneOf": [ref("Decision"), {"type": "null"}]}),
}
SCHEMAS["CallDetail"] = {"allOf": [ref("Call"), obj(
    ("events", "ivr_steps", "queue_entries", "offers", "dispositions", "dial_attempt"),
    events={"type": "array", "items": obj(("at", "kind", "detail"), at=TIME, kind=STR, detail=STR)},
    ivr_steps={"type": "array", "items": obj(("seq", "at", "node", "verb"), seq=INT, at=TIME, tree=STR, node=STR,
                                             verb=STR, input=STR, result=STR)},
    queue_entries={"type": "array", "items": obj(("queue", "entered_at", "outcome"), queue=STR, priority=INT,
                                                 entered_at=TIME, left_at=NTIME, outcome=nullable("string"),
                                                 wait_seconds=nullable("number"), agent_id=nullable("string"))},
    offers={"type": "array", "description": "every offer to an agent, and why that agent",
            "items": obj(("queue", "agent_id", "offered_at", "strategy", "reason", "result"), queue=STR, agent_id=STR,
                         offered_at=TIME, ended_at=NTIME, result=nullable("string"), strategy=STR,
                         requirement={"type": "object"}, expansion_step=INT, candidates={"type": "array"},
                         reason={"type": "string", "description": "longest_idle: 9001 chosen of 2 eligible ..."})},
    dispositions={"type": "array", "items": obj(("agent_id", "code", "name", "at"), agent_id=STR, code=STR, name=STR,
                                                at=TIME)},
    dial_attempt={"oneOf": [ref("DialAttempt"), {"type": "null"}],
                  "description": "outbound: the dial and the compliance gate's decision"})]}

QUEUE_NAMES = {"type": "array", "items": NAME, "minItems": 1, "maxItems": 50}
NUMBER = {"type": "string", "minLength": 1, "maxLength": 40}


# -- request checking (the JSON Schema subset the bodies above use) -----------------------------

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


# -- plumbing -----------------------------------------------------------------------------------

def _engine(request: web.Request) -> Engine:
    return request.app[ENGINE]


def _authorize(request: web.Request) -> str:
    """Who is asking (``api:token<N>``, for the record); 403 when the API has no token, 401 when
    the request does not carry one of them."""
    tokens = _engine(request).config.http.tokens
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


def _pool(engine: Engine) -> Any:
    if not engine.db.ready.is_set() or engine.db.pool is None:
        raise ApiError(503, "the database cannot be reached; try again")
    return engine.db.pool


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _row(record: Any, *, json_columns: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {k: _iso(v) for k, v in dict(record).items()}
    for k in json_columns:
        if isinstance(out.get(k), str):
            out[k] = json.loads(out[k])
    return out


# -- live status --------------------------------------------------------------------------------

async def _snapshot(request: web.Request) -> dict[str, Any]:
    snap = await request.app[STATUS].snapshot()
    dialer = _engine(request).dialer
    control = dialer.control if dialer is not None else {}
    for c in snap["campaigns"]:
        c["state"] = control.get(c["name"]) or ("running" if c["active"] else "paused")
        c["active"] = c["state"] == "running"   # the stored control, even before the dialer applied it
        c["controlled_by"] = "api" if c["name"] in control else "config"
    return snap


@endpoint("GET", "/status", "Queues, agents and campaigns now", answer=ref("Status"))
async def get_status(request: web.Request, _: None) -> Any:
    return await _snapshot(request)


def _part(key: str, schema: str, summary: str) -> None:
    async def handler(request: web.Request, _: None) -> Any:
        snap = await _snapshot(request)
        return {"at": snap["at"], key: snap[key]}
    handler.__name__ = f"get_{key}"
    endpoint("GET", f"/{key}", summary, answer=obj(("at", key), at=NUM, **{key: {"type": "array", "items": ref(schema)}}))(
        handler)


_part("queues", "Queue", "Each queue now: waiting callers, longest wait, agents by state, service level today")
_part("agents", "Agent", "Each agent now: state, pause reason, time in state, call")
_part("campaigns", "Campaign", "Each campaign now: state, dial rate, lines, abandon rate in its window")


# -- agents -------------------------------------------------------------------------------------

def _agent(engine: Engine, agent_id: str) -> Any:
    agent = next((a for a in engine.config.agents if a.id == agent_id), None)
    if agent is None or engine.acd is None:
        raise ApiError(404, f"no agent {agent_id!r} in the configuration")
    return agent


async def _agent_request(request: web.Request, event: ag.Event) -> Any:
    engine = _engine(request)
    agent_id = request.match_info["agent_id"]
    _agent(engine, agent_id)
    assert engine.acd is not None
    await engine.acd.request(A.AgentRequest(agent_id, event))     # Rejected -> 409
    snap = await request.app[STATUS].snapshot()
    return next(a for a in snap["agents"] if a["id"] == agent_id)


@endpoint("POST", "/agents/{agent_id}/login", "Log an agent in (as *11 does; no PIN: the token is the credential)",
          body=obj((), True, queues={**QUEUE_NAMES, "description": "default: the agent's queues, or every queue "
                                     "they qualify for"},
                   endpoint={"type": "string", "pattern": r"^[A-Za-z0-9_-]+/\S+$", "maxLength": 100,
                             "description": "the phone, e.g. PJSIP/agent9001 (default: the agent's own)"}),
          answer=ref("Agent"), errors=(404, 409))
async def login(request: web.Request, body: dict[str, Any]) -> Any:
    engine = _engine(request)
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
    reasons = _engine(request).config.pause_reasons
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


# -- dispositions -------------------------------------------------------------------------------

@endpoint("POST", "/calls/{call_id}/disposition",
          "The disposition of a call in wrap-up (as *16 does: it ends the wrap-up; outbound: retries, DNC)",
          body={**obj((), True, code={"type": "string", "pattern": r"^\d{1,10}$"}, name=NAME),
                "minProperties": 1, "maxProperties": 1, "description": "give code or name"},
          answer=obj(("call_id", "agent_id", "code", "name"), call_id=STR, agent_id=STR, code=STR, name=STR),
          errors=(409,))
async def disposition(request: web.Request, body: dict[str, Any]) -> Any:
    engine = _engine(request)
    call_id = request.match_info["call_id"]
    assert engine.acd is not None and engine.calls is not None and engine.calls.phones is not None
    agent = next((a for a in engine.acd.acd.agents.values()
                  if a.call_id == call_id and a.phase is ag.AgentPhase.WRAP_UP), None)
    if agent is None:
        raise ApiError(409, f"no agent is in wrap-up on call {call_id}: a disposition is given during wrap-up")
    codes = engine.calls.phones.disposition_codes(call_id)
    code = body.get("code") or next((c for c, n in codes.items() if n == body.get("name")), None)
    if code not in codes:
        field = "code" if "code" in body else "name"
        raise ApiError(400, f"{field}: unknown disposition {body[field]!r} for this call; expected one of "
                            + ", ".join(f"{c} ({n})" for c, n in sorted(codes.items())), field=field)
    ok, why = await engine.calls.phones.disposition(agent.id, code)
    if not ok:
        raise ApiError(409, why)
    return {"call_id": call_id, "agent_id": agent.id, "code": code, "name": codes[code]}


# -- campaigns ----------------------------------------------------------------------------------

def _campaign(engine: Engine, name: str) -> Any:
    c = next((c for c in engine.config.campaigns if c.name == name), None)
    if c is None or engine.dialer is None:
        raise ApiError(404, f"no campaign {name!r} in the configuration")
    return c


def _control(state: str, verb: str, summary: str) -> None:
    async def handler(request: web.Request, _: None) -> Any:
        engine = _engine(request)
        name = request.match_info["name"]
        _campaign(engine, name)
        dialer = engine.dialer
        assert dialer is not None
        pool = _pool(engine)
        await pool.execute("""
            INSERT INTO campaign_control (name, state, at, by) VALUES ($1, $2, now(), $3)
            ON CONFLICT (name) DO UPDATE SET state = EXCLUDED.state, at = EXCLUDED.at, by = EXCLUDED.by""",
            name, state, request[CALLER])
        dialer.set_control(name, state)
        released = 0
        if state == "stopped":   # leases not behind a call in flight go back (calls in flight finish)
            run = dialer.campaigns.get(name)
            busy = [a.lead.id for a in run.attempts.values() if a.stage != "ended"] if run is not None else []
            released = await hopper.give_back(pool, time.time(), owner=dialer.instance, campaign=name, keep=busy)
        snap = await _snapshot(request)
        return {**next(c for c in snap["campaigns"] if c["name"] == name), "leases_released": released}
    handler.__name__ = f"campaign_{verb}"
    endpoint("POST", f"/campaigns/{{name}}/{verb}", summary, errors=(404, 503),
             answer={"allOf": [ref("Campaign"), obj((), leases_released=INT)]})(handler)


_control("running", "start", "Start dialling (stored: outlives a restart, wins over the YAML's active)")
_control("paused", "pause", "Pause: no new dials; calls in flight finish (stored)")
_control("stopped", "stop", "Stop: as pause, and leads leased but not in a call go back (stored)")


LEAD_BODY = obj((), True,
                number={**NUMBER, "description": "one number (or numbers); without a country code: the campaign's "
                        "default_region"},
                numbers={"type": "array", "items": NUMBER, "minItems": 1, "maxItems": 10},
                first_name={"type": "string", "maxLength": 200}, last_name={"type": "string", "maxLength": 200},
                name={"type": "string", "maxLength": 200}, external_id={"type": "string", "maxLength": 200},
                fields={"type": "object", "additionalProperties": {"type": "string", "maxLength": 2000},
                        "description": "anything else (kept in leads.fields)"},
                time_zone={"type": "string", "maxLength": 64, "description": "IANA name; default: the number's"},
                consent={"type": "boolean", "description": "consent to automated calls (default false)"},
                consent_text={"type": "string", "maxLength": 2000},
                priority={"type": "integer", "minimum": -1000, "maximum": 1000,
                          "description": f"default {SPEED_TO_LEAD_PRIORITY}: ahead of imported leads"})


@endpoint("POST", "/campaigns/{name}/leads",
          "Add a lead: normalised as import-leads does, dialled first (speed to lead) when the campaign runs",
          body=LEAD_BODY, status=201, errors=(404, 409, 503),
          answer=obj(("lead_id", "campaign", "numbers", "timezone", "state"), lead_id=INT, campaign=STR,
                     numbers={"type": "array", "items": obj(("number",), number=STR, line_type=STR,
                                                            time_zones={"type": "array", "items": STR})},
                     timezone=nullable("string"), state={"enum": CAMPAIGN_STATES}))
async def add_lead(request: web.Request, body: dict[str, Any]) -> Any:
    engine = _engine(request)
    campaign = _campaign(engine, request.match_info["name"])
    raw = ([body["number"]] if "number" in body else []) + list(body.get("numbers", []))
    if not raw:
        raise ApiError(400, "give number or numbers", field="number")
    fields = body.get("fields", {})
    roles = {"first_name": body.get("first_name", ""), "last_name": body.get("last_name", ""),
             "name": body.get("name", ""), "timezone": body.get("time_zone", ""),
             "consent": "yes" if body.get("consent") else "no", "consent_text": body.get("consent_text", ""),
             "external_id": body.get("external_id", ""), "priority": str(body.get("priority", SPEED_TO_LEAD_PRIORITY))}
    phones = (["number"] if "number" in body else []) + [f"numbers[{i}]" for i in range(len(body.get("numbers", [])))]
    header = (*phones, *roles, *fields)
    cols = ColumnMap(header, tuple(range(len(raw))), {r: len(raw) + i for i, r in enumerate(roles)},
                     tuple(range(len(raw) + len(roles), len(header))))
    row, notes = parse_row(1, [*raw, *roles.values(), *fields.values()], cols, campaign.default_region)
    problems = [{"field": n.column.replace("timezone", "time_zone") or "number", "value": n.value, "reason": n.reason}
                for n in notes]
    if row is None or problems:
        raise ApiError(400, "; ".join(f"{p['field']}: {p['reason']}" for p in problems), field=problems[0]["field"],
                       reasons=problems)
    pool = _pool(engine)
    now = datetime.now(timezone.utc)
    numbers = [n.e164 for n in row.numbers]
    async with pool.acquire() as conn, conn.transaction():
        existing = await conn.fetchval("""
            SELECT lead_id FROM lead_numbers WHERE campaign = $1 AND number = ANY($2::text[])
            UNION ALL SELECT id FROM leads WHERE campaign = $1 AND external_id = $3 LIMIT 1""",
            campaign.name, numbers, row.external_id)
        if existing is not None:
            raise ApiError(409, f"lead {existing} of campaign {campaign.name} already has this number or external id",
                           lead_id=existing)
        zone, source = _lead_zone(row, campaign.time_zone)
        lead_id = await conn.fetchval("""
            INSERT INTO leads (campaign, external_id, first_name, last_name, name, fields, timezone, timezone_source,
                               consent_autodial, consent_text, priority, status, next_due_at, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, 'new', $12, $12, $12) RETURNING id""",
            campaign.name, row.external_id, row.first_name, row.last_name,
            row.name or " ".join(x for x in (row.first_name, row.last_name) if x), json.dumps(dict(row.fields)),
            zone, source, bool(row.consent), row.consent_text, row.priority or 0, now)
        await conn.executemany("""
            INSERT INTO lead_numbers (lead_id, position, campaign, number, kind, line_type, time_zones, raw)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
            [(lead_id, i, campaign.name, n.e164, "phone", n.line_type, list(n.time_zones), n.raw)
             for i, n in enumerate(row.numbers)])
    dialer = engine.dialer
    assert dialer is not None
    run = dialer.campaigns.get(campaign.name)
    if run is not None:
        run.wake.set()    # dial it now, not at the next tick
    state = dialer.control.get(campaign.name) or ("running" if campaign.active else "paused")
    return {"lead_id": lead_id, "campaign": campaign.name, "timezone": zone, "state": state,
            "numbers": [{"number": n.e164, "line_type": n.line_type, "time_zones": list(n.time_zones)}
                        for n in row.numbers]}


# -- DNC ----------------------------------------------------------------------------------------

@endpoint("POST", "/dnc", "Put a number on a do-not-call list (refused by the gate at once)",
          body=obj(("number",), True, number=NUMBER,
                   list={"type": "string", "pattern": r"^(global|national|campaign:[a-z0-9][a-z0-9_-]{0,62})$",
                         "description": "global (default), national or campaign:NAME"},
                   reason={"type": "string", "maxLength": 500},
                   region={"type": "string", "pattern": "^[A-Z]{2}$", "description": "for numbers without a "
                           "country code (default US)"}),
          status=201, answer=obj(("number", "list", "source"), number=STR, list=STR, source=STR, reason=STR))
async def add_dnc(request: web.Request, body: dict[str, Any]) -> Any:
    engine = _engine(request)
    scope = body.get("list", "global")
    if scope.startswith("campaign:"):
        _campaign(engine, scope.split(":", 1)[1])
    number = dnc.normalize(body["number"], body.get("region", "US"))
    if number is None:
        raise ApiError(400, f"number: {body['number']!r} is not a phone number", field="number")
    assert engine.dialer is not None
    source = request[CALLER]
    await engine.dialer.gate.add_dnc(number, now=time.time(), source=source, reason=body.get("reason", ""),
                                     scope=scope, region=body.get("region", "US"))
    return {"number": number, "list": scope, "source": source, "reason": body.get("reason", "")}


# -- call history -------------------------------------------------------------------------------

CALL_COLUMNS = """id, direction, caller_number, caller_name, dialed_number, started_at, answered_at, ended_at,
                  hangup_cause, hangup_cause_text, ended_by, ivr_tree, ivr_version"""


def _time_arg(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(400, f"{name}: expected an ISO 8601 time such as 2026-11-24T09:00:00Z, got {text!r}",
                       field=name) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


@endpoint("GET", "/calls", "Calls, newest first: by number (caller or dialed) and time",
          query={"number": {"type": "string"}, "from": {"type": "string", "format": "date-time"},
                 "to": {"type": "string", "format": "date-time"},
                 "limit": {"type": "integer", "minimum": 1, "maximum": MAX_CALLS, "default": 50}},
          answer=obj(("calls",), calls={"type": "array", "items": ref("Call")}), errors=(400, 503))
async def list_calls(request: web.Request, _: None) -> Any:
    start, end = _time_arg(request, "from"), _time_arg(request, "to")
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_CALLS:
        raise ApiError(400, f"limit: expected a whole number from 1 to {MAX_CALLS}", field="limit")
    rows = await _pool(_engine(request)).fetch(f"""
        SELECT {CALL_COLUMNS} FROM calls
        WHERE ($1::text IS NULL OR caller_number = $1 OR dialed_number = $1)
          AND ($2::timestamptz IS NULL OR started_at >= $2) AND ($3::timestamptz IS NULL OR started_at < $3)
        ORDER BY started_at DESC LIMIT $4""", request.query.get("number"), start, end, limit)
    return {"calls": [_row(r) for r in rows]}


@endpoint("GET", "/calls/{call_id}",
          "One call with its history: events, IVR path, queue stays, offers and why, dispositions, and for "
          "outbound the dial and the compliance decision", answer=ref("CallDetail"), errors=(404, 503))
async def get_call(request: web.Request, _: None) -> Any:
    text = request.match_info["call_id"]
    try:
        call_id = uuid.UUID(text)
    except ValueError:
        raise ApiError(404, f"no call {text!r} (call ids are UUIDs)") from None
    async with _pool(_engine(request)).acquire() as conn:
        call = await conn.fetchrow(f"SELECT {CALL_COLUMNS} FROM calls WHERE id = $1", call_id)
        if call is None:
            raise ApiError(404, f"no call {text}")
        out = _row(call)
        out["events"] = [_row(r) for r in await conn.fetch(
            "SELECT at, kind, detail FROM call_events WHERE call_id = $1 ORDER BY at", call_id)]
        out["ivr_steps"] = [_row(r) for r in await conn.fetch(
            "SELECT seq, at, tree, node, verb, input, result FROM ivr_steps WHERE call_id = $1 ORDER BY seq", call_id)]
        out["queue_entries"] = [_row(r) for r in await conn.fetch("""
            SELECT queue, priority, entered_at, left_at, outcome, wait_seconds, agent_id FROM queue_entries
            WHERE call_id = $1 ORDER BY entered_at""", call_id)]
        out["offers"] = [_row(r, json_columns=("requirement", "candidates")) for r in await conn.fetch("""
            SELECT queue, agent_id, offered_at, ended_at, result, strategy, requirement, expansion_step, candidates,
                   reason FROM queue_offers WHERE call_id = $1 ORDER BY offered_at""", call_id)]
        out["dispositions"] = [_row(r) for r in await conn.fetch(
            "SELECT agent_id, code, name, at FROM dispositions WHERE call_id = $1 ORDER BY at", call_id)]
        attempt = await conn.fetchrow("""
            SELECT a.id, a.campaign, a.lead_id, a.number, a.mode, a.placed_at, a.answered_at, a.connected_at,
                   a.ended_at, a.amd_status, a.outcome, a.disposition, a.agent_id,
                   d.at AS d_at, d.mode AS d_mode, d.allowed, d.reason, d.detail, d.rules
            FROM dial_attempts a LEFT JOIN dial_decisions d ON d.id = a.decision_id
            WHERE a.call_id = $1 ORDER BY a.placed_at DESC LIMIT 1""", call_id)
    out["dial_attempt"] = None
    if attempt is not None:
        a = _row(attempt, json_columns=("rules",))
        decision = {"at": a.pop("d_at"), "mode": a.pop("d_mode"),
                    **{k: a.pop(k) for k in ("allowed", "reason", "detail", "rules")}}
        out["dial_attempt"] = {**a, "decision": decision if decision["at"] is not None else None}
    return out


# -- the document -------------------------------------------------------------------------------

ERROR_TEXT = {400: "bad input (the field is named)", 401: "no valid token", 403: "the API is disabled (no token "
              "configured)", 404: "not found", 409: "not allowed in the current state", 503: "the database is away"}


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of :data:`ROUTES` (served at /api/v1/openapi.json)."""
    paths: dict[str, dict[str, Any]] = {}
    for r in ROUTES:
        params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                  for p in re.findall(r"\{(\w+)\}", r.path)]
        params += [{"name": name, "in": "query", "required": False, "schema": dict(schema)}
                   for name, schema in r.query.items()]
        op: dict[str, Any] = {
            "operationId": r.handler.__name__, "summary": r.summary,
            "responses": {str(r.status): {"description": "done", "content": {"application/json": {"schema": r.answer}}},
                          **{str(s): {"description": ERROR_TEXT[s],
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
