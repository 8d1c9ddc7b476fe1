"""Memory per call, with real calls: once the calls are over, the engine holds nothing for them.

A short soak (``tools/soak.py`` runs the long one): callers through an IVR menu into a queue, agents
answering and hanging up. After a warm-up, every per-call container (:mod:`engine.cli.footprint`) must be
back to its size before the calls, every agent free again, and a second round of calls must leave
no more memory held than the first (tracemalloc, at rest after each): the first round still fills
connection pools and statement caches, the second must not grow by what a leaked call costs (a call
session kept alive was about 7.5 KB; the bound is 1 KB a call).
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

from engine.app import Engine
from engine.core import agent as ag
from engine.cli.footprint import PER_CALL, footprint

from . import load
from .harness import running
from .test_acd import rows

WARM_UP = 20      # calls before the baseline: first connections, caches, statements prepared
CALLS = 60        # then twice this many: what the first round still warms up, the second must not grow
RATE = 5.0        # calls per second
AGENTS = 4
MAX_BYTES_PER_CALL = 1024


async def at_rest(engine: Engine, handled: int) -> None:
    """Until ``handled`` calls have ended, no call is left in the engine and every write landed."""
    assert engine.calls is not None and engine.acd is not None
    async with asyncio.timeout(60):
        await engine.calls.wait_until(lambda m: m.handled >= handled and not m.sessions)
        await engine.writer.wait_idle()
        await engine.acd.wait_until(lambda acd: not acd.waiting and all(
            a.phase is ag.AgentPhase.AVAILABLE for a in acd.agents.values() if a.queues))


async def place(stack, engine: Engine, calls: int, logs) -> None:
    """``calls`` more calls through the menu to the agents; returns once they are over."""
    assert engine.calls is not None
    handled = engine.calls.handled
    callers = await load.callers(stack, calls, RATE, logs, budget=calls / RATE + 45)
    assert await callers.wait() == 0, f"sipp callers failed: {load.errors(logs)}"
    await at_rest(engine, handled + calls)
    gc.collect()


async def test_calls_through_ivr_queue_and_agent_leave_nothing_behind(stack, dsn, tmp_path):
    engine = Engine(load.load_config(stack, dsn, tmp_path, AGENTS))
    async with running(engine):
        phones = await load.agent_phones(stack, engine, AGENTS, tmp_path, budget=120)
        try:
            await place(stack, engine, WARM_UP, tmp_path)
            before = footprint(engine)
            tracemalloc.start(1)
            try:
                await place(stack, engine, CALLS, tmp_path)
                first, _ = tracemalloc.get_traced_memory()
                warm = tracemalloc.take_snapshot()
                await place(stack, engine, CALLS, tmp_path)
                second, _ = tracemalloc.get_traced_memory()
                top = tracemalloc.take_snapshot().compare_to(warm, "lineno")[:5]
            finally:
                tracemalloc.stop()
            after = footprint(engine)
        finally:
            await load.stop(phones)
    [answered] = await rows(dsn, "SELECT count(*) FROM queue_entries WHERE outcome = 'answered' AND agent_id IS NOT NULL")
    assert answered[0] == WARM_UP + 2 * CALLS   # every call went through the menu, the queue and an agent
    left = {k: (before[k], after[k]) for k in PER_CALL if after[k] != before[k]}
    assert left == {}, f"per-call containers not back to their size before the calls (before, after): {left}"
    per_call = (second - first) / CALLS
    print(f"\nheld after the calls: {first / (CALLS):.0f} bytes per call in the first round, "
          f"{per_call:.0f} more per call in the second")
    assert per_call < MAX_BYTES_PER_CALL, (
        f"{per_call:.0f} bytes per call more held after the second round; grew most: " + "; ".join(map(str, top)))
