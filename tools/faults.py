"""Fault runs: the engine SIGKILLed at random moments under inbound load, with and without
PostgreSQL, and PostgreSQL cut mid-load; then the books are checked.

    .venv/bin/python tools/faults.py                      # every fault, the long run
    .venv/bin/python tools/faults.py --faults sigkill --calls 60 --kills 3 [--json]

Needs the stack (`make stack-up`). Each fault runs on a fresh database: `callcenter run` as a
subprocess (so SIGKILL is a real one) on the example configuration, its PostgreSQL connection
through a TCP proxy the run can cut, agents 9001-9003 on sipp phones that answer and talk
``--talk-ms``, and sipp callers into the support queue (3100) at ``--rate`` per second. While
the calls go on, the engine is killed ``--kills`` times at random moments (seeded) and started
again at once. At the end the engine is stopped cleanly and the rows are read:

- placed: calls sipp placed; lost: placed calls with no row, or whose row never closed;
- duplicated: calls with more than one answered queue stay, IVR steps numbered twice;
- wrong state: agents left on a call (or reserved) that is over;
- recovery: from each restart to `/healthz` answering 200 (ARI, AMI and the database up).

``asterisk-restart`` restarts Asterisk itself (`core restart now`) mid-load instead: the calls up
at that moment are dropped by Asterisk; their rows must be closed and their agents released.

All traffic is on loopback; every loop is bounded in count and time. The short version of this
run is `tests/integration/test_faults.py`, in `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402

from tests.integration.harness import (SIPP_DIR, Daemon, Proxy, fresh_database, logged,  # noqa: E402
                                       rows, sipp, sipp_listening, stack_env, with_database)

TOKEN = "fault-run-token-0123456789abcdef"
AGENTS = ("9001", "9002", "9003")   # the example agents, on the stack's phones
FAULTS = ("sigkill", "sigkill-without-db", "db-outage", "asterisk-restart")


@dataclass
class Outcome:
    fault: str
    calls: int
    rate: float
    kills: int
    placed: int = 0
    rows: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong_state: int = 0
    recovery_s: list[float] = field(default_factory=list)
    details: list[str] = field(default_factory=list)


def config_text(talk_wrapup_s: float = 1.0) -> str:
    text = (REPO / "examples" / "callcenter.yaml").read_text()
    return text.replace('  # tokens: ["${CALLCENTER_API_TOKEN}"]', f'  tokens: ["{TOKEN}"]')


async def start(stack: dict[str, str], dsn: str, folder: Path) -> tuple[Daemon, int, float]:
    t0 = time.monotonic()
    # quick wrap-up, so that the load stays within what three agents can take
    daemon = await Daemon.start(stack, dsn, folder, config_text=config_text(),
                                edits={"queues.yaml": ("    wrapup_seconds: 10", "    wrapup_seconds: 1")})
    line = await daemon.expect(logged("engine.started"), timeout=30)
    daemon.follow()   # keep reading its log, or it blocks on a full pipe
    return daemon, int(line["http_port"]), t0


async def healthy(port: int, since: float, limit: float = 60.0) -> float:
    """Seconds from ``since`` until /healthz answers 200."""
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return time.monotonic() - since
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)   # polling a daemon's health, not synchronising a test
    raise TimeoutError(f"/healthz not 200 within {limit} s")


async def quiet(port: int, limit: float = 60.0) -> None:
    """Until the engine has no live call (its /healthz says how many)."""
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                if (await resp.json())["live_calls"] == 0:
                    return
            await asyncio.sleep(0.1)   # polling a daemon, not synchronising a test
    raise TimeoutError(f"calls still live {limit} s after the load ended")


async def log_in_agents(port: int) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for agent in AGENTS:
            async with http.post(f"http://127.0.0.1:{port}/api/v1/agents/{agent}/login",
                                 json={"queues": ["support"]}) as resp:
                if resp.status not in (200, 409):   # 409: already logged in (restored)
                    raise RuntimeError(f"login {agent}: {resp.status} {await resp.text()}")


async def run_fault(fault: str, *, calls: int, rate: float, kills: int, talk_ms: int, seed: int) -> Outcome:
    stack = stack_env()
    rng = random.Random(seed)
    out = Outcome(fault, calls, rate, kills if fault.startswith("sigkill") else 0)
    pg_host, pg_port = "127.0.0.1", int(stack["CALLCENTER_DSN"].rsplit(":", 1)[1].split("/")[0])
    proxy = await Proxy(pg_host, pg_port).start()
    async with fresh_database(stack["CALLCENTER_DSN"]) as real_dsn:
        name = real_dsn.rsplit("/", 1)[1]
        dsn = with_database(stack["CALLCENTER_DSN"].replace(f":{pg_port}/", f":{proxy.port}/"), name)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            base = int(stack["ASTERISK_AGENT_PORT_BASE"])
            phones = []
            for i, _ in enumerate(AGENTS, 1):
                args = ["sipp", "-sf", str(SIPP_DIR / "agent_answer.xml"), "-i", "127.0.0.1", "-p", str(base + i),
                        "-m", str(calls), "-nostdin", "-timeout", f"{int(calls / rate) + 120}s",
                        "-set", "answer_ms", "200", "-set", "hangup_ms", str(talk_ms)]
                phones.append(await sipp_listening(args, timeout=calls / rate + 180))
            daemon, port, t0 = await start(stack, dsn, folder)
            try:
                out.recovery_s.append(round(await healthy(port, t0), 3))
                await log_in_agents(port)
                load = asyncio.create_task(sipp(stack, "caller_wait_bye.xml", "3100", calls=calls,
                                                rate=max(1, int(rate)), timeout=calls / rate + 120))
                span = calls / rate
                moments = sorted(rng.uniform(0.1 * span, 0.9 * span) for _ in range(out.kills))
                begun = time.monotonic()
                if fault == "db-outage":
                    await asyncio.sleep(0.3 * span)        # the outage starts a third of the way in
                    await proxy.cut()
                    await asyncio.sleep(0.4 * span)
                    await proxy.restore()
                if fault == "asterisk-restart":            # the calls up at that moment are dropped by Asterisk
                    await asyncio.sleep(0.4 * span)
                    restarted = time.monotonic()
                    cli = await asyncio.create_subprocess_exec(*shlex.split(stack["ASTERISK_CLI"]), "core restart now")
                    await cli.wait()
                    out.recovery_s.append(round(await healthy(port, restarted), 3))
                for at in moments:
                    await asyncio.sleep(max(0.0, begun + at - time.monotonic()))   # the random moment itself
                    if fault == "sigkill-without-db":
                        await proxy.cut()
                    await daemon.kill()
                    daemon, port, t0 = await start(stack, dsn, folder)
                    if fault == "sigkill-without-db":
                        await asyncio.sleep(2.0)           # the engine runs a while without its database
                        await proxy.restore()
                    out.recovery_s.append(round(await healthy(port, t0), 3))
                    await log_in_agents(port)   # restored already (409), unless the database was away
                result = await load
                out.placed = _stat(result.stdout, "Total Call created", calls)
                if failed := _stat(result.stdout, "Failed call"):
                    out.details.append(f"{failed} calls failed on the caller's side (sipp: no answer, "
                                       f"or no hang-up within 30 s of waiting)")
                await quiet(port)   # every call over before the clean stop
            finally:
                daemon.proc.terminate()
                await asyncio.wait_for(daemon.proc.wait(), 60)
                for proc, done in phones:
                    if proc.returncode is None:
                        proc.kill()
                    await done()
            # settle: one more clean start applies whatever the journal holds, then stops
            daemon, port, t0 = await start(stack, dsn, folder)
            await healthy(port, t0)
            daemon.proc.terminate()
            await asyncio.wait_for(daemon.proc.wait(), 60)
            await proxy.close()
        await _books(real_dsn, out)
    return out


def _stat(stdout: str, name: str, default: int = 0) -> int:
    """One of sipp's final statistics ("Total Call created | periodic | cumulative")."""
    for line in reversed(stdout.splitlines()):
        if line.strip().startswith(name) and line.count("|") >= 2:
            return int(line.split("|")[2].split()[0])
    return default


async def _books(dsn: str, out: Outcome) -> None:
    calls = await rows(dsn, "SELECT id, answered_at, ended_at FROM calls WHERE direction = 'inbound'")
    out.rows = len(calls)
    open_rows = [c for c in calls if c["ended_at"] is None]
    out.lost = max(0, out.placed - len(calls)) + len(open_rows)
    if open_rows:
        out.details.append(f"{len(open_rows)} rows never closed")
    if out.placed > len(calls):
        out.details.append(f"{out.placed - len(calls)} calls placed never reached the engine (no row)")
    twice = await rows(dsn, """SELECT call_id FROM queue_entries WHERE outcome = 'answered'
                               GROUP BY call_id HAVING count(*) > 1""")
    steps = await rows(dsn, "SELECT call_id, seq FROM ivr_steps GROUP BY call_id, seq HAVING count(*) > 1")
    out.duplicated = len(twice) + len(steps)
    out.details += [f"call {r['call_id']} answered in two queue stays" for r in twice]
    out.details += [f"call {r['call_id']} has IVR step {r['seq']} twice" for r in steps]
    stuck = await rows(dsn, """SELECT a.agent_id, a.state FROM agents_current a
                               LEFT JOIN calls c ON c.id = a.call_id
                               WHERE a.state IN ('on_call', 'reserved') AND (c.id IS NULL OR c.ended_at IS NOT NULL)""")
    out.wrong_state = len(stuck)
    out.details += [f"agent {r['agent_id']} left {r['state']}" for r in stuck]


def table(outcomes: list[Outcome]) -> str:
    head = f"{'fault':<20} {'load':>14} {'kills':>5} {'placed':>6} {'rows':>5} {'lost':>4} {'dup':>4} " \
           f"{'wrong':>5} {'recovery s (each start)':<30}"
    lines = [head, "-" * len(head)]
    for o in outcomes:
        lines.append(f"{o.fault:<20} {f'{o.calls} @ {o.rate:g}/s':>14} {o.kills:>5} {o.placed:>6} {o.rows:>5} "
                     f"{o.lost:>4} {o.duplicated:>4} {o.wrong_state:>5} {', '.join(map(str, o.recovery_s)):<30}")
        lines += [f"    {d}" for d in o.details]
    return "\n".join(lines)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faults", nargs="+", choices=FAULTS, default=list(FAULTS))
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--rate", type=float, default=1.0)   # three agents take about 1.2 calls/s
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--talk-ms", type=int, default=1000)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    outcomes = [await run_fault(f, calls=a.calls, rate=a.rate, kills=a.kills, talk_ms=a.talk_ms, seed=a.seed)
                for f in a.faults]
    print(json.dumps([asdict(o) for o in outcomes], indent=2) if a.json else table(outcomes))
    sys.exit(0 if all(o.lost == o.duplicated == o.wrong_state == 0 for o in outcomes) else 1)


if __name__ == "__main__":
    asyncio.run(main())
