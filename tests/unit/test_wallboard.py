"""The wallboard's broadcaster: events wake it at once, and a burst of them costs one snapshot."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from engine import wallboard
from engine.wallboard import Broadcaster


class CountingStatus:
    def __init__(self) -> None:
        self.taken = 0

    async def snapshot(self) -> dict:
        self.taken += 1
        await asyncio.sleep(0.01)   # as the service-level query may
        return {"at": 0, "queues": [], "agents": [{"id": "9001"}], "campaigns": []}


async def test_an_event_pushes_a_snapshot_at_once_and_a_burst_is_coalesced(monkeypatch):
    monkeypatch.setattr(wallboard, "PERIOD", 60.0)   # no periodic snapshot during the test
    status = CountingStatus()
    engine = SimpleNamespace(config=SimpleNamespace(agents=(SimpleNamespace(id="9001", name="Alice"),)))
    board = Broadcaster(engine, status)  # type: ignore[arg-type]
    viewer: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
    board.viewers.add(viewer)
    task = asyncio.create_task(board.run())
    try:
        await asyncio.sleep(0)
        board.on_event("queue.entered", {})
        async with asyncio.timeout(0.5):
            data = json.loads(await viewer.get())
        assert data["agents"] == [{"id": "9001", "name": "Alice"}]
        for _ in range(100):
            board.on_event("agent.state", {})
        async with asyncio.timeout(0.5):
            await viewer.get()
        await asyncio.sleep(0.05)
        assert status.taken <= 3 and viewer.empty()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_slow_viewer_gets_the_newest_snapshot_not_a_backlog():
    viewer: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
    for n in range(5):
        wallboard._put_latest(viewer, str(n))
    assert viewer.qsize() == 1 and viewer.get_nowait() == "4"
