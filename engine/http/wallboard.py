"""The live wallboard: a page for a wall TV, fed by Server-Sent Events.

- ``GET /wallboard``: the page (``engine/http/static/wallboard.html`` with its CSS and JS, served by the
  engine, no build step, nothing from a CDN);
- ``GET /wallboard/events``: ``text/event-stream`` of :meth:`LiveStatus.snapshot` as JSON, one
  ``data:`` line per snapshot: one at once on connecting, then every second, and sooner when the
  engine publishes a domain event (a call offered, an agent's state...). Events are coalesced: one
  snapshot goes to every viewer however many events came meanwhile, so ten wall TVs cost one
  snapshot per period, not ten. The browser's EventSource reconnects by itself (``retry:`` 2 s).

Each agent in the stream also carries its display ``name`` from the configuration. The times the
page shows (time in state, longest wait) tick in the browser between snapshots.

Access: the page has no secrets; the stream is open like ``/healthz`` (the HTTP server is bound to
loopback unless ``http.bind`` says otherwise) as long as ``http.tokens`` is empty; with tokens (the
API's), the stream needs one as ``?token=`` (EventSource cannot send headers): open the page as
``/wallboard?token=...`` and it passes its own on.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from engine.shared.logsetup import get_logger

if TYPE_CHECKING:
    from engine.runtime.view import EngineView as Engine
    from engine.http.status import LiveStatus

__all__ = ["Broadcaster", "setup"]

log = get_logger("wallboard")

STATIC = Path(__file__).parent / "static"
PERIOD = 1.0             # seconds between snapshots when nothing happens
RETRY_MS = 2000          # the browser's reconnection delay
_CLOSE = ""              # put in a viewer's queue: the server is shutting down


class Broadcaster:
    """One task computing snapshots for every viewer: every ``PERIOD`` and when woken by an event."""

    def __init__(self, engine: Engine, status: LiveStatus) -> None:
        self.engine = engine
        self.status = status
        self.viewers: set[asyncio.Queue[str]] = set()
        self.wake = asyncio.Event()

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        if self.viewers:   # with no one watching, nothing to compute (a viewer gets one when it comes)
            self.wake.set()

    async def snapshot(self) -> str:
        snap = await self.status.snapshot()
        names = {a.id: a.name for a in self.engine.config.agents}
        for agent in snap["agents"]:
            agent["name"] = names.get(agent["id"], "")
        return json.dumps(snap, separators=(",", ":"))

    async def run(self) -> None:
        while True:
            with suppress(TimeoutError):
                async with asyncio.timeout(PERIOD):
                    await self.wake.wait()
            self.wake.clear()
            if not self.viewers:
                continue
            try:
                data = await self.snapshot()
            except Exception:  # a bad snapshot must not end the wallboard; the next one may do
                log.exception("wallboard.snapshot_failed")
                continue
            for queue in self.viewers:
                _put_latest(queue, data)

    def close(self) -> None:
        for queue in self.viewers:
            _put_latest(queue, _CLOSE)


def _put_latest(queue: asyncio.Queue[str], data: str) -> None:
    """A slow viewer gets the newest snapshot, never a backlog."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(data)


BOARD: web.AppKey[Broadcaster] = web.AppKey("wallboard", Broadcaster)


def setup(app: web.Application) -> None:
    """Add the wallboard's routes to the engine's app (see :func:`engine.http.server.build_app`)."""
    from engine.http.server import ENGINE, STATUS, run_beside

    board = app[BOARD] = Broadcaster(app[ENGINE], app[STATUS])
    app.router.add_get("/wallboard", _page)
    app.router.add_get("/wallboard/events", _events)
    app.router.add_static("/wallboard/static", STATIC)
    run_beside(app, board.on_event, board.run)
    app.on_shutdown.append(_close_streams)


async def _close_streams(app: web.Application) -> None:
    app[BOARD].close()


def _token_ok(request: web.Request) -> bool:
    """Open without ``http.tokens``; else one of them, as ``?token=``."""
    tokens = request.app[BOARD].engine.config.http.tokens
    given = request.query.get("token", "")
    return not tokens or any(hmac.compare_digest(given.encode(), t.encode()) for t in tokens)


async def _page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "wallboard.html", headers={"Cache-Control": "no-cache"})


async def _events(request: web.Request) -> web.StreamResponse:
    if not _token_ok(request):
        raise web.HTTPUnauthorized(text="a token is needed: /wallboard?token=...")
    board = request.app[BOARD]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
    board.viewers.add(queue)
    try:
        data = await board.snapshot()   # at once, not at the next tick
        await response.write(f"retry: {RETRY_MS}\n".encode())
        while data != _CLOSE:
            await response.write(f"data: {data}\n\n".encode())
            data = await queue.get()
    except ConnectionError:   # the viewer went away
        pass
    finally:
        board.viewers.discard(queue)
    return response
