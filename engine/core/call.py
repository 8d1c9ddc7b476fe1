"""The life of one inbound call in the engine, as a pure state machine.

Theory of operation
-------------------
A call enters when its channel reaches our Stasis application (or when the engine adopts a
channel that was already there at start-up). Until IVR trees and queues exist, what a call gets is
fixed: answer, play the route's prompt, hang up. The phases::

    ANSWERING --Answered--> PLAYING --PlaybackDone--> HANGING_UP --ChannelGone--> ENDED
        |                      |                           ^
        +--- failure / timer --+---------------------------+
    (ChannelGone from any live phase goes straight to ENDED: the caller hung up)

Asterisk tells a hang-up in two steps: ChannelHangupRequest carries the cause, then StasisEnd says
the channel has left the application (ChannelDestroyed is not delivered once it has). So
:class:`HangupRequested` remembers the cause and who hung up, and :class:`ChannelGone` ends the call.

Every live phase has a timer, so no call can stay in the engine forever: Asterisk not answering
the REST request, a playback that never finishes, a hang-up event that never comes. A ``max`` timer
bounds the whole call. The machine also says what must be recorded (``Record*`` commands): the
shell writes those to PostgreSQL, in order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from .common import CancelTimer, Command, Event, StartTimer, TimerFired, Transitions

__all__ = [
    "CAUSES", "Answer", "Answered", "Arrival", "CallState", "ChannelGone", "Finish", "Hangup",
    "HangupRequested", "Limits",
    "Phase", "Play", "PlaybackDone", "RecordAnswered", "RecordEnded", "RecordStarted",
    "RequestFailed", "handle", "start",
]


class Phase(Enum):
    ANSWERING = "answering"
    PLAYING = "playing"
    HANGING_UP = "hanging_up"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Limits:
    answer_seconds: float
    playback_seconds: float
    hangup_seconds: float
    max_call_seconds: float


# -- events ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Arrival(Event):
    """A channel entered the application (``adopted``: it was already there when we started)."""

    call_id: str
    channel_id: str
    caller_number: str
    caller_name: str
    dialed_number: str
    prompt: str
    started_at: float
    already_answered: bool = False
    adopted: bool = False


@dataclass(frozen=True, slots=True)
class Answered(Event):
    pass


@dataclass(frozen=True, slots=True)
class PlaybackDone(Event):
    playback_id: str
    ok: bool = True


@dataclass(frozen=True, slots=True)
class HangupRequested(Event):
    """Someone asked for the channel to hang up (ARI ChannelHangupRequest): the cause is known now
    (None for a soft hang-up, whose event carries flags, not a cause), the channel leaves the
    application next."""

    cause: int | None


@dataclass(frozen=True, slots=True)
class ChannelGone(Event):
    """The channel left the application (StasisEnd) or was destroyed. ``cause`` None: use the one
    the hang-up request carried."""

    cause: int | None = None
    cause_text: str = ""


# Q.850 release causes as Asterisk names them (main/causes.h), for the ones calls meet.
CAUSES = {
    1: "Unallocated (unassigned) number", 3: "No route to destination", 16: "Normal Clearing",
    17: "User busy", 18: "No user responding", 19: "User alerting, no answer", 21: "Call Rejected",
    22: "Number changed", 27: "Destination out of order", 28: "Invalid number format",
    31: "Normal, unspecified", 34: "Circuit/channel congestion", 38: "Network out of order",
    41: "Temporary failure", 42: "Switching equipment congestion", 58: "Bearer capability not available",
    102: "Recovery on timer expiry", 127: "Interworking, unspecified",
}
# ARI's hang-up ``reason`` values and the cause Asterisk sets for each.
REASON_CAUSES = {"normal": 16, "busy": 17, "no_answer": 19, "congestion": 34, "answered_elsewhere": 26}


@dataclass(frozen=True, slots=True)
class RequestFailed(Event):
    """A command could not be carried out; ``gone`` when the channel no longer exists."""

    command: str
    gone: bool
    detail: str


# -- commands ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Answer(Command):
    pass


@dataclass(frozen=True, slots=True)
class Play(Command):
    sound: str
    playback_id: str


@dataclass(frozen=True, slots=True)
class Hangup(Command):
    reason: str = "normal"


@dataclass(frozen=True, slots=True)
class Finish(Command):
    """The call is over for the engine: the session may end."""


@dataclass(frozen=True, slots=True)
class RecordStarted(Command):
    call_id: str
    channel_id: str
    direction: str
    caller_number: str
    caller_name: str
    dialed_number: str
    started_at: float


@dataclass(frozen=True, slots=True)
class RecordAnswered(Command):
    call_id: str
    at: float


@dataclass(frozen=True, slots=True)
class RecordEnded(Command):
    call_id: str
    at: float
    cause: int | None
    cause_text: str
    ended_by: str  # caller | engine | system


@dataclass(frozen=True, slots=True)
class RecordEvent(Command):
    """A line of the call's own history (``call_events``)."""

    call_id: str
    at: float
    kind: str
    detail: str = ""


# -- state -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CallState:
    call_id: str
    channel_id: str
    phase: Phase
    prompt: str
    limits: Limits
    answered: bool = False
    hangup_by: str | None = None  # who asked for the hang-up, once someone has
    cause: int | None = None      # from the hang-up request, until the channel is gone
    playback_seq: int = 0

    @property
    def playback_id(self) -> str:
        return f"{self.call_id}-p{self.playback_seq}"


def start(event: Arrival, limits: Limits, now: float) -> tuple[CallState, list[Command]]:
    """A new call: the state to keep and the first commands."""
    state = CallState(call_id=event.call_id, channel_id=event.channel_id, phase=Phase.ANSWERING,
                      prompt=event.prompt, limits=limits, answered=event.already_answered)
    commands: list[Command] = [
        RecordStarted(call_id=event.call_id, channel_id=event.channel_id, direction="inbound",
                      caller_number=event.caller_number, caller_name=event.caller_name,
                      dialed_number=event.dialed_number, started_at=event.started_at),
        StartTimer("max", event.started_at + limits.max_call_seconds),
    ]
    if event.adopted:
        commands.append(RecordEvent(event.call_id, now, "adopted", "channel was in Stasis at start-up"))
    if event.already_answered:
        state, more = _play(state, now)
        return state, commands + more
    return state, commands + [Answer(), StartTimer("answer", now + limits.answer_seconds)]


def _play(state: CallState, now: float) -> tuple[CallState, list[Command]]:
    state = replace(state, phase=Phase.PLAYING, playback_seq=state.playback_seq + 1)
    return state, [Play(state.prompt, state.playback_id),
                   StartTimer("playback", now + state.limits.playback_seconds)]


def _hang_up(state: CallState, now: float, by: str, reason: str = "normal") -> tuple[CallState, list[Command]]:
    cause = state.cause if state.cause is not None else REASON_CAUSES[reason]
    state = replace(state, phase=Phase.HANGING_UP, hangup_by=state.hangup_by or by, cause=cause)
    return state, [CancelTimer("answer"), CancelTimer("playback"), Hangup(reason),
                   StartTimer("hangup", now + state.limits.hangup_seconds)]


def _end(state: CallState, now: float, cause: int | None, text: str, by: str) -> tuple[CallState, list[Command]]:
    state = replace(state, phase=Phase.ENDED)
    return state, [CancelTimer("answer"), CancelTimer("playback"), CancelTimer("hangup"), CancelTimer("max"),
                   RecordEnded(state.call_id, now, cause, text, by), Finish()]


# -- handlers ----------------------------------------------------------------------------------
def _answered(state: CallState, event: Answered, now: float):
    state, cmds = _play(replace(state, answered=True), now)
    return state, [CancelTimer("answer"), RecordAnswered(state.call_id, now), *cmds]


def _playback_done(state: CallState, event: PlaybackDone, now: float):
    if event.playback_id != state.playback_id:
        return state, []  # a late event for an older playback
    state, cmds = _hang_up(state, now, "engine")
    if not event.ok:
        cmds.insert(0, RecordEvent(state.call_id, now, "prompt-failed", state.prompt))
    return state, cmds


def _hangup_requested(state: CallState, event: HangupRequested, now: float):
    cause = event.cause if event.cause is not None else state.cause
    return replace(state, cause=cause, hangup_by=state.hangup_by or "caller"), []


def _gone(state: CallState, event: ChannelGone, now: float):
    cause = event.cause if event.cause is not None else state.cause
    text = event.cause_text or CAUSES.get(cause, f"cause {cause}" if cause is not None else "")
    return _end(state, now, cause, text, state.hangup_by or "caller")


def _failed_live(state: CallState, event: RequestFailed, now: float):
    note = RecordEvent(state.call_id, now, "request-failed", f"{event.command}: {event.detail}")
    if event.gone:
        # Asterisk says the channel is gone: its ChannelDestroyed (with the cause) is on its way.
        state = replace(state, phase=Phase.HANGING_UP, hangup_by=state.hangup_by or "caller")
        return state, [note, CancelTimer("answer"), CancelTimer("playback"),
                       StartTimer("hangup", now + state.limits.hangup_seconds)]
    state, cmds = _hang_up(state, now, "engine", "normal")
    return state, [note, *cmds]


def _timer_live(state: CallState, event: TimerFired, now: float):
    expected = {Phase.ANSWERING: "answer", Phase.PLAYING: "playback"}[state.phase]
    if event.key not in (expected, "max"):
        return state, []  # a stale timer from an earlier phase
    state, cmds = _hang_up(state, now, "engine")
    return state, [RecordEvent(state.call_id, now, "timeout", event.key), *cmds]


def _timer_hanging_up(state: CallState, event: TimerFired, now: float):
    if event.key != "hangup":
        return state, []
    # No ChannelDestroyed came: the channel is not ours any more (or Asterisk is away). Ask once
    # more, best effort, and close the record rather than leave it open.
    state, cmds = _end(state, now, None, "no hang-up event from Asterisk", state.hangup_by or "system")
    return state, [Hangup(), *cmds]


def _ignore(state: CallState, event: Event, now: float):
    return state, []


def _failed_hanging_up(state: CallState, event: RequestFailed, now: float):
    return state, [RecordEvent(state.call_id, now, "request-failed", f"{event.command}: {event.detail}")]


_LIVE = (Phase.ANSWERING, Phase.PLAYING)

TABLE: Transitions[CallState] = Transitions("call", lambda s: s.phase, {
    (Phase.ANSWERING, Answered): _answered,
    (Phase.ANSWERING, PlaybackDone): _ignore,
    (Phase.PLAYING, PlaybackDone): _playback_done,
    (Phase.PLAYING, Answered): _ignore,
    **{(p, ChannelGone): _gone for p in (*_LIVE, Phase.HANGING_UP)},
    **{(p, HangupRequested): _hangup_requested for p in (*_LIVE, Phase.HANGING_UP)},
    **{(p, RequestFailed): _failed_live for p in _LIVE},
    **{(p, TimerFired): _timer_live for p in _LIVE},
    (Phase.HANGING_UP, TimerFired): _timer_hanging_up,
    (Phase.HANGING_UP, RequestFailed): _failed_hanging_up,
    (Phase.HANGING_UP, Answered): _ignore,
    (Phase.HANGING_UP, PlaybackDone): _ignore,
})


def handle(state: CallState, event: Event, now: float) -> tuple[CallState, list[Command]]:
    return TABLE.handle(state, event, now)
