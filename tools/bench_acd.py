"""The engine's ACD against Asterisk's app_queue, on the same box, with the same callers and agents.

    make bench-acd                                   # brings the stack up, then the defaults below
    .venv/bin/python tools/bench_acd.py [--agents 20] [--rate 10] [--calls 300] [--talk-ms 2000]
                                        [--pairs 2] [--retry 1] [--ivr] [--json]

Both systems get the same sipp callers (tests/sipp/bench_caller.xml, through the carrier trunk, each
waiting for the far end's BYE) and the same agents: ``--agents`` PJSIP endpoints bench0001 ...
whose contacts are one sipp (tests/sipp/bench_agent.xml) that answers at once, talks ``--talk-ms``
and hangs up. app_queue: ``Answer(,i)``, ``Queue(bench)`` with every agent a static member,
``strategy=leastrecent``, ``ringinuse=no``, ``wrapuptime=0``, no announcements, ``retry=--retry``
(loaded for the benchmark, unloaded after). The engine: ``callcenter run`` as its own process on a
fresh database, one queue (longest idle, no prompt, no announcements, no recording, wrap-up 0) and
every agent logged in through the API. The runs alternate, app_queue then the engine (then with ``--baseline TREE``
the engine of that checkout), ``--pairs`` times; no engine runs during app_queue's runs.

Measured per run, from sipp's logs (wall clock, one box): calls delivered per second (calls an agent
took, over the span from the first INVITE to the last agent's answer), the caller's answer (INVITE to
Asterisk's 200 OK) p50/p99, caller wait (INVITE to the
agent's ACK) p50/p99, the freed agent's idle gap while callers wait (an agent hangs up while a caller
has waited 50 ms or more since the INVITE and is not offered yet; until that agent's next offer) p50/p99, INVITE retransmissions
(sipp's counter; Asterisk answering slowly), and CPU per answered call of Asterisk, the engine and
PostgreSQL (``/proc/PID/stat`` before the first call and once the processes are quiet after the
last; PostgreSQL: every process of the cluster, backends that ended included). ``--ivr`` adds a run
of the engine alone with what app_queue has no equal for: an IVR prompt before the queue and the
call recorded. ``--find-clean 40,60,80`` instead climbs that ladder of offered rates for each
system (``--clean-seconds`` of calls a step, enough agents for the top rate) and reports the highest
clean one: no INVITE retransmitted, no caller failed, caller wait p99 under 100 ms. ``--json`` prints one object: ``appqueue`` and ``engine`` (medians over the runs;
each run under ``runs``), and ``engine_ivr``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shlex
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

import aiohttp  # noqa: E402

import bench_acd_box as B  # noqa: E402
from tests.integration.harness import fresh_database, stack_env  # noqa: E402

TOKEN = "bench-acd-token-0123456789"
QUEUED = 0.050         # a caller not offered this long after the INVITE is waiting in the queue (set-up is ~10 ms)
CLEAN_WAIT_P99_MS = 100.0
QUIET_TICKS = 2        # a process is quiet when a quarter second adds fewer ticks than this
KEYS = ("calls_offered", "calls_answered", "calls_per_second", "answer_p50_ms", "answer_p99_ms", "wait_p50_ms",
        "wait_p99_ms", "idle_gap_p50_ms",
        "idle_gap_p99_ms", "idle_gaps", "invite_retransmissions", "callers_failed", "asterisk_cpu_ms_per_call",
        "engine_cpu_ms_per_call", "postgres_cpu_ms_per_call", "total_cpu_ms_per_call")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(t: B.Traffic) -> dict[str, float | int | None]:
    """The figures of one run, from what sipp logged."""
    waits = [(at - t.invited[c]) * 1000 for c, (_, at) in t.connected.items() if c in t.invited]
    answers = [(at - t.invited[c]) * 1000 for c, at in t.answered.items() if c in t.invited]
    first_offer: dict[str, float] = {}
    by_agent: dict[str, list[float]] = {}
    for agent, caller, at in t.offers:
        first_offer[caller] = min(at, first_offer.get(caller, at))
        by_agent.setdefault(agent, []).append(at)
    for offers in by_agent.values():
        offers.sort()
    waiting = sorted((t.invited[c] + QUEUED, first_offer.get(c, float("inf"))) for c in t.invited)
    gaps = []
    for agent, _, freed in t.freed:
        if not any(start < freed < end for start, end in waiting if start < freed):
            continue                       # nobody was waiting: the agent idles by rights
        nxt = next((at for at in by_agent.get(agent, ()) if at > freed), None)
        if nxt is not None:
            gaps.append((nxt - freed) * 1000)
    answered = len(t.connected)
    span = (max(at for _, at in t.connected.values()) - min(t.invited.values())) if answered else 0.0
    r = lambda v: None if v is None else round(v, 1)  # noqa: E731
    return {"calls_offered": len(t.invited), "calls_answered": answered,
            "calls_per_second": round(answered / span, 2) if span > 0 else 0.0,
            "answer_p50_ms": r(percentile(answers, 0.5)), "answer_p99_ms": r(percentile(answers, 0.99)),
            "wait_p50_ms": r(percentile(waits, 0.5)), "wait_p99_ms": r(percentile(waits, 0.99)),
            "idle_gap_p50_ms": r(percentile(gaps, 0.5)), "idle_gap_p99_ms": r(percentile(gaps, 0.99)),
            "idle_gaps": len(gaps), "invite_retransmissions": t.invite_retransmissions,
            "callers_failed": t.callers_failed}


class Cpu:
    """The ticks of Asterisk, the engine (when it runs) and PostgreSQL."""

    def __init__(self, box: B.Box, pg_data: str, engine_pid: int | None) -> None:
        self.box, self.pg_data, self.engine_pid = box, pg_data, engine_pid

    def read(self) -> tuple[int, int, int]:
        return (B.cpu_ticks(self.box.asterisk_pid),
                B.cpu_ticks(self.engine_pid, children=True) if self.engine_pid else 0,
                B.postgres_ticks(self.pg_data))

    async def quiet(self, limit: float = 20.0) -> tuple[int, int, int]:
        """Once a quarter second adds under QUIET_TICKS to each (the last rows written, the last
        channels gone): a bench's polling of /proc, not a test's synchronisation."""
        last = self.read()
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            now = self.read()
            if all(b - a < QUIET_TICKS for a, b in zip(last, now)):
                return now
            last = now
        return last


async def traffic(stack: dict[str, str], box: B.Box, cpu: Cpu, number: str, args: argparse.Namespace,
                  agent_port: int, folder: Path) -> dict[str, float | int | None]:
    agent_log, caller_log = folder / "agents.log", folder / "callers.log"
    for p in folder.glob("*"):
        p.unlink()
    agents = await B.sipp_agents(stack, agent_port, args.talk_ms, agent_log, args.calls)
    try:
        before = cpu.read()
        timeout = args.calls / args.rate + args.calls * args.talk_ms / 1000 / args.agents + 60
        code, failed, retrans = await B.sipp_callers(stack, number, args.calls, args.rate, caller_log, timeout)
        after = await cpu.quiet()
        try:
            await asyncio.wait_for(agents.wait(), 10)
        except TimeoutError:
            pass
    finally:
        if agents.returncode is None:
            agents.kill()
            await agents.wait()
    out = measure(B.read_traffic(caller_log, agent_log, retrans, agents.returncode or 0, failed))
    answered = max(1, int(out["calls_answered"] or 0))
    ms = [(b - a) * 1000 / B.TICK / answered for a, b in zip(before, after)]
    out.update(asterisk_cpu_ms_per_call=round(ms[0], 2), engine_cpu_ms_per_call=round(ms[1], 2),
               postgres_cpu_ms_per_call=round(ms[2], 2), total_cpu_ms_per_call=round(sum(ms), 2),
               sipp_exit=code)
    return out


# ---------------------------------------------------------------------------- the engine


def engine_files(folder: Path, stack: dict[str, str], agents: int, http_port: int) -> Path:
    (folder / "agents.yaml").write_text("agents:\n" + "".join(
        f'  - {{id: "{100000 + i}", endpoint: PJSIP/{B.endpoint(i)}, pin: "1234", skills: {{bench: 1}}}}\n'
        for i in range(1, agents + 1)))
    (folder / "queues.yaml").write_text(
        "queues:\n"
        "  - {name: bench, skills: {bench: 1}, strategy: longest_idle, wrapup_seconds: 0, recording: none}\n"
        "  - {name: bench-ivr, skills: {bench: 1}, strategy: longest_idle, wrapup_seconds: 0, recording: all}\n")
    (folder / "ivr").mkdir(exist_ok=True)
    (folder / "ivr" / "bench.yaml").write_text(   # a prompt, then the recorded queue
        "start: welcome\nnodes:\n  welcome:\n    play: {say: [beep], next: line}\n"
        "  line:\n    queue: {name: bench-ivr}\n")
    config = folder / "cc.yaml"
    config.write_text(f"""
engine: {{state_dir: {folder / 'state'}, shutdown_grace_seconds: 5}}
asterisk:
  ari: {{url: "{stack['ASTERISK_ARI_URL']}", username: "{stack['ASTERISK_ARI_USER']}",
        password: "{stack['ASTERISK_ARI_PASSWORD']}", app: callcenter}}
  sounds_dir: "{stack['ASTERISK_SOUNDS_DIR']}"
  ami: {{enabled: true, host: "{stack['ASTERISK_AMI_HOST']}", port: {stack['ASTERISK_AMI_PORT']},
        username: "{stack['ASTERISK_AMI_USER']}", password: "{stack['ASTERISK_AMI_PASSWORD']}"}}
database: {{dsn: "{{dsn}}", migrate_on_start: true}}
http: {{enabled: true, bind: 127.0.0.1, port: {http_port}, tokens: ["{TOKEN}"]}}
inbound:
  - {{number: "{B.ENGINE_NUMBER}", queue: bench}}
  - {{number: "{B.ENGINE_IVR_NUMBER}", ivr: bench}}
files: {{agents: agents.yaml, queues: queues.yaml, ivr: ivr}}
recording: {{format: wav, dir: "{stack['ASTERISK_RECORDING_DIR']}"}}
logging: {{level: info, format: json}}
pause_reasons: {{"1": break}}
""")
    return config


class EngineProcess:
    """``callcenter run`` on a fresh database, every benchmark agent logged in."""

    def __init__(self, stack: dict[str, str], folder: Path, agents: int, tree: Path = REPO, paused: int = 0) -> None:
        self.stack, self.folder, self.agents, self.tree, self.paused = stack, folder, agents, tree, paused
        self.http_port = B.free_tcp_port()
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, dsn: str) -> int:
        config = engine_files(self.folder, self.stack, self.agents, self.http_port)
        config.write_text(config.read_text().replace("{dsn}", dsn))
        log = open(self.folder / "engine.log", "ab")
        self.proc = await asyncio.create_subprocess_exec(
            # BENCH_CPROFILE=FILE: the engine under cProfile (CPU time), its stats in FILE.N at its stop
            sys.executable, *([str(REPO / "tools" / "profiled.py"), f"{os.environ['BENCH_CPROFILE']}.{os.getpid()}"
                               f".{len(os.listdir(self.folder))}", "engine"]
                              if os.environ.get("BENCH_CPROFILE") else ["-m", "engine"]),
            "run", "--config", str(config), cwd=self.tree,
            env={**os.environ, "CALLCENTER_STATE_DIR": str(self.folder / "state")}, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{self.http_port}"
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            deadline = time.monotonic() + 60
            while True:
                if self.proc.returncode is not None:
                    raise B.BenchError(f"the engine exited ({self.proc.returncode}): see {self.folder / 'engine.log'}")
                try:
                    async with http.get(f"{base}/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise B.BenchError(f"the engine was not healthy within 60 s: see {self.folder / 'engine.log'}")
                await asyncio.sleep(0.1)   # polling a port until the daemon serves

            sem = asyncio.Semaphore(20)

            async def login(i: int) -> None:
                async with sem, http.post(f"{base}/api/v1/agents/{100000 + i}/login", json={}) as r:
                    if r.status != 200:
                        raise B.BenchError(f"agent {100000 + i} login: {r.status} {await r.text()}")

            async def pause(i: int) -> None:
                async with sem, http.post(f"{base}/api/v1/agents/{100000 + i}/pause", json={"reason": "break"}) as r:
                    if r.status != 200:
                        raise B.BenchError(f"agent {100000 + i} pause: {r.status} {await r.text()}")

            await asyncio.gather(*(login(i) for i in range(1, self.agents + 1)))
            await asyncio.gather(*(pause(i) for i in range(self.agents - self.paused + 1, self.agents + 1)))
        return self.proc.pid

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def idle_figures(pid: int, seconds: float) -> dict[str, float]:
    """The engine with its agents logged in and no call: CPU (percent of one core) over
    ``seconds``, and its memory."""
    t0, c0 = time.monotonic(), B.cpu_ticks(pid)
    await asyncio.sleep(seconds)   # measuring a quiet process over a span of time
    used = (B.cpu_ticks(pid) - c0) / B.TICK
    return {"engine_idle_cpu_percent": round(100 * used / (time.monotonic() - t0), 2), "engine_rss_mb_idle": rss_mb(pid)}


async def engine_run(stack: dict[str, str], box: B.Box, args: argparse.Namespace, agent_port: int,
                     folder: Path, number: str, tree: Path = REPO) -> dict[str, float | int | None]:
    async with fresh_database(stack["CALLCENTER_DSN"]) as dsn:
        engine = EngineProcess(stack, folder / "engine", args.agents, tree, args.paused)
        engine.folder.mkdir(exist_ok=True)
        try:
            pid = await engine.start(dsn)
            args.spied = getattr(args, "spied", 0) + 1
            beside: list[str] = []   # what runs beside the engine: py-spy, or --attach's command
            if args.py_spy is not None:
                beside = ["py-spy", "record", "-p", str(pid), "-r", "250", "--format", "raw",
                          # native frames (Cython, C) need the process paused at each sample
                          "--native" if os.environ.get("BENCH_PY_SPY_NATIVE") else "--nonblocking",
                          "-o", f"{args.py_spy}.{args.spied}"]
            elif args.attach is not None:
                beside = shlex.split(args.attach.format(pid=pid, n=args.spied))
            spy = await asyncio.create_subprocess_exec(
                *beside, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL) if beside else None
            try:
                idle = await idle_figures(pid, args.idle_seconds) if args.idle_seconds else {}
                out = await traffic(stack, box, Cpu(box, stack["CALLCENTER_STACK_PG_DATA"], pid), number, args,
                                    agent_port, folder / "sipp")
                return {**out, **idle, "engine_rss_mb_after": rss_mb(pid)}
            finally:
                if spy is not None:
                    if spy.returncode is None:
                        spy.send_signal(signal.SIGINT)
                    await spy.wait()
        finally:
            await engine.stop()
            if args.logs is not None:
                args.logs.mkdir(parents=True, exist_ok=True)
                args.kept = getattr(args, "kept", 0) + 1
                (engine.folder / "engine.log").rename(args.logs / f"engine-{args.kept}.log")


async def appqueue_run(stack: dict[str, str], box: B.Box, args: argparse.Namespace, agent_port: int,
                       folder: Path) -> dict[str, float | int | None]:
    idle = box.members_idle()
    if idle != args.agents:
        raise B.BenchError(f"app_queue sees {idle} of {args.agents} members not in use before the run")
    return await traffic(stack, box, Cpu(box, stack["CALLCENTER_STACK_PG_DATA"], None), B.APPQUEUE_NUMBER,
                         args, agent_port, folder / "sipp")


# ---------------------------------------------------------------------------- the report


def summary(runs: list[dict]) -> dict:
    out: dict = {}
    for key in KEYS:
        values = [r[key] for r in runs if r.get(key) is not None]
        out[key] = round(statistics.median(values), 2) if values else None
        if key in ("calls_per_second", "wait_p99_ms", "total_cpu_ms_per_call") and values:
            out[key + "_range"] = [min(values), max(values)]
    out["runs"] = runs
    return out


def table(result: dict) -> str:
    systems = [s for s in ("appqueue", "engine", "baseline", "engine_ivr") if s in result]
    rows = [("", *systems)] + [(k, *(str(result[s].get(k)) for s in systems)) for k in KEYS]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    a = result.get("appqueue", {}).get("asterisk_cpu_ms_per_call")
    e = result.get("engine", {})
    if a and e.get("engine_cpu_ms_per_call") is not None:
        ours = e["engine_cpu_ms_per_call"] + e["postgres_cpu_ms_per_call"]
        lines.append(f"engine + PostgreSQL per answered call: {ours:.2f} ms = {ours / e['asterisk_cpu_ms_per_call']:.2f} x "
                     f"Asterisk's in the same runs ({e['asterisk_cpu_ms_per_call']} ms; app_queue's Asterisk {a} ms)")
    return "\n".join(lines)


def is_clean(run: dict) -> bool:
    """No INVITE retransmitted, no caller failed, every call taken, caller wait p99 under 100 ms."""
    return (run["invite_retransmissions"] == 0 and run["callers_failed"] == 0
            and run["calls_answered"] == run["calls_offered"] and (run["wait_p99_ms"] or 1e9) < CLEAN_WAIT_P99_MS)


async def find_clean(stack: dict[str, str], box: B.Box, args: argparse.Namespace, agent_port: int,
                     folder: Path, systems: list[str]) -> dict:
    """Each system up the ladder of offered rates (``--find-clean``), ``--clean-seconds`` of calls
    per step, until a step is not clean: the highest clean rate, and every step's figures."""
    out: dict = {}
    for system in systems:
        steps, best = [], None
        for rate in args.find_clean:
            step = argparse.Namespace(**{**vars(args), "rate": rate, "calls": max(1, int(rate * args.clean_seconds))})
            if system == "appqueue":
                r = await appqueue_run(stack, box, step, agent_port, folder)
            else:
                r = await engine_run(stack, box, step, agent_port, folder, B.ENGINE_NUMBER)
            r.update(rate=rate, clean=is_clean(r))
            steps.append(r)
            print(f"clean {system} {rate}/s: {json.dumps(r)}", file=sys.stderr)
            if not r["clean"]:
                break
            best = rate
        out[system] = {"highest_clean_rate": best, "steps": steps}
    return out


async def bench(args: argparse.Namespace) -> dict:
    stack = stack_env()
    if args.find_clean:   # enough agents that the top rate is not short of them
        need = math.ceil(max(args.find_clean) * (args.talk_ms / 1000 + 0.3) * 1.3)
        args.agents = max(args.agents, need)
    box = B.Box()
    agent_port = B.free_udp_port()
    box.install(args.agents, agent_port, retry=args.retry)
    result: dict = {"agents": args.agents, "rate": args.rate, "calls": args.calls, "talk_ms": args.talk_ms,
                    "pairs": args.pairs, "appqueue_retry_seconds": args.retry, "cpus": os.cpu_count()}
    runs: dict[str, list[dict]] = {"appqueue": [], "engine": [], "baseline": []}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-acd-") as tmp:
            folder = Path(tmp)
            (folder / "sipp").mkdir()
            if args.find_clean:
                chosen = [s for s in ("appqueue", "engine") if args.only in (None, s)]
                result["clean"] = await find_clean(stack, box, args, agent_port, folder, chosen)
                result["agents"] = args.agents
                return result
            for pair in range(args.pairs):
                systems = [s for s in ("appqueue", "engine") if args.only in (None, s)]
                for system in systems + (["baseline"] if args.baseline else []):
                    if system == "appqueue":
                        r = await appqueue_run(stack, box, args, agent_port, folder)
                    elif system == "baseline":
                        r = await engine_run(stack, box, args, agent_port, folder, B.ENGINE_NUMBER, args.baseline)
                    else:
                        r = await engine_run(stack, box, args, agent_port, folder, B.ENGINE_NUMBER)
                    runs[system].append(r)
                    print(f"pair {pair + 1}/{args.pairs} {system}: {json.dumps(r)}", file=sys.stderr)
            if args.ivr:
                r = await engine_run(stack, box, args, agent_port, folder, B.ENGINE_IVR_NUMBER)
                print(f"engine_ivr: {json.dumps(r)}", file=sys.stderr)
                result["engine_ivr"] = summary([r])
    finally:
        box.uninstall()
    for system, done in runs.items():
        if done:
            result[system] = summary(done)
    if "appqueue" in result:
        result["appqueue"]["engine_cpu_ms_per_call"] = 0.0
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--rate", type=float, default=10.0, help="calls per second offered")
    parser.add_argument("--calls", type=int, default=300, help="calls per run")
    parser.add_argument("--talk-ms", type=int, default=2000)
    parser.add_argument("--pairs", type=int, default=2, help="app_queue / engine runs, alternating")
    parser.add_argument("--retry", type=int, default=1, help="app_queue's retry (seconds; its default is 5)")
    parser.add_argument("--ivr", action="store_true", help="also the engine alone with an IVR prompt and recording")
    parser.add_argument("--only", choices=("appqueue", "engine"), help="run one system (a lever measured alone)")
    parser.add_argument("--py-spy", metavar="FILE", type=Path,
                        help="record the engine's stacks during its runs (py-spy on PATH; collapsed, FILE.N)")
    parser.add_argument("--attach", metavar="CMD",
                        help="run CMD beside each engine run, SIGINT at its end; {pid} is the engine's, {n} the "
                             "run's number (e.g. 'perf record -g -o /tmp/perf.{n} -p {pid}', 'strace -c -f -o "
                             "/tmp/sys.{n} -p {pid}')")
    parser.add_argument("--baseline", metavar="TREE", type=Path,
                        help="also the engine of another checkout (e.g. a git worktree of the commit before a "
                             "lever), alternating with this one: each lever's effect in one run")
    parser.add_argument("--logs", metavar="DIR", type=Path, help="keep each engine run's log lines here")
    parser.add_argument("--find-clean", metavar="RATES", type=lambda v: [float(x) for x in v.split(",")],
                        help="instead of the pairs: each system's highest clean offered rate up this ladder "
                             "(e.g. 40,60,80,100,120): no INVITE retransmitted, wait p99 under 100 ms")
    parser.add_argument("--clean-seconds", type=float, default=10.0, help="seconds of calls per ladder step")
    parser.add_argument("--idle-seconds", type=float, default=0.0,
                        help="before an engine run's calls, its CPU over this many seconds with no call, and its RSS")
    parser.add_argument("--paused", type=int, default=0, help="agents of the engine paused after login (large floors)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (1 <= args.agents <= 9999 and 0 < args.rate <= 1000 and 1 <= args.calls <= 100_000
            and 0 <= args.talk_ms <= 600_000 and 1 <= args.pairs <= 20):
        parser.error("out of range: agents 1-9999, rate 0-1000, calls 1-100000, talk-ms 0-600000, pairs 1-20")
    result = asyncio.run(bench(args))
    if "clean" in result:
        text = "\n".join(f"{s}: highest clean rate {c['highest_clean_rate']} calls/s ("
                          + ", ".join(f"{st['rate']:g}/s {'clean' if st['clean'] else 'NOT clean'} wait p99 "
                                      f"{st['wait_p99_ms']} ms, {st['invite_retransmissions']} retransmissions"
                                      for st in c["steps"]) + ")" for s, c in result["clean"].items())
        print(json.dumps(result, indent=1) if args.json else text)
        return 0
    print(json.dumps(result, indent=1) if args.json else table(result))
    broken = [s for s in ("appqueue", "engine") if args.only in (None, s) and result[s]["calls_answered"] != args.calls]
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
