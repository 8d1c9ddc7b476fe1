"""The call sessions' effects executor: each command a call or IVR machine returns, carried out.

One table (``_table``) maps every command type of :mod:`engine.core.call` and :mod:`engine.core.ivr`
to the coroutine that carries it out (REST requests to Asterisk, ordered database writes, events
for the ACD, the IVR's HTTP calls, a transfer's leg); a command with no row is a bug and raises.
A failed request comes back to its session as ``RequestFailed`` (:meth:`CallManager.rest`), so the
machine decides what a failure means. The per-call bookkeeping the commands need (the IVR step
count, whether an adopted caller's stay may resume) lives here and is dropped with :meth:`forget`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from engine.adapters.ari import AriError, path
from engine.adapters.crm import Crm
from engine.core import acd as A
from engine.core import call as core
from engine.core import call_messages, ivr_messages
from engine.core.causes import offer_result
from engine.core.common import Command, Rejected
from engine.core.leg import LegAnswered, LegFailed
from engine.runtime.legs import LegWatch
from engine.runtime.reconcile import BRIDGE_PREFIX, bridge_name
from engine.runtime.session import Session
from engine.shared.logsetup import get_logger
from engine.store.db import Write

if TYPE_CHECKING:
    from engine.runtime.calls import CallManager

__all__ = ["CallEffects"]

log = get_logger("calls")
CallSession = Session[core.CallState]
Effect = Callable[[CallSession, Any], Awaitable[None]]


def bridge_id(call_id: str) -> str:
    return f"{BRIDGE_PREFIX}{call_id}"


class CallEffects:
    def __init__(self, calls: CallManager) -> None:
        self.calls = calls
        self.crm = Crm()   # the IVR's http verb (engine/adapters/crm.py)
        self.ivr_steps: dict[str, int] = {}       # call id -> steps written (their order in the path)
        self._adopted_unbridged: set[str] = set()  # adopted callers whose first queueing may resume a stay
        self._table: dict[type[Command], Effect] = {
            core.RecordStarted: self._record_started, core.RecordAnswered: self._record_answered,
            core.RecordEnded: self._record_ended, core.RecordEvent: self._record_event,
            core.Answer: self._answer, core.Play: self._play, core.StopPlayback: self._stop_playback,
            core.StartMusic: self._start_music, core.StopMusic: self._stop_music, core.Hangup: self._hangup,
            core.JoinQueue: self._join_queue, core.LeaveQueue: self._leave_queue,
            core.RequestCallback: self._request_callback, core.BridgeWith: self._bridge,
            core.StartRecording: self._start_recording, core.HangupAgent: self._hangup_agent,
            core.AgentCallOver: self._agent_call_over, core.Finish: self._finish,
            call_messages.HoldParty: self._hold_party, call_messages.AgentHoldChanged: self._agent_hold,
            call_messages.RecordHold: self._record_hold, call_messages.TransferProgress: self._transfer_progress,
            call_messages.CloseBridge: self._close_bridge, call_messages.RecordTransfer: self._record_transfer,
            call_messages.ResolveTransfer: self._resolve_transfer,
            call_messages.RecordIvr: self._record_ivr, call_messages.RecordVariables: self._record_variables,
            call_messages.DialOut: self._dial_out, core.LeaveBridge: self._leave_bridge,
            ivr_messages.Step: self._ivr_step, ivr_messages.SurveyAnswer: self._survey_answer, ivr_messages.CallbackWanted: self._callback_wanted,
            ivr_messages.SetLanguage: self._set_language, ivr_messages.HttpCall: self._http_call, ivr_messages.RecordMessage: self._record_message,
        }

    async def run(self, session: CallSession, command: Command) -> None:
        effect = self._table.get(type(command))
        if effect is None:
            raise TypeError(f"no executor for {command!r}")
        await effect(session, command)

    # -- per-call bookkeeping ------------------------------------------------------------------------
    def adopted(self, call_id: str, *, ivr_steps: int, unbridged: bool) -> None:
        """A call adopted after a restart: its IVR path goes on where it was, not at step 1; an
        unbridged one's stay may resume when it queues."""
        self.ivr_steps[call_id] = ivr_steps
        if unbridged:
            self._adopted_unbridged.add(call_id)

    def forget(self, call_id: str) -> None:
        self.ivr_steps.pop(call_id, None)
        self._adopted_unbridged.discard(call_id)

    async def close(self) -> None:
        await self.crm.close()

    # -- records ---------------------------------------------------------------------------------------
    def _submit(self, name: str, args: tuple[Any, ...]) -> None:
        self.calls.writer.submit(Write(name, args))

    async def _record_started(self, session: CallSession, c: core.RecordStarted) -> None:
        self._submit("call_started", (c.call_id, c.channel_id, c.direction, c.caller_number, c.caller_name,
                                      c.dialed_number, c.started_at))
        self.calls.writer.hub.publish("call.started", call_id=c.call_id, direction=c.direction,
                                      caller_number=c.caller_number, dialed_number=c.dialed_number, at=c.started_at)

    async def _record_answered(self, session: CallSession, c: core.RecordAnswered) -> None:
        self._submit("call_answered", (c.call_id, c.at))

    async def _record_ended(self, session: CallSession, c: core.RecordEnded) -> None:
        self.calls.record_end(c.call_id, c.at, c.cause, c.cause_text, c.ended_by)

    async def _record_event(self, session: CallSession, c: core.RecordEvent) -> None:
        self._submit("call_event", (str(uuid.uuid4()), c.call_id, c.at, c.kind, c.detail))

    async def _record_hold(self, session: CallSession, c: call_messages.RecordHold) -> None:
        kind = "held" if c.held else "resumed"
        self._submit("call_event", (str(uuid.uuid4()), c.call_id, c.at, kind, f"{c.held_party} by {c.by}"))
        self.calls.writer.hub.publish(f"call.{kind}", call_id=c.call_id, held_party=c.held_party, by=c.by,
                                      agent_id=c.agent_id, at=c.at)

    async def _record_transfer(self, session: CallSession, c: call_messages.RecordTransfer) -> None:
        self._submit("call_event", (str(uuid.uuid4()), c.call_id, c.at, "blind-transfer",
                                    f"{c.kind}:{c.target} by {c.by} from {c.from_agent}"))
        self.calls.writer.hub.publish("call.transferred", call_id=c.call_id, to=c.kind, target=c.target, by=c.by,
                                      from_agent=c.from_agent, at=c.at)

    async def _record_ivr(self, session: CallSession, c: call_messages.RecordIvr) -> None:
        self._submit("call_ivr", (c.call_id, c.tree, c.version))

    async def _record_variables(self, session: CallSession, c: call_messages.RecordVariables) -> None:
        names = sorted(c.variables)
        self._submit("call_variables", (c.call_id, names, [c.variables[n] for n in names]))

    async def _ivr_step(self, session: CallSession, c: ivr_messages.Step) -> None:
        session.log.info("ivr.step", tree=c.tree, node=c.node, verb=c.verb, input=c.input, result=c.result)
        call_id = session.state.call_id
        seq = self.ivr_steps[call_id] = self.ivr_steps.get(call_id, 0) + 1
        self._submit("ivr_step", (str(uuid.uuid4()), call_id, seq, c.at, c.tree, c.version, c.node, c.verb,
                                  c.input, c.result))

    async def _survey_answer(self, session: CallSession, c: ivr_messages.SurveyAnswer) -> None:
        self._submit("survey_answer", (session.state.call_id, c.question, c.answer, c.at))

    async def _callback_wanted(self, session: CallSession, c: ivr_messages.CallbackWanted) -> None:
        self._submit("callback_requested_ivr", (session.state.call_id, c.queue, c.number, c.at))

    # -- the caller's channel ----------------------------------------------------------------------------
    async def _channel(self, session: CallSession, what: str, method: str, *parts: str, **params: Any) -> bool:
        return await self.calls.rest(session, what, method, path("channels", session.state.channel_id, *parts),
                                     **params)

    async def _answer(self, session: CallSession, c: core.Answer) -> None:
        if await self._channel(session, "answer", "POST", "answer"):
            session.post(core.Answered())

    async def _play(self, session: CallSession, c: core.Play) -> None:
        await self._channel(session, "play", "POST", "play", c.playback_id, media=list(c.media))

    async def _stop_playback(self, session: CallSession, c: core.StopPlayback) -> None:
        await self.calls.rest(session, "stop_playback", "DELETE", path("playbacks", c.playback_id))

    async def _start_music(self, session: CallSession, c: core.StartMusic) -> None:
        await self._channel(session, "moh_start", "POST", "moh", mohClass=c.music_class)

    async def _stop_music(self, session: CallSession, c: core.StopMusic) -> None:
        await self._channel(session, "moh_stop", "DELETE", "moh")

    async def _hold_party(self, session: CallSession, c: call_messages.HoldParty) -> None:
        """Music to the held party, and what it says kept from the other side; or both undone."""
        channel = path("channels", c.channel)
        if c.held:
            if await self.calls.rest(session, "hold", "POST", channel + "/moh", mohClass=c.music_class):
                await self.calls.rest(session, "hold", "POST", channel + "/mute", direction="in")
        else:
            if await self.calls.rest(session, "unhold", "DELETE", channel + "/mute", direction="in"):
                await self.calls.rest(session, "unhold", "DELETE", channel + "/moh")

    async def _hangup(self, session: CallSession, c: core.Hangup) -> None:
        await self.calls.rest(session, "hangup", "DELETE", path("channels", session.state.channel_id),
                              reason=c.reason)

    async def _set_language(self, session: CallSession, c: ivr_messages.SetLanguage) -> None:
        await self._channel(session, "language", "POST", "variable", variable="CHANNEL(language)", value=c.code)

    async def _record_message(self, session: CallSession, c: ivr_messages.RecordMessage) -> None:
        s = session.state
        try:
            await self.calls.recordings.voicemail(s.channel_id, s.call_id, c.max_seconds, c.beep,
                                                  lambda ok, secs: session.post(ivr_messages.RecordingDone(ok, secs)))
        except AriError as exc:
            session.post(core.RequestFailed("record", exc.gone, str(exc)))

    async def _http_call(self, session: CallSession, c: ivr_messages.HttpCall) -> None:
        async def ask() -> None:
            done = await self.crm.ask(c)
            if not done.ok:
                session.log.info("ivr.http_failed", url=c.url, error=done.detail)
            session.post(done)
        self.calls.spawn(ask())

    # -- the ACD -------------------------------------------------------------------------------------------
    async def _join_queue(self, session: CallSession, c: core.JoinQueue) -> None:
        if c.call_id in self._adopted_unbridged:
            self._adopted_unbridged.discard(c.call_id)
            self._submit("queue_reopened_unbridged", (c.call_id, c.queue))
        try:
            await self.calls.acd.request(A.Enqueue(c.call_id, c.queue, c.priority, skills=c.skills, only=c.only,
                                                   entered_at=c.entered_at, queued_at=c.queued_at, avoid=c.avoid))
        except Rejected as exc:
            session.log.error("call.queue_refused", queue=c.queue, error=str(exc))
            session.post(core.GaveUp(str(exc)))

    async def _tell_acd(self, event: A.Event) -> None:
        try:
            await self.calls.acd.request(event)
        except Rejected as exc:  # crossed with the ACD's own decision (the call already left): fine
            log.info("calls.acd_declined", acd_event=type(event).__name__, reason=str(exc))

    async def _leave_queue(self, session: CallSession, c: core.LeaveQueue) -> None:
        await self._tell_acd(A.Dequeue(c.call_id))

    async def _request_callback(self, session: CallSession, c: core.RequestCallback) -> None:
        await self._tell_acd(A.ToCallback(c.call_id, c.number))

    async def _agent_call_over(self, session: CallSession, c: core.AgentCallOver) -> None:
        await self._tell_acd(A.CallFinished(c.agent_id))

    async def _agent_hold(self, session: CallSession, c: call_messages.AgentHoldChanged) -> None:
        await self._tell_acd(A.HoldChanged(c.agent_id, c.held))

    # -- the bridge, the agent, the recording, a transfer ----------------------------------------------------
    async def _bridge(self, session: CallSession, c: core.BridgeWith) -> None:
        s = session.state
        bridge = bridge_id(s.call_id)
        # The name says who is connected, so that a restarted engine learns it from Asterisk
        # itself, even if the database never heard of this call (see reconcile).
        name = bridge_name(s.call_id, agent=s.agent_id, leg=c.agent_channel, queue=s.route.queue, after=s.post_call)
        if await self.calls.rest(session, "bridge", "POST", "/bridges", type="mixing", bridgeId=bridge, name=name):
            await self.calls.rest(session, "bridge", "POST", path("bridges", bridge, "addChannel"),
                                  channel=[s.channel_id, c.agent_channel])

    async def _close_bridge(self, session: CallSession, c: call_messages.CloseBridge) -> None:
        s = session.state
        await self.calls.recordings.stop_for(s.call_id)
        await self.calls.remove_bridge(bridge_id(s.call_id))

    async def _resolve_transfer(self, session: CallSession, c: call_messages.ResolveTransfer) -> None:
        self.calls.resolve_transfer(session, c.dialled, "keys")

    async def _transfer_progress(self, session: CallSession, c: call_messages.TransferProgress) -> None:
        await self.calls.rest(session, "transfer_progress", "POST", path("channels", c.channel, "transfer_progress"),
                              states=c.state)

    async def _leave_bridge(self, session: CallSession, c: core.LeaveBridge) -> None:
        s = session.state
        await self.calls.rest(session, "leave_bridge", "POST", path("bridges", bridge_id(s.call_id), "removeChannel"),
                              channel=s.channel_id)

    async def _start_recording(self, session: CallSession, c: core.StartRecording) -> None:
        s = session.state
        try:
            await self.calls.recordings.start(bridge_id(s.call_id), s.call_id, c.agent_id, c.queue)
        except AriError as exc:
            session.log.warning("call.request_failed", request="record", error=str(exc))
            session.post(core.RequestFailed("record", exc.gone, str(exc)))

    async def _hangup_agent(self, session: CallSession, c: core.HangupAgent) -> None:
        self.calls.router.forget(c.agent_channel)
        await self.calls.hang_up(c.agent_channel, "call over")

    async def _finish(self, session: CallSession, c: core.Finish) -> None:
        s = session.state
        await self.calls.recordings.stop_for(s.call_id)
        if s.route.queue is not None or s.route.ivr is not None:  # it may have had a bridge
            await self.calls.remove_bridge(bridge_id(s.call_id))
        session.log.info("call.finished", handled=self.calls.handled + 1)

    async def _dial_out(self, session: CallSession, dial: call_messages.DialOut) -> None:
        """A transfer: originate the target; its answer (or failure) comes back to the call."""
        calls, cfg, s = self.calls, self.calls.config(), session.state
        if "/" in dial.target:
            endpoint = dial.target
        elif re.fullmatch(r"\+?[0-9*#]{1,32}", dial.target):
            endpoint = cfg.outbound.dial.format(number=dial.target)
        else:
            session.post(core.TransferFailed(f"cannot dial {dial.target!r}"))
            return
        channel = f"xfer-{uuid.uuid4()}"

        def tell(command: Command) -> None:
            if isinstance(command, LegAnswered):
                session.post(core.TransferAnswered(channel))
            elif isinstance(command, LegFailed):
                session.post(core.TransferFailed(command.detail or offer_result(command.cause, True)))

        watch = LegWatch(calls.router, channel, tell, after_answer=calls.other_leg(session, channel))
        calls.track(session, channel)
        try:
            await calls.ari.post("/channels", endpoint=endpoint, app=cfg.asterisk.ari.app, channelId=channel,
                                 appArgs=f"transfer,{s.call_id}", timeout=int(dial.timeout),
                                 callerId=cfg.outbound.caller_id or s.caller_number or None)
        except AriError as exc:
            watch.not_placed(str(exc))
