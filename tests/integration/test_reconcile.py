"""What the engine finds at start-up: left-over bridges, and calls whose channel vanished."""

from __future__ import annotations

import asyncio

import asyncpg

from engine.adapters.ari import path
from engine.app import Engine
from engine.core import agent as ag
from engine.store.migrate import default_dir, migrate

from .harness import engine_config, rows, running


async def test_startup_cleans_our_leftovers_and_closes_lost_calls(stack, dsn, tmp_path, ari):
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, default_dir())
        await conn.execute("""INSERT INTO calls (id, channel_id, direction, started_at)
                              VALUES ('7d4f1c8e-0000-4000-8000-000000000001', 'gone.1', 'inbound', now())""")
    finally:
        await conn.close()
    ours = await ari.post("/bridges", name="cc-leftover", type="mixing")
    theirs = await ari.post("/bridges", name="someone-else", type="mixing")
    try:
        engine = Engine(engine_config(stack, dsn, tmp_path))
        async with running(engine):
            await engine.writer.wait_idle()
            bridges = {b["id"] for b in await ari.get("/bridges")}
            assert ours["id"] not in bridges  # ours and empty: removed
            assert theirs["id"] in bridges    # not ours: left alone
    finally:
        await ari.delete(path("bridges", theirs["id"]))
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT ended_at, ended_by, hangup_cause_text FROM calls")
    finally:
        await conn.close()
    assert row["ended_at"] is not None and row["ended_by"] == "system"
    assert row["hangup_cause_text"] == "channel gone while the engine was away"


async def test_an_agent_restored_on_a_call_that_is_gone_is_released(stack, dsn, tmp_path, db):
    """Issue 11 item 9: reconciliation must see the restored agents (it ran 11 ms before them)."""
    await db.execute("""INSERT INTO calls (id, channel_id, direction, started_at, answered_at)
                        VALUES ('7d4f1c8e-0000-4000-8000-000000000002', 'gone.2', 'inbound', now(), now())""")
    await db.execute("""INSERT INTO agents_current (agent_id, state, reason, call_id, queues, endpoint, since,
                                                    idle_since, calls_taken, pending, updated_at)
                        VALUES ('9001', 'on_call', NULL, '7d4f1c8e-0000-4000-8000-000000000002', '{support}',
                                'PJSIP/agent9001', now(), now(), 3, NULL, now())""")
    engine = Engine(engine_config(stack, dsn, tmp_path))
    async with running(engine):
        async with asyncio.timeout(10):
            await engine.acd.ready.wait()
            # released to wrap-up (then available): not left on a call that no longer exists
            await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is not ag.AgentPhase.ON_CALL)
        await engine.writer.wait_idle()
    states = [r["state"] for r in await rows(dsn, "SELECT state FROM agent_states WHERE agent_id = '9001' ORDER BY at")]
    assert "wrap_up" in states, states
