"""Inbound throughput benchmark: sipp calls at a given rate through Asterisk into the engine.

    make bench                       # defaults: 300 calls at 30 calls/s
    .venv/bin/python tools/bench_inbound.py --calls 1000 --rate 100 [--json]

Needs the stack (`make stack-up`). Runs the engine in-process on a fresh database, places the calls
with sipp through the carrier trunk (each call: answer, hello-world, hang-up), then reads the rows
back and reports: calls completed, rows complete, time from channel creation to answer (p50/p99),
the engine's CPU time per call (logging at info level included), and its peak of concurrent calls.
Prints a table, or JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import asyncpg  # noqa: E402

from engine.app import Engine  # noqa: E402
from engine.shared.logsetup import configure  # noqa: E402
from tests.integration.harness import engine_config, fresh_database, running, sipp, stack_env  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench(calls: int, rate: int) -> dict[str, object]:
    stack = stack_env()
    async with fresh_database(stack["CALLCENTER_DSN"]) as dsn:
        with tempfile.TemporaryDirectory() as state:
            engine = Engine(engine_config(stack, dsn, Path(state)))
            async with running(engine):
                assert engine.calls is not None
                peak = 0

                def track(m) -> bool:
                    nonlocal peak
                    peak = max(peak, len(m.sessions))
                    return False

                watcher = asyncio.create_task(engine.calls.wait_until(track))
                cpu0 = resource.getrusage(resource.RUSAGE_SELF)
                t0 = time.monotonic()
                result = await sipp(stack, "caller_wait_bye.xml", "2000", calls=calls, rate=rate,
                                    timeout=calls / rate + 60)
                async with asyncio.timeout(60):
                    await engine.calls.wait_handled(calls)
                    await engine.writer.wait_idle()
                wall = time.monotonic() - t0
                cpu1 = resource.getrusage(resource.RUSAGE_SELF)
                watcher.cancel()
            conn = await asyncpg.connect(dsn)
            try:
                rows = await conn.fetch("""
                    SELECT extract(epoch FROM answered_at - started_at) AS answer,
                           (answered_at IS NOT NULL AND ended_at IS NOT NULL AND hangup_cause IS NOT NULL) AS complete
                    FROM calls""")
            finally:
                await conn.close()
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    answers = [float(r["answer"]) * 1000 for r in rows if r["answer"] is not None]
    return {
        "calls_offered": calls, "rate_per_second": rate, "sipp_exit": result.returncode,
        "rows": len(rows), "rows_complete": sum(1 for r in rows if r["complete"]),
        "answer_ms_p50": round(percentile(answers, 0.50), 1), "answer_ms_p99": round(percentile(answers, 0.99), 1),
        "engine_cpu_ms_per_call": round(cpu * 1000 / max(calls, 1), 2), "peak_concurrent_calls": peak,
        "wall_seconds": round(wall, 1), "loop": os.environ.get("CALLCENTER_LOOP", "uvloop"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rate", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # As in production: info-level JSON lines (to /dev/null here, so the table stays readable).
    configure("info", "json", open(os.devnull, "w"), cache=True)
    if os.environ.get("CALLCENTER_LOOP", "uvloop") == "uvloop":
        import uvloop

        out = uvloop.run(bench(args.calls, args.rate))
    else:
        out = asyncio.run(bench(args.calls, args.rate))
    if args.json:
        print(json.dumps(out))
    else:
        width = max(len(k) for k in out)
        for key, value in out.items():
            print(f"{key.ljust(width)}  {value}")
    return 0 if out["rows_complete"] == args.calls and out["sipp_exit"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
