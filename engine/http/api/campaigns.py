"""Campaigns: start / pause / stop (stored in ``campaign_control``) and leads added one at a time.

Both are records, written directly in PostgreSQL and answered only once committed: a control is
stored before the dialer applies it, a lead in one transaction with its numbers; while the
database is away, 503 and nothing changes (the dialer keeps its state)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from aiohttp import web

from engine.store import hopper, outbound
from engine.store import leads as lead_store
from engine.services.leads import ColumnMap, lead_zone, parse_row
from engine.http.api.base import CALLER, SPEED_TO_LEAD_PRIORITY, ApiError, endpoint, engine_of, pool_of
from engine.http.api.live import snapshot
from engine.http.api.schemas import CAMPAIGN_STATES, INT, NUMBER, STR, nullable, obj, ref

if TYPE_CHECKING:
    from engine.runtime.view import EngineView as Engine

__all__ = ["LEAD_BODY", "campaign_of"]


def campaign_of(engine: Engine, name: str) -> Any:
    c = next((c for c in engine.config.campaigns if c.name == name), None)
    if c is None:
        raise ApiError(404, f"no campaign {name!r} in the configuration")
    return c


def _control(state: str, verb: str, summary: str) -> None:
    async def handler(request: web.Request, _: None) -> Any:
        engine = engine_of(request)
        name = request.match_info["name"]
        campaign_of(engine, name)
        pool = pool_of(engine)
        await outbound.set_campaign_control(pool, name, state, request[CALLER])
        engine.set_campaign_control(name, state)
        released = 0
        if state == "stopped":   # leases not behind a call in flight go back (calls in flight finish)
            now = time.time()
            run = engine.campaigns(now).get(name)
            busy = run.leads_in_flight if run is not None else ()
            # the leases' owner: this instance (engine.instance, which a reload does not change)
            released = await hopper.give_back(pool, now, owner=engine.config.engine.instance, campaign=name,
                                              keep=busy)
        snap = await snapshot(request)
        return {**next(c for c in snap["campaigns"] if c["name"] == name), "leases_released": released}
    handler.__name__ = f"campaign_{verb}"
    endpoint("POST", f"/campaigns/{{name}}/{verb}", summary, errors=(404,), record="the campaign's state",
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
          body=LEAD_BODY, status=201, errors=(404, 409), record="the lead",
          answer=obj(("lead_id", "campaign", "numbers", "timezone", "state"), lead_id=INT, campaign=STR,
                     numbers={"type": "array", "items": obj(("number",), number=STR, line_type=STR,
                                                            time_zones={"type": "array", "items": STR})},
                     timezone=nullable("string"), state={"enum": CAMPAIGN_STATES}))
async def add_lead(request: web.Request, body: dict[str, Any]) -> Any:
    engine = engine_of(request)
    campaign = campaign_of(engine, request.match_info["name"])
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
    pool = pool_of(engine)
    now = datetime.now(timezone.utc)
    numbers = [n.e164 for n in row.numbers]
    async with pool.acquire() as conn, conn.transaction():
        existing = await lead_store.lead_with(conn, campaign.name, numbers, row.external_id)
        if existing is not None:
            raise ApiError(409, f"lead {existing} of campaign {campaign.name} already has this number or external id",
                           lead_id=existing)
        zone, source = lead_zone(row, campaign.time_zone)
        lead_id = await lead_store.insert_lead(
            conn, campaign.name, row.external_id, row.first_name, row.last_name,
            row.name or " ".join(x for x in (row.first_name, row.last_name) if x), json.dumps(dict(row.fields)),
            zone, source, bool(row.consent), row.consent_text, row.priority or 0, now)
        await lead_store.copy_lead_numbers(
            conn, [(lead_id, i, campaign.name, n.e164, "phone", n.line_type, list(n.time_zones), n.raw)
                   for i, n in enumerate(row.numbers)])
    engine.wake_campaign(campaign.name)    # dial it now, not at the next tick
    state = engine.campaign_controls().get(campaign.name) or ("running" if campaign.active else "paused")
    return {"lead_id": lead_id, "campaign": campaign.name, "timezone": zone, "state": state,
            "numbers": [{"number": n.e164, "line_type": n.line_type, "time_zones": list(n.time_zones)}
                        for n in row.numbers]}

