"""The box of tools/bench_acd.py: the benchmark's Asterisk setup (agent endpoints, app_queue's
queue, its dialplan), the processes whose CPU is counted, and sipp's traffic and what its logs say.

Nothing here is part of the engine; tools/bench_acd.py runs it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import socket
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import stack as S  # noqa: E402  (tools/stack.py: where the stack's Asterisk lives, its CLI)

SIPP_DIR = REPO / "tests" / "sipp"
ENDPOINTS_CONF = "pjsip_bench.conf"    # the benchmark's agent endpoints, #included by the stack's pjsip.conf
APPQUEUE_NUMBER = "7000"               # dialled for app_queue's queue (an exact extension in from-carrier)
ENGINE_NUMBER = "7100"                 # dialled for the engine's queue (the engine's inbound route)
ENGINE_IVR_NUMBER = "7101"             # the engine's queue behind an IVR prompt, recorded
APPQUEUE = "bench"
TICK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A step of the benchmark failed; the message says which."""


def endpoint(i: int) -> str:
    return f"bench{i:04d}"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------- Asterisk


class Box:
    """The stack's Asterisk as the benchmark configures it."""

    def __init__(self) -> None:
        self.asterisk = S.find_asterisk()
        pid = S.read_pid()
        if pid is None:
            raise BenchError("the stack's Asterisk is not running: run `make stack-up` (python3 tools/stack.py up)")
        self.asterisk_pid = pid

    def cli(self, command: str) -> str:
        done = S.cli(self.asterisk, command, timeout=30)
        if done.returncode != 0:
            raise BenchError(f"asterisk -rx {command!r} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def install(self, agents: int, agent_port: int, *, retry: int) -> None:
        """``agents`` endpoints bench0001 ... with their contact on ``agent_port`` (one sipp answers
        for all), app_queue's queue ``bench`` with each of them a static member, and extension 7000
        of [from-carrier]: Answer(,i), Queue(bench)."""
        etc = self.asterisk.etc_dir
        (etc / ENDPOINTS_CONF).write_text(endpoints_conf(agents, agent_port))
        pjsip = etc / "pjsip.conf"
        include = f"#include {ENDPOINTS_CONF}"
        if include not in pjsip.read_text():
            with open(pjsip, "a") as f:
                f.write(f"\n; tools/bench_acd.py's agent endpoints (emptied when it ends)\n{include}\n")
        (etc / "queues.conf").write_text(queues_conf(agents, retry=retry))
        self.cli("module reload res_pjsip.so")
        if "app_queue.so" not in self.cli("module show like app_queue"):
            self.cli("module load app_queue.so")
        else:
            self.cli("queue reload all")
        for prio, app in enumerate(("Answer(,i)", f"Queue({APPQUEUE},,,,600)", "Hangup()"), start=1):
            self.cli(f"dialplan add extension {APPQUEUE_NUMBER},{prio},{app} into from-carrier replace")
        shown = self.cli(f"queue show {APPQUEUE}")
        members = len(re.findall(r"PJSIP/bench\d+", shown))
        if members != agents:
            raise BenchError(f"app_queue's queue {APPQUEUE} has {members} members, expected {agents}:\n{shown}")
        if endpoint(agents) not in self.cli(f"pjsip show endpoint {endpoint(agents)}"):
            raise BenchError(f"endpoint {endpoint(agents)} is not loaded (pjsip.conf, {ENDPOINTS_CONF})")

    def uninstall(self) -> None:
        """The endpoints and the queue go; app_queue is unloaded (the stack loads it never)."""
        etc = self.asterisk.etc_dir
        (etc / ENDPOINTS_CONF).write_text("; tools/bench_acd.py: no benchmark running\n")
        (etc / "queues.conf").write_text("; tools/bench_acd.py: no benchmark running\n")
        for command in (f"dialplan remove extension {APPQUEUE_NUMBER}@from-carrier", "module reload res_pjsip.so"):
            S.cli(self.asterisk, command, timeout=30)
        for _ in range(40):   # refused while calls of the last run are still leaving a queue
            S.cli(self.asterisk, "module unload app_queue.so", timeout=30)
            if "app_queue.so" not in S.cli(self.asterisk, "module show like app_queue", timeout=30).stdout:
                return
            time.sleep(0.5)   # polling Asterisk until the module is gone, bounded
        print("warning: app_queue.so is still loaded (asterisk -rx 'module unload app_queue.so')", file=sys.stderr)

    def members_idle(self) -> int:
        """How many of the queue's members app_queue sees Not in use."""
        return self.cli(f"queue show {APPQUEUE}").count("(Not in use)")


def endpoints_conf(agents: int, port: int) -> str:
    parts = ["; Generated by tools/bench_acd.py (test stack only, no authentication).\n"]
    for i in range(1, agents + 1):
        name = endpoint(i)
        parts.append(f"\n[{name}](agent-phone)\naors = {name}\n"
                     f"\n[{name}](agent-phone-aor)\ncontact = sip:{name}@127.0.0.1:{port}\nqualify_frequency = 0\n")
    return "".join(parts)


def queues_conf(agents: int, *, retry: int) -> str:
    """app_queue set up as the engine's queue is: the longest idle agent first, no wrap-up, an
    agent on a call is not rung, no announcements; ``retry``: app_queue's wait before it tries
    the members again (its default 5 s; the benchmark's default 1 s, its smallest)."""
    members = "".join(f"member => PJSIP/{endpoint(i)}\n" for i in range(1, agents + 1))
    return ("; Generated by tools/bench_acd.py\n[general]\npersistentmembers = no\nshared_lastcall = no\n\n"
            f"[{APPQUEUE}]\nstrategy = leastrecent\nringinuse = no\nwrapuptime = 0\ntimeout = 15\n"
            f"retry = {retry}\nautofill = yes\nannounce-frequency = 0\nperiodic-announce-frequency = 0\n"
            f"announce-holdtime = no\nannounce-position = no\njoinempty = yes\nleavewhenempty = no\n{members}")


# ---------------------------------------------------------------------------- CPU


def cpu_ticks(pid: int, *, children: bool = False) -> int:
    """utime + stime of ``pid`` (and with ``children``, of its children it has reaped)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = int(fields[11]) + int(fields[12])        # utime, stime (fields 14, 15 of proc(5))
    if children:
        total += int(fields[13]) + int(fields[14])   # cutime, cstime
    return total


def postgres_ticks(pg_data: str) -> int:
    """Every process of the stack's PostgreSQL cluster: the postmaster (with the backends it has
    reaped) and each process it runs now."""
    postmaster = int(Path(pg_data, "postmaster.pid").read_text().split()[0])
    total = cpu_ticks(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                try:
                    total += cpu_ticks(int(entry.name))
                except OSError:
                    pass   # ended between the two reads: its time is in the postmaster's cutime now
    return total


# ---------------------------------------------------------------------------- traffic


@dataclasses.dataclass
class Traffic:
    """What one run's sipp logs say, times in epoch seconds."""

    invited: dict[str, float]                      # caller -> INVITE sent
    answered: dict[str, float]                     # caller -> Asterisk's 200 OK to the caller
    offers: list[tuple[str, str, float]]           # (agent, caller, time) for every INVITE to an agent
    connected: dict[str, tuple[str, float]]        # caller -> (agent, the agent's ACK)
    freed: list[tuple[str, str, float]]            # (agent, caller, time the agent hung up)
    callers_failed: int
    invite_retransmissions: int
    agent_sipp_failed: int


def _log_lines(path: Path) -> list[list[str]]:
    try:
        return [line.split() for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def _stamp(sec: str, usec: str) -> float:
    return float(sec) + float(usec) / 1e6


def read_traffic(caller_log: Path, agent_log: Path, caller_counts: int, agent_failed: int,
                 callers_failed: int) -> Traffic:
    invited: dict[str, float] = {}
    answered: dict[str, float] = {}
    for f in _log_lines(caller_log):
        if f[0] in ("invite", "answered") and len(f) == 4:
            (invited if f[0] == "invite" else answered)[f[1]] = _stamp(f[2], f[3])
    offers, freed, connected = [], [], {}
    for f in _log_lines(agent_log):
        if len(f) != 5:
            continue
        kind, agent, caller, t = f[0], f[1], f[2], _stamp(f[3], f[4])
        if kind == "offer":
            offers.append((agent, caller, t))
        elif kind == "connected":
            connected[caller] = (agent, t)
        elif kind == "free":
            freed.append((agent, caller, t))
    return Traffic(invited, answered, offers, connected, freed, callers_failed, caller_counts, agent_failed)


async def sipp_agents(stack: dict[str, str], port: int, talk_ms: int, log: Path, calls: int) -> asyncio.subprocess.Process:
    """One sipp answering for every benchmark agent on ``port``, ``calls`` calls then it exits
    (tried again with another media port when it cannot start: that port may have been taken)."""
    for _ in range(3):
        args = ["sipp", "-sf", str(SIPP_DIR / "bench_agent.xml"), "-i", "127.0.0.1", "-p", str(port),
                "-mp", str(free_udp_port()), "-m", str(calls), "-set", "talk_ms", str(talk_ms), "-nostdin",
                "-trace_logs", "-log_file", str(log), "-trace_err", "-error_file", str(log.with_suffix(".err")),
                f"{stack['ASTERISK_SIP_HOST']}:{stack['ASTERISK_SIP_PORT']}"]
        out = open(log.with_suffix(".out"), "wb")
        proc = await asyncio.create_subprocess_exec(*args, stdout=out, stderr=out)
        out.close()
        deadline = asyncio.get_running_loop().time() + 10
        while proc.returncode is None and asyncio.get_running_loop().time() < deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    return proc   # taken: sipp listens (an INVITE while sipp starts gets a broken answer)
            await asyncio.sleep(0.02)   # polling a port, not synchronising on time
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    said = log.with_suffix(".out").read_text(errors="replace")[-500:]
    raise BenchError(f"the agents' sipp did not listen on 127.0.0.1:{port}: {said}")


async def sipp_callers(stack: dict[str, str], number: str, calls: int, rate: float, log: Path,
                       timeout: float) -> tuple[int, int, int]:
    """``calls`` bench callers at ``rate`` calls/s to ``number``; -> (sipp's exit code, failed
    calls, INVITE retransmissions), from sipp's own counters (-trace_stat's last line)."""
    stat = log.with_suffix(".stat.csv")
    args = ["sipp", f"{stack['ASTERISK_SIP_HOST']}:{stack['ASTERISK_SIP_PORT']}",
            "-sf", str(SIPP_DIR / "bench_caller.xml"), "-s", number, "-i", "127.0.0.1", "-p", "0",
            "-mp", str(free_udp_port()), "-m", str(calls), "-r", str(rate), "-rp", "1000", "-l", str(calls),
            "-nostdin", "-timeout", f"{int(timeout)}s", "-trace_logs", "-log_file", str(log),
            "-trace_stat", "-stf", str(stat), "-fd", "3600", "-trace_err", "-error_file", str(log.with_suffix(".err"))]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    try:
        await asyncio.wait_for(proc.wait(), timeout + 15)
    except TimeoutError:
        proc.kill()
        await proc.wait()
    failed, retrans = _sipp_stat(stat)
    return proc.returncode or 0, failed, retrans


def _sipp_stat(path: Path) -> tuple[int, int]:
    """(FailedCall(C), Retransmissions(C)) from the last line of sipp's -trace_stat file."""
    try:
        rows = [r.split(";") for r in path.read_text().splitlines() if r.strip()]
    except FileNotFoundError:
        return -1, -1
    if len(rows) < 2:
        return -1, -1
    head, last = rows[0], rows[-1]
    col = {name: i for i, name in enumerate(head)}
    return int(last[col["FailedCall(C)"]]), int(last[col["Retransmissions(C)"]])
