"""What the ACD keeps (engine/core/acd.py is the machine: how each event changes it): the records
of each waiting caller, queue and talk, and :class:`AcdState`, the containers that hold them with
the free-agent indexes kept in step, and every read the shell and the rules make of them.

Immutable records: the ACD changes one by storing its successor (``_replace``) in a tracked
container (engine/core/txn.py), which logs the record it replaced. The caller and the queue figures
are named tuples, the cheapest immutable records to make (one per arrival, offer and call handled).
Reading changes nothing: a read may be made outside an event."""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from engine.core import agent as ag
from engine.core import erlang
from engine.core.acd_messages import AgentProfile, QueueRules
from engine.core.txn import Machine, TDict, TList, TSet

__all__ = ["AcdState", "_QueueStats", "_Talk", "_Waiting"]


# -- internal records ----------------------------------------------------------------------------
class _Waiting(NamedTuple):
    call_id: str
    queue: str
    priority: int
    entered_at: float   # place in line
    queued_at: float    # entered this queue (waits are reported per queue)
    seq: int
    skills: Mapping[str, int] | None
    step: int = 0
    offer: tuple[str, str] | None = None  # (offer_id, agent_id) while an agent's phone rings
    callback: str | None = None           # number to call back, once the caller chose a callback
    avoid: frozenset[str] = frozenset()   # agents offered this call only when nobody else is free
    only: str | None = None               # a transfer to this agent: offered to them alone, whatever skills

    @property
    def key(self) -> tuple[int, float, int]:
        return (-self.priority, self.entered_at, self.seq)

    def offered(self, offer: tuple[str, str] | None) -> _Waiting:
        """This caller with another offer (or none): ``_replace(offer=offer)``, at a third of its cost
        (routing makes one per offer)."""
        return _Waiting(self.call_id, self.queue, self.priority, self.entered_at, self.queued_at, self.seq,
                        self.skills, self.step, offer, self.callback, self.avoid, self.only)


class _QueueStats(NamedTuple):
    """Recent arrivals and handle times, for expected waits and agents needed (EWMA)."""

    handle_time: float = 180.0
    rate: float = 0.0          # arrivals per second
    last_arrival: float | None = None

    def arrival(self, now: float, horizon: float = 900.0) -> _QueueStats:
        """These figures after an arrival at ``now``."""
        rate = self.rate
        if self.last_arrival is not None:
            gap = max(now - self.last_arrival, 1e-3)
            weight = 1 - math.exp(-gap / horizon)
            rate = (1 - weight) * rate + weight / gap
        return _QueueStats(self.handle_time, rate, now)

    def rate_at(self, now: float, horizon: float = 900.0) -> float:
        """The arrival rate as of ``now``: a queue that has been quiet since its last arrival
        fades (the estimate is otherwise only updated by arrivals), down to none at all."""
        if self.last_arrival is None:
            return 0.0
        rate = self.rate * math.exp(-max(0.0, now - self.last_arrival) / horizon)
        return rate if rate * horizon >= 0.5 else 0.0   # under half a call expected: quiet

    def handled(self, seconds: float, alpha: float = 0.1) -> _QueueStats:
        """These figures after a call handled in ``seconds``."""
        return _QueueStats((1 - alpha) * self.handle_time + alpha * seconds, self.rate, self.last_arrival)


@dataclass(frozen=True, slots=True)
class _Talk:
    call_id: str
    queue: str
    answered_at: float
    waiting: _Waiting | None = None   # where the call was in line, until it is connected


class AcdState(Machine):
    """The ACD's state and its reads; :class:`engine.core.acd.Acd` adds the rules (the events)."""

    def __init__(self) -> None:
        self.rules: Mapping[str, QueueRules] = MappingProxyType({})
        self.profiles: Mapping[str, AgentProfile] = MappingProxyType({})
        self._agents: TDict[str, ag.Agent] = TDict()
        self._waiting: TDict[str, _Waiting] = TDict()
        self.agents: Mapping[str, ag.Agent] = MappingProxyType(self._agents)      # read-only views
        self.waiting: Mapping[str, _Waiting] = MappingProxyType(self._waiting)
        self._lines: TDict[str, TList[tuple[tuple[int, float, int], str]]] = TDict()  # queue -> sorted (key, call)
        self._phone_calls: TDict[str, int] = TDict()   # endpoint -> its own calls up now (keypad codes)
        self._phone_settling: TSet[str] = TSet()       # endpoints whose own last call ended just now
        self._free: TSet[str] = TSet()                  # AVAILABLE agents whose phone is free
        self._free_in: TDict[str, TSet[str]] = TDict()  # queue -> AVAILABLE agents logged in to it
        self._offers: TDict[str, str] = TDict()     # agent_id -> call_id while ringing
        self._talks: TDict[str, _Talk] = TDict()    # agent_id -> the call they are on (for handle times)
        self._rr: TDict[str, str] = TDict()         # queue -> last agent chosen (round robin)
        self._stats: TDict[str, _QueueStats] = TDict()
        self._seq = 0          # the next caller's tie-break in line
        self._offer_seq = 1    # the next offer's number
        self.retired_queues: frozenset[str] = frozenset()

    # -- reads -----------------------------------------------------------------------------------
    def queue_of(self, call_id: str) -> str | None:
        w = self._waiting.get(call_id)
        return w.queue if w else None

    def call_queue(self, agent_id: str) -> str | None:
        """The queue of the call this agent is on, wraps up or is being offered; None without one
        (or after a restart, for a call taken before it)."""
        talk = self._talks.get(agent_id)
        if talk is not None:
            return talk.queue
        w = self._waiting.get(self._offers.get(agent_id, ""))
        return w.queue if w is not None else None

    def position(self, call_id: str) -> int:
        """1-based place among the calls waiting in the same queue."""
        w = self._waiting[call_id]
        return 1 + bisect.bisect_left(self._lines[w.queue], (w.key, w.call_id))

    def expected_wait(self, call_id: str) -> float:
        w = self._waiting[call_id]
        staff = sum(1 for a in self._agents.values()
                    if w.queue in a.queues and a.phase not in (ag.AgentPhase.LOGGED_OUT, ag.AgentPhase.PAUSED))
        return self.position(call_id) * self._stat(w.queue).handle_time / max(1, staff)

    def agents_needed(self, queue: str, now: float | None = None) -> int:
        """Agents this queue needs now to hold its service level (Erlang C on recent traffic;
        given ``now``, traffic fades while the queue is quiet)."""
        r, s = self.rules[queue], self._stat(queue)
        rate = s.rate if now is None else s.rate_at(now)
        return erlang.agents_needed(rate, s.handle_time, r.sl_seconds, r.sl_fraction)

    def arrival_rate(self, queue: str, now: float) -> float:
        """Calls per second this queue has been offered lately (fading while it is quiet)."""
        return self._stat(queue).rate_at(now)

    def inbound_reserve(self) -> dict[str, int]:
        """For blending: per queue, agents needed minus agents logged in and not paused (may be < 0)."""
        out = {}
        for q in self.rules:
            staffed = sum(1 for a in self._agents.values()
                          if q in a.queues and a.phase not in (ag.AgentPhase.LOGGED_OUT, ag.AgentPhase.PAUSED))
            out[q] = self.agents_needed(q) - staffed
        return out

    def requirement(self, w: _Waiting) -> Mapping[str, int]:
        if w.step > 0:
            return self.rules[w.queue].expand[w.step - 1].skills
        return w.skills if w.skills is not None else self.rules[w.queue].skills

    def _qualifies(self, agent_id: str, need: Mapping[str, int]) -> bool:
        skills = self.profiles[agent_id].skills
        return all(skills.get(s, 0) >= level for s, level in need.items())

    def _staffed(self, queue: str) -> bool:
        return any(queue in a.queues and a.phase is not ag.AgentPhase.LOGGED_OUT for a in self._agents.values())

    def _stat(self, queue: str) -> _QueueStats:
        """A queue's figures (none yet: the priors, not stored: reading changes nothing)."""
        s = self._stats.get(queue)
        return s if s is not None else _QueueStats()

    def _queues_in_use(self) -> set[str]:
        return {w.queue for w in self._waiting.values()}

    def _phone_busy(self, endpoint: str) -> bool:
        return bool(self._phone_calls.get(endpoint)) or endpoint in self._phone_settling

    # -- the free-agent indexes ------------------------------------------------------------------
    def _set_agent(self, agent: ag.Agent) -> None:
        """Store an agent's new state, keeping the free-agent indexes in step."""
        before = self._agents.get(agent.id)
        if before is not None and before.phase is ag.AgentPhase.AVAILABLE:
            self._free.discard(agent.id)
            for q in before.queues:
                self._free_in.get(q, set()).discard(agent.id)
        self._agents[agent.id] = agent
        if agent.phase is ag.AgentPhase.AVAILABLE and not self._phone_busy(agent.endpoint):
            self._free.add(agent.id)
            for q in agent.queues:
                free = self._free_in.get(q)
                if free is None:
                    free = self._free_in[q] = TSet()
                free.add(agent.id)

    def _refresh_phone(self, endpoint: str) -> None:
        for agent in [a for a in self._agents.values() if a.endpoint == endpoint]:
            self._set_agent(agent)   # in or out of the free indexes
