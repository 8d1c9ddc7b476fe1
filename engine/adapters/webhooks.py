"""Webhooks to a CRM: the engine's events (:mod:`engine.shared.events`), signed, retried, never lost.

Theory of operation
-------------------
Each configured hook (``webhooks:`` in the main file: url, secret, events, timeout, attempts,
retry delays) gets every event whose kind it lists (``"*"``: all, whatever kinds the engine
grows). For each (event, hook) one *delivery* is made, with its own id::

    POST <url>
    Content-Type: application/json
    X-Callcenter-Event: call.offered
    X-Callcenter-Delivery: 4f1c...            (the body's id: receivers de-duplicate on it)
    X-Callcenter-Signature: sha256=<hex HMAC-SHA256 of the body, keyed with the hook's secret>

    {"id": "4f1c...", "kind": "call.offered", "at": 1764000000.25, "data": {...the event...}}

The hub calls :meth:`Webhooks.publish` on the call path, so it only queues: the delivery goes
to the outbox table (``webhook_outbox``) through the engine's ordered write queue, which keeps
writes while PostgreSQL is away and spills them to the state folder at shutdown; and to memory,
so it is sent at once without waiting for the database. A 2xx answer delivers it; a connection
error, a timeout, 408, 429 or 5xx retries after ``retry_seconds``, doubling up to
``retry_max_seconds``, at most ``max_attempts`` tries; any other 3xx or 4xx is final (redirects
are not followed; retrying a refused request cannot help). Every try is written back to the outbox (attempts, status, error, delivered
or failed). After a restart the deliveries this instance still owed are read back from the
outbox and sent: at least once, never silently dropped. An event that happens once per call or
attempt (call.started, call.ended, dial.placed, dial.ended) has an id derived from it, the same
however often it is published (a restart may publish one again): one fact, one id.

call.offered carries what a CRM screen pop needs: the caller's number and name, the number dialled,
the queue, the agent whose phone rings, the call id (added here from the call's start).
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from engine.store import webhooks as outbox   # its write operations (webhook_queued, webhook_tried) with it
from engine.store.db import UNAVAILABLE, Write
from engine.shared.logsetup import get_logger

if TYPE_CHECKING:
    from engine.config.model import Config, WebhookConfig
    from engine.store.db import Database, Writer

__all__ = ["ONCE", "Webhooks", "backoff", "sign"]

log = get_logger("webhooks")

CALLER_FIELDS = ("caller_number", "caller_name", "dialed_number", "direction")
# Events that happen once per call or attempt, by the field naming it. A restart may publish one
# again (an attempt closed by the recovery after the run that ended it was killed before storing
# it): its delivery id is derived, not drawn, so the receiver sees the same id twice, not two facts.
ONCE = {"call.started": "call_id", "call.ended": "call_id", "dial.placed": "attempt_id", "dial.ended": "attempt_id"}
_NS = uuid.UUID("0e5c2a55-8f0f-4d8e-9d6e-6b8f3f2a7c41")
CONCURRENCY = 8


def sign(secret: str, body: bytes) -> str:
    """``X-Callcenter-Signature``: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(hook: WebhookConfig, attempts: int) -> float:
    """Seconds before try ``attempts + 1``, after ``attempts`` failed tries."""
    return min(hook.retry_max_seconds, hook.retry_seconds * 2 ** max(0, attempts - 1))


def _retryable(status: int) -> bool:
    return status >= 500 or status in (408, 429)


@dataclass(slots=True)
class Delivery:
    id: str
    url: str
    kind: str
    body: bytes
    attempts: int = 0
    due: float = 0.0


class Webhooks:
    """Subscribes to ``writer.hub``; ``run`` sends what is due until cancelled."""

    def __init__(self, *, writer: Writer, db: Database, config: Callable[[], Config]) -> None:
        self.writer, self.db, self.config = writer, db, config
        self.instance = config().engine.instance
        self.pending: dict[str, Delivery] = {}
        self._due: list[tuple[float, str]] = []
        self._wakeup = asyncio.Event()
        self._calls: dict[str, dict[str, Any]] = {}    # call id -> caller fields, while the call lasts
        self.delivered = 0
        self.failed = 0
        self._progress = asyncio.Event()
        self.loaded = asyncio.Event()    # what an earlier run owed is scheduled again
        writer.hub.subscribe(self.publish)

    async def wait_until(self, condition: Callable[[Webhooks], bool]) -> None:
        """Until ``condition(self)`` holds, checked after every try (tests, the demo)."""
        while not condition(self):
            self._progress.clear()
            await self._progress.wait()

    # -- the hub's side (synchronous, must not block) -------------------------------------------
    def publish(self, kind: str, data: dict[str, Any]) -> None:
        call_id = data.get("call_id")
        if kind == "call.started" and call_id:
            self._calls[call_id] = {k: data[k] for k in CALLER_FIELDS if k in data}
        elif call_id in self._calls:
            data = {**self._calls[call_id], **data}   # a screen pop needs the caller with the offer
        if kind == "call.ended":
            self._calls.pop(call_id, None)
        hooks = [h for h in self.config().webhooks if kind in h.events or "*" in h.events]
        if not hooks:
            return
        at = float(data.get("at") or time.time())
        key = data.get(ONCE[kind]) if kind in ONCE else None
        for hook in hooks:
            delivery_id = str(uuid.uuid5(_NS, f"{kind}|{key}|{hook.url}") if key else uuid.uuid4())
            body = json.dumps({"id": delivery_id, "kind": kind, "at": at, "data": data}, default=str).encode()
            self.writer.submit(Write("webhook_queued", (delivery_id, self.instance, hook.url, kind, body.decode(), at)))
            self._schedule(Delivery(delivery_id, hook.url, kind, body, due=time.time()))

    def _schedule(self, d: Delivery) -> None:
        self.pending[d.id] = d
        heapq.heappush(self._due, (d.due, d.id))
        self._wakeup.set()

    # -- sending --------------------------------------------------------------------------------
    async def run(self) -> None:
        limit = asyncio.Semaphore(CONCURRENCY)
        tasks: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession() as session:
            loader = asyncio.create_task(self._load_outbox())
            try:
                while True:
                    now = time.time()
                    while self._due and self._due[0][0] <= now:
                        _, delivery_id = heapq.heappop(self._due)
                        d = self.pending.get(delivery_id)
                        if d is not None and d.due <= now:
                            await limit.acquire()
                            task = asyncio.create_task(self._send(session, d))
                            tasks.add(task)
                            task.add_done_callback(tasks.discard)
                            task.add_done_callback(lambda _: limit.release())
                    self._wakeup.clear()
                    timeout = self._due[0][0] - time.time() if self._due else None
                    try:
                        async with asyncio.timeout(timeout):
                            await self._wakeup.wait()
                    except TimeoutError:
                        pass
            finally:
                loader.cancel()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(loader, *tasks, return_exceptions=True)

    async def _load_outbox(self) -> None:
        """What an earlier run of this instance still owed (after its spooled writes landed)."""
        await self.writer.caught_up()
        assert self.db.pool is not None
        delay = 1.0
        while True:
            try:
                rows = await outbox.owed(self.db.pool, self.instance)
                break
            except UNAVAILABLE as exc:
                log.warning("webhooks.outbox_unreadable", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)   # back-off while the database is away
                delay = min(60.0, delay * 2)
        loaded = 0
        for r in rows:
            if str(r["id"]) not in self.pending:
                self._schedule(Delivery(str(r["id"]), r["url"], r["kind"], r["body"].encode(), r["attempts"],
                                        float(r["due"])))
                loaded += 1
        if loaded:
            log.info("webhooks.outbox_loaded", deliveries=loaded)
        self.loaded.set()

    async def _send(self, session: aiohttp.ClientSession, d: Delivery) -> None:
        hook = next((h for h in self.config().webhooks if h.url == d.url), None)
        now = time.time()
        bound = log.bind(delivery=d.id, kind=d.kind, url=d.url)
        if hook is None:   # removed from the configuration meanwhile
            self._finish(d, now, None, "the webhook is no longer configured", failed=True, bound=bound)
            return
        d.attempts += 1
        headers = {"Content-Type": "application/json", "X-Callcenter-Event": d.kind, "X-Callcenter-Delivery": d.id,
                   "X-Callcenter-Signature": sign(hook.secret, d.body), "User-Agent": "callcenter-webhooks/1"}
        status: int | None = None
        try:
            async with session.post(d.url, data=d.body, headers=headers, allow_redirects=False,
                                    timeout=aiohttp.ClientTimeout(total=hook.timeout_seconds)) as response:
                status = response.status
                await response.read()
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        now = time.time()
        if error is None:
            self._finish(d, now, status, None, delivered=True, bound=bound)
        elif (status is not None and not _retryable(status) and status >= 300) or d.attempts >= hook.max_attempts:
            self._finish(d, now, status, error, failed=True, bound=bound)
        else:
            d.due = now + backoff(hook, d.attempts)
            bound.info("webhooks.retry", attempt=d.attempts, status=status, error=error, retry_in=round(d.due - now, 2))
            self.writer.submit(Write("webhook_tried", (d.id, d.attempts, now, status, error, False, False, d.due)))
            heapq.heappush(self._due, (d.due, d.id))
            self._wakeup.set()
            self._progress.set()

    def _finish(self, d: Delivery, now: float, status: int | None, error: str | None, *, bound: Any,
                delivered: bool = False, failed: bool = False) -> None:
        self.pending.pop(d.id, None)
        self.writer.submit(Write("webhook_tried", (d.id, d.attempts, now, status, error, delivered, failed, now)))
        if delivered:
            self.delivered += 1
            bound.info("webhooks.delivered", attempt=d.attempts, status=status)
        else:
            self.failed += 1
            bound.warning("webhooks.failed", attempt=d.attempts, status=status, error=error)
        self._progress.set()
