"""The ACD's messages (engine/core/acd.py is the machine): the configuration as the core sees it,
the events the shell posts, and the commands the ACD answers with. Plain frozen data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from engine.core import agent as ag
from engine.core.common import Command, Event

__all__ = ["AgentProfile", "AgentRequest", "Announce", "CallFinished", "CallbackRequested", "Connect",
           "ConnectFailed", "Dequeue", "Enqueue", "Expand", "HoldChanged", "Offer", "OfferAnswered", "OfferEnded",
           "OfferFailed",
           "OfferMade", "PhoneInUse", "QueueEntered", "QueueLeft", "QueueReopened", "QueueRules", "Reconfigure",
           "RoutingDecision", "ToCallback", "Unroutable", "Withdraw"]


# -- configuration as the core sees it ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Expand:
    after_seconds: float
    skills: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class QueueRules:
    name: str
    skills: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    strategy: str = "longest_idle"
    ring_timeout: float = 15.0
    wrapup: float = 10.0
    sl_seconds: float = 20.0
    sl_fraction: float = 0.8
    expand: tuple[Expand, ...] = ()
    max_wait: float | None = None
    overflow: str | None = None
    announce_every: float | None = None


@dataclass(frozen=True, slots=True)
class AgentProfile:
    id: str
    skills: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    endpoint: str = ""


# -- events --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Enqueue(Event):
    call_id: str
    queue: str
    priority: int = 0
    skills: Mapping[str, int] | None = None  # overrides the queue's requirement (from the IVR)
    entered_at: float | None = None          # a call restored after a restart keeps its place
    queued_at: float | None = None           # ... and its wait in this queue (else: now)
    callback: str | None = None              # no caller on the line: the agent answers, then this is dialled
    avoid: frozenset[str] = frozenset()      # offer to these agents only when no other qualified one is free
    only: str | None = None                  # an agent's transfer to another: offer to that agent alone


@dataclass(frozen=True, slots=True)
class Dequeue(Event):
    """The caller left the queue (hung up: ``abandoned``), wherever the call was."""

    call_id: str
    outcome: str = "abandoned"


@dataclass(frozen=True, slots=True)
class ToCallback(Event):
    """The caller asked to be called back, keeping their place; their channel goes away."""

    call_id: str
    number: str


@dataclass(frozen=True, slots=True)
class OfferAnswered(Event):
    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class OfferFailed(Event):
    call_id: str
    agent_id: str
    reason: str = "no-answer"  # no-answer | busy | rejected | unreachable


@dataclass(frozen=True, slots=True)
class PhoneInUse(Event):
    """An agent's phone has a call of its own up (a keypad code), or no longer (``in_use`` False).
    Its agent is offered nothing meanwhile: a desk phone without call waiting would answer 486, and
    one with it would ring a second line over the confirmation prompt."""

    endpoint: str
    in_use: bool


@dataclass(frozen=True, slots=True)
class ConnectFailed(Event):
    """The agent's leg was gone by the time the caller was to be bridged to it (the agent hung up,
    or the phone dropped, just after answering). The caller goes back to the front of the line."""

    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class CallFinished(Event):
    """The agent's call is over (either side hung up): wrap-up begins."""

    agent_id: str


@dataclass(frozen=True, slots=True)
class HoldChanged(Event):
    """The agent put their caller on hold (``held``) or took them off it (the call machine says so)."""

    agent_id: str
    held: bool


@dataclass(frozen=True, slots=True)
class AgentRequest(Event):
    """What an agent asked for (phone feature code, API): log in/out, pause, unpause, end wrap-up."""

    agent_id: str
    request: ag.Event


@dataclass(frozen=True, slots=True)
class Reconfigure(Event):
    queues: Mapping[str, QueueRules]
    agents: Mapping[str, AgentProfile]


# -- commands ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RoutingDecision:
    strategy: str
    requirement: Mapping[str, int]
    step: int                                  # 0 = the queue's own requirement, k = k-th expansion
    candidates: tuple[tuple[str, float], ...]  # eligible agents, best first, with the ranking figure
    metric: str                                # what the figure is

    @property
    def chosen(self) -> str:
        return self.candidates[0][0]

    def explain(self) -> str:
        need = ", ".join(f"{k}>={v}" for k, v in sorted(self.requirement.items())) or "no skill"
        step = "" if self.step == 0 else f" (expanded, step {self.step})"
        shown = "; ".join(f"{a} {self.metric} {_fmt(v)}" for a, v in self.candidates[:5])
        more = f"; +{len(self.candidates) - 5} more" if len(self.candidates) > 5 else ""
        return (f"{self.strategy}: {self.chosen} chosen of {len(self.candidates)} eligible "
                f"[{need}{step}]: {shown}{more}")


@dataclass(frozen=True, slots=True)
class Offer(Command):
    offer_id: str
    call_id: str
    agent_id: str
    endpoint: str
    queue: str
    ring_timeout: float
    decision: RoutingDecision
    callback_number: str | None = None  # a callback: once the agent answers, dial this number


@dataclass(frozen=True, slots=True)
class Withdraw(Command):
    """Stop ringing ``agent_id`` for ``call_id`` (hang up the agent's leg)."""

    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class Connect(Command):
    """The agent answered and the call is still there: bridge them."""

    call_id: str
    agent_id: str
    queue: str


@dataclass(frozen=True, slots=True)
class Unroutable(Command):
    """No agent will take this call here (no agents, max wait with no overflow): the call leaves."""

    call_id: str
    queue: str
    reason: str


@dataclass(frozen=True, slots=True)
class Announce(Command):
    call_id: str
    position: int
    expected_wait: float


@dataclass(frozen=True, slots=True)
class QueueEntered(Command):
    call_id: str
    queue: str
    at: float
    priority: int
    entered_at: float  # when the call first entered any queue (its place in line)


@dataclass(frozen=True, slots=True)
class OfferMade(Command):
    offer_id: str
    call_id: str
    queue: str
    agent_id: str
    at: float
    decision: RoutingDecision


@dataclass(frozen=True, slots=True)
class OfferEnded(Command):
    offer_id: str
    at: float
    result: str  # answered | no-answer | busy | rejected | unreachable | withdrawn


@dataclass(frozen=True, slots=True)
class QueueLeft(Command):
    call_id: str
    queue: str
    at: float
    outcome: str  # answered | abandoned | overflow | unroutable | callback
    wait: float   # seconds since the call entered this queue
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class QueueReopened(Command):
    """The stay that ``agent_id`` answered did not become a conversation: it is open again."""

    call_id: str
    queue: str
    agent_id: str
    at: float


@dataclass(frozen=True, slots=True)
class CallbackRequested(Command):
    call_id: str
    queue: str
    number: str
    at: float


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
