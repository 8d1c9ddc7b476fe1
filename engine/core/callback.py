"""Placing a callback, as a pure state machine.

Theory of operation
-------------------
A caller who pressed the queue's callback key kept their place in line; when their turn came the
ACD offered the call to an agent like any other, and the agent answered. Now the engine dials the
caller's number and bridges the two::

    DIALING --CustomerAnswered--> CONNECTED --either side leaves--> ENDED
        |--CustomerFailed / AgentGone / dial timer----------------> ENDED

Whatever happens, the agent's call ends exactly once (:class:`~engine.core.call.AgentCallOver`, so
the ACD starts their wrap-up) and the outcome is recorded once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from engine.core.call import AgentCallOver, AgentGone, HangupAgent
from engine.core.channel import ChannelGone, HangupRequested, RequestFailed
from engine.core.common import CancelTimer, Command, Event, Row, StartTimer, TimerFired, Transitions, stay

__all__ = ["Callback", "CustomerAnswered", "CustomerFailed", "DialCustomer", "Phase", "RecordOutcome",
           "BridgeCustomer", "HangupCustomer", "handle", "start"]

DIAL_GRACE = 10.0  # beyond the ring time, before the engine gives up on hearing from Asterisk


class Phase(Enum):
    DIALING = "dialing"
    CONNECTED = "connected"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class CustomerAnswered(Event):
    pass


@dataclass(frozen=True, slots=True)
class CustomerFailed(Event):
    outcome: str  # busy | no-answer | failed


@dataclass(frozen=True, slots=True)
class DialCustomer(Command):
    number: str
    ring_seconds: float


@dataclass(frozen=True, slots=True)
class BridgeCustomer(Command):
    pass


@dataclass(frozen=True, slots=True)
class HangupCustomer(Command):
    pass


@dataclass(frozen=True, slots=True)
class RecordOutcome(Command):
    call_id: str
    agent_id: str
    at: float
    outcome: str


@dataclass(frozen=True, slots=True)
class Callback:
    call_id: str
    agent_id: str
    agent_channel: str
    number: str
    phase: Phase = Phase.DIALING


def start(call_id: str, agent_id: str, agent_channel: str, number: str, ring_seconds: float,
          now: float) -> tuple[Callback, list[Command]]:
    cb = Callback(call_id, agent_id, agent_channel, number)
    return cb, [DialCustomer(number, ring_seconds), StartTimer("dial", now + ring_seconds + DIAL_GRACE)]


def _end(cb: Callback, now: float, outcome: str | None, hang_up_customer: bool,
         hang_up_agent: bool) -> tuple[Callback, list[Command]]:
    cmds: list[Command] = [CancelTimer("dial")]
    if outcome is not None:
        cmds.append(RecordOutcome(cb.call_id, cb.agent_id, now, outcome))
    if hang_up_customer:
        cmds.append(HangupCustomer())
    if hang_up_agent:
        cmds.append(HangupAgent(cb.agent_channel))
    cmds.append(AgentCallOver(cb.agent_id))
    return replace(cb, phase=Phase.ENDED), cmds


def _answered(cb: Callback, e: CustomerAnswered, now: float):
    return replace(cb, phase=Phase.CONNECTED), [CancelTimer("dial"), BridgeCustomer(),
                                                RecordOutcome(cb.call_id, cb.agent_id, now, "answered")]


def _failed(cb: Callback, e: CustomerFailed, now: float):
    return _end(cb, now, e.outcome, hang_up_customer=False, hang_up_agent=True)


def _agent_left_dialing(cb: Callback, e: AgentGone, now: float):
    return _end(cb, now, "agent-hung-up", hang_up_customer=True, hang_up_agent=False)


def _dial_timeout(cb: Callback, e: TimerFired, now: float):
    return _end(cb, now, "no-answer", hang_up_customer=True, hang_up_agent=True)


def _request_failed(cb: Callback, e: RequestFailed, now: float):
    return _end(cb, now, "failed" if cb.phase is Phase.DIALING else None, hang_up_customer=True,
                hang_up_agent=True)


def _customer_left(cb: Callback, e: ChannelGone, now: float):
    return _end(cb, now, None, hang_up_customer=False, hang_up_agent=True)


def _agent_left(cb: Callback, e: AgentGone, now: float):
    return _end(cb, now, None, hang_up_customer=True, hang_up_agent=False)


def _ignore(cb: Callback, e: Event, now: float):
    return cb, []


P = Phase
TABLE: Transitions[Callback] = Transitions("callback", lambda c: c.phase, {
    (P.DIALING, CustomerAnswered): Row((P.CONNECTED,), _answered),
    (P.DIALING, CustomerFailed): Row((P.ENDED,), _failed),
    (P.DIALING, AgentGone): Row((P.ENDED,), _agent_left_dialing),
    (P.DIALING, TimerFired): Row((P.ENDED,), _dial_timeout),
    (P.DIALING, RequestFailed): Row((P.ENDED,), _request_failed),
    (P.CONNECTED, ChannelGone): Row((P.ENDED,), _customer_left),
    (P.CONNECTED, AgentGone): Row((P.ENDED,), _agent_left),
    (P.CONNECTED, RequestFailed): Row((P.ENDED,), _request_failed),
    **stay(_ignore, (P.DIALING, P.CONNECTED), (HangupRequested,)),
    **stay(_ignore, (P.CONNECTED,), (TimerFired,)),
})


def handle(cb: Callback, event: Event, now: float) -> tuple[Callback, list[Command]]:
    return TABLE.handle(cb, event, now)
