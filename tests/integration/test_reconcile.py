"""What the engine finds at start-up: left-over bridges, and calls whose channel vanished."""

from __future__ import annotations

import asyncpg

from engine.ari import path
from engine.app import Engine
from engine.migrate import default_dir, migrate

from .harness import engine_config, running


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
