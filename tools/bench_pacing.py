"""Pacing benchmark: every algorithm on the sweep of outbound scenarios, side by side.

    .venv/bin/python tools/bench_pacing.py [--json] [--hours H] [--seeds N] [--jobs J]
                                           [--agents 5,10] [--live 0.25] [--algorithms predictive,...]

The sweep (shared/docs/domain.md's traffic model): the standard scenario
(examples/sim/dialer-standard.yaml) with 5, 10, 20, 50, 100 agents x live answer 0.10, 0.25, 0.80
(machine 0.15 and busy 0.15 kept where possible, the rest ringing out; at 0.80 machine 0.10, busy
0.05, no answer 0.05). Each scenario runs ``--seeds`` seeds (1..N) of ``--hours`` hours with
``progressive``, ``vicidial-adapt`` and ``predictive``, and a search for the best fixed ``ratio:X``
chosen with hindsight: the X (scanned by 0.1, then by 0.02 around the best) with the highest mean
occupancy whose abandon rate pooled over the seeds (all abandons / all live answers) is at or
under the target. That is generous to
the ratio: it is tuned on the very runs it is judged on, and held to the pooled rate, while
``predictive`` is held to its worst seed.

Figures per algorithm: mean occupancy over seeds (min-max spread), and the abandon rate (pooled;
the worst seed in brackets). A scenario passes when predictive's occupancy beats progressive's
and vicidial-adapt's on every seed and its worst seed's abandon rate is at or under the target.
Runs spread over ``--jobs`` processes (default: the CPUs). It takes minutes; it is a benchmark,
not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.sim.dialer import SWEEP_AGENTS, SWEEP_LIVE, run, sweep_scenario  # noqa: E402
from engine.sim.dialer_scenario import DialerScenario, load_dialer_scenario  # noqa: E402

BASE = REPO / "examples" / "sim" / "dialer-standard.yaml"
ALGORITHMS = ("progressive", "vicidial-adapt", "predictive")
RATIO_STEP = 0.02


def _summary(reports: list[dict[str, Any]]) -> dict[str, Any]:
    occ = [r["occupancy"] for r in reports]
    ab = [r["abandon_rate"] for r in reports]
    live = sum(r["live_answers"] for r in reports)
    return {
        "occupancy": sum(occ) / len(occ), "occupancy_min": min(occ), "occupancy_max": max(occ),
        "abandon_rate": sum(r["abandoned"] for r in reports) / live if live else 0.0,
        "abandon_rate_max": max(ab), "abandon_rate_min": min(ab),
        "talk_minutes_per_agent_hour": sum(r["talk_minutes_per_agent_hour"] for r in reports) / len(reports),
        "answer_to_agent_p99_max": max((r["answer_to_agent_seconds"]["p99"] or 0.0) for r in reports),
        "dials": sum(r["dials"] for r in reports), "live_answers": live,
        "abandoned": sum(r["abandoned"] for r in reports),
        "per_seed": [{"seed": r["seed"], "occupancy": r["occupancy"], "abandon_rate": r["abandon_rate"]}
                     for r in reports],
        "wall_seconds": sum(r["wall_seconds"] for r in reports),
    }


def _runs(scenario: DialerScenario, algorithm: str, hours: float, seeds: int) -> list[dict[str, Any]]:
    return [run(scenario, algorithm, hours=hours, seed=seed) for seed in range(1, seeds + 1)]


def task_algorithm(args: tuple[DialerScenario, str, float, int]) -> tuple[str, str, dict[str, Any]]:
    scenario, algorithm, hours, seeds = args
    return scenario.source, algorithm, _summary(_runs(scenario, algorithm, hours, seeds))


def task_ratio(args: tuple[DialerScenario, float, int]) -> tuple[str, str, dict[str, Any]]:
    """The best fixed ratio with hindsight: scan X = 1.1, 1.2, ... until three in a row pass the
    target (pooled over the seeds), then try every RATIO_STEP within 0.1 of the best feasible X;
    keep the feasible X with the best mean occupancy. (A scan, not a bisection: with few agents
    round(X * available) moves in steps, and abandons are not monotone in X.)"""
    scenario, hours, seeds = args
    target = scenario.abandon_target_percent / 100.0
    tried: dict[float, dict[str, Any]] = {}

    def at(x: float) -> dict[str, Any]:
        x = round(x, 4)
        if x not in tried:
            tried[x] = _summary(_runs(scenario, f"ratio:{x:g}", hours, seeds))
        return tried[x]

    def best_feasible() -> float:
        feasible = [x for x, s in tried.items() if s["abandon_rate"] <= target] or [1.0]
        return max(feasible, key=lambda x: at(x)["occupancy"])

    over, k = 0, 1
    while over < 3 and k <= 150:
        x = 1.0 + 0.1 * k
        over = over + 1 if at(x)["abandon_rate"] > target else 0
        k += 1
    centre = best_feasible()
    steps = round(0.1 / RATIO_STEP)
    for i in range(-steps + 1, steps):
        if centre + i * RATIO_STEP >= 1.0:
            at(centre + i * RATIO_STEP)
    best = best_feasible()
    out = dict(at(best))
    out["ratio"] = best
    out["tried"] = {f"{x:g}": {"occupancy": s["occupancy"], "abandon_rate": s["abandon_rate"]}
                    for x, s in sorted(tried.items())}
    return scenario.source, "best-ratio", out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--hours", type=float, default=8.0, help="hours per run (default 8)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per scenario and algorithm (default 3)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--agents", default=",".join(map(str, SWEEP_AGENTS)))
    ap.add_argument("--live", default=",".join(f"{x:g}" for x in SWEEP_LIVE))
    ap.add_argument("--algorithms", default=",".join(ALGORITHMS + ("best-ratio",)))
    ap.add_argument("--scenario", default=str(BASE), help="the base scenario (default the standard one)")
    args = ap.parse_args(argv)
    base = load_dialer_scenario(args.scenario)
    algorithms = [a for a in args.algorithms.split(",") if a]
    scenarios = [sweep_scenario(base, int(n), float(p)) for n in args.agents.split(",")
                 for p in args.live.split(",")]
    tasks: list[tuple[Any, tuple[Any, ...]]] = []
    for s in scenarios:
        for a in algorithms:
            if a == "best-ratio":
                tasks.append((task_ratio, (s, args.hours, args.seeds)))
            else:
                tasks.append((task_algorithm, (s, a, args.hours, args.seeds)))
    # heaviest first (more agents, fewer live answers: more dials), for an even spread over processes
    tasks.sort(key=lambda t: -(t[1][0].agents / max(0.05, t[1][0].live_answer)
                               * (8 if t[0] is task_ratio else 3 if t[1][1] == "predictive" else 1)))
    wall0 = time.perf_counter()
    results: dict[str, dict[str, Any]] = {s.source: {} for s in scenarios}
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(fn, a) for fn, a in tasks]
        for f in futures:
            source, name, summary = f.result()
            results[source][name] = summary
    wall = time.perf_counter() - wall0
    rows = []
    for s in scenarios:
        r = results[s.source]
        row: dict[str, Any] = {"agents": s.agents, "live_answer": s.live_answer, "machine_answer": s.machine_answer,
                               "no_answer": s.no_answer, "busy": s.busy, "algorithms": r}
        pred = r.get("predictive")
        if pred is not None:
            target = s.abandon_target_percent / 100.0
            row["predictive_abandon_ok"] = pred["abandon_rate_max"] <= target
            for other in ("progressive", "vicidial-adapt"):
                if other in r:
                    row[f"predictive_beats_{other}"] = pred["occupancy_min"] > r[other]["occupancy_max"]
            if "best-ratio" in r:
                row["predictive_minus_best_ratio"] = pred["occupancy"] - r["best-ratio"]["occupancy"]
        rows.append(row)
    out = {"hours": args.hours, "seeds": args.seeds, "target": base.abandon_target_percent / 100.0,
           "base_scenario": str(args.scenario), "wall_seconds": round(wall, 1), "jobs": args.jobs, "rows": rows}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(format_table(out, algorithms))
    return 0


def _cell(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return "-"
    occ = f"{100 * summary['occupancy']:.1f} ({100 * summary['occupancy_min']:.1f}-{100 * summary['occupancy_max']:.1f})"
    ab = f"{100 * summary['abandon_rate']:.2f} [{100 * summary['abandon_rate_max']:.2f}]"
    x = f" x{summary['ratio']:g}" if "ratio" in summary else ""
    return f"{occ} / {ab}{x}"


def format_table(out: dict[str, Any], algorithms: list[str]) -> str:
    header = ["agents", "live", *algorithms, "pred-ratio", "ok"]
    lines = []
    for row in out["rows"]:
        r = row["algorithms"]
        ok = [row.get("predictive_abandon_ok"), row.get("predictive_beats_progressive"),
              row.get("predictive_beats_vicidial-adapt")]
        gap = row.get("predictive_minus_best_ratio")
        lines.append([str(row["agents"]), f"{row['live_answer']:.2f}", *(_cell(r.get(a)) for a in algorithms),
                      "-" if gap is None else f"{100 * gap:+.1f}",
                      "yes" if all(v is True for v in ok if v is not None) else "NO"])
    widths = [max(len(c) for c in col) for col in zip(header, *lines)]
    fmt = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([
        f"pacing sweep: {out['hours']:g} h x {out['seeds']} seeds per cell, abandon target "
        f"{100 * out['target']:g}%, base {out['base_scenario']}",
        "cell: occupancy % mean (min-max over seeds) / abandon % pooled [worst seed]; best-ratio: the hindsight X",
        "",
        fmt(header), fmt(["-" * w for w in widths]), *(fmt(c) for c in lines),
        "",
        "pred-ratio: predictive's occupancy minus the best hindsight ratio's, points; ok: predictive's worst seed "
        "at or under the target and its occupancy above progressive's and vicidial-adapt's on every seed",
        f"{out['wall_seconds']:.1f} s wall on {out['jobs']} processes",
    ])


if __name__ == "__main__":
    sys.exit(main())
