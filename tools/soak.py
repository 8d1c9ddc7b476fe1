"""Soak: many calls through IVR, queue and agent, and the engine's memory curve.

    .venv/bin/python tools/soak.py                          # 20,000 calls at 5 calls/s (about 70 min)
    .venv/bin/python tools/soak.py --calls 3000 --rate 5 --sample-every 250 [--json] [--tracemalloc]

Needs the stack (`make stack-up`; this tool starts nothing of it and reads .run/stack.env). Runs the
engine in this process on a fresh database with the example configuration plus one IVR tree (a
menu, key 1 into the support queue), logs in agents 9001..900N (``--agents``, at most 8) with a
sipp phone each that answers after ``--answer-ms`` and hangs up ``--talk-ms`` later, and places
``--calls`` sipp calls at ``--rate`` per second that key 1 in the menu. Every ``--sample-every``
calls ended it samples the process's resident memory (RSS) and the size of the engine's per-call
containers (:mod:`engine.cli.footprint`); one last sample is taken once every call is over.

The verdict: the curve has *levelled* when the last sample is within ``--tolerance`` (10%) of the
level, the median RSS of the samples between a quarter and half of the calls (start-up and
warm-up, the first pages of every pool and cache, come before). The slope over the second half
(KB per call, least squares) says the same in another unit. With ``--tracemalloc`` the allocations
that grew most between the level and the end are listed, by the lines that made them (it slows the
engine down, and its own tables count in the RSS: keep the rate modest and read the curve of a run
without it).

Prints a table, or JSON (``--json``). Exit status 0 when the curve levelled and every call ended.
Everything goes to loopback; the run is bounded: at most ``calls / rate`` plus two minutes of calls.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import asyncpg  # noqa: E402

from engine.app import Engine  # noqa: E402
from engine.cli.footprint import PER_CALL, footprint, rss_bytes  # noqa: E402
from engine.shared.logsetup import configure  # noqa: E402
from tests.integration import load  # noqa: E402
from tests.integration.harness import fresh_database, running, stack_env  # noqa: E402

SHOWN = ("calls.sessions", "calls.routes", "acd.timer_heap", "gc.objects")   # in the table


def sample(engine: Engine, started: float, base_rss: int | None) -> dict[str, Any]:
    rss = rss_bytes()   # first: the footprint's own lists must not count
    assert engine.calls is not None
    return {"calls": engine.calls.handled, "seconds": round(time.monotonic() - started, 1),
            "rss_mb": round(rss / 2**20, 2), "rss_bytes": rss,
            "delta_mb": round((rss - (base_rss if base_rss is not None else rss)) / 2**20, 2),
            "footprint": footprint(engine)}


def slope_kb_per_call(points: list[tuple[int, int]]) -> float | None:
    """Least-squares slope of RSS (bytes) over calls, in KB per call."""
    if len(points) < 2 or len({x for x, _ in points}) < 2:
        return None
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    num = sum((x - mx) * (y - my) for x, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return round(num / den / 1024, 3)


def verdict(samples: list[dict[str, Any]], calls: int, tolerance: float) -> dict[str, Any]:
    """Where the curve levelled, where it ended, and whether the end is within ``tolerance``."""
    body = [s for s in samples[1:-1] if calls / 4 <= s["calls"] <= calls / 2] or samples[1:-1] or samples
    level = statistics.median(s["rss_bytes"] for s in body)
    end = samples[-1]["rss_bytes"]
    second_half = [(s["calls"], s["rss_bytes"]) for s in samples[1:] if s["calls"] >= calls / 2]
    growth = (end - level) / level
    return {"level_mb": round(level / 2**20, 2), "end_mb": round(end / 2**20, 2),
            "growth_percent": round(100 * growth, 1), "tolerance_percent": round(100 * tolerance, 1),
            "levelled": growth <= tolerance, "kb_per_call_second_half": slope_kb_per_call(second_half)}


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    stack = stack_env()
    every = args.sample_every or max(50, args.calls // 20)
    budget = args.calls / args.rate + 120
    async with fresh_database(stack["CALLCENTER_DSN"]) as dsn:
        with tempfile.TemporaryDirectory() as state:
            engine = Engine(load.load_config(stack, dsn, Path(state), args.agents, record=args.record))
            async with running(engine):
                phones = await load.agent_phones(stack, engine, args.agents, Path(state), budget=budget,
                                                 answer_ms=args.answer_ms, talk_ms=args.talk_ms)
                try:
                    return await _run(args, stack, engine, every, budget, dsn, Path(state))
                finally:
                    await load.stop(phones)


async def _run(args: argparse.Namespace, stack: dict[str, str], engine: Engine, every: int, budget: float,
               dsn: str, logs: Path) -> dict[str, Any]:
    assert engine.calls is not None
    gc.collect()
    started = time.monotonic()
    samples = [sample(engine, started, None)]
    base = samples[0]["rss_bytes"]
    if not args.json:
        print(row(samples[0]), flush=True)
    level_mark = next((m for m in range(every, args.calls + 1, every) if m >= args.calls / 4), every)
    level_snapshot: tracemalloc.Snapshot | None = None   # only this one is kept: they are large
    if args.tracemalloc:
        tracemalloc.start(8)
    callers = await load.callers(stack, args.calls, args.rate, logs, budget=budget)
    caller = asyncio.create_task(callers.wait())
    mark = every
    try:
        async with asyncio.timeout(budget + 60):
            while mark <= args.calls:
                target = mark
                waiting = asyncio.create_task(engine.calls.wait_until(lambda m: m.handled >= target))
                await asyncio.wait({waiting, caller}, return_when=asyncio.FIRST_COMPLETED)
                if not waiting.done():   # sipp is over and fewer calls came: no more marks to reach
                    waiting.cancel()
                    break
                samples.append(sample(engine, started, base))
                if args.tracemalloc and mark == level_mark:
                    level_snapshot = tracemalloc.take_snapshot()
                if not args.json:
                    print(row(samples[-1]), flush=True)
                mark += every
            sipp_exit = await caller
            await engine.calls.wait_until(lambda m: not m.sessions)
            await engine.writer.wait_idle()
    finally:
        await load.stop([callers])
    end = sample(engine, started, base)
    samples.append(end)
    if not args.json:
        print(row(end) + "  (every call over)", flush=True)
    out: dict[str, Any] = {
        "calls_offered": args.calls, "rate_per_second": args.rate, "agents": args.agents,
        "calls_handled": engine.calls.handled, "sipp_exit": sipp_exit,
        "sipp_errors": load.errors(logs),
        "answered_by_agents": await _answered(dsn),
        "loop": os.environ.get("CALLCENTER_LOOP", "uvloop"),
        "samples": [{k: v for k, v in s.items() if k != "rss_bytes"} for s in samples],
        "verdict": verdict(samples, args.calls, args.tolerance),
        "left_behind": {k: end["footprint"][k] - samples[0]["footprint"][k] for k in PER_CALL
                        if end["footprint"][k] != samples[0]["footprint"][k]},
    }
    if level_snapshot is not None:
        current = tracemalloc.take_snapshot()
        tracemalloc.stop()
        out["tracemalloc_growth"] = top_growth(level_snapshot, current, level_mark, end["calls"])
    return out


async def _answered(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM queue_entries WHERE outcome = 'answered'")
    finally:
        await conn.close()


def top_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, from_calls: int, to_calls: int,
               limit: int = 15) -> list[dict[str, Any]]:
    """The allocation sites (tracebacks, innermost frame first) whose memory grew most."""
    keep = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>")]
    stats = after.filter_traces(keep).compare_to(before.filter_traces(keep), "traceback")
    calls = max(1, to_calls - from_calls)
    out = []
    for s in stats[:limit]:
        frames = [f"{Path(f.filename).name}:{f.lineno}" for f in reversed(s.traceback)]   # innermost first
        out.append({"kb": round(s.size_diff / 1024, 1), "bytes_per_call": round(s.size_diff / calls, 1),
                    "blocks": s.count_diff, "where": " < ".join(frames[:4])})
    return out


def row(s: dict[str, Any]) -> str:
    f = s["footprint"]
    return (f"{s['calls']:>7}  {s['seconds']:>8.1f}  {s['rss_mb']:>8.2f}  {s['delta_mb']:>+8.2f}  "
            + "  ".join(f"{f[k]:>{len(k)}}" for k in SHOWN))


def header() -> str:
    return f"{'calls':>7}  {'seconds':>8}  {'rss MB':>8}  {'delta':>8}  " + "  ".join(SHOWN)


def report(out: dict[str, Any]) -> str:
    v = out["verdict"]
    lines = [
        f"calls offered {out['calls_offered']} at {out['rate_per_second']}/s, handled {out['calls_handled']}, "
        f"answered by agents {out['answered_by_agents']} (sipp exit {out['sipp_exit']}, loop {out['loop']})",
        f"level {v['level_mb']} MB (median of the samples between 1/4 and 1/2 of the calls), end {v['end_mb']} MB: "
        f"{v['growth_percent']:+.1f}% (tolerance {v['tolerance_percent']}%): "
        + ("levelled" if v["levelled"] else "NOT levelled"),
        f"slope over the second half: {v['kb_per_call_second_half']} KB per call",
        "per-call containers left behind: " + (json.dumps(out["left_behind"]) if out["left_behind"] else "none"),
        *(f"sipp: {line}" for line in out["sipp_errors"]),
    ]
    for g in out.get("tracemalloc_growth", []):
        lines.append(f"  {g['kb']:>9.1f} KB  {g['bytes_per_call']:>8.1f} B/call  {g['blocks']:>7} blocks  {g['where']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=5.0, help="calls per second (default 5)")
    parser.add_argument("--sample-every", type=int, default=0, help="calls between samples (default calls/20)")
    parser.add_argument("--agents", type=int, default=8, choices=range(1, 9), metavar="1..8")
    parser.add_argument("--answer-ms", type=int, default=100, help="agent phones ring this long")
    parser.add_argument("--talk-ms", type=int, default=500, help="then the agent hangs up this much later")
    parser.add_argument("--record", action="store_true", help="record every call (files pile up in the stack)")
    parser.add_argument("--tolerance", type=float, default=0.10, help="levelled: the end within this of the level")
    parser.add_argument("--tracemalloc", action="store_true", help="list what grew most (slower)")
    parser.add_argument("--log", default=os.devnull, help="the engine's JSON log lines (default: none kept)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--out", type=Path, help="also write the JSON to this file")
    args = parser.parse_args()
    if args.calls < 1 or args.rate <= 0:
        parser.error("--calls and --rate must be positive")
    configure("info", "json", open(args.log, "w"), cache=True)   # as in production (to /dev/null by default)
    if not args.json:
        print(header(), flush=True)
    if os.environ.get("CALLCENTER_LOOP", "uvloop") == "uvloop":
        import uvloop

        out = uvloop.run(soak(args))
    else:
        out = asyncio.run(soak(args))
    print(json.dumps(out) if args.json else report(out))
    if args.out is not None:
        args.out.write_text(json.dumps(out, indent=1) + "\n")
    complete = out["calls_handled"] >= args.calls and out["sipp_exit"] == 0
    return 0 if out["verdict"]["levelled"] and complete else 1


if __name__ == "__main__":
    raise SystemExit(main())
