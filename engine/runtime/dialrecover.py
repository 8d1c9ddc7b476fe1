"""The dialer after a restart: what became of the attempts the last run of this instance left open.

Runs once the database holds what that run journalled and Asterisk has been reconciled (its
channels adopted or hung up, :mod:`engine.runtime.reconcile`), so both say what really happened:

- the customer is still talking to an agent (the call was adopted connected): the attempt goes on
  in its campaign, its lead stays leased, and it ends as any other (wrap-up, disposition, the lead
  moved on), so a person on the phone with an agent is never dialled again meanwhile;
- the customer answered and reached an agent, and the call is over: ``answered``;
- the customer answered and reached no agent (the engine died while they waited; the reconciling
  hung up the left-over channel): ``abandoned``, counted in the campaign's abandon rate as the law
  counts it, not hidden as ``lost``;
- anything else (ringing, or never placed): ``lost``, and the lead goes back to the line.

Every attempt closed here is published as ``dial.ended`` like one closed in flight.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.store import hopper, outbound
from engine.core import call as core
from engine.shared.logsetup import get_logger
from engine.runtime.reconcile import call_id_for

if TYPE_CHECKING:
    from engine.runtime.dialer import Dialer

__all__ = ["Adopted", "recover"]

log = get_logger("dialer")


@dataclass(frozen=True, slots=True)
class Adopted:
    """An attempt whose customer is still connected to an agent after the restart."""

    id: uuid.UUID
    campaign: str
    lead: hopper.Lead
    number: str
    channel_id: str
    call_id: str
    placed_at: float
    answered_at: float | None
    connected_at: float | None
    agent_id: str | None


async def recover(dialer: Dialer) -> list[Adopted]:
    """Close or keep each open attempt of this instance; give back the other leases. Returns
    the attempts to adopt into their campaigns."""
    now = time.time()
    calls = dialer.calls
    campaigns = {c.name: c for c in dialer.config().campaigns}
    pool = dialer.pool()
    rows = await outbound.open_attempts(pool, dialer.instance)
    adopt: list[tuple[dict, str, str, str | None]] = []
    closed: dict[str, int] = {}
    ended: list[dict] = []
    async with pool.acquire() as conn, conn.transaction():
        for r in rows:
            channel_id = f"dial-{r['id']}"
            call_id = call_id_for(channel_id)
            session = calls.by_call.get(call_id)
            cfg = campaigns.get(r["campaign"])
            if session is not None and session.state.phase is core.Phase.CONNECTED and cfg is not None:
                adopt.append((dict(r), channel_id, call_id, r["agent_id"] or session.state.agent_id))
                continue
            outcome = "answered" if r["connected"] is not None else "abandoned" if r["answered"] is not None else "lost"
            if outcome == "lost" or cfg is None:
                await outbound.attempt_lost(conn, r["id"], now)
            else:
                await outbound.attempt_recovered(conn, r["id"], r["answered"], r["connected"])
                await hopper.finish(conn, cfg, r["lead_id"], now, owner=dialer.instance, outcome=outcome,
                                    attempt_id=r["id"], number=r["number"], agent_id=r["agent_id"],
                                    call_id=call_id if r["answered"] is not None else None)
            closed[outcome] = closed.get(outcome, 0) + 1
            ended.append({"campaign": r["campaign"], "attempt_id": str(r["id"]), "lead_id": r["lead_id"],
                          "number": r["number"], "outcome": outcome, "agent_id": r["agent_id"], "at": now,
                          "call_id": call_id if r["answered"] is not None else None})
        back = await hopper.give_back(conn, now, owner=dialer.instance, keep=[r["lead_id"] for r, *_ in adopt])
        leads = {lead.id: lead for lead in await hopper.leads(conn, [r["lead_id"] for r, *_ in adopt])}
    for data in ended:   # told once stored (a retried recovery tells the same ids again)
        calls.writer.hub.publish("dial.ended", **data)
    log.info("dialer.recovered", instance=dialer.instance, attempts_lost=closed.get("lost", 0),
             attempts_answered=closed.get("answered", 0), attempts_abandoned=closed.get("abandoned", 0),
             attempts_adopted=len(adopt), leads_returned=back)
    return [Adopted(r["id"], r["campaign"], leads[r["lead_id"]], r["number"], channel_id, call_id, float(r["placed"]),
                    _num(r["answered"]), _num(r["connected"]), agent)
            for r, channel_id, call_id, agent in adopt if r["lead_id"] in leads]


def _num(value: object) -> float | None:
    return None if value is None else float(value)   # type: ignore[arg-type]
