"""Routing cost of the real ACD core at scale: how long one routing decision takes, and memory.

    .venv/bin/python tools/bench_routing.py [--json] [--agents 1000] [--skills 50] [--queues 30]
                                            [--waiting 500] [--samples 2000] [--seed 1]

Builds an :class:`engine.core.acd.Acd` with ``--agents`` agents (each 5-15 random skills of
``--skills``, levels 1..10, logged in to every queue whose requirement it meets), ``--queues``
queues (each requiring 1-2 skills at level 1..5; strategies mixed; every other queue has 10 s
wrap-up, the rest none; a third have an expansion step), puts every agent on a call, then queues
``--waiting`` more calls. Then it times (``time.perf_counter_ns``) single ``acd.handle`` calls:

- ``agent_free_call_finished``: an agent's call ends on a queue without wrap-up, with the line full:
  the core walks the line for a call this agent may take and offers it; ``..._no_match``: the
  same event when no waiting call is one this agent may take (the line's mix drifts towards the
  thinly staffed queues, as it does in a real centre), so the whole line is walked for nothing;
- ``agent_free_end_wrapup`` (and ``..._no_match``): the same via ``AgentRequest(EndWrapup)``;
- ``call_arrives_all_free``: a call arrives while every agent is free (ranking all eligible agents);
- ``call_arrives_all_busy``: a call joins the full line, no decision (the cost of queueing alone).

After each timed call, untimed steps put the state back (answer the offer, top the line back up;
withdraw the arrival). Memory is ``tracemalloc`` over building the busy state (a separate build,
as tracing slows everything down): ``current`` is what the Acd holds, ``peak`` the high mark.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import random
import sys
import time
import tracemalloc
from pathlib import Path
from types import MappingProxyType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.core import acd as core  # noqa: E402
from engine.core.agent import AgentChanged, AgentPhase, EndWrapup, LogIn  # noqa: E402


class World:
    """An Acd plus what the benchmark learns from its commands (never from its internals)."""

    def __init__(self, n_agents: int, n_skills: int, n_queues: int, seed: int) -> None:
        rng = self.rng = random.Random(seed)
        skills = [f"s{i:02d}" for i in range(n_skills)]
        strategies = ["longest_idle"] * 4 + ["least_calls", "most_skilled", "round_robin"]
        rules = {}
        for i in range(n_queues):
            need = {s: rng.randint(1, 5) for s in rng.sample(skills, rng.choice((1, 1, 2)))}
            expand = (core.Expand(30.0, {s: 1 for s in need}),) if i % 3 == 0 else ()
            rules[f"q{i:02d}"] = core.QueueRules(
                f"q{i:02d}", MappingProxyType(need), strategies[i % len(strategies)],
                wrapup=0.0 if i % 2 == 0 else 10.0, expand=expand)
        agents = {}
        for i in range(n_agents):
            agent_id = f"a{i:04d}"
            agents[agent_id] = {s: rng.randint(1, 10) for s in rng.sample(skills, rng.randint(5, 15))}
        self.login: dict[str, frozenset[str]] = {}
        for agent_id, sk in agents.items():
            qs = frozenset(q for q, r in rules.items() if all(sk.get(s, 0) >= lv for s, lv in r.skills.items()))
            if not qs:  # give them one queue's skills so everyone works
                q = rng.choice(list(rules))
                sk.update({s: 10 for s in rules[q].skills})
                qs = frozenset({q})
            self.login[agent_id] = qs
        for q in rules:  # and every queue has someone
            if not any(q in qs for qs in self.login.values()):
                agent_id = rng.choice(list(agents))
                agents[agent_id].update({s: 10 for s in rules[q].skills})
                self.login[agent_id] = self.login[agent_id] | {q}
        self.rules = rules
        self.acd = core.Acd(rules, {a: core.AgentProfile(a, MappingProxyType(sk), f"PJSIP/{a}")
                                    for a, sk in agents.items()})
        self.now = 1_000_000.0
        self.calls = itertools.count(1)
        self.free: set[str] = set()
        self.phase: dict[str, AgentPhase] = {}
        self.offers: list[core.Offer] = []
        self.on_call: dict[str, str] = {}  # agent -> queue of their call
        self.waiting = 0

    def tick(self) -> float:
        self.now += 0.001
        return self.now

    def absorb(self, commands: list) -> None:
        for c in commands:
            if isinstance(c, AgentChanged):
                self.phase[c.agent_id] = c.phase
                if c.phase is AgentPhase.AVAILABLE:
                    self.free.add(c.agent_id)
                else:
                    self.free.discard(c.agent_id)
            elif isinstance(c, core.Offer):
                self.offers.append(c)
            elif isinstance(c, core.Connect):
                self.on_call[c.agent_id] = c.queue
            elif isinstance(c, core.QueueEntered):
                self.waiting += 1
            elif isinstance(c, core.QueueLeft):
                self.waiting -= 1

    def send(self, event) -> list:
        commands = self.acd.handle(event, self.tick())
        self.absorb(commands)
        return commands

    def answer_offers(self) -> None:
        while self.offers:
            o = self.offers.pop()
            self.send(core.OfferAnswered(o.call_id, o.agent_id))

    def enqueue(self, queue: str) -> list:
        return self.send(core.Enqueue(f"call-{next(self.calls)}", queue))

    def log_in_all(self) -> None:
        for agent_id, qs in self.login.items():
            self.send(core.AgentRequest(agent_id, LogIn(qs, "")))

    def fill(self, waiting: int) -> None:
        """Every agent on a call, then ``waiting`` calls in line."""
        while self.free:
            agent_id = min(self.free)
            self.enqueue(self.rng.choice(sorted(self.login[agent_id])))
            self.answer_offers()
        queues = list(self.rules)
        while self.waiting < waiting:
            self.enqueue(self.rng.choice(queues))
            self.answer_offers()  # (none: nobody is free)

    def top_up(self, waiting: int) -> None:
        """Give any free agent a call and refill the line to ``waiting``."""
        while self.free:
            agent_id = min(self.free)
            self.enqueue(self.rng.choice(sorted(self.login[agent_id])))
            self.answer_offers()
        self.fill(waiting)


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(samples: list[int], decided: int) -> dict[str, float]:
    us = [s / 1000 for s in samples]
    return {"samples": len(us), "decisions": decided, "p50_us": round(percentile(us, 0.50), 1),
            "p99_us": round(percentile(us, 0.99), 1), "mean_us": round(sum(us) / len(us), 1),
            "max_us": round(max(us), 1)}


def timed(world: World, event) -> tuple[int, list]:
    now = world.tick()
    t0 = time.perf_counter_ns()
    commands = world.acd.handle(event, now)
    t1 = time.perf_counter_ns()
    world.absorb(commands)
    return t1 - t0, commands


def bench(args: argparse.Namespace) -> dict[str, object]:
    perf = time.perf_counter
    t0 = perf()
    busy = World(args.agents, args.skills, args.queues, args.seed)
    busy.log_in_all()
    busy.fill(args.waiting)
    build_seconds = perf() - t0
    rng = random.Random(args.seed + 1)
    results: dict[str, dict[str, float]] = {}

    def agent_frees(name: str, wrapup: bool) -> None:
        matched, unmatched = [], []
        for _ in range(args.samples):
            candidates = [a for a, q in busy.on_call.items()
                          if busy.phase.get(a) is AgentPhase.ON_CALL and (busy.rules[q].wrapup > 0) == wrapup]
            agent_id = rng.choice(candidates)
            if wrapup:
                busy.send(core.CallFinished(agent_id))  # into wrap-up (untimed)
                ns, cmds = timed(busy, core.AgentRequest(agent_id, EndWrapup()))
            else:
                ns, cmds = timed(busy, core.CallFinished(agent_id))
            (matched if any(isinstance(c, core.Offer) for c in cmds) else unmatched).append(ns)
            busy.answer_offers()
            busy.top_up(args.waiting)
        results[name] = summary(matched, len(matched))
        if unmatched:  # no waiting call this agent may take: the whole line was walked for nothing
            results[f"{name}_no_match"] = summary(unmatched, 0)

    gc.collect()
    agent_frees("agent_free_call_finished", wrapup=False)
    agent_frees("agent_free_end_wrapup", wrapup=True)

    samples = []
    queues = list(busy.rules)
    for _ in range(args.samples):
        ns, _ = timed(busy, core.Enqueue(f"call-{next(busy.calls)}", rng.choice(queues)))
        samples.append(ns)
    results["call_arrives_all_busy"] = summary(samples, 0)

    free = World(args.agents, args.skills, args.queues, args.seed)
    free.log_in_all()
    samples, decided = [], 0
    for _ in range(args.samples):
        call_id = f"call-{next(free.calls)}"
        ns, cmds = timed(free, core.Enqueue(call_id, rng.choice(queues)))
        samples.append(ns)
        decided += any(isinstance(c, core.Offer) for c in cmds)
        free.send(core.Dequeue(call_id))  # the agent goes back to free, keeping its idle order
        free.offers.clear()
    results["call_arrives_all_free"] = summary(samples, decided)

    # memory: a fresh build of the busy state under tracemalloc
    del busy, free
    gc.collect()
    tracemalloc.start()
    world = World(args.agents, args.skills, args.queues, args.seed)
    world.log_in_all()
    world.fill(args.waiting)
    current_all, peak = tracemalloc.get_traced_memory()
    acd = world.acd
    del world
    gc.collect()
    current_acd, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del acd

    per_agent = sum(len(qs) for qs in World(args.agents, args.skills, args.queues, args.seed).login.values())
    return {
        "config": {"agents": args.agents, "skills": args.skills, "queues": args.queues, "waiting": args.waiting,
                   "samples": args.samples, "seed": args.seed,
                   "queues_per_agent": round(per_agent / args.agents, 2)},
        "build_seconds": round(build_seconds, 2),
        "decisions": results,
        "memory": {"acd_current_bytes": current_acd, "peak_bytes": peak,
                   "with_bench_bookkeeping_bytes": current_all},
        "python": sys.version.split()[0],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--skills", type=int, default=50)
    p.add_argument("--queues", type=int, default=30)
    p.add_argument("--waiting", type=int, default=500)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    report = bench(args)
    if args.json:
        print(json.dumps(report))
        return 0
    c = report["config"]
    print(f"ACD routing: {c['agents']} agents, {c['skills']} skills, {c['queues']} queues "
          f"({c['queues_per_agent']} per agent), {c['waiting']} calls waiting; {c['samples']} samples each")
    header = ["event", "samples", "offers", "p50 us", "p99 us", "mean us", "max us"]
    rows = [[name, str(r["samples"]), str(r["decisions"]), f"{r['p50_us']:.1f}", f"{r['p99_us']:.1f}",
             f"{r['mean_us']:.1f}", f"{r['max_us']:.1f}"] for name, r in report["decisions"].items()]
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(x.ljust(w) if i == 0 else x.rjust(w) for i, (x, w) in enumerate(zip(row, widths))))
    m = report["memory"]
    print(f"memory: Acd {m['acd_current_bytes'] / 1e6:.1f} MB current, {m['peak_bytes'] / 1e6:.1f} MB peak "
          f"while building (tracemalloc); built in {report['build_seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
