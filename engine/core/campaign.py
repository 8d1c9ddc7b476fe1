"""What a campaign knows beyond its single attempts: its counts and the pacer's view of its agents.

Pure functions of the ACD's agents and the campaign's attempts, run by the dialer
(engine/runtime/dialer.py) and the simulator (engine/sim/dialer.py) alike:

- :class:`Tally`: live answers, abandons and AMD "machine" verdicts over the abandon window, and
  :meth:`Tally.counted` as the campaign's rule counts them (rule ``uk`` adds the estimated AMD false
  positives, people taken for machines, to both);
- :func:`snapshot`: the campaign now for the pacer (:class:`~engine.core.pacing_model.Snapshot`):
  its free, talking, wrapping and paused agents, less the idle ones inbound needs, and its lines;
- blending: :func:`inbound_hold` and :func:`held_agents` say how many and which idle agents the
  dialer leaves to the inbound queues they also serve;
- :func:`wanted`: how many numbers to dial now, by mode.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from engine.core import agent as ag
from engine.core.attempt import LINES, Attempt, Stage
from engine.core.pacing_model import Pacer, Snapshot

if TYPE_CHECKING:
    from engine.core.acd import Acd

__all__ = ["Tally", "held_agents", "inbound_hold", "snapshot", "wanted"]

_BUSY = (*ag.CALL_PHASES, ag.AgentPhase.RESERVED)


@dataclass(frozen=True, slots=True)
class Tally:
    live_answers: int = 0
    abandoned: int = 0
    machines: int = 0

    def count(self, kind: str) -> Tally:
        if kind == "live":
            return replace(self, live_answers=self.live_answers + 1)
        if kind == "abandoned":
            return replace(self, abandoned=self.abandoned + 1)
        if kind == "machine":
            return replace(self, machines=self.machines + 1)
        raise ValueError(f"no such count: {kind!r}")

    def counted(self, *, rule: str = "us", amd: bool = False, false_positive_percent: float = 0.0) -> tuple[int, int]:
        """(live answers, abandons) as the campaign's rule counts them."""
        if rule != "uk" or not amd or not false_positive_percent:
            return self.live_answers, self.abandoned
        people = round(self.machines * false_positive_percent / 100.0)
        return self.live_answers + people, self.abandoned + people


def inbound_hold(acd: Acd, queue: str, now: float) -> int:
    """Idle agents of ``queue`` to keep for inbound: for each other queue they serve, its waiting
    callers plus the agents its service level needs (Erlang C on its recent traffic), less the
    agents already busy on it and the idle agents who take only inbound, at most the idle campaign
    agents who can take that queue's calls."""
    idle = [a for a in acd.agents.values() if queue in a.queues and a.phase is ag.AgentPhase.AVAILABLE]
    hold = 0
    for q in sorted({q for a in idle for q in a.queues if q != queue and q in acd.rules}):
        waiting = sum(1 for w in acd.waiting.values() if w.queue == q)
        covered = sum(1 for a in acd.agents.values() if q in a.queues and (
            a.phase in (*_BUSY, ag.AgentPhase.WRAP_UP)
            or (a.phase is ag.AgentPhase.AVAILABLE and queue not in a.queues)))
        able = sum(1 for a in idle if q in a.queues)
        hold += min(able, max(0, waiting + acd.agents_needed(q, now) - covered))
    return min(hold, len(idle))


def held_agents(acd: Acd, queue: str, count: int) -> frozenset[str]:
    """Which idle agents of ``queue`` are kept for inbound: those serving the most inbound queues
    (the most useful there), longest idle first. Answered calls of the campaign go to them only
    when no other agent is free (an abandon costs more than an inbound wait)."""
    idle = [a for a in acd.agents.values() if queue in a.queues and a.phase is ag.AgentPhase.AVAILABLE
            and any(q != queue and q in acd.rules for q in a.queues)]
    idle.sort(key=lambda a: (-len(a.queues), a.idle_since))
    return frozenset(a.id for a in idle[:count])


def snapshot(acd: Acd, queue: str | None, attempts: Iterable[Attempt], counted: tuple[int, int],
             now: float) -> tuple[Snapshot, frozenset[str]]:
    """The campaign now, for the pacer, and the idle agents kept for inbound."""
    available, on_call, wrapup, paused = 0, [], [], 0
    inbound_waiting, inbound_rate = 0, 0.0
    kept: frozenset[str] = frozenset()
    if queue is not None:
        rules = acd.rules.get(queue)
        wrap = rules.wrapup if rules is not None else 0.0
        others: set[str] = set()   # the other queues its agents serve (blending)
        for a in acd.agents.values():
            if queue not in a.queues:
                continue
            if len(a.queues) > 1:
                others.update(q for q in a.queues if q != queue and q in acd.rules)
            if a.phase is ag.AgentPhase.AVAILABLE:
                available += 1
            elif a.phase in _BUSY:
                on_call.append(max(0.0, now - a.since))
            elif a.phase is ag.AgentPhase.WRAP_UP:
                wrapup.append(max(0.0, a.since + wrap - now))
            elif a.phase is ag.AgentPhase.PAUSED:
                paused += 1
        if others:
            held = min(available, inbound_hold(acd, queue, now))
            kept = held_agents(acd, queue, held) if held else frozenset()
            available -= held
            paused += held
            inbound_waiting = max(0, sum(1 for w in acd.waiting.values() if w.queue in others) - held)
            inbound_rate = sum(acd.arrival_rate(q, now) for q in sorted(others))
    ringing: list[float] = []
    screening: list[float] = []
    waiting = 0
    for a in attempts:
        # (an answer heard after the shell read ``now`` would be younger than 0 s: it is 0 s)
        if a.stage in (Stage.DIALLED, Stage.RINGING):
            ringing.append(max(0.0, now - a.placed_at))
        elif a.stage is Stage.SCREENING:
            screening.append(max(0.0, now - (a.answered_at or now)))
        elif a.stage is Stage.GRACE:
            waiting += 1
    live_answers, abandoned = counted
    return Snapshot(available=available, on_call=tuple(on_call), wrapup=tuple(wrapup), ringing=tuple(ringing),
                    screening=tuple(screening), waiting=waiting, paused=paused, live_answers=live_answers,
                    abandoned=abandoned, inbound_waiting=inbound_waiting, inbound_rate=inbound_rate), kept


def wanted(mode: str, pacer: Pacer, snap: Snapshot, attempts: Iterable[Attempt], now: float, *,
           agentless_lines: int = 10) -> int:
    """How many numbers to dial now."""
    if mode == "preview":   # one lead per free agent, shown to the agent before anything is dialled
        return max(0, snap.available - sum(1 for a in attempts if a.stage is Stage.PREVIEW))
    if mode == "agentless":   # no agents: as many lines busy as the campaign allows
        return max(0, agentless_lines - sum(1 for a in attempts if a.stage is not Stage.ENDED))
    return pacer.dials_wanted(snap, now)


def in_flight(attempts: Iterable[Attempt]) -> int:
    """Attempts on a line and not yet with an agent (ringing, screening, waiting for the grace)."""
    return sum(1 for a in attempts if a.stage in LINES or a.stage is Stage.GRACE)
