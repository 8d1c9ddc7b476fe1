"""Inbound simulation: Poisson callers and simulated agents driving the real ACD core.

Theory of operation
-------------------
The :class:`~engine.core.acd.Acd` is the production object, untouched. Around it:

- a :class:`~engine.sim.clock.Scheduler` (virtual clock, heap, seeded shuffle of simultaneous
  events, cancellable keyed entries);
- **agents** log in at t = 0 (``AgentRequest(LogIn)`` to their queues). On an ``Offer`` the agent
  answers after ``answer_delay_seconds`` (``OfferAnswered``; a ``Withdraw`` cancels that); on
  ``Connect`` they talk for a sampled handle time, then ``CallFinished``. Wrap-up is the queue's
  ``wrapup_seconds``, run by the core's own timer. Agents never pause, fail or log out;
- **callers** arrive as a Poisson process (one rate, or piecewise-constant rates per interval,
  generated lazily one arrival ahead), pick a queue by ``mix``, and hang up after a sampled
  patience (``Dequeue``) if they are still in a queue then, ringing or not;
- the core's ``StartTimer``/``CancelTimer`` become keyed scheduler entries that send
  ``TimerFired`` back.

Each random quantity has its own stream (``random.Random(f"{seed}/arrivals")``, ``/mix``,
``/handle``, ``/patience``, ``/ties``), so changing, say, the number of agents leaves the arrival
and patience sequences as they were (common random numbers across compared scenarios).

Measurement. Only the commands the core returns are read: ``QueueEntered``, ``OfferMade``,
``QueueLeft`` for calls and ``AgentChanged`` for agents; never the core's internals.

Warm-up. The run starts empty (all agents idle), which flatters every figure. Calls arriving in
the first ``warmup`` seconds (default 5% of the run) are simulated but not counted; a call is
counted by its *arrival* time, and then counted whole, however long it waits. Agent time is
counted only inside ``[warmup, end]``. Arrivals stop at ``end``; the simulation then carries on
until every call still in a queue has left (answered or abandoned), so each counted call has an
outcome (a safety limit of 24 h of draining reports any left as ``unfinished``).

Batches. With ``batches=B`` the measured window is cut into B equal slices (calls by arrival
time, agent time by when it was spent) and the report lists the total figures per slice, for
batch-means confidence intervals (:func:`batch_interval`).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from engine.config.acd import to_rules
from engine.core import acd as core
from engine.core.agent import AgentChanged, AgentPhase, LogIn
from engine.core.common import CancelTimer, Command, Event, StartTimer, TimerFired
from engine.sim.clock import Scheduler
from engine.sim.scenario import Distribution, Scenario

__all__ = ["AcdSimulation", "SimulationError", "acd_step", "batch_interval", "run", "sampler"]

DRAIN_LIMIT_SECONDS = 24 * 3600.0

DEFINITIONS = {
    "offered": "calls that entered the queue (per queue: each entry, so an overflowed call counts in both "
               "queues; total: each call once), arriving after the warm-up",
    "service_level": "answered within service_level_seconds of entering the queue (total: of first entering "
                     "any queue) / offered; abandoned calls count against it, short abandons included",
    "asa_seconds": "mean wait from entering the queue to the agent's answer, answered calls only",
    "abandon_rate": "calls that hung up while in the queue (ringing included) / offered",
    "p_wait": "share of offered calls that found no eligible free agent on entering, and so waited > 0 "
              "(an agent's answer delay does not count as waiting)",
    "occupancy": "(on call + wrap-up time) / (logged-in time not paused), summed over agents, inside the "
                 "measured window; per queue: the time on that queue's calls over the logged-in time of the "
                 "agents logged in to it (an agent in two queues counts in both)",
    "warmup": "calls are counted by arrival time at or after the warm-up; agent time from the warm-up to "
              "the end; after the end no call arrives and the queue drains",
}


class SimulationError(Exception):
    """The core refused an event the simulation sent: a bug in the simulator or in the core."""


def acd_step(acd: core.Acd, event: Event, now: float) -> list[Command]:
    """``acd.handle``, a refusal reported as the simulator's bug it is."""
    try:
        return acd.handle(event, now)
    except Exception as exc:
        raise SimulationError(f"t={now:.3f}s: the ACD refused {event!r}: {type(exc).__name__}: {exc}") from exc


def sampler(d: Distribution, rng: random.Random) -> Callable[[], float]:
    """A function returning one duration (seconds) drawn from ``d``."""
    mean = d.mean_seconds
    if d.distribution == "none":
        return lambda: math.inf
    assert mean is not None
    if d.distribution == "constant":
        return lambda: mean
    if d.distribution == "exponential":
        rate = 1.0 / mean
        return lambda: rng.expovariate(rate)
    sigma2 = math.log1p(d.cv * d.cv)
    mu, sigma = math.log(mean) - sigma2 / 2, math.sqrt(sigma2)
    return lambda: rng.lognormvariate(mu, sigma)


@dataclass(slots=True)
class _Tally:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    overflowed: int = 0
    unroutable: int = 0
    unfinished: int = 0
    within_sl: int = 0
    waited: int = 0
    wait_answered: float = 0.0
    busy: float = 0.0     # agent seconds on call or in wrap-up
    staffed: float = 0.0  # agent seconds logged in and not paused

    def add(self, other: _Tally) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def figures(self, with_overflow: bool) -> dict[str, Any]:
        off = self.offered
        out: dict[str, Any] = {
            "offered": off, "answered": self.answered, "abandoned": self.abandoned,
        }
        if with_overflow:
            out["overflowed"] = self.overflowed
        out |= {
            "unroutable": self.unroutable,
            "unfinished": self.unfinished,
            "service_level": _ratio(self.within_sl, off),
            "asa_seconds": _ratio(self.wait_answered, self.answered),
            "abandon_rate": _ratio(self.abandoned, off),
            "p_wait": _ratio(self.waited, off),
            "occupancy": _ratio(self.busy, self.staffed),
        }
        return out


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


@dataclass(slots=True)
class _Call:
    id: str
    arrived: float
    batch: int                  # -1: arrived in the warm-up, not counted
    queue: str | None = None
    queue_at: float = 0.0
    queue_offer: float | None = None   # first offer in the current queue
    first_offer: float | None = None   # first offer anywhere


@dataclass(slots=True)
class _AgentClock:
    queues: frozenset[str]
    phase: AgentPhase = AgentPhase.LOGGED_OUT
    since: float = 0.0
    call_queue: str | None = None     # queue of the call the agent answered last
    busy_by_queue: dict[str, float] = field(default_factory=dict)
    staffed: float = 0.0


class AcdSimulation:
    def __init__(self, scenario: Scenario, *, batches: int = 1) -> None:
        scenario.check()
        if batches < 1:
            raise ValueError("batches: expected 1 or more")
        self.scenario = s = scenario
        self.batches = batches
        seed = s.seed
        self.clock = Scheduler(random.Random(f"{seed}/ties"))
        self._arrival_rng = random.Random(f"{seed}/arrivals")
        self._mix_rng = random.Random(f"{seed}/mix")
        self._handle = sampler(s.handle_time, random.Random(f"{seed}/handle"))
        self._patience = sampler(s.patience, random.Random(f"{seed}/patience"))
        self._rates = tuple(r / 3600.0 for r in s.rates_per_hour)
        self._mix_queues = [q for q, _ in s.mix] or [s.queues[0].name]
        cum, acc = [], 0.0
        for _, share in s.mix or ((s.queues[0].name, 1.0),):
            acc += share
            cum.append(acc)
        self._mix_cum = cum
        self.end = s.hours * 3600.0
        self.warmup = s.warmup_seconds
        self._batch_len = (self.end - self.warmup) / batches
        self.acd = core.Acd(
            {q.name: to_rules(q) for q in s.queues},
            {a.id: core.AgentProfile(a.id, MappingProxyType(dict(a.skills)), f"SIM/{a.id}") for a in s.agents})
        self._agents = {a.id: _AgentClock(a.queues) for a in s.agents}
        self._calls: dict[str, _Call] = {}
        self._call_seq = 0
        self._queue_tally = {q.name: _Tally() for q in s.queues}
        self._total = [_Tally() for _ in range(batches)]
        self.events = 0
        self._on: Mapping[type, Callable[[Any], None]] = {
            core.QueueEntered: self._queue_entered, core.OfferMade: self._offer_made,
            core.QueueLeft: self._queue_left, AgentChanged: self._agent_changed, core.Offer: self._offer,
            core.Withdraw: self._withdraw, core.Connect: self._connect, StartTimer: self._start_timer,
            CancelTimer: self._cancel_timer,
        }

    # -- driving the core --------------------------------------------------------------------------
    def _send(self, event: Event) -> None:
        commands = acd_step(self.acd, event, self.clock.now)
        self.events += 1
        on = self._on
        for c in commands:
            handler = on.get(type(c))
            if handler is not None:
                handler(c)

    def _start_timer(self, c: StartTimer) -> None:
        self.clock.at(c.at, self._send, TimerFired(c.key), key=c.key)

    def _cancel_timer(self, c: CancelTimer) -> None:
        self.clock.cancel(c.key)

    # -- agents ----------------------------------------------------------------------------------
    def _log_in(self, agent_id: str) -> None:
        a = self._agents[agent_id]
        self._send(core.AgentRequest(agent_id, LogIn(a.queues, f"SIM/{agent_id}")))

    def _offer(self, c: core.Offer) -> None:
        self.clock.at(self.clock.now + self.scenario.answer_delay_seconds, self._send,
                      core.OfferAnswered(c.call_id, c.agent_id), key=f"sim/answer/{c.agent_id}")

    def _withdraw(self, c: core.Withdraw) -> None:
        self.clock.cancel(f"sim/answer/{c.agent_id}")

    def _connect(self, c: core.Connect) -> None:
        self.clock.at(self.clock.now + self._handle(), self._send, core.CallFinished(c.agent_id))

    # -- callers ---------------------------------------------------------------------------------
    def _next_arrival(self, after: float) -> float:
        """The next Poisson arrival after ``after`` (piecewise-constant rate, list repeating)."""
        t, rates, width = after, self._rates, self.scenario.interval_seconds
        while t < self.end:
            k = int(t // width)
            boundary = (k + 1) * width
            rate = rates[k % len(rates)]
            if rate > 0:
                t_next = t + self._arrival_rng.expovariate(rate)
                if t_next < boundary:
                    return t_next
            t = boundary  # memoryless: start afresh at the next interval's rate
        return math.inf

    def _arrive(self, _: object) -> None:
        now = self.clock.now
        self._call_seq += 1
        call_id = f"call-{self._call_seq}"
        u = self._mix_rng.random()
        queue = self._mix_queues[-1]
        for q, edge in zip(self._mix_queues, self._mix_cum):
            if u < edge:
                queue = q
                break
        batch = -1
        if now >= self.warmup:
            batch = min(self.batches - 1, int((now - self.warmup) // self._batch_len))
        self._calls[call_id] = _Call(call_id, now, batch)
        if batch >= 0:
            self._total[batch].offered += 1
        patience = self._patience()
        if patience < math.inf:
            self.clock.at(now + patience, self._abandon, call_id, key=f"sim/patience/{call_id}")
        self._send(core.Enqueue(call_id, queue))
        nxt = self._next_arrival(now)
        if nxt < self.end:
            self.clock.at(nxt, self._arrive)

    def _abandon(self, call_id: str) -> None:
        call = self._calls.get(call_id)
        if call is not None and call.queue is not None:
            self._send(core.Dequeue(call_id, "abandoned"))

    # -- measuring -------------------------------------------------------------------------------
    def _queue_entered(self, c: core.QueueEntered) -> None:
        call = self._calls[c.call_id]
        call.queue, call.queue_at, call.queue_offer = c.queue, c.at, None
        if call.batch >= 0:
            self._queue_tally[c.queue].offered += 1

    def _offer_made(self, c: core.OfferMade) -> None:
        call = self._calls[c.call_id]
        if call.queue_offer is None:
            call.queue_offer = c.at
        if call.first_offer is None:
            call.first_offer = c.at

    def _queue_left(self, c: core.QueueLeft) -> None:
        call = self._calls[c.call_id]
        outcome = c.outcome
        final = outcome != "overflow"
        if call.batch >= 0:
            sl = self.scenario.service_level_seconds
            q = self._queue_tally[c.queue]
            waited = (call.queue_offer is None or call.queue_offer > call.queue_at) and c.at > call.queue_at
            q.waited += waited
            self._count(q, outcome, c.wait, sl)
            if final:
                t = self._total[call.batch]
                waited = (call.first_offer is None or call.first_offer > call.arrived) and c.at > call.arrived
                t.waited += waited
                self._count(t, outcome, c.at - call.arrived, sl)
        if outcome == "answered" and c.agent_id is not None:
            self._agents[c.agent_id].call_queue = c.queue
        call.queue = None
        if final:
            del self._calls[c.call_id]
            self.clock.cancel(f"sim/patience/{c.call_id}")

    @staticmethod
    def _count(t: _Tally, outcome: str, wait: float, sl: float) -> None:
        if outcome == "answered":
            t.answered += 1
            t.wait_answered += wait
            t.within_sl += wait <= sl
        elif outcome == "abandoned":
            t.abandoned += 1
        elif outcome == "overflow":
            t.overflowed += 1
        else:
            t.unroutable += 1

    def _agent_changed(self, c: AgentChanged) -> None:
        a = self._agents[c.agent_id]
        self._close(a, c.at)
        a.phase, a.since = c.phase, c.at

    def _close(self, a: _AgentClock, until: float) -> None:
        """Count ``a``'s current phase from ``a.since`` to ``until`` (inside the measured window)."""
        phase = a.phase
        if phase is AgentPhase.LOGGED_OUT or phase is AgentPhase.PAUSED:
            return
        lo, hi = max(a.since, self.warmup), min(until, self.end)
        if hi <= lo:
            return
        busy = phase in (AgentPhase.ON_CALL, AgentPhase.ON_HOLD, AgentPhase.WRAP_UP)
        a.staffed += hi - lo
        if busy and a.call_queue is not None:
            a.busy_by_queue[a.call_queue] = a.busy_by_queue.get(a.call_queue, 0.0) + (hi - lo)
        # split over batches (phases are short next to a batch: nearly always one slice)
        width, warm = self._batch_len, self.warmup
        k = min(self.batches - 1, int((lo - warm) // width))
        while lo < hi:
            edge = hi if k == self.batches - 1 else min(hi, warm + (k + 1) * width)
            t = self._total[k]
            t.staffed += edge - lo
            if busy:
                t.busy += edge - lo
            lo, k = edge, k + 1

    # -- running ---------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        wall0 = time.perf_counter()
        for agent_id in self._agents:
            self.clock.at(0.0, self._log_in, agent_id)
        first = self._next_arrival(0.0)
        if first < self.end:
            self.clock.at(first, self._arrive)
        limit = self.end + DRAIN_LIMIT_SECONDS
        calls = self._calls
        self.clock.run(lambda t: t > limit or (t >= self.end and not calls))
        wall = time.perf_counter() - wall0
        return self._report(wall)

    def _report(self, wall: float) -> dict[str, Any]:
        s = self.scenario
        for call in self._calls.values():  # still queued at the drain limit
            if call.batch >= 0:
                self._total[call.batch].unfinished += 1
                if call.queue is not None:
                    self._queue_tally[call.queue].unfinished += 1
        for a in self._agents.values():
            self._close(a, self.end)
            a.since = self.end
            for q in a.queues:
                self._queue_tally[q].staffed += a.staffed
            for q, busy in a.busy_by_queue.items():
                self._queue_tally[q].busy += busy
        total = _Tally()
        for t in self._total:
            total.add(t)
        report: dict[str, Any] = {
            "scenario": s.source,
            "seed": s.seed,
            "hours": s.hours,
            "warmup_minutes": self.warmup / 60.0,
            "service_level_seconds": s.service_level_seconds,
            "agents": len(s.agents),
            "queues": {name: t.figures(with_overflow=True) for name, t in self._queue_tally.items()},
            "total": total.figures(with_overflow=False),
            "events": self.events,
            "simulated_hours": self.clock.now / 3600.0,
            "wall_seconds": round(wall, 3),
            "definitions": DEFINITIONS,
        }
        if self.batches > 1:
            report["batches"] = [t.figures(with_overflow=False) for t in self._total]
        return report


def run(scenario: Scenario, *, seed: int | None = None, hours: float | None = None,
        batches: int = 1) -> dict[str, Any]:
    """Simulate ``scenario`` (optionally with another seed or length); return the report."""
    changes: dict[str, Any] = {}
    if seed is not None:
        changes["seed"] = seed
    if hours is not None:
        changes["hours"] = hours
    return AcdSimulation(replace(scenario, **changes), batches=batches).run()


# Student t quantiles t(1 - alpha/2, df), df = 1..40, for the batch-means intervals.
_T9995 = [636.6, 31.60, 12.92, 8.610, 6.869, 5.959, 5.408, 5.041, 4.781, 4.587, 4.437, 4.318, 4.221, 4.140,
          4.073, 4.015, 3.965, 3.922, 3.883, 3.850, 3.819, 3.792, 3.768, 3.745, 3.725, 3.707, 3.690, 3.674,
          3.659, 3.646, 3.633, 3.622, 3.611, 3.601, 3.591, 3.582, 3.574, 3.566, 3.558, 3.551]
_T975 = [12.71, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042, 2.040, 2.037, 2.035, 2.032, 2.030, 2.028, 2.026, 2.024, 2.023, 2.021]


def batch_interval(values: list[float], confidence: float = 0.999) -> tuple[float, float]:
    """Mean and half-width of the batch-means confidence interval (``confidence`` 0.999 or 0.95)."""
    n = len(values)
    if n < 2:
        raise ValueError("need at least two batches")
    table = {0.999: _T9995, 0.95: _T975}[confidence]
    t = table[min(n - 1, len(table)) - 1]  # past 40 degrees of freedom: the df-40 value (conservative)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, t * math.sqrt(var / n)
