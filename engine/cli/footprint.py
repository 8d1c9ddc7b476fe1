"""What the engine holds per call, counted: for the soak tool (``tools/soak.py``) and the test that
checks nothing stays behind once the calls are over (``tests/integration/test_soak.py``).

:func:`footprint` gives the size of every container that gains an entry while a call is in the
engine (keyed by call id, channel id, offer id, timer key...) and must lose it when the call is
over. With no call in progress each is back to its size before the first call; one that keeps
growing with the calls handled is a leak. It reads the containers where they are (private ones
too): a diagnostic, not an interface. :func:`rss_bytes` is the process's resident memory.
"""

from __future__ import annotations

import asyncio
import gc
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.app import Engine

__all__ = ["PER_CALL", "footprint", "rss_bytes"]

# The containers that hold something per call: back to their baseline once no call is live.
PER_CALL = (
    "calls.sessions", "calls.by_call", "calls.routes", "calls.followed", "calls.observers", "calls.ivr_steps",
    "acd.legs", "acd.waiting", "acd.offers", "acd.talks", "acd.timers", "acd.timer_heap",
    "recordings.active", "webhooks.calls", "webhooks.pending", "dialer.by_call", "engine.tasks",
)


def footprint(engine: Engine) -> dict[str, int]:
    """The size of each per-call container (:data:`PER_CALL`), plus ``asyncio.tasks`` and
    ``gc.objects`` (everything the collector tracks: a coarse figure, for the soak's table)."""
    calls, acd = engine.calls, engine.acd
    sizes: dict[str, int] = dict.fromkeys(PER_CALL, 0)
    if calls is not None:
        sizes.update({
            "calls.sessions": len(calls.sessions), "calls.by_call": len(calls.by_call),
            "calls.routes": len(calls.router), "calls.followed": len(calls._followed),
            "calls.observers": len(calls.observers),
            "calls.ivr_steps": len(calls.effects.ivr_steps), "recordings.active": len(calls.recordings.active),
        })
    if acd is not None:
        core = acd.acd
        sizes.update({
            "acd.legs": len(acd.legs), "acd.waiting": len(core.waiting), "acd.offers": len(core._offers),
            "acd.talks": len(core._talks), "acd.timers": len(acd.session.timers),
            "acd.timer_heap": len(acd.session.timers._heap),
        })
    sizes["webhooks.calls"] = len(engine.webhooks._calls)
    sizes["webhooks.pending"] = len(engine.webhooks.pending)
    if engine.dialer is not None:
        sizes["dialer.by_call"] = len(engine.dialer.by_call)
    sizes["engine.tasks"] = len(engine._tasks)
    sizes["asyncio.tasks"] = len(asyncio.all_tasks())
    sizes["gc.objects"] = len(gc.get_objects())
    return sizes


def rss_bytes() -> int:
    """This process's resident set size now (Linux: /proc/self/statm), in bytes."""
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")
