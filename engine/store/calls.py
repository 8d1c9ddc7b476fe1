"""Calls after a restart: what PostgreSQL says of the channels Asterisk still has, and of those it
no longer has (:mod:`engine.runtime.reconcile`)."""

from __future__ import annotations

from typing import Any

__all__ = ["answering_agent", "last_ivr_step", "open_calls", "open_queue_entry"]


async def open_queue_entry(pool: Any, call_id: str) -> Any:
    """The call's stay in a queue not yet left (queue, line_since, entered_at), or None."""
    return await pool.fetchrow(
        "SELECT queue, line_since, entered_at FROM queue_entries WHERE call_id = $1 AND left_at IS NULL", call_id)


async def answering_agent(pool: Any, call_id: str) -> str | None:
    """The agent who answered the call's latest answered stay, or None."""
    return await pool.fetchval("""
        SELECT agent_id FROM queue_entries WHERE call_id = $1 AND outcome = 'answered'
        ORDER BY left_at DESC LIMIT 1""", call_id)


async def last_ivr_step(pool: Any, call_id: str) -> int:
    """The number of the call's last IVR step (0: none)."""
    return await pool.fetchval("SELECT max(seq) FROM ivr_steps WHERE call_id = $1", call_id) or 0


async def open_calls(pool: Any) -> list[Any]:
    """(id, channel_id) of every call not ended."""
    return await pool.fetch("SELECT id, channel_id FROM calls WHERE ended_at IS NULL")
