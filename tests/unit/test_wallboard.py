"""The wallboard's broadcaster: events wake it at once, and a burst of them costs one snapshot."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from engine.http import wallboard
from engine.http.wallboard import Broadcaster


class GatedStatus:
    """A status whose snapshots the test lets finish one at a time, as a slow service-level query
    would. ``begun`` gets, for each snapshot begun, how many events the board had been sent then."""

    def __init__(self) -> None:
        self.sent = 0
        self.begun: asyncio.Queue[int] = asyncio.Queue()
        self.done = asyncio.Semaphore(0)

    async def snapshot(self) -> dict:
        self.begun.put_nowait(self.sent)
        await self.done.acquire()
        return {"at": self.sent, "queues": [], "agents": [{"id": "9001"}], "campaigns": []}


async def test_an_event_pushes_a_snapshot_at_once_and_a_burst_is_coalesced(monkeypatch):
    monkeypatch.setattr(wallboard, "PERIOD", 60.0)   # no periodic snapshot during the test
    status = GatedStatus()
    engine = SimpleNamespace(config=SimpleNamespace(agents=(SimpleNamespace(id="9001", name="Alice"),)))
    board = Broadcaster(engine, status)  # type: ignore[arg-type]
    viewer: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
    board.viewers.add(viewer)

    def send(kind: str, n: int = 1) -> None:
        for _ in range(n):
            status.sent += 1
            board.on_event(kind, {})

    task = asyncio.create_task(board.run())
    try:
        async with asyncio.timeout(5):   # only reached if the board fails to take a snapshot
            send("queue.entered")
            assert await status.begun.get() == 1          # at once, not at the next period
            send("agent.state", 100)                      # a burst while that snapshot is taken
            status.done.release()
            data = json.loads(await viewer.get())
            assert data["agents"] == [{"id": "9001", "name": "Alice"}]
            assert await status.begun.get() == 101        # the whole burst: one more snapshot
            status.done.release()
            assert json.loads(await viewer.get())["at"] == 101
            send("agent.state")                           # nothing was left pending by the burst:
            assert await status.begun.get() == 102        # the next snapshot is this event's
            status.done.release()
            assert json.loads(await viewer.get())["at"] == 102
        assert status.begun.empty() and viewer.empty()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_slow_viewer_gets_the_newest_snapshot_not_a_backlog():
    viewer: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
    for n in range(5):
        wallboard._put_latest(viewer, str(n))
    assert viewer.qsize() == 1 and viewer.get_nowait() == "4"
