"""Outbound dialer benchmark on the real stack: answer-to-agent latency, abandons, AMD time.

    .venv/bin/python tools/bench_dialer.py [--agents 4] [--leads 80] [--live 0.5] [--algorithm predictive]
                                           [--no-amd] [--talk-ms 3000] [--json]

Needs the stack (`make stack-up`). Runs the engine in-process on a fresh database with one
campaign, imports ``--leads`` leads whose numbers tell the sipp customers behind the carrier what to
do (tests/sipp/customer_mix.xml: a person speaking, an answering machine, busy; in the shares given),
logs in ``--agents`` sipp agent phones (they answer in 100 ms, talk ``--talk-ms``, 1 s wrap-up), and
lets the dialer work the list. Then it reads ``dial_attempts`` back and reports: dials, live
answers, abandons, answer to agent (the verdict, or the answer without AMD, to the bridge with an
agent) p50/p99/max, AMD decision time, agents' occupancy. Prints a table, or JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.app import Engine  # noqa: E402
from engine.config.campaign import Amd  # noqa: E402
from engine.shared.logsetup import configure  # noqa: E402
from tests.integration.harness import fresh_database, running, stack_env  # noqa: E402
from tests.integration.test_acd import agent_phone, log_in, rows  # noqa: E402
from tests.integration.test_dialer import add_leads, campaign, customers, dialer_config  # noqa: E402


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def numbers(leads: int, live: float, machine: float, seed: int) -> list[str]:
    """Lead numbers whose last digit says what the customer does: 1 person, 2 machine, 3 busy."""
    rnd = random.Random(seed)
    out = []
    for i in range(leads):
        u = rnd.random()
        digit = 1 if u < live else 2 if u < live + machine else 3
        out.append(f"+1212555{i % 1000:03d}{digit}")
    return out


async def bench(args: argparse.Namespace) -> dict[str, object]:
    stack = stack_env()
    with tempfile.TemporaryDirectory() as tmp:
        voices = {}
        for preset in ("human", "machine"):
            voices[preset] = Path(tmp) / f"{preset}.pcap"
            subprocess.run([sys.executable, str(REPO / "tools" / "make_rtp_pcap.py"), "--preset", preset,
                            str(voices[preset])], check=True, capture_output=True)
        async with fresh_database(stack["CALLCENTER_DSN"]) as dsn:
            amd = Amd() if args.no_amd else Amd(enabled=True, on_machine="hangup")
            cfg = dialer_config(stack, dsn, Path(tmp), campaign(pacing=args.algorithm, amd=amd), wrapup=1)
            agents = [a.id for a in cfg.agents][: args.agents]
            cfg = replace(cfg, agents=tuple(replace(a, skills={**a.skills, "renewals": 5}) for a in cfg.agents))
            engine = Engine(cfg)
            plan = numbers(args.leads, args.live, args.machine, args.seed)
            carrier, carrier_done = await customers(stack, voices, len(plan), timeout=args.leads * 5 + 300,
                                                    talk_max_ms="120000")
            async with running(engine):
                async with asyncio.timeout(20):
                    await engine.db.ready.wait()
                await add_leads(dsn, "renewals", plan)
                phones = [await agent_phone(stack, int(a) - 9000, calls=args.leads, timeout=args.leads * 3 + 300,
                                            answer_ms="100", hangup_ms=str(args.talk_ms)) for a in agents]
                t0 = time.monotonic()
                for a in agents:
                    await log_in(engine, a, "renewals")
                assert engine.dialer is not None
                async with asyncio.timeout(args.leads * 3 + 120):
                    await engine.dialer.wait_until(lambda d: d.closed >= len(plan))
                wall = time.monotonic() - t0
                await engine.writer.wait_idle()
                for p, _ in phones:
                    if p.returncode is None:
                        p.kill()
            if carrier.returncode is None:
                carrier.kill()
            attempts = await rows(dsn, "SELECT * FROM dial_attempts")
    waits = [(a["connected_at"] - a["verdict_at"]).total_seconds() for a in attempts if a["connected_at"]]
    screens = [(a["verdict_at"] - a["answered_at"]).total_seconds() for a in attempts
               if a["verdict_at"] and a["answered_at"] and a["amd_status"]]
    live = sum(1 for a in attempts if a["connected_at"] or a["outcome"] == "abandoned")
    abandoned = sum(1 for a in attempts if a["outcome"] == "abandoned")
    outcomes: dict[str, int] = {}
    for a in attempts:
        outcomes[a["outcome"]] = outcomes.get(a["outcome"], 0) + 1
    return {
        "agents": len(agents), "leads": len(plan), "algorithm": args.algorithm, "amd": not args.no_amd,
        "dials": len(attempts), "outcomes": outcomes, "live_answers": live, "abandoned": abandoned,
        "abandon_rate": abandoned / live if live else 0.0,
        "answer_to_agent_seconds": {"p50": percentile(waits, 0.5), "p99": percentile(waits, 0.99),
                                    "max": max(waits) if waits else None, "n": len(waits)},
        "amd_seconds": {"p50": percentile(screens, 0.5), "max": max(screens) if screens else None},
        "wall_seconds": round(wall, 1),
    }


def table(r: dict[str, object]) -> str:
    lat, amd = r["answer_to_agent_seconds"], r["amd_seconds"]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{1000 * v:.0f} ms"

    rows_ = [
        ("campaign", f"{r['algorithm']}, {r['agents']} agents, {r['leads']} leads, AMD {'on' if r['amd'] else 'off'}"),
        ("dials", f"{r['dials']}  {r['outcomes']}"),
        ("live answers", f"{r['live_answers']}, abandoned {r['abandoned']} ({100 * r['abandon_rate']:.1f}%)"),
        ("answer to agent", f"p50 {ms(lat['p50'])}, p99 {ms(lat['p99'])}, max {ms(lat['max'])} (n={lat['n']})"),
        ("AMD verdict", f"p50 {ms(amd['p50'])}, max {ms(amd['max'])}"),
        ("wall time", f"{r['wall_seconds']} s"),
    ]
    width = max(len(k) for k, _ in rows_)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows_)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=2, help="agent phones (at most the agents of examples/agents.yaml)")
    p.add_argument("--leads", type=int, default=40)
    p.add_argument("--live", type=float, default=0.5, help="share of numbers a person answers")
    p.add_argument("--machine", type=float, default=0.25, help="share answered by a machine (the rest: busy)")
    p.add_argument("--algorithm", default="predictive")
    p.add_argument("--no-amd", action="store_true")
    p.add_argument("--talk-ms", type=int, default=3000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    configure("info", "json", open(os.devnull, "w"), cache=True)
    result = asyncio.run(bench(args))
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
