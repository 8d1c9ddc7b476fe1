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

from engine.config.model import AriConfig
from engine.shared.logsetup import get_logger

__all__ = ["AriClient", "AriError", "AriUnavailable", "path"]

log = get_logger("ari")

PROBE_SECONDS = 0.1  # how often a refused Asterisk is probed (a refused connect on a port is cheap)


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
        self._last_failure: str | None = None

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
        """Read events forever, reconnecting. Cancel the task to stop.

        While Asterisk does not answer at all (stopped, restarting) its port is probed every
        :data:`PROBE_SECONDS` and the websocket reconnects as soon as it answers: calls that arrive
        just after Asterisk is back must find the application there. When Asterisk answers but
        refuses the websocket (ARI not loaded yet, wrong credentials), retries back off up to
        ``reconnect_max_seconds``."""
        delay = 0.2
        url = self.events_url()
        while True:
            refused = False
            try:
                async with self.session.ws_connect(url, heartbeat=15.0, timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                                                   max_msg_size=16 * 1024 * 1024) as ws:
                    log.info("ari.connected", app=self.cfg.app, url=self.base)
                    self._last_failure = None
                    since = asyncio.get_running_loop().time()
                    try:
                        await on_connect()
                    except AriError as exc:
                        log.warning("ari.reconcile_failed", error=str(exc))
                    self.connected.set()  # connected and reconciled: ready to serve
                    self.disconnected.clear()
                    await self._read(ws, on_event)
                    log.warning("ari.disconnected", reason=str(ws.exception() or ws.close_code))
                    if asyncio.get_running_loop().time() - since > 2.0:
                        # it served a while and went away: look for it again at once; a
                        # connection that keeps dropping at once (ApplicationReplaced) backs off
                        delay, refused = 0.2, True
            except (aiohttp.ClientConnectorError, ConnectionRefusedError) as exc:
                refused = True
                self._connect_failed(exc, delay)
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                self._connect_failed(exc, delay)
            finally:
                if self.connected.is_set():
                    self.connected.clear()
                    self.disconnected.set()
                    if on_disconnect is not None:
                        on_disconnect()
            if refused and await self._until_listening(delay):
                delay = 0.1  # it answers again: whatever comes next backs off from the start
            elif not refused:
                await asyncio.sleep(delay * (0.75 + random.random() / 2))
            delay = min(delay * 2, self.cfg.reconnect_max_seconds)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, on_event: Callable[[dict[str, Any]], None]) -> None:
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

    def _connect_failed(self, exc: BaseException, delay: float) -> None:
        text = f"{type(exc).__name__}: {exc}"
        if text != self._last_failure:
            log.warning("ari.connect_failed", error=text, retry_in=round(delay, 2))
        self._last_failure = text

    async def _until_listening(self, longest: float) -> bool:
        """Return True as soon as Asterisk's HTTP port accepts a connection; False after
        ``longest`` seconds of refusals (the caller then tries the websocket anyway)."""
        parts = urlsplit(self.base)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        deadline = asyncio.get_running_loop().time() + max(longest, PROBE_SECONDS)
        while asyncio.get_running_loop().time() < deadline:
            try:
                async with asyncio.timeout(1.0):
                    _, writer = await asyncio.open_connection(host, port)
                writer.close()
                return True
            except (OSError, TimeoutError):
                await asyncio.sleep(PROBE_SECONDS)
        return False


def _message(text: str) -> str:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text.strip()[:200]
    if isinstance(data, dict) and "message" in data:
        return str(data["message"])
    return text.strip()[:200]
