"""The ACD's routing strategies (engine/core/acd.py routes): given the free agents who may take a
call, rank them, best first, with the figure that ranked each. Pure functions of what they are
given; the ACD's theory of operation says what each strategy means."""

from __future__ import annotations

import bisect
from collections.abc import Mapping

from engine.core import agent as ag
from engine.core.acd_messages import AgentProfile, RoutingDecision

__all__ = ["STRATEGIES", "rank"]

STRATEGIES = ("longest_idle", "least_calls", "most_skilled", "round_robin")


def rank(strategy: str, need: Mapping[str, int], step: int, candidates: list[str], now: float,
         agents: Mapping[str, ag.Agent], profiles: Mapping[str, AgentProfile], last: str) -> RoutingDecision:
    """``candidates`` ranked by ``strategy`` (``last``: the agent the queue chose last, for
    round robin), as the :class:`RoutingDecision` an offer carries."""
    if strategy == "longest_idle":
        ordered = sorted(candidates, key=lambda a: (agents[a].idle_since, a))
        ranked = [(a, round(now - agents[a].idle_since, 1)) for a in ordered]
        return RoutingDecision(strategy, need, step, tuple(ranked), "idle s")
    if strategy == "least_calls":
        ranked = sorted(((a, float(agents[a].calls_taken)) for a in candidates),
                        key=lambda x: (x[1], agents[x[0]].idle_since, x[0]))
        return RoutingDecision(strategy, need, step, tuple(ranked), "calls")
    if strategy == "most_skilled":
        def total(a: str) -> float:
            skills = profiles[a].skills
            return float(sum(skills.get(s, 0) for s in need) if need else sum(skills.values()))
        ranked = sorted(((a, total(a)) for a in candidates), key=lambda x: (-x[1], agents[x[0]].idle_since, x[0]))
        return RoutingDecision(strategy, need, step, tuple(ranked), "level")
    # round_robin: the next id after the last chosen, wrapping
    ordered = sorted(candidates)
    i = bisect.bisect_right(ordered, last)
    ranked = ordered[i:] + ordered[:i]
    return RoutingDecision(strategy, need, step, tuple((a, float(n)) for n, a in enumerate(ranked)), "turn")
