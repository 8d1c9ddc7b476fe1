"""The engine's HTTP server: one aiohttp application (bound to loopback unless ``http.bind`` says
otherwise) that each feature adds its routes to.

- ``/healthz``: ARI, AMI and PostgreSQL connected (200) or not (503), no token;
- the feature modules register themselves in :func:`build_app` (the API under ``/api/v1``, the
  wallboard, ``/metrics``);
- no request body is read past :data:`MAX_BODY_BYTES` (the API says 413, in JSON).

``request.app[ENGINE]`` is the running engine as the face sees it (:class:`~engine.runtime.view.EngineView`:
snapshots and named actions, never the runtime's own objects); ``request.app[STATUS]`` its
:class:`~engine.http.status.LiveStatus`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from aiohttp import web

from engine.http import metrics
from engine.http import wallboard
from engine.http.status import LiveStatus
from engine.shared.events import Listener

if TYPE_CHECKING:
    from engine.runtime.view import EngineView as Engine

__all__ = ["ENGINE", "MAX_BODY_BYTES", "MAX_BODY_TEXT", "STATUS", "build_app"]

ENGINE: web.AppKey["Engine"] = web.AppKey("engine")
STATUS: web.AppKey[LiveStatus] = web.AppKey("status", LiveStatus)
# The largest request body read (aiohttp's client_max_size, set here rather than left to its
# default); the API answers 413 past it. Its bodies are small: a lead's extra fields are the most.
MAX_BODY_BYTES = 1 << 20
MAX_BODY_TEXT = f"{MAX_BODY_BYTES / (1 << 20):g} MiB ({MAX_BODY_BYTES} bytes)"


def build_app(engine: Engine) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[ENGINE] = engine
    app[STATUS] = LiveStatus(engine)
    app.router.add_get("/healthz", _healthz)
    from engine.http import api  # here, not at the top: engine.api uses this module's ENGINE and STATUS
    api.setup(app)      # /api/v1 and its OpenAPI document
    wallboard.setup(app)   # /wallboard, /wallboard/events
    metrics.setup(app)     # /metrics (Prometheus)
    return app


async def _healthz(request: web.Request) -> web.Response:
    body = request.app[ENGINE].health()
    return web.json_response(body, status=200 if body["ok"] else 503)


def run_beside(app: web.Application, listener: Listener, *jobs: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """While the server runs, ``listener`` hears the engine's domain events (:mod:`engine.shared.events`)
    and each ``job()`` runs as a task, cancelled when the server stops."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        engine = app[ENGINE]
        engine.subscribe(listener)
        tasks = [asyncio.create_task(job()) for job in jobs]
        try:
            yield
        finally:
            engine.unsubscribe(listener)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    app.cleanup_ctx.append(context)
