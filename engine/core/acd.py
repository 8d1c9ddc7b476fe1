"""The ACD: skills-based queues that offer waiting calls to agents. Pure: no I/O, no clock.

Theory of operation
-------------------
One :class:`Acd` holds every queue's waiting calls and every agent's state (each agent is an
:mod:`engine.core.agent` machine). ``acd.handle(event, now)`` returns commands for the shell:
ring an agent (:class:`Offer`), stop ringing (:class:`Withdraw`), bridge (:class:`Connect`), give
up on a call (:class:`Unroutable`), tell the caller their place (:class:`Announce`), persist
(``Record*``, :class:`~engine.core.agent.AgentChanged`), and timers.

Routing. Waiting calls form one line ordered by caller priority (higher first), then by the time
they first entered a queue (a call that overflows or is put back after a ring-no-answer keeps its
place). Whenever something changes (a call arrives, an agent becomes free, a wait passes an
expansion step) the line is walked in order and each call not already ringing is offered to the
best *eligible* free agent: logged in to the call's queue, AVAILABLE, and at or above every skill
level the call currently requires. "Best" is the queue's strategy:

- ``longest_idle``: free the longest (since their last call or unpause);
- ``least_calls``: fewest calls answered this login, then longest idle;
- ``most_skilled``: highest total level on the required skills, then longest idle;
- ``round_robin``: the next agent id after the one this queue used last.

One call rings one agent; one agent is offered one call. Every offer carries a
:class:`RoutingDecision`: the strategy, the requirement, every candidate with the figure that
ranked it, in order, so "why did agent X get this call" has an answer in the database.

Waiting. Expansion steps replace the requirement after the given wait (the call keeps its
place). At ``max_wait`` the call overflows to the queue's overflow queue (keeping its place in the
line), or is :class:`Unroutable`. A call arriving at a queue nobody is logged in to overflows at
once, as do the waiting calls of a queue whose last agent logs out.

An event that raises leaves the ACD as it was, whatever raised and wherever: ``handle`` (and
``step(acd, event, now) -> (acd, commands)``, the shape of the frozen machines) runs each event in
one transaction (:mod:`engine.core.txn`). The ACD's containers and attributes are tracked and its
records frozen, so each change is logged with its undo, replayed backwards if the event raises
(:class:`Refused`, :class:`~engine.core.common.IllegalTransition`, or a bug); a change outside an
event raises. The rules still check before they change anything, but nothing depends on it. Reads
are read-only views (``acd.agents``, ``acd.waiting``, ``acd.rules``, ``acd.profiles``).

This module is the rules: how each event changes the ACD. What it keeps (the containers, the
free-agent indexes kept in step with the agents, and the reads: a caller's position and expected
wait, agents needed) is :class:`~engine.core.acd_state.AcdState`, which :class:`Acd` extends.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType

from engine.core import agent as ag
from engine.core.acd_messages import (AgentProfile, AgentRequest, Announce, CallbackRequested, CallFinished, Connect,
                           ConnectFailed, Dequeue, Enqueue, Expand, HoldChanged, Offer, OfferAnswered, OfferEnded,
                           OfferFailed,
                           OfferMade, PhoneInUse, QueueEntered, QueueLeft, QueueReopened, QueueRules, Reconfigure,
                           RoutingDecision, ToCallback, Unroutable, Withdraw)
from engine.core.acd_state import AcdState, _Talk, _Waiting
from engine.core.acd_strategies import STRATEGIES, rank
from engine.core.common import CancelTimer, Command, Event, Rejected, StartTimer, TimerFired
from engine.core.txn import TList, atomic

__all__ = [
    "Acd", "AgentProfile", "AgentRequest", "Announce", "CallFinished", "Connect", "ConnectFailed", "Dequeue",
    "Enqueue", "HoldChanged", "PhoneInUse", "QueueReopened",
    "Expand", "Offer", "OfferAnswered", "OfferFailed", "QueueEntered", "QueueLeft", "QueueRules",
    "Reconfigure", "OfferEnded", "Refused", "RoutingDecision", "STRATEGIES", "ToCallback", "Unroutable",
    "Withdraw", "step",
]

# How long after the ring timeout the ACD gives up on hearing from the phone itself.
RING_GRACE_SECONDS = 3.0
# After an agent's own call (a keypad code) ends, their phone gets no offer for this long: Asterisk
# destroys the channel, and the engine hears of it, while the BYE is still on its way to the phone
# (a few ms on loopback; a lost BYE is sent again after 0.5 s). An INVITE that overtakes it finds
# the call still up, and a phone without call waiting answers 486: the agent would be paused busy.
PHONE_SETTLE_SECONDS = 1.0


class Refused(Rejected):
    """A request the rules turn down (unknown agent, unknown queue...). Nothing was changed."""


class Acd(AcdState):
    def __init__(self, queues: Mapping[str, QueueRules], agents: Mapping[str, AgentProfile]) -> None:
        super().__init__()
        self._configure(queues, agents)

    # -- public API ------------------------------------------------------------------------------
    def handle(self, event: Event, now: float) -> list[Command]:
        """The commands for ``event``; if it raises, the ACD is as it was (one transaction)."""
        handler = _HANDLERS.get(type(event))
        if handler is None:
            raise TypeError(f"the ACD has no handler for {type(event).__name__}")
        return atomic(self, handler, self, event, now)

    def restore_agent(self, agent: ag.Agent, now: float, *, queue: str | None = None) -> list[Command]:
        """After a restart, put an agent back as they were (the database says how). Not an event:
        nothing is recorded, as nothing happened, but one transaction all the same. Returns the
        timers to re-arm. An agent on a call keeps it as a talk in ``queue`` (the call's queue;
        unknown: the agent's queue with the longest wrap-up), so the call's end brings that queue's
        wrap-up as if we had never stopped."""
        return atomic(self, self._restore_agent, agent, now, queue)

    def _restore_agent(self, agent: ag.Agent, now: float, queue: str | None) -> list[Command]:
        if agent.id not in self.profiles:
            raise Refused(f"unknown agent {agent.id!r}")
        self._set_agent(agent)
        known = [q for q in agent.queues if q in self.rules]
        if agent.phase is ag.AgentPhase.WRAP_UP:
            wrapup = max((self.rules[q].wrapup for q in known), default=0.0)
            return [StartTimer(ag.wrapup_key(agent.id), max(now, agent.since + wrapup))]
        if agent.phase in ag.CALL_PHASES and agent.call_id is not None:
            if queue not in self.rules:
                queue = max(known, key=lambda q: self.rules[q].wrapup, default=None)
            if queue is not None:
                self._talks[agent.id] = _Talk(agent.call_id, queue, agent.since)
        return []

    # -- configuration ---------------------------------------------------------------------------
    def _configure(self, queues: Mapping[str, QueueRules], agents: Mapping[str, AgentProfile]) -> None:
        for q in queues.values():
            if q.strategy not in STRATEGIES:
                raise Refused(f"queue {q.name}: unknown strategy {q.strategy!r}")
            if q.overflow is not None and q.overflow not in queues:
                raise Refused(f"queue {q.name}: overflow to unknown queue {q.overflow!r}")
        self.rules = MappingProxyType({**{n: r for n, r in self.rules.items() if n in self._queues_in_use()},
                                       **queues})
        self.retired_queues = frozenset(self.rules) - set(queues)
        self.profiles = MappingProxyType(dict(agents))
        for agent_id in agents:
            self._agents.setdefault(agent_id, ag.Agent(agent_id))

    def _reconfigure(self, e: Reconfigure, now: float) -> list[Command]:
        self._configure(e.queues, e.agents)
        cmds: list[Command] = []
        for agent_id, a in list(self._agents.items()):
            if agent_id not in self.profiles:
                if a.phase is ag.AgentPhase.LOGGED_OUT:
                    del self._agents[agent_id]  # logged out: in no free-agent index
                else:  # removed from the configuration: out once their call is over
                    cmds += self._agent(agent_id, ag.LogOut(), now)
            elif a.queues - set(self.rules):
                # queues that no longer exist drop out of the agent's login
                self._set_agent(replace(a, queues=a.queues & set(self.rules)))
        return cmds + self._dispatch(now)

    # -- agents ----------------------------------------------------------------------------------
    def _agent(self, agent_id: str, event: ag.Event, now: float) -> list[Command]:
        before = self._agents.get(agent_id)
        if before is None:   # never configured, or removed by a reload and forgotten
            raise Refused(f"unknown agent {agent_id!r}")
        after, cmds = ag.handle(before, event, now)
        self._set_agent(after)
        if after.phase is ag.AgentPhase.LOGGED_OUT:
            cmds += self._overflow_unstaffed(before.queues, now)
        return cmds

    def _agent_request(self, e: AgentRequest, now: float) -> list[Command]:
        if e.agent_id not in self.profiles:
            raise Refused(f"unknown agent {e.agent_id!r}")
        request = e.request
        if isinstance(request, ag.LogIn):
            unknown = sorted(request.queues - set(self.rules) | (request.queues & self.retired_queues))
            if unknown:
                raise Refused(f"unknown queue(s): {', '.join(unknown)}")
            if not request.queues:
                raise Refused("log in to at least one queue")
            endpoint = request.endpoint or self.profiles[e.agent_id].endpoint
            if not endpoint:
                raise Refused(f"agent {e.agent_id} has no phone: log in from one")
            request = replace(request, endpoint=endpoint)
        cmds = self._agent(e.agent_id, request, now)  # an illegal request raises before any change
        if isinstance(request, ag.EndWrapup):
            self._end_talk(e.agent_id, now)
        return cmds + self._dispatch(now)

    def _call_finished(self, e: CallFinished, now: float) -> list[Command]:
        talk = self._talks.get(e.agent_id)
        wrapup = self.rules[talk.queue].wrapup if talk and talk.queue in self.rules else 0.0
        cmds = self._agent(e.agent_id, ag.CallEnded(wrapup), now)
        if self._agents[e.agent_id].phase is not ag.AgentPhase.WRAP_UP:
            self._end_talk(e.agent_id, now)
        return cmds + self._dispatch(now)

    def _hold_changed(self, e: HoldChanged, now: float) -> list[Command]:
        # a hold changes nobody's availability: nothing to dispatch
        return self._agent(e.agent_id, ag.Hold() if e.held else ag.Resume(), now)

    def _phone_in_use(self, e: PhoneInUse, now: float) -> list[Command]:
        count = self._phone_calls.get(e.endpoint, 0) + (1 if e.in_use else -1)
        if count > 0:
            self._phone_calls[e.endpoint] = count
        else:
            self._phone_calls.pop(e.endpoint, None)
        cmds: list[Command] = []
        if not e.in_use and count <= 0:   # its last call is over: free once the phone has the BYE
            self._phone_settling.add(e.endpoint)
            cmds.append(StartTimer(f"phone:{e.endpoint}", now + PHONE_SETTLE_SECONDS))
        self._refresh_phone(e.endpoint)
        return cmds

    def _connect_failed(self, e: ConnectFailed, now: float) -> list[Command]:
        talk = self._talks.get(e.agent_id)
        if talk is None or talk.call_id != e.call_id or talk.waiting is None:
            return []  # not (or no longer) this agent's call: nothing to undo
        ended = self._agent(e.agent_id, ag.CallEnded(0.0), now)   # an illegal one raises before any change
        del self._talks[e.agent_id]
        # offered to this agent again only if nobody else is free
        w = talk.waiting._replace(offer=None, avoid=talk.waiting.avoid | {e.agent_id})
        cmds: list[Command] = [QueueReopened(w.call_id, w.queue, e.agent_id, now), *ended]
        if e.call_id not in self._waiting and w.queue in self.rules:
            cmds += self._place(w, now)   # its place in line and its wait in this queue, kept
        return cmds + self._dispatch(now)

    def _end_talk(self, agent_id: str, now: float) -> None:
        talk = self._talks.pop(agent_id, None)
        if talk is not None:
            self._stats[talk.queue] = self._stat(talk.queue).handled(now - talk.answered_at)

    # -- calls -----------------------------------------------------------------------------------
    def _enqueue(self, e: Enqueue, now: float) -> list[Command]:
        if e.queue not in self.rules or e.queue in self.retired_queues:
            raise Refused(f"unknown queue {e.queue!r}")
        if e.call_id in self._waiting:
            raise Refused(f"call {e.call_id} is already queued")
        entered = e.entered_at if e.entered_at is not None else now
        queued = min(e.queued_at, now) if e.queued_at is not None else now
        seq = self._seq
        self._seq = seq + 1
        w = _Waiting(e.call_id, e.queue, e.priority, entered, queued, seq,
                     MappingProxyType(dict(e.skills)) if e.skills is not None else None,
                     callback=e.callback, avoid=e.avoid, only=e.only)
        self._stats[e.queue] = self._stat(e.queue).arrival(now)
        return self._place(w, now) + self._dispatch(now)

    def _place(self, w: _Waiting, now: float) -> list[Command]:
        """Put ``w`` in the line of its queue, with its timers; overflow if nobody staffs it."""
        r = self.rules[w.queue]
        cmds: list[Command] = [QueueEntered(w.call_id, w.queue, now, w.priority, w.entered_at)]
        if not self._staffed(w.queue):
            return cmds + self._give_up(w, now, "no-agents", queued=False)
        self._waiting[w.call_id] = w
        bisect.insort(self._lines.setdefault(w.queue, TList()), (w.key, w.call_id))
        if r.max_wait is not None:
            cmds.append(StartTimer(f"maxwait:{w.call_id}", w.queued_at + r.max_wait))
        cmds += self._arm_expansion(w)
        if r.announce_every and w.callback is None:
            cmds.append(StartTimer(f"announce:{w.call_id}", now + r.announce_every))
        return cmds

    def _arm_expansion(self, w: _Waiting) -> list[Command]:
        steps = self.rules[w.queue].expand
        if w.step < len(steps):
            return [StartTimer(f"expand:{w.call_id}", w.queued_at + steps[w.step].after_seconds)]
        return []

    def _remove(self, w: _Waiting) -> list[Command]:
        del self._waiting[w.call_id]
        line = self._lines[w.queue]
        del line[bisect.bisect_left(line, (w.key, w.call_id))]
        return [CancelTimer(f"{k}:{w.call_id}") for k in ("maxwait", "expand", "announce", "ring")]

    def _give_up(self, w: _Waiting, now: float, reason: str, queued: bool = True) -> list[Command]:
        """Overflow ``w`` to its queue's overflow queue, keeping its place; else it is unroutable."""
        cmds: list[Command] = []
        if w.offer is not None:  # an agent's phone is ringing for it: stop that first
            cmds += self._end_offer(w, now, "withdrawn", ag.OfferWithdrawn())
            if queued and w.call_id not in self._waiting:
                # that agent was the last one staffing the queue and logged out as the offer
                # ended: the call was sent on (overflow or unroutable) already
                return cmds
        if queued:
            cmds += self._remove(w)
        # An overflow queue a reload dropped (a queue kept only for the calls still waiting in it
        # may name one) is no overflow: the walk ends there, and the call is unroutable.
        target = self.rules[w.queue].overflow
        seen = {w.queue}
        while target in self.rules and not self._staffed(target) and target not in seen:
            seen.add(target)
            target = self.rules[target].overflow
        if target in self.rules and target not in seen:
            cmds.append(QueueLeft(w.call_id, w.queue, now, "overflow", now - w.queued_at))
            moved = _Waiting(w.call_id, target, w.priority, w.entered_at, now, w.seq, w.skills,
                             callback=w.callback)
            return cmds + self._place(moved, now)
        cmds.append(QueueLeft(w.call_id, w.queue, now, "unroutable", now - w.queued_at))
        return cmds + [Unroutable(w.call_id, w.queue, reason)]

    def _dequeue(self, e: Dequeue, now: float) -> list[Command]:
        w = self._waiting.get(e.call_id)
        if w is None:
            raise Refused(f"call {e.call_id} is not waiting")
        if w.callback is not None and e.outcome == "abandoned":
            return []  # the caller's channel went away on purpose; the callback keeps its place
        cmds = self._remove(w)
        if w.offer is not None:
            cmds += self._end_offer(w, now, "withdrawn", ag.OfferWithdrawn())
        cmds.append(QueueLeft(w.call_id, w.queue, now, e.outcome, now - w.queued_at))
        return cmds + self._dispatch(now)

    def _to_callback(self, e: ToCallback, now: float) -> list[Command]:
        w = self._waiting.get(e.call_id)
        if w is None:
            raise Refused(f"call {e.call_id} is not waiting")
        self._waiting[w.call_id] = w = w._replace(callback=e.number)
        return [CancelTimer(f"announce:{w.call_id}"), CallbackRequested(w.call_id, w.queue, e.number, now)]

    # -- offers ----------------------------------------------------------------------------------
    def _offer_answered(self, e: OfferAnswered, now: float) -> list[Command]:
        w = self._waiting.get(e.call_id)
        if w is None or w.offer is None or w.offer[1] != e.agent_id:
            # The call left (or was withdrawn from this agent) as the phone was answered.
            if self._offers.get(e.agent_id) == e.call_id:
                del self._offers[e.agent_id]
                return [Withdraw(e.call_id, e.agent_id), *self._agent(e.agent_id, ag.OfferWithdrawn(), now),
                        *self._dispatch(now)]
            return [Withdraw(e.call_id, e.agent_id)]
        offer_id = w.offer[0]
        cmds = self._remove(w)
        del self._offers[e.agent_id]
        cmds += self._agent(e.agent_id, ag.Answer(), now)
        self._talks[e.agent_id] = _Talk(e.call_id, w.queue, now, w)
        cmds += [OfferEnded(offer_id, now, "answered"),
                 QueueLeft(w.call_id, w.queue, now, "answered", now - w.queued_at, e.agent_id),
                 Connect(w.call_id, e.agent_id, w.queue)]
        return cmds + self._dispatch(now)

    def _offer_failed(self, e: OfferFailed, now: float) -> list[Command]:
        w = self._waiting.get(e.call_id)
        if w is None or w.offer is None or w.offer[1] != e.agent_id:
            return []  # already settled (withdrawn, timed out)
        cmds = self._end_offer(w, now, e.reason, ag.NoAnswer(e.reason))
        return cmds + self._dispatch(now)

    def _end_offer(self, w: _Waiting, now: float, result: str, agent_event: ag.Event) -> list[Command]:
        assert w.offer is not None
        offer_id, agent_id = w.offer
        if w.call_id in self._waiting:   # (a caller who left is no longer there)
            after = self._waiting[w.call_id].offered(None)
            if after.only is not None and result != "withdrawn":
                after = after._replace(only=None)   # the named agent did not take it: the queue's agents may
            self._waiting[w.call_id] = after
        self._offers.pop(agent_id, None)
        cmds: list[Command] = [CancelTimer(f"ring:{w.call_id}"), OfferEnded(offer_id, now, result)]
        if result in ("withdrawn", "timeout"):
            cmds.append(Withdraw(w.call_id, agent_id))
        return cmds + self._agent(agent_id, agent_event, now)

    # -- timers ----------------------------------------------------------------------------------
    def _timer(self, e: TimerFired, now: float) -> list[Command]:
        kind, _, ref = e.key.partition(":")
        if kind == "phone":
            self._phone_settling.discard(ref)
            self._refresh_phone(ref)
            return self._dispatch(now)
        if kind == "wrapup":
            if ref in self._agents and self._agents[ref].phase is ag.AgentPhase.WRAP_UP:
                cmds = self._agent(ref, ag.EndWrapup(), now)
                self._end_talk(ref, now)
                return cmds + self._dispatch(now)
            return []
        w = self._waiting.get(ref)
        if w is None:
            return []  # a timer of a call that has left
        if kind == "ring":
            if w.offer is None:
                return []
            return self._end_offer(w, now, "timeout", ag.NoAnswer("no-answer")) + self._dispatch(now)
        if kind == "maxwait":
            return self._give_up(w, now, "max-wait") + self._dispatch(now)
        if kind == "expand":
            self._waiting[ref] = w = w._replace(step=w.step + 1)
            return self._arm_expansion(w) + self._dispatch(now)
        if kind == "announce":
            r = self.rules[w.queue]
            cmds = [Announce(w.call_id, self.position(w.call_id), self.expected_wait(w.call_id))]
            if r.announce_every:
                cmds.append(StartTimer(f"announce:{w.call_id}", now + r.announce_every))
            return cmds
        raise ValueError(f"unknown ACD timer {e.key!r}")

    # -- routing ---------------------------------------------------------------------------------
    def _dispatch(self, now: float) -> list[Command]:
        """Walk the line, best place first, over the queues that have both waiting calls and free
        agents, and offer each call not already ringing to the best qualified free agent."""
        cmds: list[Command] = []
        if not self._free:
            return cmds
        active = [line for q, line in self._lines.items() if line and self._free_in.get(q)]
        for _, call_id in heapq.merge(*active):
            if not self._free:
                break
            w = self._waiting[call_id]
            free = self._free_in.get(w.queue)
            if w.offer is not None or not free:
                continue
            need = self.requirement(w)
            if w.only is not None:   # transferred to this agent: theirs alone, skills or not
                candidates = [w.only] if w.only in free else []
            else:
                candidates = [a for a in free if self._qualifies(a, need)]
            if w.avoid:
                candidates = [a for a in candidates if a not in w.avoid] or candidates
            if not candidates:
                continue
            decision = rank(self.rules[w.queue].strategy, need, w.step, candidates, now, self._agents,
                            self.profiles, self._rr.get(w.queue, ""))
            if w.only is not None:   # the routing log says why: the transfer named them
                decision = replace(decision, strategy="transferred to this agent")
            cmds += self._offer(w, decision, now)
        return cmds

    def _offer(self, w: _Waiting, decision: RoutingDecision, now: float) -> list[Command]:
        agent_id = decision.chosen
        r = self.rules[w.queue]
        n = self._offer_seq
        self._offer_seq = n + 1
        offer_id = f"{w.call_id}:{n}"
        self._waiting[w.call_id] = w = w.offered((offer_id, agent_id))
        self._offers[agent_id] = w.call_id
        self._rr[w.queue] = agent_id
        cmds = self._agent(agent_id, ag.Reserve(w.call_id), now)
        return cmds + [
            OfferMade(offer_id, w.call_id, w.queue, agent_id, now, decision),
            Offer(offer_id, w.call_id, agent_id, self._agents[agent_id].endpoint, w.queue, r.ring_timeout,
                  decision, w.callback),
            StartTimer(f"ring:{w.call_id}", now + r.ring_timeout + RING_GRACE_SECONDS),
        ]

    # -- helpers ---------------------------------------------------------------------------------
    def _overflow_unstaffed(self, queues: Iterable[str], now: float) -> list[Command]:
        cmds: list[Command] = []
        for q in queues:
            if q in self.rules and not self._staffed(q):
                for c in [c for _, c in self._lines.get(q, [])]:
                    w = self._waiting.get(c)   # as it is now (giving up one may move another)
                    if w is not None and w.queue == q:
                        cmds += self._give_up(w, now, "no-agents")
        return cmds


def step(acd: Acd, event: Event, now: float) -> tuple[Acd, list[Command]]:
    """``(acd, event, now) -> (acd, commands)``, the shape of every machine of the core: the same
    ACD, changed by ``event`` (or, if it raises, not at all)."""
    return acd, acd.handle(event, now)


_HANDLERS = {
    Enqueue: Acd._enqueue,
    Dequeue: Acd._dequeue,
    ToCallback: Acd._to_callback,
    OfferAnswered: Acd._offer_answered,
    OfferFailed: Acd._offer_failed,
    CallFinished: Acd._call_finished,
    HoldChanged: Acd._hold_changed,
    ConnectFailed: Acd._connect_failed,
    PhoneInUse: Acd._phone_in_use,
    AgentRequest: Acd._agent_request,
    Reconfigure: Acd._reconfigure,
    TimerFired: Acd._timer,
}
