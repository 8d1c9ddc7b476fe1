"""Fault runs: the engine SIGKILLed at random moments under inbound or outbound load, with and
without PostgreSQL, PostgreSQL cut mid-load, Asterisk restarted mid-load; then the books are checked.

    .venv/bin/python tools/faults.py                      # every fault, the long run
    .venv/bin/python tools/faults.py --faults sigkill outbound-sigkill --calls 60 --kills 3 [--json]

Needs the stack (`make stack-up`). Each fault runs on a fresh database: `callcenter run` as a
subprocess (so SIGKILL is a real one) on the example configuration, its PostgreSQL connection
through a TCP proxy the run can cut, a webhook receiver on loopback as the CRM (call.ended,
dial.ended), and agents on sipp phones that answer and talk ``--talk-ms``:

- inbound (sigkill, sigkill-without-db, db-outage, postgres-restart, asterisk-restart): agents 9001-9003 in the
  support queue (which records every call), sipp callers into it (3100) at ``--rate`` per second;
- outbound (outbound-sigkill, outbound-sigkill-without-db): agents 9001-9002 in the renewals
  queue, a progressive campaign of ``--calls`` leads, customers behind the carrier who answer and
  talk ``--talk-ms`` (``--rate``: the calls per second the agents are expected to take, which
  places the kills).

While the calls go on, the engine is killed ``--kills`` times at random moments (seeded) and
started again at once. At the end the engine is stopped cleanly, started once more to send what
it still owes, and the books are read (tools/faultbooks.py):

- placed: calls sipp placed, or calls the customers got; lost: a call with no row, a row never
  closed, an attempt never closed, a webhook never delivered, an answered call with no recording
  (or no audio file), a conversation cut short;
- duplicated: a call answered in two queue stays, IVR steps numbered twice, a lead dialled while
  its last call was up or connected to an agent twice, one fact delivered as two webhooks;
- wrong state: agents left on a call (or reserved) that is over, leads left leased, an attempt
  the customer answered recorded as lost;
- recovery: from each restart to `/healthz` answering 200 (ARI, AMI and the database up).

``postgres-restart`` restarts the stack's PostgreSQL server (`pg_ctl restart -m fast`) mid-load.
``asterisk-restart`` restarts Asterisk itself (`core restart now`) mid-load: the calls up at that
moment are dropped by Asterisk; their rows must be closed and their agents released.

All traffic is on loopback; every loop is bounded in count and time. The short version of this
run is `tests/integration/test_faults.py`, in `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shlex
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402

from tests.integration.harness import (SIPP_DIR, Daemon, Proxy, fresh_database, logged,  # noqa: E402
                                       rows, sipp, sipp_listening, stack_env, with_database)
from tools import faultbooks as books  # noqa: E402
from tools.faultbooks import Hooks, Outcome  # noqa: E402

TOKEN = "fault-run-token-0123456789abcdef"
AGENTS = {"inbound": ("9001", "9002", "9003"),   # the example agents, on the stack's phones
          "outbound": ("9001", "9002")}          # the two with the renewals skill
FAULTS = ("sigkill", "sigkill-without-db", "db-outage", "postgres-restart", "asterisk-restart",
          "outbound-sigkill", "outbound-sigkill-without-db")
CAMPAIGN = "faultrun"
ALL_DAYS = "[mon, tue, wed, thu, fri, sat, sun]"
# A progressive campaign on the renewals queue, any time of day, AMD off: each lead a human who
# answers after 300 ms and talks --talk-ms (tests/sipp/customer_mix.xml: numbers ending in 1).
CAMPAIGN_YAML = f"""campaigns:
  - name: {CAMPAIGN}
    mode: progressive
    queue: renewals
    dial: "PJSIP/{{number}}@carrier"
    caller_id: "+12125550100"
    ring_timeout_seconds: 15
    safe_harbor_sound: demo-thanks
    calling_hours: {{start: "00:00", end: "24:00", days: {ALL_DAYS}, legal_start: "00:00", legal_end: "24:00"}}
    retry: {{busy: 10m, no_answer: 10m, max_attempts: 3}}
    national_dnc: {{required: false}}
"""


def config_text(hooks: Hooks, load: str) -> str:
    text = (REPO / "examples" / "callcenter.yaml").read_text()
    text = text.replace('  # tokens: ["${CALLCENTER_API_TOKEN}"]', f'  tokens: ["{TOKEN}"]')
    events = ["call.ended"] + (["dial.ended"] if load == "outbound" else [])
    return text.replace("# webhooks:\n", hooks.config(events), 1)


def edits(load: str) -> dict[str, tuple[str, str]]:
    """Quick wrap-up, so that the load stays within what the agents can take; the campaign."""
    if load == "inbound":
        return {"queues.yaml": ("    wrapup_seconds: 10", "    wrapup_seconds: 1")}
    return {"queues.yaml": ("    wrapup_seconds: 15", "    wrapup_seconds: 1"),
            "campaigns.yaml": ("campaigns:\n", CAMPAIGN_YAML)}


async def start(stack: dict[str, str], dsn: str, folder: Path, hooks: Hooks, load: str) -> tuple[Daemon, int, float]:
    t0 = time.monotonic()
    daemon = await Daemon.start(stack, dsn, folder, config_text=config_text(hooks, load), edits=edits(load))
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


async def api(port: int, method: str, path: str, body: dict, ok: tuple[int, ...]) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        async with http.request(method, f"http://127.0.0.1:{port}/api/v1{path}", json=body) as resp:
            if resp.status not in ok:
                raise RuntimeError(f"{method} {path}: {resp.status} {await resp.text()}")


async def log_in_agents(port: int, load: str) -> None:
    queue = "support" if load == "inbound" else "renewals"
    for agent in AGENTS[load]:   # 409: already logged in (restored)
        await api(port, "POST", f"/agents/{agent}/login", {"queues": [queue]}, (200, 409))


def lead_number(i: int) -> str:
    return f"+1212200{i:03d}1"   # ends in 1: a human who answers


async def poll(dsn: str, sql: str, limit: float, what: str) -> None:
    """Until ``sql`` counts 0 rows, at most ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        [r] = await rows(dsn, sql)
        if r[0] == 0:
            return
        await asyncio.sleep(0.25)   # polling the database for the run's end, not synchronising a test
    raise TimeoutError(f"{what} {limit} s on")


async def restart_postgres(stack: dict[str, str]) -> None:
    """``pg_ctl restart -m fast`` of the stack's own cluster (its options as it was started with)."""
    data = Path(stack.get("CALLCENTER_STACK_PG_DATA") or "")
    if not (data / "PG_VERSION").is_file():
        raise RuntimeError("postgres-restart needs the stack's own PostgreSQL (not CALLCENTER_DSN)")
    pg_ctl = Path("/usr/lib/postgresql") / (data / "PG_VERSION").read_text().strip() / "bin" / "pg_ctl"
    proc = await asyncio.create_subprocess_exec("runuser", "-u", "postgres", "--", str(pg_ctl), "restart", "-D",
                                                str(data), "-m", "fast", "-w", "-t", "60", cwd="/",
                                                stdout=asyncio.subprocess.DEVNULL)
    if await proc.wait():
        raise RuntimeError(f"pg_ctl restart failed ({proc.returncode})")


async def voices(folder: Path) -> dict[str, Path]:
    files = {}
    for preset in ("human", "machine"):
        files[preset] = folder / f"{preset}.pcap"
        proc = await asyncio.create_subprocess_exec(sys.executable, str(REPO / "tools" / "make_rtp_pcap.py"),
                                                    "--preset", preset, str(files[preset]))
        if await proc.wait():
            raise RuntimeError(f"make_rtp_pcap.py --preset {preset} failed")
    return files


async def customers(stack: dict[str, str], folder: Path, calls: int, talk_ms: int, span: float):
    """The customers behind the carrier (tests/sipp/customer_mix.xml), for ``calls`` leads."""
    pcaps = await voices(folder)
    return await sipp_listening(
        ["sipp", "-sf", str(SIPP_DIR / "customer_mix.xml"), "-key", "human_pcap", str(pcaps["human"]),
         "-key", "machine_pcap", str(pcaps["machine"]), "-i", "127.0.0.1",
         "-p", stack["ASTERISK_CARRIER_SIP_PORT"], "-m", str(calls * 4), "-nostdin",
         "-timeout", f"{int(span) + 180}s", "-set", "ring_ms", "300", "-set", "hangup_ms", str(talk_ms)],
        timeout=span + 240)


async def run_fault(fault: str, *, calls: int, rate: float, kills: int, talk_ms: int, seed: int) -> Outcome:
    """``calls``: inbound calls placed, or leads of the outbound campaign; ``rate``: calls placed
    per second (inbound), or the calls per second the agents are expected to take (outbound: it
    sets when the kills fall)."""
    stack = stack_env()
    load = "outbound" if fault.startswith("outbound-") else "inbound"
    kind = fault.removeprefix("outbound-")
    rng = random.Random(seed)
    out = Outcome(fault, calls, rate, kills if kind.startswith("sigkill") else 0)
    pg_host, pg_port = "127.0.0.1", int(stack["CALLCENTER_DSN"].rsplit(":", 1)[1].split("/")[0])
    proxy = await Proxy(pg_host, pg_port).start()
    hooks = await Hooks().start()
    async with fresh_database(stack["CALLCENTER_DSN"]) as real_dsn:
        name = real_dsn.rsplit("/", 1)[1]
        dsn = with_database(stack["CALLCENTER_DSN"].replace(f":{pg_port}/", f":{proxy.port}/"), name)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            base = int(stack["ASTERISK_AGENT_PORT_BASE"])
            span = calls / rate
            phones = []
            for i, _ in enumerate(AGENTS[load], 1):
                args = ["sipp", "-sf", str(SIPP_DIR / "agent_answer.xml"), "-i", "127.0.0.1", "-p", str(base + i),
                        "-m", str(calls * 3), "-nostdin", "-timeout", f"{int(span) + 120}s",
                        "-set", "answer_ms", "200", "-set", "hangup_ms", str(talk_ms)]
                phones.append(await sipp_listening(args, timeout=span + 180))
            carrier = await customers(stack, folder, calls, talk_ms, span) if load == "outbound" else None
            daemon, port, t0 = await start(stack, dsn, folder, hooks, load)
            try:
                out.recovery_s.append(round(await healthy(port, t0), 3))
                await log_in_agents(port, load)
                if load == "inbound":
                    placing = asyncio.create_task(sipp(stack, "caller_wait_bye.xml", "3100", calls=calls,
                                                       rate=max(1, int(rate)), timeout=span + 120))
                else:
                    for i in range(calls):
                        await api(port, "POST", f"/campaigns/{CAMPAIGN}/leads",
                                  {"number": lead_number(i), "consent": True, "external_id": f"fault-{i}"}, (201,))
                moments = sorted(rng.uniform(0.1 * span, 0.9 * span) for _ in range(out.kills))
                begun = time.monotonic()
                if kind == "db-outage":
                    await asyncio.sleep(0.3 * span)        # the outage starts a third of the way in
                    await proxy.cut()
                    await asyncio.sleep(0.4 * span)
                    await proxy.restore()
                if kind == "postgres-restart":             # the server itself: every connection dropped
                    await asyncio.sleep(0.4 * span)
                    restarted = time.monotonic()
                    await restart_postgres(stack)
                    out.recovery_s.append(round(await healthy(port, restarted), 3))
                if kind == "asterisk-restart":             # the calls up at that moment are dropped by Asterisk
                    await asyncio.sleep(0.4 * span)
                    restarted = time.monotonic()
                    cli = await asyncio.create_subprocess_exec(*shlex.split(stack["ASTERISK_CLI"]), "core restart now")
                    await cli.wait()
                    out.recovery_s.append(round(await healthy(port, restarted), 3))
                for at in moments:
                    await asyncio.sleep(max(0.0, begun + at - time.monotonic()))   # the random moment itself
                    if kind == "sigkill-without-db":
                        await proxy.cut()
                    await daemon.kill()
                    daemon, port, t0 = await start(stack, dsn, folder, hooks, load)
                    if kind == "sigkill-without-db":
                        await asyncio.sleep(2.0)           # the engine runs a while without its database
                        await proxy.restore()
                    out.recovery_s.append(round(await healthy(port, t0), 3))
                    await log_in_agents(port, load)   # restored already (409), unless the database was away
                if load == "inbound":
                    result = await placing
                    out.placed = _stat(result.stdout, "Total Call created", calls)
                    if failed := _stat(result.stdout, "Failed call"):
                        out.details.append(f"{failed} calls failed on the caller's side (sipp: no answer, "
                                           f"or no hang-up within 30 s of waiting)")
                else:
                    await poll(real_dsn, f"SELECT count(*) FROM leads WHERE campaign = '{CAMPAIGN}' "
                               "AND status IN ('new', 'active')", span + 120, "leads still new or being dialled")
                await quiet(port)   # every call over before the clean stop
            except BaseException:
                for line in daemon.lines[-30:]:   # what the engine said last, to see why
                    print(json.dumps(line, default=str)[:600], file=sys.stderr)
                raise
            finally:
                if daemon.proc.returncode is None:
                    daemon.proc.terminate()
                await asyncio.wait_for(daemon.proc.wait(), 60)
                for proc, done in phones:
                    if proc.returncode is None:
                        proc.kill()
                    await done()
                if carrier is not None:
                    proc, done = carrier
                    if proc.returncode is None:
                        proc.send_signal(signal.SIGUSR1)   # sipp's soft stop: it prints its final counts
                    out.placed = _stat((await done()).stdout, "Incoming calls created")
            # settle: one more clean start applies whatever the journal holds and sends what the
            # webhook outbox still owes, then stops
            daemon, port, t0 = await start(stack, dsn, folder, hooks, load)
            await healthy(port, t0)
            await poll(real_dsn, "SELECT count(*) FROM webhook_outbox WHERE delivered_at IS NULL AND failed_at IS NULL",
                       30, "webhook deliveries still owed")
            daemon.proc.terminate()
            await asyncio.wait_for(daemon.proc.wait(), 60)
            await proxy.close()
        if load == "inbound":
            rec = stack.get("ASTERISK_RECORDING_DIR")
            await books.inbound(real_dsn, out, hooks, Path(rec) if rec else None,
                                None if kind == "asterisk-restart" else talk_ms / 1000)
        else:
            await books.outbound(real_dsn, out, hooks, CAMPAIGN, calls, talk_ms / 1000)
    await hooks.close()
    return out


def _stat(stdout: str, name: str, default: int = 0) -> int:
    """One of sipp's final statistics ("Total Call created | periodic | cumulative")."""
    for line in reversed(stdout.splitlines()):
        if line.strip().startswith(name) and line.count("|") >= 2:
            return int(line.split("|")[2].split()[0])
    return default


def table(outcomes: list[Outcome]) -> str:
    head = f"{'fault':<28} {'load':>14} {'kills':>5} {'placed':>6} {'rows':>5} {'lost':>4} {'dup':>4} " \
           f"{'wrong':>5} {'recovery s (each start)':<30}"
    lines = [head, "-" * len(head)]
    for o in outcomes:
        lines.append(f"{o.fault:<28} {f'{o.calls} @ {o.rate:g}/s':>14} {o.kills:>5} {o.placed:>6} {o.rows:>5} "
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
    outcomes = []
    for f in a.faults:
        outcomes.append(await run_fault(f, calls=a.calls, rate=a.rate, kills=a.kills, talk_ms=a.talk_ms, seed=a.seed))
        print(table(outcomes[-1:]), file=sys.stderr, flush=True)   # as it goes: a long run takes a while
    print(json.dumps([asdict(o) for o in outcomes], indent=2) if a.json else table(outcomes))
    sys.exit(0 if all(o.lost == o.duplicated == o.wrong_state == 0 for o in outcomes) else 1)


if __name__ == "__main__":
    asyncio.run(main())
