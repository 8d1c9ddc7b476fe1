"""The compliance gate in the shell: look the facts up, ask the pure gate, record the decision.

Every way the engine dials a number goes through :meth:`Gate.check` (predictive, progressive,
preview, callback, agentless, manual, API)::

    gate = Gate(pool, instance="engine-a", writer=writer)
    for lead in await hopper.take(pool, c.name, n, now, owner="engine-a"):
        number = lead.next_number()
        mode = "callback" if lead.lane == 0 else c.mode
        result = await gate.check(c, mode=mode, number=number.number, lead=lead, now=now)
        if result.allowed:
            attempt = await hopper.start_attempt(pool, lead, result.number, now, owner="engine-a", mode=mode,
                                                 decision_id=result.id, caller_id=c.caller_id_for(result.number))
            ...  # originate; later hopper.finish(..., outcome=..., disposition=...)
        else:
            await hopper.release(pool, lead, result.decision, now, owner="engine-a", number=number.number)

The decision is written to ``dial_decisions`` *directly*, on the connection that read the facts,
before :meth:`check` returns, not through the write queue. The log of why each dial was allowed
is an audit record the law expects: a dial must never happen whose "allowed" could still be lost
(the write queue keeps writes in memory until the database takes them, and a crash loses them).
The gate needs the database anyway to read the facts, so writing there costs one round trip in a
transaction, and the rule is simple: **no recorded decision, no dial**. When the database cannot
be reached the gate fails closed: a refusal ``gate_unavailable`` (not recorded, ``id`` None).

:meth:`Gate.add_dnc` is what the dialer calls when an agent keys the ``DNC`` disposition: the
number goes on the global list through the write queue (operation ``dnc_add``: it survives a
database outage), and this gate refuses it at once, before that write lands. The API's
``POST /dnc`` calls it with ``store_in``: the row is written directly and the request answered
only once it is stored (503 while the database is away).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import phonenumbers
from phonenumbers import timezone as pn_timezone

from engine.config.campaign import CampaignConfig, to_rules
from engine.core.compliance import Decision, Facts, Mode, Request, Scope, check
from engine.store import outbound
from engine.store.db import UNAVAILABLE, apply
from engine.services.dnc import add_write
from engine.store.hopper import Lead, _connection

__all__ = ["Gate", "GateResult", "facts_for", "to_e164"]

RECENT = 48 * 3600.0       # how far back attempts are read for the per-day limit


@dataclass(frozen=True, slots=True)
class GateResult:
    decision: Decision
    id: uuid.UUID | None         # the dial_decisions row (None: not recorded, the database was away)
    number: str                  # the number as checked (E.164 when it could be normalised)

    @property
    def allowed(self) -> bool:
        return self.decision.allowed and self.id is not None

    @property
    def reason(self) -> str:
        return self.decision.reason


def to_e164(number: str, region: str) -> tuple[str, tuple[str, ...]]:
    """E.164 and the number's possible time zones; an unparseable number comes back as given
    (the gate then refuses it as ``invalid_number``)."""
    try:
        n = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return number, ()
    if not phonenumbers.is_valid_number(n):
        return number, ()
    zones = tuple(sorted(z for z in pn_timezone.time_zones_for_number(n) if z != "Etc/Unknown"))
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164), zones


async def facts_for(conn: Any, campaign: str, number: str, lead_id: int | None, now: float) -> Facts:
    """Everything the pure gate needs about ``number`` and the lead, in one round trip."""
    row = await outbound.gate_facts(conn, number, campaign, lead_id, datetime.fromtimestamp(now - RECENT, timezone.utc))
    return Facts(dnc_scopes=frozenset(row["dnc"]), attempts_total=row["attempts"],
                 recent_attempts=tuple(t.timestamp() for t in row["recent"]),
                 last_abandon_at=None if row["last_abandon"] is None else row["last_abandon"].timestamp(),
                 national_list_at=None if row["national_at"] is None else row["national_at"].timestamp())


class Gate:
    """One per engine instance. ``db`` is an asyncpg pool (or a connection); ``writer`` the
    engine's write queue (only :meth:`add_dnc` uses it; without one it writes directly)."""

    def __init__(self, db: Any, *, instance: str = "", writer: Any = None) -> None:
        self.db = db
        self.instance = instance
        self.writer = writer
        self._dnc_now: dict[str, set[str]] = {}     # numbers listed here whose write may not have landed

    async def check(self, campaign: CampaignConfig, *, mode: Mode, number: str, now: float, lead: Lead | None = None,
                    consent: bool | None = None, time_zones: tuple[str, ...] | None = None) -> GateResult:
        """May ``number`` be dialled now in ``mode`` for ``campaign``? ``lead``: the lead it belongs
        to (its consent, time zone and attempts); without one (a manual or API dial), ``consent``
        says whether the callee agreed to automated calls and the time zones come from the number."""
        e164, zones = to_e164(number, campaign.default_region)
        if lead is not None:
            ln = next((n for n in lead.numbers if n.number == e164), None)
            if ln is not None:
                zones = lead.time_zones_for(ln)
            elif lead.timezone_source == "column" and lead.timezone:
                zones = (lead.timezone,)
            consent = lead.consent_autodial if consent is None else consent
        if time_zones is not None:
            zones = time_zones
        request = Request(rules=to_rules(campaign), mode=mode, number=e164, time_zones=zones, consent=bool(consent))
        lead_id = lead.id if lead is not None else None
        try:
            async with _connection(self.db) as conn, conn.transaction():
                facts = await facts_for(conn, campaign.name, e164, lead_id, now)
                pending = self._dnc_now.get(e164)
                if pending:
                    facts = Facts(dnc_scopes=facts.dnc_scopes | pending, attempts_total=facts.attempts_total,
                                  recent_attempts=facts.recent_attempts, last_abandon_at=facts.last_abandon_at,
                                  national_list_at=facts.national_list_at)
                decision = check(request, facts, now)
                decision_id = uuid.uuid4()
                await outbound.record_decision(
                    conn, decision_id, datetime.fromtimestamp(now, timezone.utc), campaign.name, lead_id, e164, mode,
                    decision.allowed, decision.reason, decision.detail,
                    None if decision.scope is None else decision.scope.value,
                    None if decision.retry_at is None else datetime.fromtimestamp(decision.retry_at, timezone.utc),
                    json.dumps(dict(decision.values), default=str), self.instance)
        except UNAVAILABLE as exc:
            decision = Decision(False, "gate_unavailable", f"the database cannot be reached ({type(exc).__name__}: "
                                f"{exc}); nothing is dialled without a recorded decision", Scope.WAIT, now + 10.0,
                                {"mode": mode, "number": e164})
            return GateResult(decision, None, e164)
        return GateResult(decision, decision_id, e164)

    async def add_dnc(self, number: str, *, now: float, source: str, reason: str = "DNC disposition",
                      scope: str = "global", region: str = "US", store_in: Any = None) -> str:
        """List ``number`` now: refused by this gate at once, and written through the write queue
        (an agent keyed DNC: the call path does not wait for the database). ``store_in`` (a pool or
        a connection; the API): written there instead, returning only once the row is stored; a
        database error propagates, and this gate refuses the number all the same (it was asked
        for). Without a write queue, written directly. Returns the E.164 form."""
        e164, _ = to_e164(number, region)
        self._dnc_now.setdefault(e164, set()).add(scope)
        write = add_write(e164, scope=scope, source=source, reason=reason, now=now)
        if self.writer is not None and store_in is None:
            self.writer.submit(write)
        else:
            await apply(self.db if store_in is None else store_in, write)
        return e164
