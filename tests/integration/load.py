"""Calls in numbers through IVR, queue and agent: what ``tools/soak.py`` and ``test_soak.py`` share.

The IVR tests' menu on :data:`NUMBER` (key 1 goes to the support queue), agents 9001..900N in
support with no wrap-up, each with a sipp phone that answers every offer and hangs up after a
moment, and sipp callers that key 1. Every sipp here ends by itself within its ``budget`` seconds
and writes its output to files, never to a pipe: a pipe nobody reads stalls sipp, and output read
into memory would count in the memory that the soak measures.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from engine.config.acd import AgentConfig
from engine.app import Engine
from engine.config.model import Config
from engine.core import acd as A
from engine.core import agent as ag

from .harness import SIPP_DIR
from .test_ivr import MENU, NUMBER, ivr_config

__all__ = ["NUMBER", "agent_phones", "callers", "errors", "load_config", "stop", "udp_bound"]


def load_config(stack: dict[str, str], dsn: str, state: Path, agents: int, *, record: bool = False) -> Config:
    """The IVR tests' menu on NUMBER (key 1: support), agents 9001..900N (``agents`` <= 8, the
    stack's phones) in support with no wrap-up, so each agent takes the next call at once."""
    cfg = ivr_config(stack, dsn, state, MENU)
    known = {a.id: a for a in cfg.agents}
    people = tuple(known.get(f"900{n}") or AgentConfig(id=f"900{n}", name=f"Agent {n}", endpoint=f"PJSIP/agent900{n}",
                                                      pin="1234", skills=MappingProxyType({"support": 5}))
                   for n in range(1, agents + 1))
    queues = tuple(replace(q, wrapup_seconds=0, recording="all" if record else "none")
                   if q.name == "support" else q for q in cfg.queues)
    cfg = replace(cfg, agents=(*people, *(a for a in cfg.agents if a not in people)), queues=queues)
    assert cfg.problems() == []
    return cfg


async def agent_phones(stack: dict[str, str], engine: Engine, count: int, logs: Path, *, budget: float,
                       answer_ms: int = 100, talk_ms: int = 500) -> list[asyncio.subprocess.Process]:
    """A phone per agent 9001..900N (answers every offer after ``answer_ms``, hangs up ``talk_ms``
    later), each agent logged in to support; returns once every phone listens."""
    assert engine.acd is not None
    base = int(stack["ASTERISK_AGENT_PORT_BASE"])
    phones = []
    for n in range(1, count + 1):
        phones.append(await _sipp(["-sf", str(SIPP_DIR / "agent_answer.xml"), "-p", str(base + n),
                                   "-set", "answer_ms", str(answer_ms), "-set", "hangup_ms", str(talk_ms)],
                                  budget, logs / f"agent900{n}.err"))
        await engine.acd.request(A.AgentRequest(f"900{n}", ag.LogIn(frozenset({"support"}), "")))
    async with asyncio.timeout(10):
        while not all(udp_bound(base + n) for n in range(1, count + 1)):
            await asyncio.sleep(0.05)   # polling the kernel's socket table: sipp says nothing when ready
    return phones


async def callers(stack: dict[str, str], calls: int, rate: float, logs: Path, *,
                  budget: float) -> asyncio.subprocess.Process:
    """``calls`` callers at ``rate`` per second into NUMBER, each keying 1 in the menu."""
    return await _sipp([f"{stack['ASTERISK_SIP_HOST']}:{stack['ASTERISK_SIP_PORT']}", "-sf",
                        str(SIPP_DIR / "caller_dtmf.xml"), "-s", NUMBER, "-p", "0", "-m", str(calls),
                        "-r", f"{rate * 10:g}", "-rp", "10s", "-l", str(max(10, int(rate * 20))), "-timeout_error",
                        "-set", "digits", "1", "-set", "dtmf_delay_ms", "600"], budget, logs / "callers.err")


async def stop(processes: list[asyncio.subprocess.Process]) -> None:
    """End these sipps (ours: the agent phones wait for calls until their budget runs out)."""
    for proc in processes:
        if proc.returncode is None:
            proc.terminate()
    await asyncio.gather(*(p.wait() for p in processes))


def errors(logs: Path, lines: int = 5) -> list[str]:
    """The first lines sipp wrote about failed calls, from every ``*.err`` file in ``logs``."""
    out: list[str] = []
    for file in sorted(logs.glob("*.err")):
        out += [f"{file.name}: {line}" for line in file.read_text(errors="replace").splitlines() if line.strip()]
    return out[:lines]


def udp_bound(port: int) -> bool:
    """Whether something on this machine listens on UDP ``port`` (Linux: /proc/net/udp)."""
    try:
        rows = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return True
    return any(int(r.split()[1].rsplit(":", 1)[1], 16) == port for r in rows)


async def _sipp(args: list[str], budget: float, errors: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "sipp", *args, "-i", "127.0.0.1", "-nostdin", "-timeout", f"{int(budget)}s",
        "-trace_err", "-error_file", str(errors), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
