"""The ACD's reads: the agents to restore after a restart (:mod:`engine.runtime.acdservice`)."""

from __future__ import annotations

from typing import Any

__all__ = ["agent_call_queue", "logged_in_agents"]


async def logged_in_agents(pool: Any) -> list[Any]:
    """Every agent ``agents_current`` says is logged in, with the state it was last in."""
    return await pool.fetch("SELECT * FROM agents_current WHERE state <> 'logged_out'")


async def agent_call_queue(pool: Any, call_id: str, agent_id: str) -> str | None:
    """The queue through which ``agent_id`` took ``call_id`` (its latest stay), or None."""
    return await pool.fetchval("""
        SELECT queue FROM queue_entries WHERE call_id = $1 AND agent_id = $2
        ORDER BY left_at DESC NULLS LAST LIMIT 1""", call_id, agent_id)
