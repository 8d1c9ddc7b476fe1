"""An agent's state, as a pure state machine.

Theory of operation
-------------------
::

    LOGGED_OUT --LogIn--> AVAILABLE --Reserve--> RESERVED --Answer--> ON_CALL --CallEnded--> WRAP_UP
                              ^  |                  |                                        |
                              |  +--Pause--> PAUSED <--NoAnswer (reason no-answer, ...)       |
                              |              |  ^                                             |
                              +---Unpause----+  +---------- Pause (ends wrap-up) -------------+
                              +----------------------------- EndWrapup / wrap-up timer -------+

    ON_CALL --Hold--> ON_HOLD --Resume--> ON_CALL    (ON_HOLD ends as ON_CALL does, by CallEnded)

No state can get stuck: RESERVED ends when the phone answers, fails or the ACD's ring timer fires
(the ACD owns that timer, one per offer); ON_CALL and ON_HOLD (the agent put the caller on hold:
the desk phone's hold key or the API; its own state, so hold time is not talk time) end when the
call's channels go; WRAP_UP has its
own timer; PAUSED and AVAILABLE end by the agent's own action, or by logging out.

An agent on a call (RESERVED or ON_CALL) who asks to pause or log out gets it after the call, not
by dropping the caller: the request waits in ``pending`` and applies when wrap-up ends.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from engine.core.common import CancelTimer, Command, Event, Row, StartTimer, Transitions, stay

__all__ = [
    "Agent", "AgentChanged", "AgentPhase", "Answer", "CALL_PHASES", "CallEnded", "EndWrapup", "Hold", "LogIn",
    "LogOut", "NoAnswer", "OfferWithdrawn", "Pause", "Reserve", "Resume", "TABLE", "Unpause", "handle",
    "wrapup_key",
]


class AgentPhase(Enum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RESERVED = "reserved"
    ON_CALL = "on_call"
    ON_HOLD = "on_hold"       # on a call whose caller they put on hold
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    phase: AgentPhase = AgentPhase.LOGGED_OUT
    queues: frozenset[str] = frozenset()
    endpoint: str = ""
    pause_reason: str | None = None
    call_id: str | None = None
    since: float = 0.0        # when the current phase began
    idle_since: float = 0.0   # when the agent last became free for a call (longest_idle)
    calls_taken: int = 0      # answered calls this login (least_calls)
    pending: str | None = None  # "logout" or "pause:<reason>", applied when the call is over


# -- events ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LogIn(Event):
    queues: frozenset[str]
    endpoint: str


@dataclass(frozen=True, slots=True)
class LogOut(Event):
    pass


@dataclass(frozen=True, slots=True)
class Pause(Event):
    reason: str


@dataclass(frozen=True, slots=True)
class Unpause(Event):
    pass


@dataclass(frozen=True, slots=True)
class Reserve(Event):
    call_id: str


@dataclass(frozen=True, slots=True)
class Answer(Event):
    pass


@dataclass(frozen=True, slots=True)
class NoAnswer(Event):
    """The offer failed (ring timeout, busy, rejected, phone unreachable): the agent is paused."""

    reason: str = "no-answer"


@dataclass(frozen=True, slots=True)
class OfferWithdrawn(Event):
    """The caller left (or was taken elsewhere) while this agent's phone rang."""


@dataclass(frozen=True, slots=True)
class Hold(Event):
    """The agent put the caller on hold (the phone's hold key, the API)."""


@dataclass(frozen=True, slots=True)
class Resume(Event):
    """The agent took the caller off hold."""


@dataclass(frozen=True, slots=True)
class CallEnded(Event):
    wrapup_seconds: float


@dataclass(frozen=True, slots=True)
class EndWrapup(Event):
    pass


# -- commands ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AgentChanged(Command):
    """Persist: the agent entered ``phase`` at ``at``."""

    agent_id: str
    phase: AgentPhase
    at: float
    reason: str | None = None
    call_id: str | None = None


def wrapup_key(agent_id: str) -> str:
    return f"wrapup:{agent_id}"


# -- handlers ----------------------------------------------------------------------------------
def _enter(agent: Agent, phase: AgentPhase, now: float, **changes: object) -> tuple[Agent, list[Command]]:
    agent = replace(agent, phase=phase, since=now, **changes)
    return agent, [AgentChanged(agent.id, phase, now, agent.pause_reason, agent.call_id)]


def _login(a: Agent, e: LogIn, now: float):
    return _enter(a, AgentPhase.AVAILABLE, now, queues=e.queues, endpoint=e.endpoint, idle_since=now,
                  calls_taken=0, pause_reason=None, call_id=None, pending=None)


def _relogin(a: Agent, e: LogIn, now: float):
    # Logging in again (another queue list, another phone) keeps the agent's state.
    return replace(a, queues=e.queues, endpoint=e.endpoint), []


def _logout(a: Agent, e: LogOut, now: float):
    agent, cmds = _enter(a, AgentPhase.LOGGED_OUT, now, queues=frozenset(), pause_reason=None, call_id=None,
                         pending=None)
    return agent, [CancelTimer(wrapup_key(a.id)), *cmds]


def _logout_later(a: Agent, e: LogOut, now: float):
    return replace(a, pending="logout"), []


def _pause(a: Agent, e: Pause, now: float):
    agent, cmds = _enter(a, AgentPhase.PAUSED, now, pause_reason=e.reason, call_id=None, pending=None)
    return agent, [CancelTimer(wrapup_key(a.id)), *cmds]


def _pause_later(a: Agent, e: Pause, now: float):
    return replace(a, pending=f"pause:{e.reason}"), []


def _repause(a: Agent, e: Pause, now: float):
    return _enter(a, AgentPhase.PAUSED, now, pause_reason=e.reason)


def _unpause(a: Agent, e: Unpause, now: float):
    return _enter(a, AgentPhase.AVAILABLE, now, pause_reason=None, idle_since=now)


def _reserve(a: Agent, e: Reserve, now: float):
    return _enter(a, AgentPhase.RESERVED, now, call_id=e.call_id)


def _answer(a: Agent, e: Answer, now: float):
    return _enter(a, AgentPhase.ON_CALL, now, calls_taken=a.calls_taken + 1)


def _hold(a: Agent, e: Hold, now: float):
    return _enter(a, AgentPhase.ON_HOLD, now)


def _resume(a: Agent, e: Resume, now: float):
    return _enter(a, AgentPhase.ON_CALL, now)


def _no_answer(a: Agent, e: NoAnswer, now: float):
    if a.pending == "logout":
        return _logout(a, LogOut(), now)
    return _enter(a, AgentPhase.PAUSED, now, pause_reason=e.reason, call_id=None, pending=None)


def _withdrawn(a: Agent, e: OfferWithdrawn, now: float):
    # The agent did nothing wrong: back to available, keeping their place in the idle order.
    return _after_call(replace(a, call_id=None), now, keep_idle=True)


def _call_ended(a: Agent, e: CallEnded, now: float):
    if e.wrapup_seconds <= 0:
        return _after_call(a, now)
    agent, cmds = _enter(a, AgentPhase.WRAP_UP, now)
    return agent, [*cmds, StartTimer(wrapup_key(a.id), now + e.wrapup_seconds)]


def _end_wrapup(a: Agent, e: EndWrapup, now: float):
    agent, cmds = _after_call(a, now)
    return agent, [CancelTimer(wrapup_key(a.id)), *cmds]


def _ignore(a: Agent, e: Event, now: float):
    return a, []


def _after_call(a: Agent, now: float, keep_idle: bool = False):
    if a.pending == "logout":
        return _logout(a, LogOut(), now)
    if a.pending and a.pending.startswith("pause:"):
        return _enter(a, AgentPhase.PAUSED, now, pause_reason=a.pending[len("pause:"):], call_id=None, pending=None)
    return _enter(a, AgentPhase.AVAILABLE, now, call_id=None, pending=None,
                  idle_since=a.idle_since if keep_idle else now)


P = AgentPhase
_IDLE = (P.AVAILABLE, P.PAUSED, P.WRAP_UP)
CALL_PHASES = (P.ON_CALL, P.ON_HOLD)   # connected to a call
_BUSY = (P.RESERVED, *CALL_PHASES)
_AFTER_CALL = (P.AVAILABLE, P.PAUSED, P.LOGGED_OUT)   # _after_call: free, or what was asked for meanwhile

TABLE: Transitions[Agent] = Transitions("agent", lambda a: a.phase, {
    (P.LOGGED_OUT, LogIn): Row((P.AVAILABLE,), _login),
    **stay(_relogin, (*_IDLE, *_BUSY), (LogIn,)),
    **{(p, LogOut): Row((P.LOGGED_OUT,), _logout) for p in _IDLE},
    **stay(_logout_later, _BUSY, (LogOut,)),
    (P.AVAILABLE, Pause): Row((P.PAUSED,), _pause),
    (P.WRAP_UP, Pause): Row((P.PAUSED,), _pause),
    (P.PAUSED, Pause): Row((P.PAUSED,), _repause),
    **stay(_pause_later, _BUSY, (Pause,)),
    (P.PAUSED, Unpause): Row((P.AVAILABLE,), _unpause),
    (P.AVAILABLE, Reserve): Row((P.RESERVED,), _reserve),
    (P.RESERVED, Answer): Row((P.ON_CALL,), _answer),
    (P.RESERVED, NoAnswer): Row((P.PAUSED, P.LOGGED_OUT), _no_answer),
    (P.RESERVED, OfferWithdrawn): Row(_AFTER_CALL, _withdrawn),
    **{(p, CallEnded): Row((P.WRAP_UP, *_AFTER_CALL), _call_ended) for p in CALL_PHASES},
    (P.ON_CALL, Hold): Row((P.ON_HOLD,), _hold),
    (P.ON_HOLD, Resume): Row((P.ON_CALL,), _resume),
    # the phone says it twice, or a restarted engine hears the end of a hold it did not see begin
    **stay(_ignore, (P.ON_HOLD,), (Hold,)),
    **stay(_ignore, (P.ON_CALL,), (Resume,)),
    (P.WRAP_UP, EndWrapup): Row(_AFTER_CALL, _end_wrapup),
})


def handle(agent: Agent, event: Event, now: float) -> tuple[Agent, list[Command]]:
    return TABLE.handle(agent, event, now)
