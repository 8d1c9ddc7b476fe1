"""The hopper: which leads a campaign dials next, shared safely by several engine instances.

Theory of operation
-------------------
A lead's life (``leads.status``)::

    new --take--> active --finish: retry--> retry --take--> active ...
                    |  \\--finish: success / other disposition / max attempts--> done
                    |   \\-finish: DNC--> dnc      (and the number goes on the global DNC list)
                    \\--release (gate refused): back to new/retry (WAIT, or the next number),
                                                done (LEAD: no consent, attempts used up),
                                                dnc / invalid (NUMBER, when no number is left)

- :func:`take` leases up to ``count`` due leads with ``SELECT ... FOR UPDATE SKIP LOCKED``: two
  instances taking at once never get the same lead, and neither waits for the other. Order:
  **lane** first (0: a scheduled callback now due, 1: a fresh lead never attempted, i.e. speed to
  lead, 2: a retry), then ``priority`` (higher first), then ``next_due_at`` (oldest first), then
  id. ``lane`` is a stored generated column, so the order is one index (``leads_hopper``).
- **Leases**: a taken lead is ``active`` with ``locked_by`` (the instance) and ``locked_until``
  (``now + lease``). The holder renews the lease while it works the lead (:func:`renew`;
  :func:`start_attempt` renews too). A lease that runs out (the instance crashed or hung) is taken
  back by the next :func:`take` of any instance: the lead returns to ``new``/``retry``, due at once,
  and a call it had in progress is closed as ``lost``. :func:`finish` and :func:`release` act only
  while the caller still holds the lease; a late holder's result is recorded on its attempt but
  does not move the lead.
- **Attempts** count calls placed (:func:`start_attempt`), not leads taken: a lead the gate refused
  was not called.
- **Retries by disposition**: :func:`plan` (pure) decides what follows an attempt from the
  campaign's ``retry:`` settings, ``success_dispositions`` and ``max_attempts``.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from engine.config.campaign import CampaignConfig
from engine.core.compliance import UK_REPEAT_AFTER_ABANDON, Decision, Scope
from engine.config.yamlconf import parse_duration

__all__ = [
    "DNC_DISPOSITIONS", "Lead", "LeadNumber", "OUTCOMES", "Step", "WAIT_UNKNOWN", "finish", "plan", "release",
    "leads", "renew", "schedule_callback", "start_attempt", "take",
]

# How a call placed to a lead ended (dial_attempts.outcome).
OUTCOMES = ("busy", "no_answer", "machine", "failed", "abandoned", "answered", "invalid_number")
DNC_DISPOSITIONS = frozenset({"DNC"})     # the agent keyed "do not call": the lead ends, the number is listed
WAIT_UNKNOWN = 900.0                      # a WAIT refusal with no known end: look again in 15 minutes
DEFAULT_LEASE = 300.0


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


def _epoch(d: datetime | None) -> float | None:
    return None if d is None else d.timestamp()


@dataclass(frozen=True, slots=True)
class LeadNumber:
    position: int
    number: str               # E.164
    kind: str
    line_type: str | None
    time_zones: tuple[str, ...]
    status: str               # ok | bad | dnc


@dataclass(frozen=True, slots=True)
class Lead:
    id: int
    campaign: str
    external_id: str | None
    name: str
    fields: dict[str, Any]
    timezone: str | None
    timezone_source: str | None
    consent_autodial: bool
    priority: int
    attempts: int
    lane: int                     # 0 callback due, 1 fresh, 2 retry
    next_due_at: float
    callback_at: float | None
    locked_by: str
    locked_until: float
    numbers: tuple[LeadNumber, ...] = ()

    def dialable(self) -> tuple[LeadNumber, ...]:
        return tuple(n for n in self.numbers if n.status == "ok")

    def next_number(self) -> LeadNumber | None:
        """The number to try now: the dialable numbers in turn, one per attempt."""
        ok = self.dialable()
        return ok[self.attempts % len(ok)] if ok else None

    def time_zones_for(self, number: LeadNumber) -> tuple[str, ...]:
        """Where the callee may be: the lead's own zone when the file said it, else the number's."""
        if self.timezone_source == "column" and self.timezone:
            return (self.timezone,)
        return number.time_zones or ((self.timezone,) if self.timezone else ())


@dataclass(frozen=True, slots=True)
class Step:
    """What becomes of a lead: its next status, when it is due, why it ended."""

    status: str                    # new | retry | done | dnc | invalid
    next_due_at: float | None = None
    result: str | None = None
    callback_at: float | None = None


# -- pure: what follows an attempt -------------------------------------------------------------------

def plan(campaign: CampaignConfig, *, attempts: int, outcome: str, disposition: str | None, now: float,
         callback_at: float | None = None, numbers_left: int = 1) -> Step:
    """The next step after an attempt (``attempts`` counts it). In order: DNC ends the lead; a
    success disposition ends it; a scheduled callback is kept whatever the count; max attempts
    ends it; a disposition with a retry delay, or a busy / no answer / machine / failed /
    abandoned outcome retries after its delay (abandoned: at least 72 h under rule uk); an invalid
    number moves on to the next number; any other answered call ends the lead with its disposition."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; expected one of {', '.join(OUTCOMES)}")
    retry = campaign.retry
    if disposition in DNC_DISPOSITIONS:
        return Step("dnc", result=disposition)
    if disposition is not None and disposition in campaign.success_dispositions:
        return Step("done", result=disposition)
    if callback_at is not None:
        return Step("retry", next_due_at=callback_at, callback_at=callback_at)
    if attempts >= retry.max_attempts:
        return Step("done", result="max_attempts")
    if outcome == "invalid_number":
        return Step("retry", next_due_at=now) if numbers_left > 0 else Step("invalid", result="no_valid_number")
    if disposition is not None and disposition in retry.dispositions:
        return Step("retry", next_due_at=now + parse_duration(retry.dispositions[disposition]))
    delay = retry.delay(outcome)
    if delay is not None:
        if outcome == "abandoned" and campaign.abandon.rule == "uk":
            delay = max(delay, UK_REPEAT_AFTER_ABANDON)
        return Step("retry", next_due_at=now + delay)
    return Step("done", result=disposition or outcome)


# -- the database ------------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def _connection(db: Any) -> AsyncIterator[Any]:
    """A pool (acquire a connection) or a connection (use it)."""
    if not hasattr(db, "transaction"):   # a pool (connections have transactions, pools do not)
        async with db.acquire() as conn:
            yield conn
    else:
        yield db


_LEAD_COLUMNS = """l.id, l.campaign, l.external_id, l.name, l.fields, l.timezone, l.timezone_source,
    l.consent_autodial, l.priority, l.attempts, l.lane, l.next_due_at, l.callback_at, l.locked_by, l.locked_until"""


async def take(db: Any, campaign: str, count: int, now: float, *, owner: str,
               lease: float = DEFAULT_LEASE) -> list[Lead]:
    """Lease up to ``count`` due leads of ``campaign`` to ``owner`` (see the module's notes)."""
    if count <= 0:
        return []
    at, until = _ts(now), _ts(now + lease)
    async with _connection(db) as conn, conn.transaction():
        reclaimed = await conn.fetch("""
            WITH stale AS (
                SELECT id FROM leads WHERE campaign = $1 AND status = 'active' AND locked_until <= $2
                FOR UPDATE SKIP LOCKED)
            UPDATE leads l SET status = CASE WHEN l.attempts = 0 THEN 'new' ELSE 'retry' END,
                   locked_by = NULL, locked_until = NULL, next_due_at = LEAST(l.next_due_at, $2), updated_at = $2
            FROM stale WHERE l.id = stale.id
            RETURNING l.id""", campaign, at)
        if reclaimed:
            await conn.execute("""
                UPDATE dial_attempts SET outcome = 'lost', ended_at = $2
                WHERE lead_id = ANY($1::bigint[]) AND outcome IS NULL""", [r["id"] for r in reclaimed], at)
        rows = await conn.fetch(f"""
            WITH picked AS (
                SELECT id FROM leads
                WHERE campaign = $1 AND status IN ('new', 'retry') AND next_due_at <= $2
                ORDER BY lane, priority DESC, next_due_at, id
                LIMIT $3
                FOR UPDATE SKIP LOCKED)
            UPDATE leads l SET status = 'active', locked_by = $4, locked_until = $5, updated_at = $2
            FROM picked WHERE l.id = picked.id
            RETURNING {_LEAD_COLUMNS}""", campaign, at, count, owner, until)
        by_lead = await _numbers(conn, [r["id"] for r in rows])
    taken = [_lead(r, by_lead.get(r["id"], [])) for r in rows]
    taken.sort(key=lambda x: (x.lane, -x.priority, x.next_due_at, x.id))
    return taken


async def leads(db: Any, ids: Sequence[int]) -> list[Lead]:
    """The leads ``ids`` as they are now (after a restart: those behind calls still up)."""
    if not ids:
        return []
    async with _connection(db) as conn:
        rows = await conn.fetch(f"SELECT {_LEAD_COLUMNS} FROM leads l WHERE l.id = ANY($1::bigint[])", list(ids))
        numbers = await _numbers(conn, [r["id"] for r in rows])
    return [_lead(r, numbers.get(r["id"], [])) for r in rows]


async def _numbers(conn: Any, ids: Sequence[int]) -> dict[int, list[LeadNumber]]:
    numbers = await conn.fetch("""
        SELECT lead_id, position, number, kind, line_type, time_zones, status FROM lead_numbers
        WHERE lead_id = ANY($1::bigint[]) ORDER BY lead_id, position""", list(ids))
    by_lead: dict[int, list[LeadNumber]] = {}
    for n in numbers:
        by_lead.setdefault(n["lead_id"], []).append(LeadNumber(
            n["position"], n["number"], n["kind"], n["line_type"], tuple(n["time_zones"]), n["status"]))
    return by_lead


def _lead(r: Any, numbers: Sequence[LeadNumber]) -> Lead:
    fields = r["fields"]
    return Lead(
        id=r["id"], campaign=r["campaign"], external_id=r["external_id"], name=r["name"],
        fields=json.loads(fields) if isinstance(fields, str) else dict(fields), timezone=r["timezone"],
        timezone_source=r["timezone_source"], consent_autodial=r["consent_autodial"], priority=r["priority"],
        attempts=r["attempts"], lane=r["lane"], next_due_at=r["next_due_at"].timestamp(),
        callback_at=_epoch(r["callback_at"]), locked_by=r["locked_by"], locked_until=r["locked_until"].timestamp(),
        numbers=tuple(numbers))


async def renew(db: Any, lead_ids: Sequence[int], now: float, *, owner: str, lease: float = DEFAULT_LEASE) -> int:
    """Extend ``owner``'s leases; returns how many it still held."""
    async with _connection(db) as conn:
        status = await conn.execute("""
            UPDATE leads SET locked_until = $3 WHERE id = ANY($1::bigint[]) AND status = 'active' AND locked_by = $2""",
            list(lead_ids), owner, _ts(now + lease))
    return int(status.rsplit(" ", 1)[1])


async def give_back(db: Any, now: float, *, owner: str, campaign: str | None = None,
                    keep: Sequence[int] = ()) -> int:
    """``owner``'s leases go back to the line at once (new, or retry after an attempt): after a
    restart (every campaign), or when a campaign stops (``keep``: leads behind a call still in
    flight). Returns how many."""
    async with _connection(db) as conn:
        status = await conn.execute("""
            UPDATE leads SET status = CASE WHEN attempts = 0 THEN 'new' ELSE 'retry' END, locked_by = NULL,
                   locked_until = NULL, next_due_at = LEAST(next_due_at, $2), updated_at = $2
            WHERE status = 'active' AND locked_by = $1 AND ($3::text IS NULL OR campaign = $3)
              AND NOT (id = ANY($4::bigint[]))""", owner, _ts(now), campaign, list(keep))
    return int(status.rsplit(" ", 1)[1])


async def start_attempt(db: Any, lead: Lead, number: str, now: float, *, owner: str, mode: str,
                        decision_id: str | uuid.UUID | None = None, caller_id: str = "",
                        call_id: str | uuid.UUID | None = None, lease: float = DEFAULT_LEASE,
                        attempt_id: uuid.UUID | None = None) -> uuid.UUID:
    """A call to ``number`` is being placed: record the attempt, count it, renew the lease. Raises
    LookupError when ``owner`` no longer holds the lead (do not dial)."""
    attempt_id = attempt_id or uuid.uuid4()
    async with _connection(db) as conn, conn.transaction():
        held = await conn.fetchval("""
            UPDATE leads SET attempts = attempts + 1, last_attempt_at = $3, locked_until = GREATEST(locked_until, $4),
                   callback_at = NULL, callback_agent = NULL, updated_at = $3
            WHERE id = $1 AND status = 'active' AND locked_by = $2 RETURNING id""",
            lead.id, owner, _ts(now), _ts(now + lease))
        if held is None:
            raise LookupError(f"lead {lead.id} is no longer leased to {owner}")
        await conn.execute("""
            INSERT INTO dial_attempts (id, campaign, lead_id, number, mode, decision_id, caller_id, placed_at,
                                       call_id, instance)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
            attempt_id, lead.campaign, lead.id, number, mode, _uuid(decision_id), caller_id, _ts(now),
            _uuid(call_id), owner)
    return attempt_id


def _uuid(value: str | uuid.UUID | None) -> uuid.UUID | None:
    return None if value is None else value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


async def finish(db: Any, campaign: CampaignConfig, lead_id: int, now: float, *, owner: str, outcome: str,
                 disposition: str | None = None, attempt_id: uuid.UUID | None = None, number: str | None = None,
                 callback_at: float | None = None, agent_id: str | None = None,
                 call_id: str | uuid.UUID | None = None) -> Step | None:
    """Record how an attempt ended and move the lead on (:func:`plan`). ``number``: the number that
    was dialled (an invalid number is marked bad, a DNC disposition lists it globally). Returns the
    step taken, or None when ``owner`` had lost the lease (the attempt is still recorded)."""
    at = _ts(now)
    async with _connection(db) as conn, conn.transaction():
        if attempt_id is not None:
            await conn.execute("""
                UPDATE dial_attempts SET outcome = $2, disposition = $3, ended_at = $4,
                       agent_id = COALESCE($5, agent_id), call_id = COALESCE($6, call_id)
                WHERE id = $1 AND outcome IS NULL""", attempt_id, outcome, disposition, at, agent_id, _uuid(call_id))
        row = await conn.fetchrow("""
            SELECT attempts FROM leads WHERE id = $1 AND status = 'active' AND locked_by = $2 FOR UPDATE""",
            lead_id, owner)
        if row is None:
            return None
        if number is not None and outcome == "invalid_number":
            await conn.execute("UPDATE lead_numbers SET status = 'bad' WHERE lead_id = $1 AND number = $2",
                               lead_id, number)
        left = await conn.fetchval("SELECT count(*) FROM lead_numbers WHERE lead_id = $1 AND status = 'ok'", lead_id)
        step = plan(campaign, attempts=row["attempts"], outcome=outcome, disposition=disposition, now=now,
                    callback_at=callback_at, numbers_left=left)
        if step.status == "dnc" and number is not None:
            await conn.execute("UPDATE lead_numbers SET status = 'dnc' WHERE lead_id = $1 AND number = $2",
                               lead_id, number)
            await conn.execute("""
                INSERT INTO dnc_numbers (number, scope, source, added_at, reason)
                VALUES ($1, 'global', $2, $3, $4) ON CONFLICT (number, scope) DO NOTHING""",
                number, f"agent:{agent_id}" if agent_id else f"campaign:{campaign.name}", at,
                f"disposition {disposition}")
        await _move(conn, lead_id, step, at, last_outcome=disposition or outcome)
    return step


async def _move(conn: Any, lead_id: int, step: Step, at: datetime, *, last_outcome: str | None = None) -> None:
    await conn.execute("""
        UPDATE leads SET status = $2, next_due_at = COALESCE($3, next_due_at), result = $4,
               callback_at = $5, locked_by = NULL, locked_until = NULL, updated_at = $6,
               last_outcome = COALESCE($7, last_outcome)
        WHERE id = $1""",
        lead_id, step.status, None if step.next_due_at is None else _ts(step.next_due_at), step.result,
        None if step.callback_at is None else _ts(step.callback_at), at, last_outcome)


async def release(db: Any, lead: Lead, decision: Decision, now: float, *, owner: str,
                  number: str | None = None) -> Step | None:
    """The gate refused to dial ``number`` of ``lead``: give the lead back (see the module's
    notes). Returns the step, or None when ``owner`` had lost the lease."""
    if decision.allowed:
        raise ValueError("release() is for refused dials; an allowed one goes on to start_attempt()")
    if decision.scope is Scope.NUMBER and number is None:
        raise ValueError(f"{decision.reason} concerns the number: pass number= so it is not tried again")
    again = "new" if lead.attempts == 0 else "retry"
    at = _ts(now)
    async with _connection(db) as conn, conn.transaction():
        held = await conn.fetchval("SELECT id FROM leads WHERE id = $1 AND status = 'active' AND locked_by = $2 "
                                   "FOR UPDATE", lead.id, owner)
        if held is None:
            return None
        if decision.scope is Scope.NUMBER:
            dnc = decision.reason.startswith("dnc_")
            if number is not None:
                await conn.execute("UPDATE lead_numbers SET status = $3 WHERE lead_id = $1 AND number = $2",
                                   lead.id, number, "dnc" if dnc else "bad")
            left = await conn.fetchval("SELECT count(*) FROM lead_numbers WHERE lead_id = $1 AND status = 'ok'",
                                       lead.id)
            step = Step(again, next_due_at=now, callback_at=lead.callback_at) if left else \
                Step("dnc" if dnc else "invalid", result=decision.reason)
        elif decision.scope is Scope.LEAD:
            step = Step("done", result=decision.reason)
        else:
            step = Step(again, next_due_at=decision.retry_at if decision.retry_at is not None else now + WAIT_UNKNOWN,
                        callback_at=lead.callback_at)
        await _move(conn, lead.id, step, at)
    return step


async def schedule_callback(db: Any, lead_id: int, at: float, *, agent: str | None = None) -> bool:
    """A callback promised for ``at`` (by an agent, or the customer through an API): the lead
    jumps the line when it is due, whatever its attempts so far. A lead being worked keeps its lease
    (:func:`finish` with ``callback_at`` does the same at the end of a call); a finished lead is
    opened again. False when there is no such lead or it is ``dnc`` / ``invalid``."""
    async with _connection(db) as conn:
        status = await conn.execute("""
            UPDATE leads SET callback_at = $2, callback_agent = $3, next_due_at = $2, result = NULL,
                   status = CASE WHEN status = 'active' THEN 'active' WHEN attempts = 0 THEN 'new' ELSE 'retry' END,
                   updated_at = now()
            WHERE id = $1 AND status NOT IN ('dnc', 'invalid')""", lead_id, _ts(at), agent)
    return status.endswith(" 1")

