"""Inbound calls in the shell: ARI events in, core events to each call's session, commands out.

This module holds no rules. It translates ARI's JSON into :mod:`engine.core.call` events, carries
out the commands the core returns (REST requests, database writes) and, after every ARI
(re)connect, reconciles with what Asterisk has: channels still in our application that no session
knows are adopted; calls the database thinks are open but whose channel is gone are closed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog

from .ari import AriClient, AriError, path
from .config import Config
from .core import call as core
from .core.common import Command
from .db import Database, Write, Writer
from .logsetup import get_logger
from .session import Session

__all__ = ["CallManager", "call_id_for"]

log = get_logger("calls")

# Call ids are derived from the channel id, so adopting a channel after a restart (or replaying a
# spooled write) finds the same row instead of making a second one.
_NAMESPACE = uuid.UUID("5b0f8e39-33a4-4f7c-9a43-6c1f0a8e2d11")
# Every bridge the engine creates is named with this prefix, so reconciliation knows its own.
BRIDGE_PREFIX = "cc-"


def call_id_for(channel_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, channel_id))


def _epoch(iso: str | None, default: float) -> float:
    if not iso:
        return default
    try:
        return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    except ValueError:
        return default


def _target_channel(event: dict[str, Any]) -> str | None:
    channel = event.get("channel")
    if isinstance(channel, dict):
        return channel.get("id")
    playback = event.get("playback")
    if isinstance(playback, dict):
        uri = playback.get("target_uri", "")
        if uri.startswith("channel:"):
            return uri[len("channel:"):]
    return None


class CallManager:
    def __init__(self, *, ari: AriClient, db: Database, writer: Writer, config: Callable[[], Config],
                 spawn: Callable[[Any], asyncio.Task[None]]) -> None:
        self.ari = ari
        self.db = db
        self.writer = writer
        self.config = config  # read at each call's arrival: a reload applies to new calls
        self.spawn = spawn
        self.sessions: dict[str, Session[core.CallState]] = {}
        self.handled = 0  # calls whose session ended (finished, or crashed and logged)
        self._changed = asyncio.Event()
        self.lost_swept = asyncio.Event()  # set once open rows were checked against Asterisk

    # -- events from the ARI reader (synchronous: route only) -----------------------------------
    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "StasisStart":
            self._stasis_start(event)
            return
        channel_id = _target_channel(event)
        session = self.sessions.get(channel_id) if channel_id else None
        if session is None:
            return
        translated = self._translate(event)
        if translated is not None:
            session.post(translated)

    def _translate(self, event: dict[str, Any]) -> core.Event | None:
        kind = event.get("type")
        if kind == "PlaybackFinished":
            pb = event["playback"]
            return core.PlaybackDone(playback_id=pb.get("id", ""), ok=pb.get("state") != "failed")
        if kind == "ChannelHangupRequest":
            return core.HangupRequested(cause=None if event.get("soft") else event.get("cause"))
        if kind == "StasisEnd":
            return core.ChannelGone()
        if kind == "ChannelDestroyed":
            return core.ChannelGone(cause=event.get("cause"), cause_text=event.get("cause_txt", ""))
        return None

    def _stasis_start(self, event: dict[str, Any]) -> None:
        channel = event["channel"]
        if channel["id"] in self.sessions:
            return  # already adopted during reconciliation
        args = event.get("args") or []
        role = args[0] if args else "inbound"
        if role != "inbound":
            log.warning("calls.unknown_role", channel_id=channel["id"], role=role, args=args)
            self.spawn(self._hang_up_stray(channel["id"], f"no handler for Stasis role {role!r}"))
            return
        self._begin(channel, adopted=False)

    def _begin(self, channel: dict[str, Any], *, adopted: bool) -> None:
        cfg = self.config()
        now = time.time()
        channel_id = channel["id"]
        caller = channel.get("caller") or {}
        dialed = (channel.get("dialplan") or {}).get("exten", "")
        arrival = core.Arrival(
            call_id=call_id_for(channel_id), channel_id=channel_id,
            caller_number=str(caller.get("number", "")), caller_name=str(caller.get("name", "")),
            dialed_number=str(dialed), prompt=cfg.route(dialed).prompt,
            started_at=_epoch(channel.get("creationtime"), now),
            already_answered=channel.get("state") == "Up", adopted=adopted)
        t = cfg.timeouts
        limits = core.Limits(t.answer_seconds, t.playback_seconds, t.hangup_seconds, t.max_call_seconds)
        state, first = core.start(arrival, limits, now)
        bound = log.bind(call_id=arrival.call_id, channel_id=channel_id)
        session: Session[core.CallState] = Session(
            state=state, handle=core.handle, execute=self._execute, phase_of=lambda s: s.phase,
            is_finished=lambda s: s.phase is core.Phase.ENDED, log=bound, on_transition=self._changed.set)
        self.sessions[channel_id] = session
        self._changed.set()
        bound.info("call.arrived", caller=arrival.caller_number, dialed=arrival.dialed_number,
                   prompt=arrival.prompt, adopted=adopted, answered=arrival.already_answered)
        self.spawn(self._run(session, first))

    async def _run(self, session: Session[core.CallState], first: list[Command]) -> None:
        structlog.contextvars.bind_contextvars(call_id=session.state.call_id, channel_id=session.state.channel_id)
        try:
            await session.run(first)
        except asyncio.CancelledError:
            session.log.info("call.left_for_adoption", phase=session.state.phase.value)
            raise
        except Exception:
            # A bug, not a call event: never leave the caller in silence or the record open.
            session.log.exception("call.session_crashed", phase=session.state.phase.value)
            self.writer.submit(Write("call_ended", (session.state.call_id, time.time(), None,
                                                    "engine error", "system")))
            await self._hang_up_stray(session.state.channel_id, "session crashed")
        finally:
            self.sessions.pop(session.state.channel_id, None)
            if session.finished:
                self.handled += 1
                self._changed.set()

    async def wait_until(self, condition: Callable[[CallManager], bool]) -> None:
        """Until ``condition(self)`` holds, checked after every call arrival, transition and end
        (for tests, the demo and benchmarks)."""
        while not condition(self):
            self._changed.clear()
            await self._changed.wait()

    async def wait_handled(self, count: int) -> None:
        """Until ``count`` calls have ended in this run."""
        await self.wait_until(lambda m: m.handled >= count)

    # -- commands -------------------------------------------------------------------------------
    async def _execute(self, session: Session[core.CallState], command: Command) -> None:
        s = session.state
        if isinstance(command, core.RecordStarted):
            self.writer.submit(Write("call_started", (
                command.call_id, command.channel_id, command.direction, command.caller_number,
                command.caller_name, command.dialed_number, command.started_at)))
        elif isinstance(command, core.RecordAnswered):
            self.writer.submit(Write("call_answered", (command.call_id, command.at)))
        elif isinstance(command, core.RecordEnded):
            self.writer.submit(Write("call_ended", (command.call_id, command.at, command.cause,
                                                    command.cause_text, command.ended_by)))
        elif isinstance(command, core.RecordEvent):
            self.writer.submit(Write("call_event", (str(uuid.uuid4()), command.call_id, command.at,
                                                    command.kind, command.detail)))
        elif isinstance(command, core.Answer):
            if await self._rest(session, "answer", "POST", path("channels", s.channel_id, "answer")):
                session.post(core.Answered())
        elif isinstance(command, core.Play):
            await self._rest(session, "play", "POST",
                             path("channels", s.channel_id, "play", command.playback_id),
                             media=f"sound:{command.sound}")
        elif isinstance(command, core.Hangup):
            await self._rest(session, "hangup", "DELETE", path("channels", s.channel_id), reason=command.reason)
        elif isinstance(command, core.Finish):
            session.log.info("call.finished", handled=self.handled + 1)
        else:
            raise TypeError(f"no executor for {command!r}")

    async def _rest(self, session: Session[core.CallState], what: str, method: str, url_path: str,
                    **params: Any) -> bool:
        try:
            await self.ari.request(method, url_path, params=params)
            return True
        except AriError as exc:
            session.log.warning("call.request_failed", request=what, status=exc.status, error=exc.message)
            session.post(core.RequestFailed(command=what, gone=exc.gone, detail=str(exc)))
            return False

    async def _hang_up_stray(self, channel_id: str, why: str) -> None:
        try:
            await self.ari.delete(path("channels", channel_id), reason="normal")
        except AriError as exc:
            log.warning("calls.stray_hangup_failed", channel_id=channel_id, error=str(exc))
        else:
            log.info("calls.stray_hung_up", channel_id=channel_id, why=why)

    # -- reconciliation -------------------------------------------------------------------------
    async def reconcile(self) -> None:
        """After each ARI (re)connect: adopt our channels that no session knows."""
        app = self.config().asterisk.ari.app
        channels = await self.ari.get("/channels")
        adopted = 0
        for ch in channels:
            if ch["id"] in self.sessions or not _in_app(ch, app):
                continue
            self._begin(ch, adopted=True)
            adopted += 1
        removed = 0
        for bridge in await self.ari.get("/bridges"):
            # Bridges outlive the app's websocket; ours are named with BRIDGE_PREFIX. An empty one
            # is left over from a run that stopped mid-call.
            if str(bridge.get("name", "")).startswith(BRIDGE_PREFIX) and not bridge.get("channels"):
                try:
                    await self.ari.delete(path("bridges", bridge["id"]))
                    removed += 1
                except AriError as exc:
                    log.warning("calls.bridge_cleanup_failed", bridge_id=bridge["id"], error=str(exc))
        log.info("calls.reconciled", channels=len(channels), adopted=adopted, live=len(self.sessions),
                 bridges_removed=removed)
        if self.db.ready.is_set():
            await self.close_lost_calls({ch["id"] for ch in channels})

    async def close_lost_calls(self, live_channels: set[str] | None = None) -> int:
        """Close rows left open by a run that stopped while their channel went away."""
        if live_channels is None:
            live_channels = {ch["id"] for ch in await self.ari.get("/channels")}
        assert self.db.pool is not None
        rows = await self.db.pool.fetch("SELECT id, channel_id FROM calls WHERE ended_at IS NULL")
        now = time.time()
        closed = 0
        for row in rows:
            if row["channel_id"] in live_channels or row["channel_id"] in self.sessions:
                continue
            self.writer.submit(Write("call_ended", (str(row["id"]), now, None,
                                                    "channel gone while the engine was away", "system")))
            closed += 1
        if closed:
            log.warning("calls.closed_lost", calls=closed)
        self.lost_swept.set()
        return closed


def _in_app(channel: dict[str, Any], app: str) -> bool:
    dialplan = channel.get("dialplan") or {}
    if dialplan.get("app_name") != "Stasis":
        return False
    return str(dialplan.get("app_data", "")).split(",")[0] == app
