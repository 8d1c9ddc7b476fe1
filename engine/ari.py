"""A small ARI client on aiohttp: REST requests and one websocket reader.

Why our own (shared/docs/asterisk.md has the measurements): aioari is unmaintained and runs
handlers inside its reader, asyncari burns CPU and dies on a slow listener, ari-client has no
per-channel ordering and no reconnect. What this module does instead:

- ``AriClient.request`` sends one REST request; Python booleans become ``true``/``false``, the
  Basic-auth header is set by hand (aiohttp 3.14 warns on ``auth=``), errors are typed:
  :class:`AriError` (Asterisk answered 4xx/5xx) and :class:`AriUnavailable` (no answer at all);
- ``AriClient.run_events`` keeps one websocket open with back-off reconnects and hands each event,
  in order, to a *synchronous* callback. The callback only routes (put into a per-call queue), so a
  slow call handler can never stall the reader. ``on_connect`` runs after every (re)connect and
  before the first event is read: that is where orphans are reconciled.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp

from .config import AriConfig
from .logsetup import get_logger

__all__ = ["AriClient", "AriError", "AriUnavailable", "path"]

log = get_logger("ari")


class AriError(Exception):
    """Asterisk answered with an error status."""

    def __init__(self, method: str, url_path: str, status: int | None, message: str) -> None:
        self.method, self.path, self.status, self.message = method, url_path, status, message
        where = f"{method} {url_path}"
        super().__init__(f"{where}: {status} {message}" if status else f"{where}: {message}")

    @property
    def gone(self) -> bool:
        """For a channel request: the channel no longer exists or is no longer in our application."""
        return self.status in (404, 409, 422)


class AriUnavailable(AriError):
    """Asterisk could not be reached (connection refused, timeout, connection dropped)."""

    def __init__(self, method: str, url_path: str, message: str) -> None:
        super().__init__(method, url_path, None, message)

    @property
    def gone(self) -> bool:
        return False


def path(*segments: str) -> str:
    """``path("channels", cid, "play")`` -> ``/channels/<cid quoted>/play``."""
    return "/" + "/".join(quote(str(s), safe="") for s in segments)


def _params(params: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            out[key] = ",".join(str(v) for v in value)
        else:
            out[key] = str(value)
    return out


class AriClient:
    """Use as ``async with AriClient(cfg) as ari:``."""

    def __init__(self, cfg: AriConfig) -> None:
        self.cfg = cfg
        self.base = cfg.url.rstrip("/")
        token = base64.b64encode(f"{cfg.username}:{cfg.password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        self._session: aiohttp.ClientSession | None = None
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()  # set whenever ``connected`` is not
        self.disconnected.set()

    async def __aenter__(self) -> AriClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.cfg.max_connections),
            timeout=aiohttp.ClientTimeout(total=self.cfg.request_timeout_seconds),
            headers=self._headers,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("AriClient used outside 'async with'")
        return self._session

    async def request(self, method: str, url_path: str, *, params: Mapping[str, Any] | None = None,
                      body: Any = None) -> Any:
        """Send one request; return the decoded JSON body (or None for an empty answer)."""
        url = self.base + url_path
        try:
            async with self.session.request(method, url, params=_params(params), json=body) as resp:
                text = await resp.text()
                if resp.status >= 400:
                    raise AriError(method, url_path, resp.status, _message(text) or resp.reason or "")
                if not text:
                    return None
                return json.loads(text)
        except AriError:
            raise
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, json.JSONDecodeError) as exc:
            raise AriUnavailable(method, url_path, f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc

    async def get(self, url_path: str, **params: Any) -> Any:
        return await self.request("GET", url_path, params=params)

    async def post(self, url_path: str, **params: Any) -> Any:
        return await self.request("POST", url_path, params=params)

    async def delete(self, url_path: str, **params: Any) -> Any:
        return await self.request("DELETE", url_path, params=params)

    # -- events ---------------------------------------------------------------------------------
    def events_url(self) -> str:
        parts = urlsplit(self.base)
        scheme = "wss" if parts.scheme == "https" else "ws"
        query = f"app={quote(self.cfg.app)}&subscribeAll=false"
        return urlunsplit((scheme, parts.netloc, parts.path + "/events", query, ""))

    async def run_events(self, on_event: Callable[[dict[str, Any]], None],
                         on_connect: Callable[[], Awaitable[None]],
                         on_disconnect: Callable[[], None] | None = None) -> None:
        """Read events forever, reconnecting with back-off. Cancel the task to stop."""
        delay = 0.2
        url = self.events_url()
        while True:
            try:
                async with self.session.ws_connect(url, heartbeat=15.0, timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                                                   max_msg_size=16 * 1024 * 1024) as ws:
                    log.info("ari.connected", app=self.cfg.app, url=self.base)
                    delay = 0.2
                    try:
                        await on_connect()
                    except AriError as exc:
                        log.warning("ari.reconcile_failed", error=str(exc))
                    self.connected.set()  # connected and reconciled: ready to serve
                    self.disconnected.clear()
                    async for msg in ws:
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            try:
                                event = json.loads(msg.data)
                            except json.JSONDecodeError:
                                log.error("ari.bad_event", data=msg.data[:200])
                                continue
                            try:
                                on_event(event)
                            except Exception:  # one bad event must not stop the reader
                                log.exception("ari.event_failed", type=event.get("type"))
                        elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE,
                                          aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                            break
                    log.warning("ari.disconnected", reason=str(ws.exception() or ws.close_code))
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                log.warning("ari.connect_failed", error=f"{type(exc).__name__}: {exc}", retry_in=round(delay, 2))
            finally:
                if self.connected.is_set():
                    self.connected.clear()
                    self.disconnected.set()
                    if on_disconnect is not None:
                        on_disconnect()
            await asyncio.sleep(delay * (0.75 + random.random() / 2))
            delay = min(delay * 2, self.cfg.reconnect_max_seconds)


def _message(text: str) -> str:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text.strip()[:200]
    if isinstance(data, dict) and "message" in data:
        return str(data["message"])
    return text.strip()[:200]
