"""What the dialer simulation measures, and the benchmark sweep's scenarios.

Measures (over ``[warmup, end)``; the default warm-up is none, so the whole day): dials and their
true outcomes by when they were placed; live answers, connections and abandons by when the call was
passed on; agent time split exactly at the window's edges. ``abandon_rate`` = abandoned / live
answers (the dialer's own count, the rule's); ``occupancy`` = (on call + wrap-up) / logged-in
time; ``talk_minutes_per_agent_hour`` counts talk with persons only. Dialling stops at the end;
calls passed on after it are not counted. With blending, inbound callers are counted by when
they entered the queue.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from engine.core.agent import AgentPhase
from engine.sim.dialer_scenario import DialerScenario

if TYPE_CHECKING:
    from engine.sim.dialer import DialerSimulation

__all__ = ["DEFINITIONS", "Measures", "SWEEP_AGENTS", "SWEEP_LIVE", "report", "sweep_scenario"]

DEFINITIONS = {
    "live_answers": "calls passed on to an agent: with AMD off every answer (person or machine: the dialer "
                    "cannot tell), with AMD on those judged live (false negatives included)",
    "abandon_rate": "live answers that found no agent within connect_grace_seconds / live answers",
    "human_abandon_rate": "persons who answered and did not reach an agent (abandoned, or hung up on by an AMD "
                          "false positive) / persons who answered",
    "occupancy": "(time on a call + wrap-up) / logged-in time, all agents, inside the measured window; a "
                 "machine an agent handles (AMD off) counts as call time",
    "talk_minutes_per_agent_hour": "minutes talking with persons per logged-in agent hour",
    "answer_to_agent_seconds": "from the callee's pick-up to the agent, connected calls only",
    "inbound": "blending only: inbound callers that entered the queue after the warm-up; service_level = answered "
               "within service_level_seconds / offered (abandons count against it)",
}

_BUSY = (AgentPhase.RESERVED, AgentPhase.ON_CALL, AgentPhase.ON_HOLD, AgentPhase.WRAP_UP)
_COUNTS = ("dials", "live", "machine", "no_answer", "busy", "live_answers", "connected", "abandoned", "humans",
           "humans_connected", "humans_abandoned", "amd_false_positive", "amd_false_negative", "busy_seconds",
           "talk_seconds", "in_offered", "in_answered", "in_abandoned", "in_within_sl", "in_wait_answered")


class Measures:
    """Counts and agent time inside the measured window."""

    def __init__(self, warmup: float, end: float, agents: int) -> None:
        self.warmup, self.end, self.agents = warmup, end, agents
        self.m: dict[str, float] = dict.fromkeys(_COUNTS, 0)
        self.latencies: list[float] = []
        self._phase: dict[str, tuple[AgentPhase, float]] = {}

    def add(self, name: str, counted: bool = True) -> None:
        if counted:
            self.m[name] += 1

    def _clip(self, lo: float, hi: float) -> float:
        return max(0.0, min(hi, self.end) - max(lo, self.warmup))

    def count_talk(self, lo: float, hi: float) -> None:
        self.m["talk_seconds"] += self._clip(lo, hi)

    def agent_phase(self, agent: str, phase: AgentPhase, at: float) -> None:
        before = self._phase.get(agent)
        if before is not None and before[0] in _BUSY:
            self.m["busy_seconds"] += self._clip(before[1], at)
        self._phase[agent] = (phase, at)

    def close_agents(self, end: float) -> None:
        for agent, (phase, since) in list(self._phase.items()):
            self.agent_phase(agent, phase, end)

    def inbound_left(self, entered: float, outcome: str, wait: float, sl: float) -> None:
        if entered < self.warmup or entered >= self.end:
            return
        m = self.m
        m["in_offered"] += 1
        if outcome == "answered":
            m["in_answered"] += 1
            m["in_wait_answered"] += wait
            m["in_within_sl"] += wait <= sl
        elif outcome == "abandoned":
            m["in_abandoned"] += 1


def report(sim: DialerSimulation, wall: float) -> dict[str, Any]:
    s, m = sim.scenario, sim.m.m
    staffed = s.agents * (sim.end - sim.warmup)
    lat = sorted(sim.m.latencies)

    def pct(q: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))], 3) if lat else None

    live = m["live_answers"]
    humans = m["humans"]
    lost_humans = m["humans_abandoned"] + m["amd_false_positive"]
    out: dict[str, Any] = {
        "scenario": s.source,
        "algorithm": sim.pacer.name,
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
        "decisions": sim.decisions,
        "events": sim.clock.actions_run,
        "wall_seconds": round(wall, 3),
        "definitions": DEFINITIONS,
    }
    if s.inbound is not None:
        offered = m["in_offered"]
        out["inbound"] = {
            "offered": int(offered), "answered": int(m["in_answered"]), "abandoned": int(m["in_abandoned"]),
            "service_level": m["in_within_sl"] / offered if offered else None,
            "asa_seconds": m["in_wait_answered"] / m["in_answered"] if m["in_answered"] else None,
            "abandon_rate": m["in_abandoned"] / offered if offered else None,
        }
    return out


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
