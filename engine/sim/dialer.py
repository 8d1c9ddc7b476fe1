"""Outbound simulation: the production dialer's machines on a virtual clock.

Theory of operation
-------------------
Nothing of the dialer is re-implemented here. The simulation runs, untouched:

- the **pacer** (:mod:`engine.core.pacing`), asked every ``decision_interval_seconds`` (1 s), at
  once when an agent becomes free and at the next half second when a line comes back; it sees the
  :class:`~engine.core.pacing.Snapshot` the dialer builds (:func:`engine.core.campaign.snapshot`,
  from the ACD's agents and the attempts), and the counts the dialer keeps
  (:class:`engine.core.campaign.Tally`);
- one **attempt machine** per dial (:mod:`engine.core.attempt`): ringing, AMD screening, the hand-
  over of a live answer, the counts, what the pacer is told;
- one **call machine** per live answer (:mod:`engine.core.call`, the route the dialer gives it):
  the connect grace, the abandon and its safe-harbor message;
- the **ACD** (:mod:`engine.core.acd`): the campaign's queue, agents' phases, wrap-up timers, the
  answered calls' priority over inbound callers, and (blending) an inbound queue on the same agents.

What the simulation supplies is the world: each dial's fate, drawn when it is placed (busy after
``busy_seconds``, no answer at ``no_answer_timeout_seconds``, or answered by a person or a machine
after the answer delay drawn below the timeout); AMD's verdict after its delay (false positives
and negatives drawn); agents who answer at once (auto-answer, as the engine asks phones for
answered outbound calls) and talk for a drawn talk time (persons: the customer hangs up) or
``machine_handling_seconds`` (a machine passed on with AMD off: the agent hangs up, no wrap-up);
and, with ``inbound:``, Poisson inbound callers with their patience and an answer delay. The
machines' commands are carried out by three tables (attempt, call, ACD), as the dialer and the
call manager carry them out against Asterisk.

Measures (engine/sim/dialer_report.py) are read from those commands only: dials and their true
outcomes by when they were placed; live answers by when they were passed on, connections and
abandons likewise; agent time from the ACD's phase changes, split exactly at the window's edges.
Each random quantity has its own stream (``random.Random(f"{seed}/outcome")``, ``/answer``,
``/talk``, ``/amd``, ``/ties``, ``/inbound``...); the same seed gives the same report, field for field.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from engine.core import acd as A
from engine.core import attempt as AT
from engine.core import call as C
from engine.core import call_messages as CM
from engine.core import campaign as CP
from engine.core.agent import AgentChanged, AgentPhase, EndWrapup, LogIn
from engine.core.common import CancelTimer, Command, Event, StartTimer, TimerFired
from engine.core.pacing import Pacer, PacingSettings, make_pacer
from engine.sim.acd import SimulationError, acd_step, sampler
from engine.sim.clock import Scheduler
from engine.sim.dialer_report import DEFINITIONS, SWEEP_AGENTS, SWEEP_LIVE, Measures, report, sweep_scenario
from engine.sim.dialer_scenario import Delay, DialerScenario

__all__ = ["DEFINITIONS", "DialerSimulation", "SWEEP_AGENTS", "SWEEP_LIVE", "SimulationError", "run",
           "settings_for", "sweep_scenario"]

LINE_QUANTUM = 0.5  # a line coming back asks for a decision at the next half second (they come in bursts)
CAMPAIGN, INBOUND = "campaign", "inbound"
OUTBOUND_PRIORITY = 1000   # as engine/runtime/campaignrun.py: answered calls go ahead of inbound callers
LIMITS = C.Limits(answer_seconds=10.0, playback_seconds=120.0, hangup_seconds=10.0, max_call_seconds=4 * 3600.0)


def settings_for(s: DialerScenario) -> PacingSettings:
    """What the live dialer would know about its campaign: its own settings, not the traffic."""
    return PacingSettings(abandon_target=s.abandon_target_percent / 100.0,
                          connect_grace_seconds=s.connect_grace_seconds,
                          ring_timeout_seconds=s.no_answer_timeout_seconds)


def _delay_sampler(d: Delay, rng: random.Random, below: float = math.inf) -> Callable[[], float]:
    if d.distribution == "constant" or d.sigma == 0:
        value = d.median_seconds
        return lambda: value
    mu, sigma = math.log(d.median_seconds), d.sigma

    def draw() -> float:
        while True:
            x = rng.lognormvariate(mu, sigma)
            if x < below:
                return x
    return draw


@dataclass(slots=True)
class _Dial:
    """The world's side of one attempt: its fate, and the machines' states."""

    state: AT.Attempt
    kind: str                  # the truth: live, machine, no_answer, busy
    verdict: str               # what AMD will say: HUMAN or MACHINE
    counted: bool              # placed after the warm-up
    passed: float | None = None        # handed over at
    call: C.CallState | None = None


class DialerSimulation:
    def __init__(self, scenario: DialerScenario, algorithm: str, pacer: Pacer | None = None) -> None:
        scenario.check()
        s = self.scenario = scenario
        self.algorithm = algorithm
        self.pacer = pacer if pacer is not None else make_pacer(algorithm, settings_for(s))
        seed = s.seed
        self.clock = Scheduler(random.Random(f"{seed}/ties"))
        self._outcome = random.Random(f"{seed}/outcome").random
        self._answer = _delay_sampler(s.answer_delay, random.Random(f"{seed}/answer"), s.no_answer_timeout_seconds)
        self._talk = sampler(s.talk, random.Random(f"{seed}/talk"))
        amd_rng = random.Random(f"{seed}/amd")
        self._amd_u = amd_rng.random
        self._amd_delay = (_delay_sampler(s.amd.delay, amd_rng) if s.amd.delay is not None
                           else (lambda v=s.amd.delay_seconds: v))
        p = (s.live_answer, s.machine_answer, s.no_answer)
        self._edges = (p[0], p[0] + p[1], p[0] + p[1] + p[2])
        self.end = s.hours * 3600.0
        self.warmup = s.warmup_seconds
        self.plan = AT.Plan(amd=s.amd.enabled)
        self.route = C.Route(queue=CAMPAIGN, priority=OUTBOUND_PRIORITY, connect_grace=s.connect_grace_seconds,
                             abandon_media=("sound:safe-harbor",))
        queues = {CAMPAIGN: A.QueueRules(CAMPAIGN, wrapup=s.wrapup_seconds)}
        inbound = s.inbound
        if inbound is not None:
            queues[INBOUND] = A.QueueRules(INBOUND, wrapup=inbound.wrapup_seconds,
                                           sl_seconds=inbound.service_level_seconds,
                                           sl_fraction=inbound.service_level_percent / 100.0)
            self._arrival = random.Random(f"{seed}/inbound").expovariate
            self._handle = sampler(inbound.handle, random.Random(f"{seed}/inbound-handle"))
            self._patience = sampler(inbound.patience, random.Random(f"{seed}/inbound-patience"))
        self.agent_ids = [f"a{i}" for i in range(1, s.agents + 1)]
        self.acd = A.Acd(queues, {a: A.AgentProfile(a, endpoint=f"SIM/{a}") for a in self.agent_ids})
        self.tally = CP.Tally()
        self.dials: dict[str, _Dial] = {}         # attempt id -> dial
        self.by_call: dict[str, _Dial] = {}       # call id -> dial (after the hand-over)
        self.inbound: dict[str, float] = {}       # inbound caller id -> arrived at
        self.m = Measures(self.warmup, self.end, s.agents)
        self._seq = 0
        self.decisions = 0
        self._decide_at = -math.inf
        self.kept: frozenset[str] = frozenset()   # idle agents the dialer leaves to inbound (blending)
        self._attempt_commands: Mapping[type, Callable[[_Dial, Any], None]] = {
            AT.Originate: self._originate, AT.ScreenWithAmd: self._screen, AT.HangUpCustomer: self._hang_up_customer,
            AT.Probe: lambda d, c: None, AT.PlayTo: self._play_to, AT.HandOver: self._hand_over,
            AT.Tell: lambda d, c: self.pacer.observe(c.event, self.clock.now), AT.Count: self._count,
            AT.Closed: self._closed, StartTimer: self._attempt_timer,
            CancelTimer: lambda d, c: self.clock.cancel(f"a/{d.state.id}/{c.key}"),
        }
        self._call_commands: Mapping[type, Callable[[_Dial, Any], None]] = {
            C.RecordEvent: self._call_event, C.RecordEnded: lambda d, c: self._feed(d, AT.CallCause(c.cause)),
            C.JoinQueue: lambda d, c: self._acd(A.Enqueue(c.call_id, c.queue, c.priority, avoid=c.avoid)),
            C.LeaveQueue: lambda d, c: self._acd(A.Dequeue(c.call_id)),
            C.Play: lambda d, c: self.clock.at(self.clock.now, self._to_call, (d, C.PlaybackDone(c.playback_id))),
            C.Hangup: lambda d, c: self.clock.at(self.clock.now, self._to_call, (d, C.ChannelGone(16))),
            C.AgentCallOver: self._agent_call_over, C.Finish: self._call_finished,
            StartTimer: lambda d, c: self.clock.at(c.at, self._to_call, (d, TimerFired(c.key)),
                                                   key=f"c/{d.state.id}/{c.key}"),
            CancelTimer: lambda d, c: self.clock.cancel(f"c/{d.state.id}/{c.key}"),
        }
        for quiet in (C.RecordStarted, C.RecordAnswered, C.StartMusic, C.StopMusic, C.BridgeWith, C.HangupAgent,
                      C.StopPlayback, C.StartRecording, CM.RecordVariables):
            self._call_commands = {**self._call_commands, quiet: lambda d, c: None}
        self._acd_commands: Mapping[type, Callable[[Any], None]] = {
            A.Offer: self._offer, A.Withdraw: lambda c: self.clock.cancel(f"answer/{c.agent_id}"),
            A.Connect: self._connect, AgentChanged: self._agent_changed, A.QueueLeft: self._queue_left,
            StartTimer: lambda c: self.clock.at(c.at, self._acd, TimerFired(c.key), key=c.key),
            CancelTimer: lambda c: self.clock.cancel(c.key),
        }

    # -- driving the machines --------------------------------------------------------------------
    def _feed(self, d: _Dial, event: Event) -> None:
        now = self.clock.now
        try:
            d.state, commands = AT.handle(d.state, event, now)
        except Exception as exc:
            raise SimulationError(f"t={now:.3f}s: attempt {d.state.id} refused {event!r}: {exc}") from exc
        on = self._attempt_commands
        for c in commands:
            on[type(c)](d, c)

    def _to_call(self, arg: tuple[_Dial, Event]) -> None:
        d, event = arg
        if d.call is None or d.call.phase is C.Phase.ENDED:
            return
        now = self.clock.now
        try:
            d.call, commands = C.handle(d.call, event, now)
        except Exception as exc:
            raise SimulationError(f"t={now:.3f}s: call {d.call.call_id} refused {event!r}: {exc}") from exc
        self._call_run(d, commands)

    def _call_run(self, d: _Dial, commands: list[Command]) -> None:
        on = self._call_commands
        for c in commands:
            on[type(c)](d, c)

    def _acd(self, event: Event) -> None:
        on = self._acd_commands
        for c in acd_step(self.acd, event, self.clock.now):
            handler = on.get(type(c))
            if handler is not None:
                handler(c)

    # -- decisions -------------------------------------------------------------------------------
    def _request(self, soon: bool = False) -> None:
        """Ask for a decision now, or (``soon``) at the next LINE_QUANTUM mark; one at a time."""
        now = self.clock.now
        at = math.ceil(now / LINE_QUANTUM) * LINE_QUANTUM if soon else now
        if self.clock.pending("decide") and self._decide_at <= at:
            return
        self._decide_at = at
        self.clock.at(at, self._decide, key="decide")

    def _tick(self, _: object = None) -> None:
        self._request()
        nxt = self.clock.now + self.scenario.decision_interval_seconds
        if nxt < self.end:
            self.clock.at(nxt, self._tick)

    def _decide(self, _: object = None) -> None:
        now = self.clock.now
        if now >= self.end:
            return
        self.decisions += 1
        attempts = [d.state for d in self.dials.values()]
        snap, self.kept = CP.snapshot(self.acd, CAMPAIGN, attempts, self.tally.counted(), now)
        for _ in range(CP.wanted("predictive", self.pacer, snap, attempts, now)):
            self._dial()

    # -- the world: dials ------------------------------------------------------------------------
    def _dial(self) -> None:
        now = self.clock.now
        self._seq += 1
        s = self.scenario
        u, e = self._outcome(), self._edges
        kind = "live" if u < e[0] else "machine" if u < e[1] else "no_answer" if u < e[2] else "busy"
        verdict = "HUMAN" if kind == "live" else "MACHINE"
        counted = now >= self.warmup
        if s.amd.enabled and kind in ("live", "machine"):
            if kind == "live" and self._amd_u() < s.amd.false_positive:
                verdict = "MACHINE"
                self.m.add("amd_false_positive", counted)
            elif kind == "machine" and self._amd_u() >= s.amd.false_negative:
                verdict = "MACHINE"
            elif kind == "machine":
                verdict = "HUMAN"
                self.m.add("amd_false_negative", counted)
        self.m.add("dials", counted)
        self.m.add(kind, counted)
        state, commands = AT.dial(f"d{self._seq}", self.plan, now)
        d = self.dials[state.id] = _Dial(state, kind, verdict, counted)
        for c in commands:
            self._attempt_commands[type(c)](d, c)

    def _originate(self, d: _Dial, c: AT.Originate) -> None:
        s, now = self.scenario, self.clock.now
        if d.kind == "busy":
            self.clock.at(now + s.busy_seconds, self._world, (d, AT.Hungup(17)))
        elif d.kind == "no_answer":
            self.clock.at(now + s.no_answer_timeout_seconds, self._world, (d, AT.Hungup(19)))
        else:
            self.clock.at(now + self._answer(), self._world, (d, AT.Answered()))

    def _world(self, arg: tuple[_Dial, Event]) -> None:
        self._feed(*arg)

    def _screen(self, d: _Dial, c: AT.ScreenWithAmd) -> None:
        self.clock.at(self.clock.now + self._amd_delay(), self._world, (d, AT.AmdVerdict(d.verdict)))

    def _hang_up_customer(self, d: _Dial, c: AT.HangUpCustomer) -> None:
        self.clock.at(self.clock.now, self._world, (d, AT.Hungup(16)))

    def _play_to(self, d: _Dial, c: AT.PlayTo) -> None:
        self.clock.at(self.clock.now, self._world, (d, AT.PlaybackFinished(c.playback)))

    def _attempt_timer(self, d: _Dial, c: StartTimer) -> None:
        self.clock.at(c.at, self._world, (d, TimerFired(c.key)), key=f"a/{d.state.id}/{c.key}")

    def _hand_over(self, d: _Dial, c: AT.HandOver) -> None:
        """A live answer becomes a call in the campaign's queue, as CallManager.begin_outbound makes it."""
        now = self.clock.now
        if now < self.end:
            d.passed = now
            self.m.add("live_answers", now >= self.warmup)
            self.m.add("humans", now >= self.warmup and d.kind == "live")
        call_id = f"call-{d.state.id}"
        self.by_call[call_id] = d
        arrival = C.Arrival(call_id=call_id, channel_id=call_id, caller_number="", caller_name="", dialed_number="",
                            route=replace(self.route, avoid_agents=self.kept), started_at=now, already_answered=True, direction="outbound")
        d.call, commands = C.start(arrival, LIMITS, now)
        self._call_run(d, commands)

    def _count(self, d: _Dial, c: AT.Count) -> None:
        self.tally = self.tally.count(c.kind)
        measured = d.passed is not None and d.passed >= self.warmup
        person = d.kind == "live"
        if c.kind == "live" and d.state.stage is AT.Stage.CONNECTED and measured:
            self.m.add("connected")
            self.m.add("humans_connected", person)
            self.m.latencies.append(self.clock.now - (d.state.answered_at or self.clock.now))
        elif c.kind == "abandoned" and measured:
            self.m.add("abandoned")
            self.m.add("humans_abandoned", person)

    def _closed(self, d: _Dial, c: AT.Closed) -> None:
        del self.dials[d.state.id]
        if c.outcome not in ("answered", "abandoned"):
            self._request(soon=True)   # a line came back

    # -- the answered call and its agent ---------------------------------------------------------
    def _call_event(self, d: _Dial, c: C.RecordEvent) -> None:
        if c.kind == "connected":
            self._feed(d, AT.CallConnected(c.detail))
        elif c.kind == "abandoned":
            self._feed(d, AT.CallAbandoned())

    def _offer(self, c: A.Offer) -> None:
        delay = 0.0 if c.call_id in self.by_call else self.scenario.inbound.answer_delay_seconds  # type: ignore[union-attr]
        self.clock.at(self.clock.now + delay, self._acd, A.OfferAnswered(c.call_id, c.agent_id),
                      key=f"answer/{c.agent_id}")

    def _connect(self, c: A.Connect) -> None:
        now = self.clock.now
        d = self.by_call.get(c.call_id)
        if d is None:   # an inbound caller
            self.inbound.pop(c.call_id, None)
            self.clock.cancel(f"patience/{c.call_id}")
            self.clock.at(now + self._handle(), self._acd, A.CallFinished(c.agent_id))
            return
        self._to_call((d, C.Connected(c.agent_id, f"SIM/{c.agent_id}")))
        if d.kind == "live":   # the customer hangs up after the talk
            talk = self._talk()
            self.m.count_talk(now, now + talk)
            self.clock.at(now + talk, self._to_call, (d, C.ChannelGone(16)))
        else:                  # a machine passed on (AMD off): the agent listens, then hangs up
            self.clock.at(now + self.scenario.machine_handling_seconds, self._to_call, (d, C.AgentGone()))

    def _agent_call_over(self, d: _Dial, c: C.AgentCallOver) -> None:
        self._acd(A.CallFinished(c.agent_id))
        if d.kind != "live":   # the "answering machine" disposition: no further wrap-up
            self._acd(A.AgentRequest(c.agent_id, EndWrapup()))

    def _call_finished(self, d: _Dial, c: C.Finish) -> None:
        assert d.call is not None
        self.by_call.pop(d.call.call_id, None)
        self._feed(d, AT.CallOver())

    def _agent_changed(self, c: AgentChanged) -> None:
        self.m.agent_phase(c.agent_id, c.phase, c.at)
        if c.phase is AgentPhase.AVAILABLE:
            for d in [d for d in self.dials.values() if d.state.agent_id == c.agent_id
                      and d.state.stage in (AT.Stage.CONNECTED, AT.Stage.WRAPUP)]:
                self._feed(d, AT.AgentFree(c.at))
            self._request()
        elif c.phase is AgentPhase.WRAP_UP:
            for d in [d for d in self.dials.values() if d.state.agent_id == c.agent_id
                      and d.state.stage in (AT.Stage.CONNECTED, AT.Stage.WRAPUP)]:
                self._feed(d, AT.AgentWrapup(c.at))

    # -- blending: inbound callers ---------------------------------------------------------------
    def _arrive(self, _: object = None) -> None:
        inbound = self.scenario.inbound
        assert inbound is not None
        now = self.clock.now
        self._seq += 1
        call_id = f"in-{self._seq}"
        self.inbound[call_id] = now
        patience = self._patience()
        if patience < math.inf:
            self.clock.at(now + patience, self._give_up, call_id, key=f"patience/{call_id}")
        self._acd(A.Enqueue(call_id, INBOUND))
        nxt = now + self._arrival(inbound.calls_per_hour / 3600.0)
        if nxt < self.end:
            self.clock.at(nxt, self._arrive)

    def _give_up(self, call_id: str) -> None:
        if call_id in self.inbound:
            self._acd(A.Dequeue(call_id, "abandoned"))

    def _queue_left(self, c: A.QueueLeft) -> None:
        if c.queue == INBOUND:
            self.inbound.pop(c.call_id, None)
            sl = self.scenario.inbound.service_level_seconds  # type: ignore[union-attr]
            self.m.inbound_left(c.at - c.wait, c.outcome, c.wait, sl)

    # -- running ---------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        wall0 = time.perf_counter()
        queues = frozenset({CAMPAIGN, INBOUND} if self.scenario.inbound is not None else {CAMPAIGN})
        for agent in self.agent_ids:
            self._acd(A.AgentRequest(agent, LogIn(queues, f"SIM/{agent}")))
        self.clock.at(0.0, self._tick)
        if self.scenario.inbound is not None:
            self.clock.at(self._arrival(self.scenario.inbound.calls_per_hour / 3600.0), self._arrive)
        end = self.end
        self.clock.run(lambda t: t > end + self.scenario.connect_grace_seconds + 1e-9)
        self.m.close_agents(end)
        return report(self, time.perf_counter() - wall0)


def run(scenario: DialerScenario, algorithm: str, *, seed: int | None = None, hours: float | None = None,
        agents: int | None = None) -> dict[str, Any]:
    """Simulate ``scenario`` with the pacing ``algorithm``; return the report."""
    changes: dict[str, Any] = {}
    if seed is not None:
        changes["seed"] = seed
    if hours is not None:
        changes["hours"] = hours
    if agents is not None:
        changes["agents"] = agents
    return DialerSimulation(replace(scenario, **changes), algorithm).run()
