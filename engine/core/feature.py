"""An agent's feature-code call from their own phone, as a pure state machine.

Theory of operation
-------------------
The agent dials a code (``*11`` log in, ``*12`` log out, ``*13`` pause, ``*14`` unpause, ``*15`` end
wrap-up, ``*16`` disposition; configurable). Digits typed after the code on the dial pad are its
argument (``*132``: pause with reason 2); a missing argument is asked for. Log in asks for the agent
id and the PIN, each ended by ``#``. The machine then asks the shell to carry out the request
(:class:`AgentAction`); the shell answers with :class:`ActionResult`, and the agent hears the
outcome before the engine hangs up::

    ANSWERING --Answered--> COLLECTING --#--> ... --> WAITING --ActionResult--> SAYING --> HANGING_UP

Keys typed while a prompt plays cut the prompt short. Every phase has a timer: a silent phone,
a lost result, a prompt that never ends all lead to a hang-up.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from engine.core.channel import (Answer, Answered, ChannelGone, Dtmf, Hangup, HangupRequested, Play, PlaybackDone,
                      RequestFailed, StopPlayback)
from engine.core.common import CancelTimer, Command, Event, Row, StartTimer, TimerFired, Transitions, stay

__all__ = ["ActionResult", "AgentAction", "FeatureCall", "Phase", "Request", "handle", "match", "start"]

DIGIT_TIMEOUT = 10.0
RESULT_TIMEOUT = 5.0
PLAYBACK_TIMEOUT = 60.0
HANGUP_TIMEOUT = 5.0
MAX_LOGIN_ATTEMPTS = 3

ASK = {"id": "sound:agent-user", "pin": "sound:agent-pass", "arg": "sound:beep"}
SAY_OK = {"login": ("sound:agent-loginok",), "logout": ("sound:agent-loggedoff",)}
SAY_DONE = ("sound:auth-thankyou",)
SAY_REFUSED = ("sound:beeperr", "sound:pbx-invalid")
SAY_BAD_LOGIN = ("sound:agent-incorrect",)


class Phase(Enum):
    ANSWERING = "answering"
    COLLECTING = "collecting"
    WAITING = "waiting"
    SAYING = "saying"
    HANGING_UP = "hanging_up"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Request:
    """What the dialed number asks for: ``feature`` and the digits after the code."""

    feature: str  # login | logout | pause | unpause | end_wrapup | disposition
    inline: str


def match(dialed: str, codes: dict[str, str]) -> Request | None:
    """The feature whose code starts ``dialed`` (codes never prefix one another)."""
    for feature, code in codes.items():
        if dialed.startswith(code):
            rest = dialed[len(code):]
            if rest == "" or rest.isdigit():
                return Request(feature, rest)
    return None


# -- events and commands -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ActionResult(Event):
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AgentAction(Command):
    """Carry out ``feature`` for the agent on ``endpoint`` (log in: for ``agent_id`` with ``pin``)."""

    feature: str
    endpoint: str
    argument: str = ""
    agent_id: str = ""
    pin: str = ""


@dataclass(frozen=True, slots=True)
class FeatureCall:
    channel_id: str
    endpoint: str
    request: Request
    phase: Phase = Phase.ANSWERING
    asking: str = ""          # id | pin | arg
    digits: str = ""
    agent_id: str = ""
    attempts: int = 0
    playback_seq: int = 0
    playing: bool = False

    @property
    def playback_id(self) -> str:
        return f"{self.channel_id}-f{self.playback_seq}"


def start(channel_id: str, endpoint: str, request: Request, now: float) -> tuple[FeatureCall, list[Command]]:
    call = FeatureCall(channel_id, endpoint, request)
    return call, [Answer(), StartTimer("step", now + DIGIT_TIMEOUT)]


def _needs(call: FeatureCall) -> str | None:
    """The next thing to ask, or None when the request is complete."""
    feature = call.request.feature
    if feature == "login":
        return "id" if not call.agent_id else "pin"
    if feature in ("pause", "disposition") and not call.request.inline:
        return "arg"
    return None


def _ask(call: FeatureCall, what: str, now: float, prompt: str | None = None) -> tuple[FeatureCall, list[Command]]:
    call = replace(call, phase=Phase.COLLECTING, asking=what, digits="", playback_seq=call.playback_seq + 1,
                   playing=True)
    return call, [Play((prompt or ASK[what],), call.playback_id), StartTimer("step", now + DIGIT_TIMEOUT)]


def _act(call: FeatureCall, now: float, pin: str = "") -> tuple[FeatureCall, list[Command]]:
    r = call.request
    action = AgentAction(r.feature, call.endpoint, argument=r.inline, agent_id=call.agent_id, pin=pin)
    return replace(call, phase=Phase.WAITING, digits=""), [action, StartTimer("step", now + RESULT_TIMEOUT)]


def _say(call: FeatureCall, media: tuple[str, ...], now: float) -> tuple[FeatureCall, list[Command]]:
    call = replace(call, phase=Phase.SAYING, playback_seq=call.playback_seq + 1, playing=True)
    return call, [Play(media, call.playback_id), StartTimer("step", now + PLAYBACK_TIMEOUT)]


def _hang_up(call: FeatureCall, now: float) -> tuple[FeatureCall, list[Command]]:
    return replace(call, phase=Phase.HANGING_UP), [Hangup(), StartTimer("step", now + HANGUP_TIMEOUT)]


# -- handlers ----------------------------------------------------------------------------------
def _answered(call: FeatureCall, e: Answered, now: float):
    need = _needs(call)
    return _ask(call, need, now) if need else _act(call, now)


def _digit(call: FeatureCall, e: Dtmf, now: float):
    cmds: list[Command] = []
    if call.playing:
        cmds.append(StopPlayback(call.playback_id))
        call = replace(call, playing=False)
    if e.digit != "#":
        if e.digit.isdigit() and len(call.digits) < 16:
            call = replace(call, digits=call.digits + e.digit)
        return call, [*cmds, StartTimer("step", now + DIGIT_TIMEOUT)]
    typed = call.digits
    if call.asking == "id":
        call, more = _ask(replace(call, agent_id=typed), "pin", now)
    elif call.asking == "pin":
        call, more = _act(call, now, pin=typed)
    else:  # the argument of pause / disposition
        call, more = _act(replace(call, request=replace(call.request, inline=typed)), now)
    return call, [*cmds, *more]


def _result(call: FeatureCall, e: ActionResult, now: float):
    feature = call.request.feature
    if e.ok:
        return _say(call, SAY_OK.get(feature, SAY_DONE), now)
    if feature == "login" and call.attempts + 1 < MAX_LOGIN_ATTEMPTS:
        call = replace(call, agent_id="", attempts=call.attempts + 1)
        return _ask(call, "id", now, prompt=SAY_BAD_LOGIN[0])  # "login incorrect, enter your agent number"
    return _say(call, SAY_BAD_LOGIN if feature == "login" else SAY_REFUSED, now)


def _prompt_done(call: FeatureCall, e: PlaybackDone, now: float):
    if e.playback_id != call.playback_id:
        return call, []
    return replace(call, playing=False), []


def _said(call: FeatureCall, e: PlaybackDone, now: float):
    if e.playback_id != call.playback_id:
        return call, []
    return _hang_up(replace(call, playing=False), now)


def _timeout(call: FeatureCall, e: TimerFired, now: float):
    if e.key != "step":
        return call, []
    return _hang_up(call, now)


def _hangup_timeout(call: FeatureCall, e: TimerFired, now: float):
    if e.key != "step":
        return call, []
    return replace(call, phase=Phase.ENDED), [Hangup(), CancelTimer("step")]


def _failed(call: FeatureCall, e: RequestFailed, now: float):
    if e.command in ("stop_playback",):
        return call, []
    return _hang_up(call, now)


def _gone(call: FeatureCall, e: ChannelGone, now: float):
    return replace(call, phase=Phase.ENDED), [CancelTimer("step")]


def _ignore(call: FeatureCall, e: Event, now: float):
    return call, []


P = Phase
_LIVE = (P.ANSWERING, P.COLLECTING, P.WAITING, P.SAYING)
TABLE: Transitions[FeatureCall] = Transitions("feature", lambda c: c.phase, {
    (P.ANSWERING, Answered): Row((P.COLLECTING, P.WAITING), _answered),
    (P.COLLECTING, Dtmf): Row((P.COLLECTING, P.WAITING), _digit),
    (P.COLLECTING, PlaybackDone): Row((P.COLLECTING,), _prompt_done),
    (P.WAITING, ActionResult): Row((P.SAYING, P.COLLECTING), _result),
    (P.SAYING, PlaybackDone): Row((P.SAYING, P.HANGING_UP), _said),
    **{(p, TimerFired): Row((p, P.HANGING_UP), _timeout) for p in _LIVE},
    (P.HANGING_UP, TimerFired): Row((P.HANGING_UP, P.ENDED), _hangup_timeout),
    **{(p, RequestFailed): Row((p, P.HANGING_UP), _failed) for p in _LIVE},
    **{(p, ChannelGone): Row((P.ENDED,), _gone) for p in (*_LIVE, P.HANGING_UP)},
    **stay(_ignore, (*_LIVE, P.HANGING_UP), (HangupRequested,)),
    **stay(_ignore, (P.ANSWERING, P.WAITING, P.SAYING, P.HANGING_UP), (Dtmf,)),
    **stay(_ignore, (P.ANSWERING, P.WAITING, P.HANGING_UP), (PlaybackDone,)),
    **stay(_ignore, (P.HANGING_UP,), (RequestFailed,)),
})


def handle(call: FeatureCall, event: Event, now: float) -> tuple[FeatureCall, list[Command]]:
    return TABLE.handle(call, event, now)
