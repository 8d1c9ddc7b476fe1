"""Outbound simulation: a pacing algorithm (engine.core.pacing) dialling on a virtual clock.

Theory of operation
-------------------
The :class:`~engine.core.pacing.Pacer` is the production object, untouched, and sees only what
the live dialer shell would give it: :class:`~engine.core.pacing.Snapshot` s and observed events.
Around it, on a :class:`~engine.sim.clock.Scheduler` (virtual clock, seeded shuffle of
simultaneous events):

- **decisions**: the pacer is asked every ``decision_interval_seconds`` (1 s), at once whenever
  an agent becomes free, and at the next half second when a line comes back (a dial ends without
  an offer: with 100 agents several a second). Requests falling on one instant share one decision. It answers a number of dials, placed at
  once (capped by the pacer itself).
- **a dial** draws its fate when placed: ``busy`` (ends after ``busy_seconds``), ``no_answer``
  (rings out at ``no_answer_timeout_seconds``), or answered by a person or a machine after the
  answer delay (drawn below the timeout). With AMD on, the verdict comes ``amd.delay`` after the
  answer: a machine is hung up (unless a false negative passes it on), a person passed on (unless a
  false positive hangs up on them, counted apart: Ofcom counts those as abandons). With AMD off
  every answer is passed on at once: the dialer cannot tell, so it counts every answer as a live
  answer (shared/docs/domain.md) and a machine costs the agent ``machine_handling_seconds``
  (listening, then the "answering machine" disposition; no further wrap-up).
- **a live answer** (a call passed on) goes to the longest-free agent, or waits
  ``connect_grace_seconds`` for one (first come, first served); past that it is **abandoned**
  (safe-harbour message, counted). ``answer_to_agent`` is the time from the callee's pick-up to
  the agent (so with AMD it includes the AMD time).
- **agents** (all logged in all day, never paused) talk for a drawn talk time (persons) or the
  machine-handling time, then wrap up for ``wrapup_seconds`` (persons only), then are free.

Measures (over ``[warmup, end)``; the default warm-up is none, so the whole day): dials and their
true outcomes by when they were placed; live answers, connections and abandons by when the call was
passed on; agent time split exactly at the window's edges. ``abandon_rate`` = abandoned / live
answers (the dialer's own count, the rule's); ``occupancy`` = (connected + wrap-up) / logged-in
time; ``talk_minutes_per_agent_hour`` counts talk with persons only. Dialling stops at the end;
calls passed on after it are not counted.

Each random quantity has its own stream (``random.Random(f"{seed}/outcome")``, ``/answer``,
``/talk``, ``/amd``, ``/ties``); the same seed gives the same report, field for field.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import replace
from typing import Any

from ..core.pacing import (
    Abandoned, Connected, Dialed, DialResult, Handled, Pacer, PacingSettings, Snapshot, make_pacer,
)
from .acd import sampler
from .clock import Scheduler
from .dialer_scenario import Delay, DialerScenario

__all__ = ["DEFINITIONS", "DialerSimulation", "run", "settings_for"]

LINE_QUANTUM = 0.5  # a line coming back asks for a decision at the next half second (they come in bursts)

DEFINITIONS = {
    "live_answers": "calls passed on to an agent: with AMD off every answer (person or machine: the dialer "
                    "cannot tell), with AMD on those judged live (false negatives included)",
    "abandon_rate": "live answers that found no agent within connect_grace_seconds / live answers",
    "human_abandon_rate": "persons who answered and did not reach an agent (abandoned, or hung up on by an AMD "
                          "false positive) / persons who answered",
    "occupancy": "(time connected + wrap-up) / logged-in time, all agents, inside the measured window; a "
                 "machine an agent handles (AMD off) counts as connected time",
    "talk_minutes_per_agent_hour": "minutes talking with persons per logged-in agent hour",
    "answer_to_agent_seconds": "from the callee's pick-up to the agent, connected calls only",
}


def settings_for(s: DialerScenario) -> PacingSettings:
    """What the live dialer would know about its campaign: its own settings, not the traffic."""
    return PacingSettings(abandon_target=s.abandon_target_percent / 100.0,
                          connect_grace_seconds=s.connect_grace_seconds,
                          ring_timeout_seconds=s.no_answer_timeout_seconds)


def _delay_sampler(d: Delay, rng: random.Random, below: float = math.inf):
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
        amd = s.amd
        self._amd_delay = (_delay_sampler(amd.delay, amd_rng) if amd.delay is not None
                           else (lambda v=amd.delay_seconds: v))
        p = (s.live_answer, s.machine_answer, s.no_answer)
        self._edges = (p[0], p[0] + p[1], p[0] + p[1] + p[2])
        self.end = s.hours * 3600.0
        self.warmup = s.warmup_seconds
        self.grace = s.connect_grace_seconds
        # state
        self._seq = 0
        self.inflight: dict[int, tuple[float, float]] = {}      # call -> (dialled at, answered at | inf)
        self.waiting: dict[int, tuple[float, float, bool]] = {}  # call -> (passed on, answered, person?)
        self.available: deque[int] = deque(range(s.agents))
        self.on_call: dict[int, float] = {}                     # agent -> connected at
        self.wrapping: dict[int, float] = {}                    # agent -> wrap-up ends at
        self._busy_from: dict[int, float] = {}
        # campaign counters (the whole run: the campaign's window), as the pacer sees them
        self.window_live = 0
        self.window_abandoned = 0
        # measured figures
        self.m: dict[str, float] = dict.fromkeys(
            ("dials", "live", "machine", "no_answer", "busy", "live_answers", "connected", "abandoned",
             "humans", "humans_connected", "humans_abandoned", "amd_false_positive", "amd_false_negative",
             "busy_seconds", "talk_seconds", "decisions"), 0)
        self.latencies: list[float] = []
        self.decisions = 0
        self._decide_at = -math.inf

    # -- decisions -------------------------------------------------------------------------------
    def _request(self, soon: bool = False) -> None:
        """Ask for a decision now, or (``soon``) at the next LINE_QUANTUM mark; one at a time."""
        now = self.clock.now
        at = math.ceil(now / LINE_QUANTUM) * LINE_QUANTUM if soon else now
        if self.clock.pending("decide"):
            if self._decide_at <= at:
                return
        self._decide_at = at
        self.clock.at(at, self._decide, key="decide")

    def _tick(self, _: object = None) -> None:
        self._request()
        nxt = self.clock.now + self.scenario.decision_interval_seconds
        if nxt < self.end:
            self.clock.at(nxt, self._tick)

    def snapshot(self) -> Snapshot:
        now = self.clock.now
        ringing, screening = [], []
        for dialled, answered in self.inflight.values():
            if now < answered:
                ringing.append(now - dialled)
            else:
                screening.append(now - answered)
        return Snapshot(available=len(self.available),
                        on_call=tuple([now - t for t in self.on_call.values()]),
                        wrapup=tuple([t - now for t in self.wrapping.values()]),
                        ringing=tuple(ringing), screening=tuple(screening), waiting=len(self.waiting),
                        live_answers=self.window_live, abandoned=self.window_abandoned)

    def _decide(self, _: object = None) -> None:
        now = self.clock.now
        if now >= self.end:
            return
        self.decisions += 1
        n = self.pacer.dials_wanted(self.snapshot(), now)
        for _ in range(n):
            self._dial()

    # -- calls -----------------------------------------------------------------------------------
    def _dial(self) -> None:
        now = self.clock.now
        self._seq += 1
        call = self._seq
        s = self.scenario
        u = self._outcome()
        e = self._edges
        kind = "live" if u < e[0] else "machine" if u < e[1] else "no_answer" if u < e[2] else "busy"
        counted = now >= self.warmup
        if counted:
            self.m["dials"] += 1
            self.m[kind] += 1
        if kind == "busy":
            answered, ring, at = math.inf, s.busy_seconds, now + s.busy_seconds
            result, screen, person = "busy", 0.0, False
        elif kind == "no_answer":
            answered, ring, at = math.inf, s.no_answer_timeout_seconds, now + s.no_answer_timeout_seconds
            result, screen, person = "no_answer", 0.0, False
        else:
            person = kind == "live"
            ring = self._answer()
            answered = now + ring
            result = "live"
            screen = 0.0
            if s.amd.enabled:
                screen = self._amd_delay()
                if person and self._amd_u() < s.amd.false_positive:
                    result = "machine"
                    if counted:
                        self.m["amd_false_positive"] += 1
                elif not person and self._amd_u() >= s.amd.false_negative:
                    result = "machine"
                elif not person and counted:
                    self.m["amd_false_negative"] += 1
            at = answered + screen
        self.inflight[call] = (now, answered)
        self.pacer.observe(Dialed(), now)
        self.clock.at(at, self._resolve, (call, result, person, ring, screen))

    def _resolve(self, arg: tuple[int, str, bool, float, float]) -> None:
        call, result, person, ring, screen = arg
        now = self.clock.now
        _, answered = self.inflight.pop(call)
        self.pacer.observe(DialResult(result, ring, screen), now)  # type: ignore[arg-type]
        if result != "live":
            self._request(soon=True)
            return
        if now >= self.end:
            return  # dialling has stopped; not counted
        self.window_live += 1
        counted = now >= self.warmup
        if counted:
            self.m["live_answers"] += 1
            self.m["humans"] += person
        if self.available:
            self._connect(self.available.popleft(), now, answered, person)
        else:
            self.waiting[call] = (now, answered, person)
            self.clock.at(now + self.grace, self._abandon, call, key=f"grace/{call}")

    def _abandon(self, call: int) -> None:
        passed, _, person = self.waiting.pop(call)
        self.window_abandoned += 1
        self.pacer.observe(Abandoned(), self.clock.now)
        if passed >= self.warmup:
            self.m["abandoned"] += 1
            self.m["humans_abandoned"] += person

    def _connect(self, agent: int, passed: float, answered: float, person: bool) -> None:
        now = self.clock.now
        self.pacer.observe(Connected(now - passed), now)
        if passed >= self.warmup:
            self.m["connected"] += 1
            self.m["humans_connected"] += person
            self.latencies.append(now - answered)
        self.on_call[agent] = now
        self._busy_from[agent] = now
        if person:
            talk, wrap = self._talk(), self.scenario.wrapup_seconds
            self._count_talk(now, now + talk)
        else:
            talk, wrap = self.scenario.machine_handling_seconds, 0.0
        self.clock.at(now + talk, self._talk_end, (agent, talk, wrap))

    def _talk_end(self, arg: tuple[int, float, float]) -> None:
        agent, talk, wrap = arg
        del self.on_call[agent]
        if wrap > 0:
            self.wrapping[agent] = self.clock.now + wrap
            self.clock.at(self.clock.now + wrap, self._free, arg)
        else:
            self._free(arg)

    def _free(self, arg: tuple[int, float, float]) -> None:
        agent, talk, wrap = arg
        now = self.clock.now
        self.wrapping.pop(agent, None)
        self._count_busy(self._busy_from.pop(agent), now)
        self.pacer.observe(Handled(talk, wrap), now)
        if self.waiting:
            call = next(iter(self.waiting))
            passed, answered, person = self.waiting.pop(call)
            self.clock.cancel(f"grace/{call}")
            self._connect(agent, passed, answered, person)
        else:
            self.available.append(agent)
            self._request()

    # -- measuring -------------------------------------------------------------------------------
    def _clip(self, lo: float, hi: float) -> float:
        return max(0.0, min(hi, self.end) - max(lo, self.warmup))

    def _count_busy(self, lo: float, hi: float) -> None:
        self.m["busy_seconds"] += self._clip(lo, hi)

    def _count_talk(self, lo: float, hi: float) -> None:
        self.m["talk_seconds"] += self._clip(lo, hi)

    def run(self) -> dict[str, Any]:
        wall0 = time.perf_counter()
        self.clock.at(0.0, self._tick)
        end = self.end
        self.clock.run(lambda t: t > end + self.grace + 1e-9)
        for agent, since in self._busy_from.items():
            self._count_busy(since, end)
        self._busy_from.clear()
        return self._report(time.perf_counter() - wall0)

    def _report(self, wall: float) -> dict[str, Any]:
        s, m = self.scenario, self.m
        staffed = s.agents * (self.end - self.warmup)
        lat = sorted(self.latencies)

        def pct(q: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(q * len(lat)))], 3) if lat else None

        live = m["live_answers"]
        humans = m["humans"]
        lost_humans = m["humans_abandoned"] + m["amd_false_positive"]
        return {
            "scenario": s.source,
            "algorithm": self.pacer.name,
            "seed": s.seed,
            "hours": s.hours,
            "agents": s.agents,
            "warmup_minutes": s.warmup_minutes,
            "abandon_target": s.abandon_target_percent / 100.0,
            "dials": int(m["dials"]),
            "live_answers": int(live),
            "connected": int(m["connected"]),
            "abandoned": int(m["abandoned"]),
            "abandon_rate": m["abandoned"] / live if live else 0.0,
            "human_abandon_rate": lost_humans / (humans + m["amd_false_positive"]) if humans else 0.0,
            "occupancy": m["busy_seconds"] / staffed,
            "talk_minutes_per_agent_hour": (m["talk_seconds"] / 60.0) / (staffed / 3600.0),
            "answer_to_agent_seconds": {"p50": pct(0.50), "p99": pct(0.99)},
            "dials_per_agent_hour": m["dials"] / (staffed / 3600.0),
            "persons": int(m["live"]),
            "machines": int(m["machine"]),
            "no_answer": int(m["no_answer"]),
            "busy": int(m["busy"]),
            "amd_false_positives": int(m["amd_false_positive"]),
            "amd_false_negatives": int(m["amd_false_negative"]),
            "decisions": self.decisions,
            "events": self.clock.actions_run,
            "wall_seconds": round(wall, 3),
            "definitions": DEFINITIONS,
        }


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


# -- the benchmark sweep (tools/bench_pacing.py, tests/unit/test_pacing.py) --------------------------
SWEEP_AGENTS = (5, 10, 20, 50, 100)
SWEEP_LIVE = (0.10, 0.25, 0.80)


def sweep_scenario(base: DialerScenario, agents: int, live: float) -> DialerScenario:
    """``base`` with ``agents`` and a live-answer share: machine 0.15 and busy 0.15 kept where the
    shares allow, the rest ringing out; at live 0.80: machine 0.10, busy 0.05, no answer 0.05."""
    if live >= 0.8:
        machine, busy = 0.10, 0.05
    else:
        machine, busy = min(0.15, (1 - live) / 2), min(0.15, (1 - live) / 2)
    no_answer = max(0.0, 1.0 - live - machine - busy)
    return replace(base, agents=agents, live_answer=live, machine_answer=machine, busy=busy, no_answer=no_answer,
                   source=f"{base.source} agents={agents} live={live:g}")
