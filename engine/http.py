"""The engine's HTTP server: one aiohttp application (bound to loopback unless ``http.bind`` says
otherwise) that each feature adds its routes to.

- ``/healthz``: ARI, AMI and PostgreSQL connected (200) or not (503), no token;
- the feature modules register themselves in :func:`build_app` (the API under ``/api/v1``, the
  wallboard, ``/metrics``).

``request.app[ENGINE]`` is the running :class:`~engine.app.Engine`; ``request.app[STATUS]`` its
:class:`~engine.status.LiveStatus`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .status import LiveStatus

if TYPE_CHECKING:
    from .app import Engine

__all__ = ["ENGINE", "STATUS", "build_app"]

ENGINE: web.AppKey["Engine"] = web.AppKey("engine")
STATUS: web.AppKey[LiveStatus] = web.AppKey("status", LiveStatus)


def build_app(engine: Engine) -> web.Application:
    app = web.Application()
    app[ENGINE] = engine
    app[STATUS] = LiveStatus(engine)
    app.router.add_get("/healthz", _healthz)
    return app


async def _healthz(request: web.Request) -> web.Response:
    body = request.app[ENGINE].health()
    return web.json_response(body, status=200 if body["ok"] else 503)
