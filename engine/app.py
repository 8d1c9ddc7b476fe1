"""Wiring: build the adapters and managers, run them in one TaskGroup, stop cleanly.

Start-up never waits for a dependency: ARI, AMI and PostgreSQL are each connected (and
reconnected) by their own task, and ``/healthz`` says which are up. Shutdown, on ``stop``:

1. calls in progress get ``engine.shutdown_grace_seconds`` to finish;
2. the rest are left up in Asterisk (their sessions are cancelled, their rows stay open) for the
   next start to adopt;
3. queued database writes get a few seconds to land; what cannot stays in the journal
   (``<state_dir>/journal/``, written as each write was queued) for the next start;
4. connections close.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web

from engine.runtime.acdservice import AcdService
from engine.adapters.ami import Ami
from engine.adapters.ari import AriClient, AriError
from engine.runtime.calls import CallManager
from engine.runtime.dialer import Dialer
from engine.runtime.face import LiveView
from engine.http.server import build_app
from engine.runtime.phones import Phones
from engine.runtime.router import EVENTS, Router
from engine.adapters.systemd import notify
from engine.adapters.webhooks import Webhooks
from engine.runtime.recordings import Recordings
from engine.config.model import Config
from engine.runtime.reloader import Reloader
from engine.store.db import Database, Writer
from engine.shared.logsetup import get_logger

__all__ = ["Engine"]

log = get_logger("engine")

# Sections whose changes a reload cannot apply to live connections.
RESTART_SECTIONS = ("engine", "asterisk", "database", "http", "logging", "recording")


class Engine:
    def __init__(self, config: Config, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.stop = asyncio.Event()
        self.started = asyncio.Event()
        self.db = Database(config.database)
        self.writer = Writer(self.db, config.engine.state_dir,
                             journal_max_bytes=config.database.journal_max_mb * 1024 * 1024)
        self.ami = Ami(config.asterisk.ami)
        self.ari: AriClient | None = None
        self.calls: CallManager | None = None
        self.acd: AcdService | None = None
        self.dialer: Dialer | None = None
        self.phones: Phones | None = None
        self.webhooks = Webhooks(writer=self.writer, db=self.db, config=lambda: self.config)   # to the CRM
        self.http_port: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reloads = Reloader()

    # -- reload -----------------------------------------------------------------------------------
    def reload(self) -> asyncio.Task[bool] | None:
        """SIGHUP: read the config file in a worker thread while calls go on with the old one, then
        swap it in; keep the old one (and say why) if the new one is invalid (engine/runtime/reloader.py).
        The task says whether a new configuration was applied; None without a file."""
        if self.config_path is None:
            return None
        path = self.config_path

        def apply(new: Config) -> None:   # on the loop, in one go: nothing runs between these steps
            changed = [s for s in RESTART_SECTIONS if getattr(new, s) != getattr(self.config, s)]
            if changed:
                log.warning("config.restart_needed", sections=changed,
                            note="these sections keep their old values until the engine restarts")
                new = _keep_sections(new, self.config, changed)
            acd_changed = (new.agents, new.queues) != (self.config.agents, self.config.queues)
            self.config = new
            if acd_changed and self.acd is not None:
                self.acd.reconfigure(new)  # agents stay logged in, callers keep their place
            if self.dialer is not None:
                self.dialer.changed.set()   # campaigns added, changed or made inactive
            log.info("config.reloaded", file=str(path))

        reloads = self._reloads   # one read at a time
        return reloads.request(path, apply)

    # -- health -----------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        ari_up = self.ari is not None and self.ari.connected.is_set()
        ami_up: bool | str = self.ami.logged_in if self.config.asterisk.ami.enabled else "disabled"
        db_up = self.db.ready.is_set() and self.db.last_error is None
        journal = self.writer.journal
        return {
            "ok": ari_up and ami_up is not False and db_up and not journal.full and journal.error is None,
            "ari": ari_up, "ami": ami_up, "database": db_up,
            "database_error": self.db.last_error,
            "live_calls": len(self.calls.sessions) if self.calls else 0,
            "pending_writes": self.writer.pending,
            "journal_bytes": journal.bytes, "journal_max_bytes": journal.max_bytes,
            "journal_full": journal.full, "journal_error": journal.error,
        }

    # -- run --------------------------------------------------------------------------------------
    async def run(self) -> None:
        cfg = self.config
        cfg.engine.state_dir.mkdir(parents=True, exist_ok=True)
        self.writer.open()
        runner: web.AppRunner | None = None
        try:
            async with AriClient(cfg.asterisk.ari) as ari, asyncio.TaskGroup() as tg:
                self.ari = ari
                self._tg = tg
                config = lambda: self.config  # noqa: E731 - always the current one, after reloads
                router = Router(unknown=lambda event, role: self.calls.unknown_role(event, role))
                self.acd = AcdService(ari=ari, db=self.db, writer=self.writer, config=config, router=router)
                recordings = Recordings(ari=ari, writer=self.writer, directory=cfg.recording.dir,
                                        fmt=cfg.recording.format)
                self.calls = CallManager(ari=ari, db=self.db, writer=self.writer, config=config,
                                         spawn=self._spawn, acd=self.acd, recordings=recordings, router=router)
                self.phones = Phones(calls=self.calls, acd=self.acd, config=config)
                router.start_role("agent", self.phones.on_start)
                self.dialer = Dialer(calls=self.calls, acd=self.acd, config=config, spawn=self._spawn)
                # the one place that wires: who each of them calls on, through engine/runtime/ports.py
                self.acd.attach(self.calls)
                self.calls.attach(self.dialer)
                writer_task = tg.create_task(self.writer.run(), name="db-writer")
                background = [
                    tg.create_task(self._connect_db(), name="db-connect"),
                    tg.create_task(self.acd.run(), name="acd"),
                    tg.create_task(ari.run_events(self.calls.on_event, self.calls.reconcile, events=EVENTS),
                                   name="ari-events"),
                    tg.create_task(self.dialer.run(), name="dialer"),
                    tg.create_task(self.webhooks.run(), name="webhooks"),
                ]
                if cfg.asterisk.ami.enabled:
                    self.ami.start()
                if cfg.http.enabled:
                    runner = await self._start_http()
                log.info("engine.started", app=cfg.asterisk.ari.app, http_port=self.http_port)
                self.started.set()
                notify("READY=1")   # systemd's Type=notify (packaging/callcenter.service); no-op elsewhere
                await self.stop.wait()
                await self._shutdown(background, writer_task)
        finally:
            self.ami.close()
            if self.calls is not None:
                await self.calls.close()
            if runner is not None:
                await runner.cleanup()
            self.writer.close()
            await self.db.close()
            log.info("engine.stopped", written=self.writer.written)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self._tg.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _connect_db(self) -> None:
        await self.db.connect()
        assert self.calls is not None and self.ari is not None
        # Each ARI (re)connect closes lost calls when the database is up; if the database came
        # second, do it once here. (Both may run: closing a call is idempotent.)
        await self.ari.connected.wait()
        await self.writer.caught_up()   # the rows as the run before left them, journal included
        if not self.calls.lost_swept.is_set():
            try:
                await self.calls.close_lost_calls()
            except AriError as exc:  # the next ARI (re)connect tries again
                log.warning("calls.close_lost_failed", error=str(exc))

    async def _shutdown(self, background: list[asyncio.Task[Any]], writer_task: asyncio.Task[Any]) -> None:
        assert self.calls is not None
        grace = self.config.engine.shutdown_grace_seconds
        live = len(self.calls.sessions)
        log.info("engine.stopping", live_calls=live, grace_seconds=grace)
        notify("STOPPING=1")
        deadline = time.monotonic() + grace
        while self.calls.sessions and time.monotonic() < deadline:
            done = [s.done.wait() for s in list(self.calls.sessions.values())]
            try:
                async with asyncio.timeout(deadline - time.monotonic()):
                    await asyncio.gather(*done)
            except TimeoutError:
                break
        left = len(self.calls.sessions)
        if left:
            log.warning("engine.calls_left_for_adoption", calls=left)
        for task in [*background, *self._tasks]:
            task.cancel()
        await asyncio.gather(*background, *self._tasks, return_exceptions=True)
        if self.db.ready.is_set() and self.writer.pending:
            try:
                async with asyncio.timeout(5.0):
                    await self.writer.wait_idle()
            except TimeoutError:
                pass
        writer_task.cancel()

    async def _start_http(self) -> web.AppRunner:
        assert self.acd is not None and self.calls is not None and self.dialer is not None and self.phones is not None
        # the face gets the engine's view (snapshots and named actions), never the services themselves
        app = build_app(LiveView(config=lambda: self.config, health=self.health, db=self.db, hub=self.writer.hub,
                                 acd=self.acd, calls=self.calls, dialer=self.dialer, phones=self.phones))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.config.http.bind, self.config.http.port)
        await site.start()
        self.http_port = runner.addresses[0][1] if runner.addresses else self.config.http.port
        return runner


def _keep_sections(new: Config, old: Config, sections: list[str]) -> Config:
    return replace(new, **{s: getattr(old, s) for s in sections})
