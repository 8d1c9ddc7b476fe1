"""A small ARI client on aiohttp: REST requests and one websocket reader.

Why our own (shared/docs/asterisk.md has the measurements): aioari is unmaintained and runs
handlers inside its reader, asyncari burns CPU and dies on a slow listener, ari-client has no
per-channel ordering and no reconnect. What this module does instead:

- ``AriClient.request`` sends one REST request; Python booleans become ``true``/``false``, the
  Basic-auth header is set by hand (aiohttp 3.14 warns on ``auth=``), errors are typed:
  :class:`AriError` (Asterisk answered 4xx/5xx) and :class:`AriUnavailable` (no answer at all).
  While the events websocket serves, and Asterisk has REST over it (20.14, 21.9, 22.4 and
  later; ``asterisk.ari.rest_over_websocket``), a request is a ``RESTRequest`` message on that
  websocket and its ``RESTResponse`` is taken out of the event stream by request id: no HTTP
  request, connection and headers per request. Before the reader runs (reconciliation after a
  connect) and without the websocket, requests go over HTTP;
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
import re
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp

from engine.config.model import AriConfig
from engine.shared.logsetup import get_logger

__all__ = ["AriClient", "AriError", "AriUnavailable", "path", "rest_over_websocket"]

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


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")   # what percent-encoding leaves as it is (RFC 3986)


def _quoted(text: str) -> str:
    """``quote(text, safe="")``, without its work for the usual id or number that needs none."""
    return text if _UNRESERVED.fullmatch(text) else quote(text, safe="")


def path(*segments: str) -> str:
    """``path("channels", cid, "play")`` -> ``/channels/<cid quoted>/play``."""
    return "/" + "/".join(_quoted(str(s)) for s in segments)


def query(params: Mapping[str, Any] | None) -> str:
    """The query string of ``params`` (as :func:`_params` turns them into text), percent-encoded
    as ``urlencode(..., quote_via=quote)`` does."""
    return "&".join(f"{_quoted(k)}={_quoted(v)}" for k, v in _params(params).items())


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


def _expire(answer: asyncio.Future[Any]) -> None:
    if not answer.done():
        answer.set_exception(asyncio.TimeoutError("no answer from Asterisk in time"))


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
        self._ws: aiohttp.ClientWebSocketResponse | None = None   # set while requests go over it
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._request_ids = 0

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
        """Send one request; return the decoded JSON body (or None for an empty answer). Over the
        events websocket while it serves and Asterisk has REST over it; else over HTTP."""
        if self._ws is not None:
            return await self._ws_request(self._ws, method, url_path, params, body)
        url = self.base + url_path
        try:
            async with self.session.request(method, url, params=_params(params), json=body) as resp:
                return _answer(method, url_path, resp.status, await resp.text(), resp.reason)
        except AriError:
            raise
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, json.JSONDecodeError) as exc:
            raise AriUnavailable(method, url_path, f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc

    async def _ws_request(self, ws: aiohttp.ClientWebSocketResponse, method: str, url_path: str,
                          params: Mapping[str, Any] | None, body: Any) -> Any:
        """One request as a RESTRequest message; its RESTResponse comes back among the events
        (:meth:`_read` hands it here by its request id)."""
        self._request_ids += 1
        request_id = str(self._request_ids)
        q = query(params)
        message: dict[str, Any] = {"type": "RESTRequest", "request_id": request_id, "method": method,
                                   "uri": url_path.lstrip("/") + (f"?{q}" if q else "")}
        if body is not None:
            message["content_type"] = "application/json"
            message["message_body"] = json.dumps(body)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._pending[request_id] = answer
        # one timer handle, not a timeout scope: the future fails when no answer came in time
        expire = loop.call_later(self.cfg.request_timeout_seconds, _expire, answer)
        try:
            await ws.send_str(json.dumps(message))
            response = await answer
        except (aiohttp.ClientError, OSError, ConnectionError, asyncio.TimeoutError) as exc:
            raise AriUnavailable(method, url_path, f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        finally:
            expire.cancel()
            self._pending.pop(request_id, None)
        try:
            return _answer(method, url_path, int(response.get("status_code") or 0),
                           response.get("message_body") or "", response.get("reason_phrase"))
        except json.JSONDecodeError as exc:
            raise AriUnavailable(method, url_path, f"JSONDecodeError: {exc}") from exc

    def _answered(self, response: dict[str, Any]) -> None:
        answer = self._pending.get(str(response.get("request_id")))
        if answer is not None and not answer.done():
            answer.set_result(response)

    def _drop_pending(self) -> None:
        """The websocket went: requests still waiting on it get no answer (as a dropped HTTP
        connection: the request may or may not have been carried out)."""
        for answer in self._pending.values():
            if not answer.done():
                answer.set_exception(ConnectionError("the ARI websocket closed before the answer"))
        self._pending.clear()

    async def _filter_events(self, events: Collection[str]) -> None:
        # the answers to requests over the websocket are events too: never filtered out
        allowed = sorted({*events, "RESTResponse"})
        try:
            await self.request("PUT", path("applications", self.cfg.app, "eventFilter"),
                               body={"allowed": [{"type": t} for t in allowed], "disallowed": []})
        except AriError as exc:   # every event then comes, as without a filter: slower, not wrong
            log.warning("ari.event_filter_failed", error=str(exc))

    async def _rest_over_websocket(self) -> bool:
        """Whether to send requests over the websocket: configured so, and this Asterisk has it."""
        if not self.cfg.rest_over_websocket:
            return False
        try:
            info = await self.get("/asterisk/info", only="system")
        except AriError as exc:
            log.warning("ari.version_unknown", error=str(exc))
            return False
        version = str((info or {}).get("system", {}).get("version", ""))
        ok = rest_over_websocket(version)
        log.info("ari.requests", over="websocket" if ok else "http", asterisk=version)
        return ok

    async def get(self, url_path: str, **params: Any) -> Any:
        return await self.request("GET", url_path, params=params)

    async def post(self, url_path: str, **params: Any) -> Any:
        return await self.request("POST", url_path, params=params)

    async def delete(self, url_path: str, **params: Any) -> Any:
        return await self.request("DELETE", url_path, params=params)

    @property
    def requests_over_websocket(self) -> bool:
        """Whether requests go over the events websocket now (else over HTTP)."""
        return self._ws is not None

    # -- events ---------------------------------------------------------------------------------
    def events_url(self) -> str:
        parts = urlsplit(self.base)
        scheme = "wss" if parts.scheme == "https" else "ws"
        q = f"app={quote(self.cfg.app)}&subscribeAll=false"
        return urlunsplit((scheme, parts.netloc, parts.path + "/events", q, ""))

    async def run_events(self, on_event: Callable[[dict[str, Any]], None],
                         on_connect: Callable[[], Awaitable[None]],
                         on_disconnect: Callable[[], None] | None = None,
                         events: Collection[str] | None = None) -> None:
        """Read events forever, reconnecting. Cancel the task to stop.

        While Asterisk does not answer at all (stopped, restarting) its port is probed every
        :data:`PROBE_SECONDS` and the websocket reconnects as soon as it answers: calls that arrive
        just after Asterisk is back must find the application there. When Asterisk answers but
        refuses the websocket (ARI not loaded yet, wrong credentials), retries back off up to
        ``reconnect_max_seconds``. With ``events``, Asterisk is asked at each connect to send the
        application those event types only (its event filter)."""
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
                    if events is not None:
                        await self._filter_events(events)
                    try:
                        await on_connect()
                    except AriError as exc:
                        log.warning("ari.reconcile_failed", error=str(exc))
                    over_ws = await self._rest_over_websocket()
                    self.connected.set()  # connected and reconciled: ready to serve
                    self.disconnected.clear()
                    try:
                        if over_ws:
                            self._ws = ws   # the reader below takes the answers from here on
                        await self._read(ws, on_event)
                    finally:
                        self._ws = None
                        self._drop_pending()
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
                if event.get("type") == "RESTResponse":
                    self._answered(event)
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


# The first release of each branch with REST over the events websocket.
REST_OVER_WEBSOCKET_SINCE = {20: (20, 14), 21: (21, 9), 22: (22, 4)}


def rest_over_websocket(version: str) -> bool:
    """Whether an Asterisk of ``version`` (``22.10.1+dfsg...``, as /asterisk/info says) takes REST
    requests over the events websocket."""
    parts = re.match(r"(\d+)\.(\d+)", version)
    if parts is None:
        return False
    major, minor = int(parts[1]), int(parts[2])
    since = REST_OVER_WEBSOCKET_SINCE.get(major)
    return major > max(REST_OVER_WEBSOCKET_SINCE) if since is None else (major, minor) >= since


def _answer(method: str, url_path: str, status: int, text: str, reason: str | None) -> Any:
    """Asterisk's answer, over HTTP or the websocket alike: the decoded JSON body (None when empty),
    or AriError for an error status (a status missing from a websocket answer counts as one)."""
    if status >= 400 or status == 0:
        raise AriError(method, url_path, status, _message(text) or reason or "")
    return json.loads(text) if text else None


def _message(text: str) -> str:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text.strip()[:200]
    if isinstance(data, dict) and "message" in data:
        return str(data["message"])
    return text.strip()[:200]
