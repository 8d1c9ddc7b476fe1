"""The life of one inbound call in the engine, as a pure state machine.

Theory of operation
-------------------
A call enters when its channel reaches our Stasis application (or when the engine adopts a
channel that was already there at start-up). Its :class:`Route` says what it gets: a prompt and
a hang-up, or a queue. The phases::

    ANSWERING --Answered--> PLAYING --PlaybackDone--> HANGING_UP --ChannelGone--> ENDED
        |                     ^                          ^
        |                     | GaveUp / callback key    |
        +-- (queue route) --> QUEUED --Connected--> CONNECTED --AgentGone--+
    (ChannelGone from any live phase goes straight to ENDED: the caller hung up)

In QUEUED the caller hears music; the ACD (a separate machine) decides when an agent takes the
call and sends :class:`Connected`; meanwhile :class:`Announcement` interrupts the music with the
caller's position and expected wait, and the caller may press the queue's callback key to be
called back, keeping their place. In CONNECTED the caller and the agent's leg share a bridge;
whichever side leaves, the other is hung up and the ACD hears that the agent's call is over.
Either side may hold the other meanwhile (engine/core/call_hold.py: music to the held party, the
agent in ``on_hold``).

Asterisk tells a hang-up in two steps: ChannelHangupRequest carries the cause, then StasisEnd says
the channel has left the application (ChannelDestroyed is not delivered once it has). So
:class:`HangupRequested` remembers the cause and who hung up, and :class:`ChannelGone` ends the call.

Every live phase has a timer or a real-world way out, so no call can stay in the engine forever:
ANSWERING and PLAYING have their own timers, QUEUED ends by the ACD (max wait, overflow) or the
caller, CONNECTED by either party; a ``max`` timer bounds the whole call. The machine also says what
must be recorded (``Record*`` commands): the shell writes those to PostgreSQL, in order.

This module is the machine: how a call starts, each event's handler, the table. The state
(:class:`~engine.core.call_state.CallState`) and the moves the handlers share (route, take the
IVR's outcome, play, hang up, end) are engine/core/call_state.py's; the events and commands are
engine/core/call_messages.py's (both re-exported here, the call machine's vocabulary).
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from engine.core import ivr as ivr_core
from engine.core import ivr_messages
from engine.core.call_messages import (AgentCallOver, AgentGone, Announcement, Arrival, BlindTransfer, BridgeWith,
                                       CALLBACK_CONFIRMED,
                                       Connected, Finish, GaveUp, HangupAgent, HoldRequest, JoinQueue, LeaveBridge,
                                       LeaveQueue, Limits, Phase, RecordAnswered, RecordEnded, RecordEvent,
                                       RecordStarted, ResolveTransfer,
                                       RequestCallback, Route, SORRY, StartMusic, StartRecording, StopMusic,
                                       TransferAnswered, TransferFailed)
from engine.core.call_hold import hold, release_hold
from engine.core.call_transfer import AGENT_KEYS_KEPT, back_to_queue, blind, keyed_transfer
from engine.core.call_state import (CallState, _end, _from_ivr, _hang_up, _play, _release_agent, _route, enter_tree,
                                    start_music, stop_music)
from engine.core.causes import text as describe_cause
from engine.core.channel import (Answer, Answered, ChannelGone, Dtmf, Hangup, HangupRequested, Play, PlaybackDone,
                                 RequestFailed, StopPlayback)
from engine.core.common import CancelTimer, Command, Event, Row, StartTimer, TimerFired, Transitions, stay
from engine.core.ivr import Ivr

__all__ = [
    "AgentCallOver", "AgentGone", "Announcement", "Answer", "Answered", "Arrival", "BridgeWith",
    "BlindTransfer", "CallState", "ChannelGone", "Connected", "Dtmf", "Finish", "GaveUp", "Hangup", "HangupAgent",
    "HangupRequested", "HoldRequest", "JoinQueue", "LeaveQueue", "Limits", "Phase", "Play", "PlaybackDone",
    "RecordAnswered", "RecordEnded", "RecordEvent", "RecordStarted", "RequestCallback", "RequestFailed",
    "Route", "StartMusic", "StartRecording", "StopMusic", "StopPlayback", "handle", "start",
]


def start(event: Arrival, limits: Limits, now: float) -> tuple[CallState, list[Command]]:
    """A new call: the state to keep and the first commands."""
    state = CallState(call_id=event.call_id, channel_id=event.channel_id, phase=Phase.ANSWERING,
                      route=event.route, limits=limits, caller_number=event.caller_number,
                      started_at=event.started_at, answered=event.already_answered, library=event.library,
                      queue_routes=event.queue_routes, ivr=_variables_only(event))
    commands: list[Command] = [
        RecordStarted(call_id=event.call_id, channel_id=event.channel_id, direction=event.direction,
                      caller_number=event.caller_number, caller_name=event.caller_name,
                      dialed_number=event.dialed_number, started_at=event.started_at),
        StartTimer("max", event.started_at + limits.max_call_seconds),
    ]
    if event.adopted:
        commands.append(RecordEvent(event.call_id, now, "adopted", "channel was in Stasis at start-up"))
    if event.agent is not None:
        agent_id, agent_channel = event.agent
        state = replace(state, phase=Phase.CONNECTED, agent_id=agent_id, agent_channel=agent_channel)
        if event.post_call is not None and event.post_call[0] in event.library:
            tree, node = event.post_call
            state = replace(state, post_call=event.post_call, ivr=Ivr(
                library=event.library, tree=tree, node=node, variables=MappingProxyType(
                    {"caller": event.caller_number, "dialed": event.dialed_number, "call_id": event.call_id})))
        return state, commands
    if event.already_answered:
        if event.direction == "outbound" and not event.adopted:   # the dialer saw the answer just now
            commands.append(RecordAnswered(event.call_id, now))
        state, more = _route(state, now, event.queued_since, event.queued_at)
        return state, commands + more
    return state, commands + [Answer(), StartTimer("answer", now + limits.answer_seconds)]


def _variables_only(event: Arrival) -> Ivr | None:
    """Holds the call's variables until an IVR starts (None: no IVR for this call)."""
    if event.route.ivr is None or event.route.ivr not in event.library:
        return None
    return Ivr(library=event.library, tree=event.route.ivr, node=event.library[event.route.ivr].tree.start,
               variables=MappingProxyType({"caller": event.caller_number, "dialed": event.dialed_number,
                                           "call_id": event.call_id}))


# -- handlers ----------------------------------------------------------------------------------
def _answered(state: CallState, event: Answered, now: float):
    state, cmds = _route(replace(state, answered=True), now)
    return state, [CancelTimer("answer"), RecordAnswered(state.call_id, now), *cmds]


def _playback_done(state: CallState, event: PlaybackDone, now: float):
    if event.playback_id != state.playback_id:
        return state, []  # a late event for an older playback
    state, cmds = _hang_up(replace(state, playing=False), now, "engine")
    if not event.ok:
        cmds.insert(0, RecordEvent(state.call_id, now, "prompt-failed", state.route.prompt or ""))
    return state, cmds


def _queued_playback_done(state: CallState, event: PlaybackDone, now: float):
    if event.playback_id != state.playback_id or not state.playing:
        return state, []
    return start_music(replace(state, playing=False))


def _announce(state: CallState, event: Announcement, now: float):
    if state.playing:
        return state, []  # still saying the last one
    minutes = max(1, round(event.expected_wait / 60))
    if event.position <= 1:
        media = ("sound:queue-youarenext",)
    else:
        media = ("sound:queue-thereare", f"number:{event.position}", "sound:queue-callswaiting")
    media += ("sound:queue-holdtime", f"number:{minutes}",
              "sound:queue-minute" if minutes == 1 else "sound:queue-minutes")
    state, stop = stop_music(replace(state, playback_seq=state.playback_seq + 1, playing=True))
    return state, [*stop, Play(media, state.playback_id)]


def _queued_dtmf(state: CallState, event: Dtmf, now: float):
    key = state.route.callback_key
    if event.from_agent or key is None or event.digit != key[-1:]:
        return state, []
    state, stop = stop_music(state)
    cmds: list[Command] = [RequestCallback(state.call_id, state.caller_number),
                           RecordEvent(state.call_id, now, "callback-requested", state.caller_number), *stop]
    if state.playing:
        cmds.append(StopPlayback(state.playback_id))
    state, more = _play(state, now, CALLBACK_CONFIRMED)
    return state, cmds + more


def _gave_up(state: CallState, event: GaveUp, now: float):
    if state.route.connect_grace is not None:  # an answered outbound call nobody can take
        state, cmds = _abandon(state, now)
        return state, [RecordEvent(state.call_id, now, "queue-gave-up", event.reason), *cmds]
    state, stop = stop_music(state)
    cmds: list[Command] = [RecordEvent(state.call_id, now, "queue-gave-up", event.reason), *stop]
    if state.playing:
        cmds.append(StopPlayback(state.playback_id))
    state, more = _play(state, now, SORRY)
    return state, cmds + more


def _connected(state: CallState, event: Connected, now: float):
    state, stop = stop_music(state)
    cmds: list[Command] = list(stop)
    if state.playing:
        cmds.append(StopPlayback(state.playback_id))
    state = replace(state, phase=Phase.CONNECTED, agent_id=event.agent_id, agent_channel=event.agent_channel,
                    playing=False)
    if state.route.connect_grace is not None:
        cmds.append(CancelTimer("grace"))
    cmds += [BridgeWith(event.agent_channel), RecordEvent(state.call_id, now, "connected", event.agent_id)]
    if state.route.recording == "all":
        state = replace(state, recording=True)
        cmds.append(StartRecording(event.agent_id, state.route.queue or ""))
    return state, cmds


def _connected_dtmf(state: CallState, event: Dtmf, now: float):
    if not event.from_agent:
        return state, []
    keys = (state.agent_keys + event.digit)[-AGENT_KEYS_KEPT:]
    state = replace(state, agent_keys=keys)
    dialled = keyed_transfer(state.route.transfer_code, keys)
    if dialled is not None:   # ## + target + #: a phone without a transfer key transfers
        return replace(state, agent_keys=""), [ResolveTransfer(dialled)]
    code = state.route.record_code
    if state.route.recording != "on_demand" or not keys.endswith(code) or state.recording:
        return state, []
    state = replace(state, recording=True, agent_keys="")
    assert state.agent_id is not None
    return state, [StartRecording(state.agent_id, state.route.queue or ""),
                   RecordEvent(state.call_id, now, "recording-requested", state.agent_id)]


def _agent_gone(state: CallState, event: AgentGone, now: float):
    state, unhold = release_hold(state, now)
    over: list[Command] = [*unhold, *([AgentCallOver(state.agent_id)] if state.agent_id is not None else [])]
    state = replace(state, agent_id=None, agent_channel=None)
    if state.post_call is not None and state.ivr is not None:
        # The agent hung up; the caller stays for what the tree has for after the call (a survey).
        tree, node = state.post_call
        state, more = enter_tree(replace(state, post_call=None), tree, node, state.ivr.variables, now)
        return state, [*over, LeaveBridge(), *more]
    state, cmds = _hang_up(state, now, "agent")
    return state, [*over, *cmds]


def _connected_max(state: CallState, event: TimerFired, now: float):
    if event.key != "max":
        return state, []  # a stale timer of an earlier phase
    release = _release_agent(state)
    state, cmds = _hang_up(replace(state, agent_id=None, agent_channel=None), now, "engine")
    return state, [RecordEvent(state.call_id, now, "timeout", "max"), *release, *cmds]


def _connected_failed(state: CallState, event: RequestFailed, now: float):
    note = RecordEvent(state.call_id, now, "request-failed", f"{event.command}: {event.detail}")
    if event.command in ("record", "hangup_agent", "stop_playback", "moh_stop", "hold", "unhold", "transfer_progress"):
        return state, [note]  # the conversation goes on
    # The bridge could not be made: end the call for both sides rather than leave them in silence.
    release = _release_agent(state)
    state, cmds = _hang_up(replace(state, agent_id=None, agent_channel=None), now, "engine")
    return state, [note, *release, *cmds]


def _to_ivr(state: CallState, event: Event, now: float):
    assert state.ivr is not None
    if isinstance(event, TimerFired):
        if event.key == "max":
            state, cmds = _hang_up(state, now, "engine")
            return state, [RecordEvent(state.call_id, now, "timeout", "max"), *cmds]
        if event.key != "ivr":
            return state, []
    ivr, cmds = ivr_core.handle(state.ivr, event, now)
    return _from_ivr(state, ivr, cmds, now)


def _ivr_request_failed(state: CallState, event: RequestFailed, now: float):
    assert state.ivr is not None
    note = RecordEvent(state.call_id, now, "request-failed", f"{event.command}: {event.detail}")
    if event.gone:
        return _failed_live(state, event, now)
    if event.command == "play":  # a missing sound must not stop the tree: go on as if it was said
        state, cmds = _to_ivr(state, PlaybackDone(state.ivr.playback_id, ok=False), now)
    elif event.command == "record":
        state, cmds = _to_ivr(state, ivr_messages.RecordingDone(False), now)
    else:
        cmds = []
    return state, [note, *cmds]


def _transfer_answered(state: CallState, event: TransferAnswered, now: float):
    state, music = stop_music(state)   # an agent's transfer plays music while the number rings
    state = replace(state, phase=Phase.CONNECTED, agent_id=None, agent_channel=event.channel, on_failure=None,
                    back_queue=None)
    return state, [*music, CancelTimer("transfer"), BridgeWith(event.channel),
                   RecordEvent(state.call_id, now, "transferred", event.channel)]


def _transfer_failed(state: CallState, event: Event, now: float):
    if isinstance(event, TimerFired) and event.key not in ("transfer", "max"):
        return state, []
    reason = event.reason if isinstance(event, TransferFailed) else "timeout"
    note = RecordEvent(state.call_id, now, "transfer-failed", reason)
    if state.back_queue is not None:   # an agent's transfer: back in the queue the caller came from
        state, more = back_to_queue(state, state.back_queue, now)
        return state, [note, CancelTimer("transfer"), *more]
    if state.on_failure is not None and state.ivr is not None:
        tree, node = state.on_failure
        state, more = enter_tree(replace(state, on_failure=None), tree, node, state.ivr.variables, now)
        return state, [note, CancelTimer("transfer"), *more]
    state, more = _play(state, now, SORRY)
    return state, [note, CancelTimer("transfer"), *more]


def _hangup_requested(state: CallState, event: HangupRequested, now: float):
    cause = event.cause if event.cause is not None else state.cause
    return replace(state, cause=cause, hangup_by=state.hangup_by or "caller"), []


def _gone(state: CallState, event: ChannelGone, now: float):
    cause = event.cause if event.cause is not None else state.cause
    by = state.hangup_by or "caller"
    if cause is None:  # a phone's BYE without a Reason header: Asterisk gives no cause (AMI says 0)
        cause, text = 0, f"Unknown: no cause given ({by} hung up)"
    else:
        text = event.cause_text or describe_cause(cause)
    return _end(state, now, cause, text, by)


def _failed_live(state: CallState, event: RequestFailed, now: float):
    note = RecordEvent(state.call_id, now, "request-failed", f"{event.command}: {event.detail}")
    if not event.gone and event.command in ("moh_start", "moh_stop", "stop_playback", "transfer_progress", "hold",
                                             "unhold"):
        return state, [note]  # cosmetic: the caller keeps waiting (a phone not told of its transfer)
    if not event.gone and event.command == "play" and state.phase is Phase.QUEUED:
        state, music = start_music(replace(state, playing=False))
        return state, [note, *music]
    if event.gone:
        # Asterisk says the channel is gone: its StasisEnd (with the cause) is on its way.
        cmds: list[Command] = [LeaveQueue(state.call_id)] if state.phase is Phase.QUEUED else []
        state = replace(state, phase=Phase.HANGING_UP, hangup_by=state.hangup_by or "caller")
        return state, [note, *cmds, CancelTimer("answer"), CancelTimer("playback"),
                       StartTimer("hangup", now + state.limits.hangup_seconds)]
    cmds = [LeaveQueue(state.call_id)] if state.phase is Phase.QUEUED else []
    state, more = _hang_up(state, now, "engine", "normal")
    return state, [note, *cmds, *more]


def _timer_queued(state: CallState, event: TimerFired, now: float):
    if event.key == "grace":
        return _abandon(state, now)
    if event.key == "music":   # still waiting: the music now (unless a prompt is being said, or it is on)
        return (state, []) if state.playing or state.music else start_music(state)
    return _timer_live(state, event, now)


def _timer_live(state: CallState, event: TimerFired, now: float):
    expected = {Phase.ANSWERING: "answer", Phase.PLAYING: "playback", Phase.QUEUED: None}[state.phase]
    if event.key not in (expected, "max"):
        return state, []  # a stale timer from an earlier phase
    cmds: list[Command] = [LeaveQueue(state.call_id)] if state.phase is Phase.QUEUED else []
    state, more = _hang_up(state, now, "engine")
    return state, [RecordEvent(state.call_id, now, "timeout", event.key), *cmds, *more]


def _abandon(state: CallState, now: float) -> tuple[CallState, list[Command]]:
    """No agent took the answered outbound call within the grace: the safe-harbor message, then
    hang up (the dialer counts it against the campaign's abandon rate)."""
    state, stop = stop_music(state)
    cmds: list[Command] = [LeaveQueue(state.call_id), *stop,
                           RecordEvent(state.call_id, now, "abandoned", f"no agent within {state.route.connect_grace:g} s")]
    if state.playing:
        cmds.append(StopPlayback(state.playback_id))
    state, more = _play(state, now, state.route.abandon_media or SORRY)
    return state, cmds + more


def _timer_hanging_up(state: CallState, event: TimerFired, now: float):
    if event.key != "hangup":
        return state, []
    # No StasisEnd came: the channel is not ours any more (or Asterisk is away). Ask once more,
    # best effort, and close the record rather than leave it open.
    state, cmds = _end(state, now, None, "no hang-up event from Asterisk", state.hangup_by or "system")
    return state, [Hangup(), *cmds]


def _ignore(state: CallState, event: Event, now: float):
    return state, []


def _failed_hanging_up(state: CallState, event: RequestFailed, now: float):
    return state, [RecordEvent(state.call_id, now, "request-failed", f"{event.command}: {event.detail}")]


def _late_transfer(state: CallState, event: TransferAnswered, now: float):
    return state, [HangupAgent(event.channel)]


def _late_connect(state: CallState, event: Connected, now: float):
    # The agent answered as the caller was leaving: release the agent at once.
    return state, [HangupAgent(event.agent_channel), AgentCallOver(event.agent_id)]


P = Phase
_LIVE = (P.ANSWERING, P.PLAYING, P.QUEUED)
_ALIVE = (*_LIVE, P.IVR, P.TRANSFERRING, P.CONNECTED, P.HANGING_UP)

# Where routing a call lands it (_route), and where the IVR's outcome takes it (_from_ivr).
_ROUTED = (P.PLAYING, P.IVR, P.QUEUED, P.TRANSFERRING, P.HANGING_UP)
_FROM_IVR = (P.IVR, P.QUEUED, P.TRANSFERRING, P.HANGING_UP)

TABLE: Transitions[CallState] = Transitions("call", lambda s: s.phase, {
    (P.ANSWERING, Answered): Row(_ROUTED, _answered),
    (P.PLAYING, PlaybackDone): Row((P.PLAYING, P.HANGING_UP), _playback_done),
    (P.QUEUED, PlaybackDone): Row((P.QUEUED,), _queued_playback_done),
    (P.QUEUED, Announcement): Row((P.QUEUED,), _announce),
    (P.QUEUED, Dtmf): Row((P.QUEUED, P.PLAYING), _queued_dtmf),
    (P.QUEUED, GaveUp): Row((P.PLAYING,), _gave_up),
    (P.QUEUED, Connected): Row((P.CONNECTED,), _connected),
    (P.CONNECTED, Dtmf): Row((P.CONNECTED,), _connected_dtmf),
    (P.CONNECTED, HoldRequest): Row((P.CONNECTED,), hold),
    (P.CONNECTED, BlindTransfer): Row((P.QUEUED, P.TRANSFERRING, P.PLAYING, *_FROM_IVR), blind),
    # a transfer asked as the call left its agent (the API racing a hang-up): nothing to send on
    **stay(_ignore, (P.ANSWERING, P.PLAYING, P.IVR, P.TRANSFERRING, P.QUEUED, P.HANGING_UP), (BlindTransfer,)),
    # a caller's phone may hold while it waits or hears a prompt: nothing to do before an agent
    **stay(_ignore, (P.ANSWERING, P.PLAYING, P.IVR, P.TRANSFERRING, P.QUEUED, P.HANGING_UP), (HoldRequest,)),
    (P.CONNECTED, AgentGone): Row(_FROM_IVR, _agent_gone),
    (P.CONNECTED, RequestFailed): Row((P.CONNECTED, P.HANGING_UP), _connected_failed),
    (P.CONNECTED, TimerFired): Row((P.CONNECTED, P.HANGING_UP), _connected_max),
    **{(p, ChannelGone): Row((P.ENDED,), _gone) for p in _ALIVE},
    **stay(_hangup_requested, _ALIVE, (HangupRequested,)),
    **{(p, RequestFailed): Row((p, P.HANGING_UP), _failed_live) for p in (*_LIVE, P.TRANSFERRING)},
    **{(p, TimerFired): Row((p, P.HANGING_UP), _timer_live) for p in (P.ANSWERING, P.PLAYING)},
    (P.QUEUED, TimerFired): Row((P.QUEUED, P.PLAYING, P.HANGING_UP), _timer_queued),
    **{(P.IVR, e): Row(_FROM_IVR, _to_ivr)
       for e in (PlaybackDone, Dtmf, TimerFired, ivr_messages.HttpDone, ivr_messages.RecordingDone)},
    (P.IVR, RequestFailed): Row(_FROM_IVR, _ivr_request_failed),
    (P.TRANSFERRING, TransferAnswered): Row((P.CONNECTED,), _transfer_answered),
    **{(P.TRANSFERRING, e): Row((P.PLAYING, *_FROM_IVR), _transfer_failed) for e in (TransferFailed, TimerFired)},
    (P.HANGING_UP, TimerFired): Row((P.HANGING_UP, P.ENDED), _timer_hanging_up),
    (P.HANGING_UP, RequestFailed): Row((P.HANGING_UP,), _failed_hanging_up),
    # Late or crossing events: nothing to do, but not a bug either.
    **stay(_ignore, (P.ANSWERING, P.PLAYING, P.IVR, P.TRANSFERRING, P.CONNECTED, P.HANGING_UP), (Announcement, GaveUp)),
    **stay(_ignore, (P.ANSWERING, P.PLAYING, P.TRANSFERRING, P.HANGING_UP), (Dtmf, AgentGone)),
    **stay(_ignore, (P.QUEUED,), (AgentGone,)),   # the leg of an agent who just transferred the caller
    **stay(_ignore, (P.IVR,), (AgentGone,)),
    **stay(_ignore, (P.ANSWERING, P.TRANSFERRING, P.CONNECTED, P.HANGING_UP), (PlaybackDone,)),
    **stay(_ignore, (P.PLAYING, P.IVR, P.TRANSFERRING, P.QUEUED, P.CONNECTED, P.HANGING_UP), (Answered,)),
    **stay(_late_connect, (P.ANSWERING, P.PLAYING, P.IVR, P.TRANSFERRING, P.CONNECTED, P.HANGING_UP), (Connected,)),
    **stay(_ignore, (P.ANSWERING, P.PLAYING, P.QUEUED, P.CONNECTED, P.HANGING_UP, P.TRANSFERRING),
           (ivr_messages.HttpDone, ivr_messages.RecordingDone)),
    **stay(_late_transfer, (P.ANSWERING, P.PLAYING, P.IVR, P.QUEUED, P.CONNECTED, P.HANGING_UP), (TransferAnswered,)),
    **stay(_ignore, (P.ANSWERING, P.PLAYING, P.IVR, P.QUEUED, P.CONNECTED, P.HANGING_UP), (TransferFailed,)),
})


def handle(state: CallState, event: Event, now: float) -> tuple[CallState, list[Command]]:
    return TABLE.handle(state, event, now)

