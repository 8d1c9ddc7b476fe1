"""What happened: calls by number and time, one call with everything that happened to it (the
API's ``/calls``), and the latest calls, offers and dials (``callcenter calls|routing|attempts``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

__all__ = ["CALL_COLUMNS", "attempts_log", "call_history", "find_calls", "latest_calls", "routing_log"]

CALL_COLUMNS = """id, direction, caller_number, caller_name, dialed_number, started_at, answered_at, ended_at,
                  hangup_cause, hangup_cause_text, ended_by, ivr_tree, ivr_version"""


async def find_calls(pool: Any, number: str | None, start: datetime | None, end: datetime | None,
                     limit: int) -> list[Any]:
    """Calls newest first, by number (caller or dialed) and start time in [start, end); None: any."""
    return await pool.fetch(f"""
        SELECT {CALL_COLUMNS} FROM calls
        WHERE ($1::text IS NULL OR caller_number = $1 OR dialed_number = $1)
          AND ($2::timestamptz IS NULL OR started_at >= $2) AND ($3::timestamptz IS NULL OR started_at < $3)
        ORDER BY started_at DESC LIMIT $4""", number, start, end, limit)


async def call_history(pool: Any, call_id: uuid.UUID) -> dict[str, Any] | None:
    """The call (``call``) and, each in order, its ``events``, ``ivr_steps``, ``queue_entries``,
    ``offers``, ``dispositions``, and its latest ``dial_attempt`` joined with the gate's decision
    (``d_at``, ``d_mode``, ``allowed``, ``reason``, ``detail``, ``rules``; None for inbound). None:
    no such call."""
    async with pool.acquire() as conn:
        call = await conn.fetchrow(f"SELECT {CALL_COLUMNS} FROM calls WHERE id = $1", call_id)
        if call is None:
            return None
        return {
            "call": call,
            "events": await conn.fetch(
                "SELECT at, kind, detail FROM call_events WHERE call_id = $1 ORDER BY at", call_id),
            "ivr_steps": await conn.fetch(
                "SELECT seq, at, tree, node, verb, input, result FROM ivr_steps WHERE call_id = $1 ORDER BY seq",
                call_id),
            "queue_entries": await conn.fetch("""
                SELECT queue, priority, entered_at, left_at, outcome, wait_seconds, agent_id FROM queue_entries
                WHERE call_id = $1 ORDER BY entered_at""", call_id),
            "offers": await conn.fetch("""
                SELECT queue, agent_id, offered_at, ended_at, result, strategy, requirement, expansion_step,
                       candidates, reason FROM queue_offers WHERE call_id = $1 ORDER BY offered_at""", call_id),
            "dispositions": await conn.fetch(
                "SELECT agent_id, code, name, at FROM dispositions WHERE call_id = $1 ORDER BY at", call_id),
            "dial_attempt": await conn.fetchrow("""
                SELECT a.id, a.campaign, a.lead_id, a.number, a.mode, a.placed_at, a.answered_at, a.connected_at,
                       a.ended_at, a.amd_status, a.outcome, a.disposition, a.agent_id,
                       d.at AS d_at, d.mode AS d_mode, d.allowed, d.reason, d.detail, d.rules
                FROM dial_attempts a LEFT JOIN dial_decisions d ON d.id = a.decision_id
                WHERE a.call_id = $1 ORDER BY a.placed_at DESC LIMIT 1""", call_id),
        }


async def latest_calls(conn: Any, last: int) -> list[Any]:
    """The ``last`` calls, newest first, with how long they took to answer and lasted."""
    return await conn.fetch("""
        SELECT started_at, direction, caller_number, caller_name, dialed_number,
               answered_at - started_at AS to_answer, ended_at - started_at AS duration,
               hangup_cause, hangup_cause_text, ended_by
        FROM calls ORDER BY started_at DESC LIMIT $1""", last)


async def routing_log(conn: Any, last: int, call: str | None = None) -> list[Any]:
    """The ``last`` offers, newest first (only those of ``call``, a call id, when given), with why."""
    where, params = ("WHERE call_id = $2::uuid", (last, call)) if call else ("", (last,))
    return await conn.fetch(f"""
        SELECT offered_at, caller_number, queue, agent_id, result, reason FROM routing_log {where}
        ORDER BY offered_at DESC LIMIT $1""", *params)


async def attempts_log(conn: Any, last: int, campaign: str | None = None) -> list[Any]:
    """The dialer's ``last`` attempts and the gate's refusals, newest first (of ``campaign`` only
    when given): at, campaign, number, mode, result, agent_id, detail."""
    where, params = ("WHERE campaign = $2", (last, campaign)) if campaign else ("", (last,))
    return await conn.fetch(f"""
        SELECT at, campaign, number, mode, result, agent_id, detail FROM (
            SELECT placed_at AS at, campaign, number, mode,
                   COALESCE(outcome, '(in progress)') || COALESCE(' ' || amd_status, '')
                       || COALESCE(' ' || disposition, '') AS result, agent_id,
                   CASE WHEN connected_at IS NOT NULL
                        THEN 'agent after ' || round(extract(epoch FROM connected_at - verdict_at)::numeric, 3) || ' s'
                        ELSE '' END AS detail
            FROM dial_attempts
            UNION ALL
            SELECT at, campaign, number, mode, 'refused ' || reason, NULL, detail
            FROM dial_decisions WHERE NOT allowed) x {where}
        ORDER BY at DESC LIMIT $1""", *params)
