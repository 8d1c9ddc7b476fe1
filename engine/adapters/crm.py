"""The CRM over HTTP, as the IVR's ``http`` verb asks it: one request, its JSON answer or why not.

An adapter: it translates (a request into :class:`~engine.core.ivr_messages.HttpDone`) and holds no rules.
One client session for the engine, made on first use and closed at shutdown.
"""

from __future__ import annotations

import asyncio

import aiohttp

from engine.core import ivr_messages

__all__ = ["Crm"]


class Crm:
    def __init__(self) -> None:
        self._http: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(headers={"User-Agent": "callcenter"})
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def ask(self, call: ivr_messages.HttpCall) -> ivr_messages.HttpDone:
        """The answer for the IVR: the JSON object (a scalar as ``{"value": ...}``), or a failure."""
        try:
            async with asyncio.timeout(call.timeout):
                body = dict(call.body) if call.method == "POST" else None
                async with self._client().request(call.method, call.url, json=body) as resp:
                    if resp.status >= 400:
                        raise ValueError(f"HTTP {resp.status}")
                    data = await resp.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            return ivr_messages.HttpDone(False, detail=str(exc) or type(exc).__name__)
        return ivr_messages.HttpDone(True, data if isinstance(data, dict) else {"value": data})
