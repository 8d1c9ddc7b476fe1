"""Calls in the shell: ARI events in, core events to each session, commands out.

This module holds no rules. Every channel in our Stasis application belongs to one handler:

- a caller's channel (Stasis role ``inbound``) to its call session (:mod:`engine.core.call`);
- an agent's leg (role ``agentleg``, originated by the ACD) to the ACD service until the agent
  answers and the ACD connects it, then to the caller's session;
- an agent's feature-code call (role ``agent``) to :mod:`engine.runtime.phones` (app.py registers it with the router).

The manager translates ARI's JSON into core events, has the commands the core returns carried
out (engine/runtime/calleffects.py: REST requests, database writes, events for the ACD) and, after every ARI (re)connect, reconciles
with what Asterisk has: channels still in our application that no session knows are adopted (a
waiting caller takes their place in line back, a connected call stays connected); left-over
agent legs and bridges are cleaned up; calls the database thinks are open but whose channel is
gone are closed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog

from engine.runtime.acdservice import AcdService
from engine.adapters.ari import AriClient, AriError, path
from engine.runtime.callbacks import Callbacks
from engine.config.model import Config
from engine.core import acd as A
from engine.core import call as core
from engine.core.common import Command, Event
from engine.store.db import Database, Write, Writer
from engine.shared.logsetup import get_logger
from engine.runtime.calleffects import CallEffects, bridge_id
from engine.runtime.reconcile import BRIDGE_PREFIX, Reconciler, call_id_for
from engine.runtime.recordings import Recordings
from engine.runtime.ports import AgentLeg, NoOutbound, Outbound
from engine.runtime.router import Router
from engine.runtime.transfers import destination_of, target_of
from engine.runtime.session import Session

__all__ = ["BRIDGE_PREFIX", "CallManager", "call_id_for", "translate"]

log = get_logger("calls")

def _epoch(iso: str | None, default: float) -> float:
    if not iso:
        return default
    try:
        return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    except ValueError:
        return default


def translate(event: dict[str, Any], *, agent_side: bool = False) -> Event | None:
    """An ARI event about a channel -> the core event for the session that owns the channel."""
    kind = event.get("type")
    if kind == "PlaybackFinished":
        pb = event["playback"]
        return core.PlaybackDone(playback_id=pb.get("id", ""), ok=pb.get("state") != "failed")
    if kind == "ChannelDtmfReceived":
        return core.Dtmf(str(event.get("digit", "")), from_agent=agent_side)
    if kind == "ChannelHold" or kind == "ChannelUnhold":   # a phone's hold key (re-INVITE sendonly)
        return core.HoldRequest(kind == "ChannelHold", "agent" if agent_side else "caller")
    if agent_side:
        return core.AgentGone() if kind in ("StasisEnd", "ChannelDestroyed") else None
    if kind == "ChannelHangupRequest":
        return core.HangupRequested(cause=None if event.get("soft") else event.get("cause"))
    if kind == "StasisEnd":
        return core.ChannelGone()
    if kind == "ChannelDestroyed":
        return core.ChannelGone(cause=event.get("cause"), cause_text=event.get("cause_txt", ""))
    return None


def endpoint_of(channel_name: str) -> str:
    """``PJSIP/agent9001-0000000a`` -> ``PJSIP/agent9001``."""
    head, sep, _ = channel_name.rpartition("-")
    return head if sep else channel_name


class CallManager:
    def __init__(self, *, ari: AriClient, db: Database, writer: Writer, config: Callable[[], Config],
                 spawn: Callable[[Any], asyncio.Task[None]], acd: AcdService, recordings: Recordings,
                 router: Router | None = None) -> None:
        self.ari = ari
        self.db = db
        self.writer = writer
        self.config = config  # read at each call's arrival: a reload applies to new calls
        self.spawn = spawn
        self.acd = acd
        self.recordings = recordings
        self.callbacks = Callbacks(calls=self, acd=acd)
        self.outbound: Outbound = NoOutbound()   # the dialer, when one runs (attach(), by app.py)
        # call id -> a function shown every command its session carries out (the dialer follows
        # its answered calls this way: connected, abandoned, ended)
        self.observers: dict[str, Callable[[Command], None]] = {}
        self.sessions: dict[str, Session[core.CallState]] = {}  # caller channel id -> session
        self.by_call: dict[str, Session[core.CallState]] = {}   # call id -> session
        # Which owner hears each channel (engine/runtime/router.py): the calls' own channels and their
        # other legs are followed here; new inbound channels start calls; recordings go to theirs.
        self.router = router if router is not None else Router(unknown=self.unknown_role)
        self.router.start_role("inbound", self._inbound)
        for kind in ("RecordingFinished", "RecordingFailed"):
            self.router.on_kind(kind, lambda event: self.recordings.on_event(event))
        self._followed: dict[str, set[str]] = {}  # call id -> the other legs its session follows
        self.effects = CallEffects(self)   # every command a call's machine returns, carried out
        self.handled = 0  # calls whose session ended (finished, or crashed and logged)
        self._changed = asyncio.Event()
        self.reconciler = Reconciler(self)
        self.lost_swept = self.reconciler.lost_swept  # set once open rows were checked against Asterisk

    def attach(self, outbound: Outbound) -> None:
        """The dialer that preview calls and campaign dispositions are asked of (engine/app.py wires it)."""
        self.outbound = outbound

    # -- events from the ARI reader (synchronous: route only) -----------------------------------
    def on_event(self, event: dict[str, Any]) -> None:
        self.router.dispatch(event)

    def _inbound(self, event: dict[str, Any]) -> None:
        channel = event["channel"]
        if self.writer.journal.full:
            # Nothing could be recorded: refuse the call rather than lose its record.
            log.error("calls.refused_journal_full", channel_id=channel["id"], journal_bytes=self.writer.journal.bytes)
            self.spawn(self.hang_up(channel["id"], "write journal full", reason="congestion"))
        else:
            self._begin(channel, adopted=False)

    def unknown_role(self, event: dict[str, Any], role: str) -> None:
        channel_id = event["channel"]["id"]
        log.warning("calls.unknown_role", channel_id=channel_id, role=role, args=event.get("args") or [])
        self.spawn(self.hang_up(channel_id, f"no handler for Stasis role {role!r}"))

    @staticmethod
    def _to_session(session: Session[core.CallState], event: dict[str, Any]) -> None:
        translated = translate(event)
        if translated is not None:
            session.post(translated)

    def begin_outbound(self, channel: dict[str, Any], route: core.Route, *, number: str, name: str,
                       observer: Callable[[Command], None]) -> str:
        """An outbound call the callee answered becomes a call like any other (queued for the
        campaign's agents, bridged, recorded); ``observer`` sees its session's commands."""
        call_id = call_id_for(channel["id"])
        self.observers[call_id] = observer
        channel = {**channel, "caller": {"number": number, "name": name}, "state": "Up",
                   "dialplan": {**(channel.get("dialplan") or {}), "exten": number}}
        self._begin(channel, adopted=False, route=route, direction="outbound")
        return call_id

    def _begin(self, channel: dict[str, Any], *, adopted: bool, queued: tuple[str, float, float] | None = None,
               agent: tuple[str, str] | None = None, route: core.Route | None = None,
               direction: str = "inbound", post_call: tuple[str, str] | None = None) -> None:
        cfg = self.config()
        now = time.time()
        channel_id = channel["id"]
        caller = channel.get("caller") or {}
        dialed = str((channel.get("dialplan") or {}).get("exten", ""))
        if route is None:
            route = _route(cfg, dialed, queued[0] if queued else None)
        arrival = core.Arrival(
            call_id=call_id_for(channel_id), channel_id=channel_id,
            caller_number=str(caller.get("number", "")), caller_name=str(caller.get("name", "")),
            dialed_number=dialed, route=route, started_at=_epoch(channel.get("creationtime"), now),
            already_answered=channel.get("state") == "Up", adopted=adopted,
            queued_since=queued[1] if queued else None, queued_at=queued[2] if queued else None, agent=agent,
            post_call=post_call, library=cfg.trees,
            queue_routes={q.name: _queue_route(cfg, q.name, 0) for q in cfg.queues}, direction=direction)
        t = cfg.timeouts
        limits = core.Limits(t.answer_seconds, t.playback_seconds, t.hangup_seconds, t.max_call_seconds)
        state, first = core.start(arrival, limits, now)
        bound = log.bind(call_id=arrival.call_id, channel_id=channel_id)
        session: Session[core.CallState] = Session(
            state=state, handle=core.handle, execute=self._execute, phase_of=lambda s: s.phase,
            is_finished=lambda s: s.phase is core.Phase.ENDED, log=bound, on_transition=self._changed.set)
        self.sessions[channel_id] = session
        self.router.follow(channel_id, lambda event: self._to_session(session, event))
        self.by_call[arrival.call_id] = session
        if agent is not None:
            self._follow_agent(session, agent[1])
        self._changed.set()
        bound.info("call.arrived", caller=arrival.caller_number, dialed=dialed, prompt=route.prompt,
                   queue=route.queue, ivr=route.ivr, adopted=adopted, answered=arrival.already_answered)
        self.spawn(self._run(session, first))

    def _follow_agent(self, session: Session[core.CallState], agent_channel: str) -> None:
        self._follow(session, agent_channel, self.other_leg(session, agent_channel))

    def _follow(self, session: Session[core.CallState], channel: str, route: Callable[[dict[str, Any]], None]) -> None:
        """Route ``channel``'s events to ``route`` until the channel is gone or the session ends,
        whichever comes first (then :meth:`_let_go` drops what its session still follows)."""
        self.router.follow(channel, route)
        self.track(session, channel)

    def track(self, session: Session[core.CallState], channel: str) -> None:
        self._followed.setdefault(session.state.call_id, set()).add(channel)

    def other_leg(self, session: Session[core.CallState], channel: str) -> Callable[[dict[str, Any]], None]:
        """The events of a call's other leg (an agent's, a transfer's) as call events. Its end is
        its last word: after it nothing is followed, so nothing keeps the session alive."""
        def route(event: dict[str, Any]) -> None:
            if event.get("type") == "ChannelTransfer":
                self._phone_transfer(session, channel, event)
                return
            translated = translate(event, agent_side=True)
            if isinstance(translated, core.AgentGone):
                self.router.forget(channel)
            if translated is not None:
                session.post(translated)
        return route

    def _phone_transfer(self, session: Session[core.CallState], channel: str, event: dict[str, Any]) -> None:
        """The agent's phone sent a REFER (its transfer key): a blind transfer to what it dialled, or
        refused (an attended transfer, a destination that names nothing) with the phone told so."""
        dialled = destination_of(event)
        if self.resolve_transfer(session, dialled, "phone") is None:
            self.spawn(self._refer_answer(channel, "channel_declined"))

    def resolve_transfer(self, session: Session[core.CallState], dialled: str | None,
                         by: str) -> tuple[str, str] | None:
        """What the agent dialled (a REFER's destination, keyed digits) as a blind transfer posted to
        the call; None (logged, and a line of the call's history) when it names nothing."""
        target = target_of(self.config(), dialled) if dialled is not None else None
        queue = self._agent_queue(session, target[1]) if target is not None and target[0] == "agent" else None
        if target is None or (target[0] == "agent" and queue is None):
            why = ("attended" if dialled is None else "nothing" if target is None else
                   "the agent themself" if target[1] == session.state.agent_id else "an agent not logged in")
            session.log.info("call.transfer_refused", dialled=dialled, by=by, why=why)
            self.writer.submit(Write("call_event", (str(uuid.uuid4()), session.state.call_id, time.time(),
                                                    "transfer-refused", f"{dialled or 'attended'} by {by}: {why}")))
            return None
        session.post(core.BlindTransfer(target[0], target[1], by, queue))
        return target

    def _agent_queue(self, session: Session[core.CallState], agent_id: str) -> str | None:
        """The queue a transfer to ``agent_id`` waits in: the call's own if they are logged in to
        it, else the first of theirs (None: logged out, or the call's own agent: nobody to transfer to)."""
        agent = self.acd.acd.agents.get(agent_id)
        if agent is None or not agent.queues or agent_id == session.state.agent_id:
            return None
        here = session.state.route.queue
        return here if here in agent.queues else sorted(agent.queues)[0]

    async def _refer_answer(self, channel: str, state: str) -> None:
        try:
            await self.ari.post(path("channels", channel, "transfer_progress"), states=state)
        except AriError as exc:
            log.info("calls.transfer_progress_failed", channel_id=channel, error=str(exc))

    async def transfer(self, call_id: str, kind: str, target: str) -> None:
        """The API's blind transfer of ``call_id``'s caller (``kind`` queue, agent, ivr or number);
        returns once the call's machine has it. Refused unless the call is connected to an agent
        (and, to an agent, unless they are logged in)."""
        session = self._connected(call_id, "transferred")
        queue = self._agent_queue(session, target) if kind == "agent" else None
        if kind == "agent" and queue is None:
            raise A.Refused(f"agent {target} is not logged in, or is the call's own agent: nobody to transfer to")
        await session.request(core.BlindTransfer(kind, target, "api", queue))

    async def _run(self, session: Session[core.CallState], first: list[Command]) -> None:
        structlog.contextvars.bind_contextvars(call_id=session.state.call_id, channel_id=session.state.channel_id)
        adopting = False
        try:
            await session.run(first)
        except asyncio.CancelledError:
            session.log.info("call.left_for_adoption", phase=session.state.phase.value)
            adopting = True
            raise
        except Exception:
            # A bug, not a call event: never leave the caller in silence or the record open.
            session.log.exception("call.session_crashed", phase=session.state.phase.value)
            self.record_end(session.state.call_id, time.time(), None, "engine error", "system")
            await self.hang_up(session.state.channel_id, "session crashed")
            if session.state.agent_id is not None:
                self.acd.post(A.CallFinished(session.state.agent_id))
        finally:
            s = session.state
            self.sessions.pop(s.channel_id, None)
            self.router.forget(s.channel_id)
            self.by_call.pop(s.call_id, None)
            self.effects.forget(s.call_id)
            self.observers.pop(s.call_id, None)
            self._let_go(session, release=not adopting)
            if session.finished:
                self.handled += 1
                self._changed.set()

    def _let_go(self, session: Session[core.CallState], *, release: bool) -> None:
        """The session is over: stop following its other legs, and (``release``, unless it is left
        for the next start to adopt) undo what reached it too late for its machine: an agent who
        answered as the call ended is hung up and their call is over for the ACD; so is a transfer."""
        for channel in self._followed.pop(session.state.call_id, ()):
            self.router.forget(channel)
        if not release:
            return
        for event in [*session.unhandled, *session.take_pending()]:
            if isinstance(event, core.Connected):
                self.spawn(self.hang_up(event.agent_channel, "the call ended before the agent's answer"))
                self.acd.post(A.CallFinished(event.agent_id))
            elif isinstance(event, core.TransferAnswered):
                self.spawn(self.hang_up(event.channel, "the call ended before the transfer's answer"))

    def record_end(self, call_id: str, at: float, cause: int | None, cause_text: str, ended_by: str) -> None:
        """A call is over: its row closed, and ``call.ended`` told (the CRM's webhooks), however it
        ended: hung up, crashed, or gone while the engine was away."""
        self.writer.submit(Write("call_ended", (call_id, at, cause, cause_text, ended_by)))
        self.writer.hub.publish("call.ended", call_id=call_id, cause=cause, cause_text=cause_text, ended_by=ended_by,
                                at=at)

    async def wait_until(self, condition: Callable[[CallManager], bool]) -> None:
        """Until ``condition(self)`` holds, checked after every call arrival, transition and end
        (for tests, the demo and benchmarks)."""
        while not condition(self):
            self._changed.clear()
            await self._changed.wait()

    async def wait_handled(self, count: int) -> None:
        """Until ``count`` calls have ended in this run."""
        await self.wait_until(lambda m: m.handled >= count)

    # -- from the ACD -----------------------------------------------------------------------------
    def post(self, call_id: str, event: Event) -> None:
        session = self.by_call.get(call_id)
        if session is not None:
            session.post(event)

    async def hold(self, call_id: str, held: bool) -> None:
        """The API's hold key for the agent of ``call_id`` (as the phone's: the caller is held);
        returns once the call's machine has it. Refused unless the call is connected."""
        session = self._connected(call_id, "held")
        await session.request(core.HoldRequest(held, "agent", "api"))

    def _connected(self, call_id: str, done: str) -> Session[core.CallState]:
        """The session of ``call_id`` if it is connected (what the API's hold and transfer act on)."""
        session = self.by_call.get(call_id)
        if session is None or session.state.phase is not core.Phase.CONNECTED:
            raise A.Refused(f"call {call_id} is not connected: only a connected call can be {done}")
        return session

    def is_outbound(self, call_id: str) -> bool:
        return call_id in self.observers

    def caller_of(self, call_id: str) -> str:
        if (preview := self.outbound.preview_caller(call_id)) is not None:
            return preview
        session = self.by_call.get(call_id)
        return session.state.caller_number if session is not None else ""

    def connect(self, leg: AgentLeg, queue: str, *, alive: bool) -> None:
        """The ACD connected ``leg``'s agent to its call (``alive``: the agent's leg is still up;
        the ACD service no longer follows it: from here the call does)."""
        if leg.callback_number is not None and alive:
            self.callbacks.begin(leg, queue)  # the agent is on: now dial the customer
            return
        session = self.by_call.get(leg.call_id)
        if session is None:
            # The caller left as the agent answered: release the agent.
            log.info("calls.connect_too_late", call_id=leg.call_id, agent_id=leg.agent_id)
            self.spawn(self.hang_up(leg.channel_id, "caller already gone"))
            self.acd.post(A.CallFinished(leg.agent_id))
            return
        if not alive:
            # The agent's leg went as it answered: the caller goes back in line, not into silence.
            log.warning("calls.agent_leg_gone_before_bridge", call_id=leg.call_id, agent_id=leg.agent_id)
            self.acd.post(A.ConnectFailed(leg.call_id, leg.agent_id))
            return
        self._follow_agent(session, leg.channel_id)
        session.post(core.Connected(leg.agent_id, leg.channel_id))

    # -- commands ---------------------------------------------------------------------------------
    async def _execute(self, session: Session[core.CallState], command: Command) -> None:
        observer = self.observers.get(session.state.call_id)
        if observer is not None:
            observer(command)
        await self.effects.run(session, command)

    async def close(self) -> None:
        await self.effects.close()

    async def rest(self, session: Session[Any], what: str, method: str, url_path: str, **params: Any) -> bool:
        """One REST request for a session; a failure comes back to it as RequestFailed."""
        try:
            await self.ari.request(method, url_path, params=params)
            return True
        except AriError as exc:
            session.log.warning("call.request_failed", request=what, status=exc.status, error=exc.message)
            session.post(core.RequestFailed(command=what, gone=exc.gone, detail=str(exc)))
            return False

    async def remove_bridge(self, bridge_id: str) -> None:
        """Remove one of our bridges; one already gone (or never made) is fine."""
        try:
            await self.ari.delete(path("bridges", bridge_id))
        except AriError as exc:
            if not exc.gone:
                log.warning("calls.bridge_cleanup_failed", bridge_id=bridge_id, error=str(exc))

    async def hang_up(self, channel_id: str, why: str, reason: str = "normal") -> None:
        """Hang up a channel we no longer need; one already gone is fine, anything else is logged."""
        try:
            await self.ari.delete(path("channels", channel_id), reason=reason)
        except AriError as exc:
            if not exc.gone:
                log.warning("calls.stray_hangup_failed", channel_id=channel_id, error=str(exc))
        else:
            log.info("calls.stray_hung_up", channel_id=channel_id, why=why)

    # -- reconciliation (engine/runtime/reconcile.py) ------------------------------------------------------
    async def reconcile(self) -> None:
        """After each ARI (re)connect: adopt our channels that no session knows, clean the rest."""
        await self.reconciler.reconcile()

    async def close_lost_calls(self, live_channels: set[str] | None = None) -> int:
        return await self.reconciler.close_lost_calls(live_channels)

    def knows(self, channel_id: str) -> bool:
        """Whether a session, a route or the ACD already follows this channel."""
        return channel_id in self.sessions or self.router.follows(channel_id)

    async def adopt(self, channel: dict[str, Any], *, queued: tuple[str, float, float] | None,
                    agent: tuple[str, str] | None, queue: str | None,
                    post_call: tuple[str, str] | None, ivr_steps: int, agent_left: bool) -> None:
        """A channel found in our application at (re)connect becomes a call session again:
        waiting (``queued``: queue, place in line, entered the queue), connected (``agent``), or
        connected with an agent who hung up meanwhile (``agent_left``)."""
        call_id = call_id_for(channel["id"])
        route = _queue_route(self.config(), queue, 0) if queue is not None else None
        # Not bridged and not known waiting: if its last stay was answered, the engine stopped
        # before the bridge (or the database does not know yet); the stay goes on when it queues.
        self.effects.adopted(call_id, ivr_steps=ivr_steps, unbridged=agent is None and queued is None)
        self._begin(channel, adopted=True, queued=queued, agent=agent, route=route, post_call=post_call)
        if agent is not None:
            session = self.by_call[call_id]
            queue = session.state.route.queue or ""
            running = await self.recordings.adopt(bridge_id(call_id), call_id, agent[0], queue)
            if not running and not agent_left and session.state.route.recording == "all":
                # the run before stopped between the bridge and the recording: record the rest
                try:
                    await self.recordings.start(bridge_id(call_id), call_id, agent[0], queue)
                except AriError as exc:
                    session.log.warning("call.request_failed", request="record", error=str(exc))
            if agent_left:
                session.log.info("call.agent_left_while_away", agent_id=agent[0])
                session.post(core.AgentGone())

    def connected_calls(self) -> set[str]:
        return {s.state.call_id for s in self.sessions.values() if s.state.phase is core.Phase.CONNECTED}


def _route(cfg: Config, dialed: str, queue: str | None) -> core.Route:
    """The core's view of where a call goes (``queue`` given: an adopted call's current queue)."""
    target = cfg.route(dialed)
    if queue is not None:
        return _queue_route(cfg, queue, target.priority)
    if target.ivr is not None:
        return core.Route(ivr=target.ivr)
    if target.queue is not None:
        return _queue_route(cfg, target.queue, target.priority)
    return core.Route(prompt=target.prompt or "hello-world")


def _queue_route(cfg: Config, name: str, priority: int) -> core.Route:
    q = next((q for q in cfg.queues if q.name == name), None)
    if q is None:
        return core.Route(queue=name, priority=priority)
    return core.Route(queue=name, priority=priority, music=q.announce.music, music_after=q.announce.music_after_seconds,
                      callback_key=q.callback.key if q.callback else None, recording=q.recording,
                      record_code=cfg.agent_codes.record, transfer_code=cfg.agent_codes.transfer)

