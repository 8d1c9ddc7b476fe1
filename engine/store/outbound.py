"""Outbound's statements besides the hopper's (:mod:`.hopper`): the dial attempts, the compliance
gate's facts and decisions, the campaigns' stored control (start / pause / stop), the dialer's
counters, and the attempts the what-if command reads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

__all__ = ["abandon_counts", "attempt_closed", "attempt_ended_at", "attempt_lost", "attempt_recovered",
           "attempts_since", "campaign_controls", "gate_facts", "open_attempts", "record_decision",
           "set_campaign_control"]


# -- campaigns ------------------------------------------------------------------------------------------

async def campaign_controls(pool: Any) -> list[Any]:
    """(name, state) of every campaign started, paused or stopped through the API."""
    return await pool.fetch("SELECT name, state FROM campaign_control")


async def set_campaign_control(pool: Any, name: str, state: str, by: str) -> None:
    """Store ``state`` (running | paused | stopped) for campaign ``name``, set by ``by`` now."""
    await pool.execute("""
        INSERT INTO campaign_control (name, state, at, by) VALUES ($1, $2, now(), $3)
        ON CONFLICT (name) DO UPDATE SET state = EXCLUDED.state, at = EXCLUDED.at, by = EXCLUDED.by""",
        name, state, by)


async def abandon_counts(pool: Any, campaign: str, since: datetime) -> Any:
    """(live, abandoned, machines) among ``campaign``'s attempts placed since ``since``: a live
    answer is connected to an agent or abandoned, as the abandon rate counts it."""
    return await pool.fetchrow("""
        SELECT count(*) FILTER (WHERE connected_at IS NOT NULL OR outcome = 'abandoned') AS live,
               count(*) FILTER (WHERE outcome = 'abandoned') AS abandoned,
               count(*) FILTER (WHERE amd_status = 'MACHINE') AS machines
        FROM dial_attempts WHERE campaign = $1 AND placed_at >= $2""", campaign, since)


async def attempts_since(conn: Any, campaign: str, since: datetime) -> list[Any]:
    """What the what-if command estimates from: ``campaign``'s attempts placed since ``since``."""
    return await conn.fetch("""
        SELECT outcome, placed_at, answered_at, verdict_at, amd_status, connected_at, ended_at, wrapup_seconds,
               agent_id
        FROM dial_attempts WHERE campaign = $1 AND placed_at >= $2""", campaign, since)


# -- attempts -------------------------------------------------------------------------------------------

async def attempt_closed(conn: Any, attempt_id: uuid.UUID, answered_at: datetime | None, verdict_at: datetime | None,
                         amd_status: str | None, connected_at: datetime | None, cause: int | None,
                         wrapup: float | None, placed_at: datetime | None) -> None:
    """How the call of an attempt went (its outcome is written by :func:`.hopper.finish`)."""
    await conn.execute("""
        UPDATE dial_attempts SET answered_at = $2, verdict_at = $3, amd_status = $4, connected_at = $5,
               cause = $6, wrapup_seconds = $7, placed_at = $8
        WHERE id = $1""", attempt_id, answered_at, verdict_at, amd_status, connected_at, cause, wrapup, placed_at)


async def attempt_ended_at(conn: Any, attempt_id: uuid.UUID, ended_at: datetime | None) -> None:
    await conn.execute("UPDATE dial_attempts SET ended_at = $2 WHERE id = $1", attempt_id, ended_at)


async def open_attempts(pool: Any, instance: str) -> list[Any]:
    """The attempts ``instance`` left without an outcome, with what became of their calls: id,
    campaign, lead_id, number, mode, placed, answered (the call's answer), agent_id and connected
    (the agent who answered its latest queue stay, and when); times in epoch seconds."""
    return await pool.fetch("""
        SELECT a.id, a.campaign, a.lead_id, a.number, a.mode, extract(epoch FROM a.placed_at) AS placed,
               extract(epoch FROM c.answered_at) AS answered, q.agent_id, extract(epoch FROM q.left_at) AS connected
        FROM dial_attempts a
        LEFT JOIN calls c ON c.id = a.call_id OR c.channel_id = 'dial-' || a.id::text
        LEFT JOIN LATERAL (SELECT agent_id, left_at FROM queue_entries
                           WHERE call_id = c.id AND outcome = 'answered' ORDER BY left_at DESC LIMIT 1) q ON true
        WHERE a.instance = $1 AND a.outcome IS NULL""", instance)


async def attempt_lost(conn: Any, attempt_id: uuid.UUID, at: float) -> None:
    """Close an attempt as ``lost`` at ``at`` (epoch seconds)."""
    await conn.execute("UPDATE dial_attempts SET outcome = 'lost', ended_at = to_timestamp($2) WHERE id = $1",
                       attempt_id, at)


async def attempt_recovered(conn: Any, attempt_id: uuid.UUID, answered: float | None, connected: float | None) -> None:
    """An attempt closed after a restart: when it was answered (and its verdict made), and
    connected to an agent (epoch seconds, or None)."""
    await conn.execute("""
        UPDATE dial_attempts SET answered_at = to_timestamp($2), verdict_at = to_timestamp($2),
               connected_at = to_timestamp($3) WHERE id = $1""", attempt_id, answered, connected)


# -- the compliance gate ----------------------------------------------------------------------------------

async def gate_facts(conn: Any, number: str, campaign: str, lead_id: int | None, since: datetime) -> Any:
    """What the gate checks about ``number`` and the lead, in one round trip: the DNC scopes it is
    on (``dnc``), the national list's last import (``national_at``), its last abandoned call
    (``last_abandon``), the attempts placed after ``since`` (``recent``) and in all (``attempts``:
    the lead's count, or without a lead the campaign's calls to the number)."""
    return await conn.fetchrow("""
        SELECT
            ARRAY(SELECT scope FROM dnc_numbers
                  WHERE number = $1 AND scope IN ('global', 'national', 'campaign:' || $2)) AS dnc,
            (SELECT max(imported_at) FROM dnc_imports WHERE scope = 'national') AS national_at,
            (SELECT max(placed_at) FROM dial_attempts WHERE number = $1 AND outcome = 'abandoned') AS last_abandon,
            ARRAY(SELECT placed_at FROM dial_attempts
                  WHERE placed_at > $4 AND (lead_id = $3 OR ($3::bigint IS NULL AND campaign = $2 AND number = $1))
                  ORDER BY placed_at) AS recent,
            COALESCE((SELECT attempts FROM leads WHERE id = $3),
                     (SELECT count(*) FROM dial_attempts
                      WHERE $3::bigint IS NULL AND campaign = $2 AND number = $1)::integer) AS attempts""",
        number, campaign, lead_id, since)


async def record_decision(conn: Any, decision_id: uuid.UUID, at: datetime, campaign: str, lead_id: int | None,
                          number: str, mode: str, allowed: bool, reason: str, detail: str, scope: str | None,
                          retry_at: datetime | None, rules: str, instance: str) -> None:
    """One row of ``dial_decisions`` (``rules``: the values checked, as JSON)."""
    await conn.execute("""
        INSERT INTO dial_decisions (id, at, campaign, lead_id, number, mode, allowed, reason, detail,
                                    scope, retry_at, rules, instance)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13)""",
        decision_id, at, campaign, lead_id, number, mode, allowed, reason, detail, scope, retry_at, rules, instance)
