"""How long from an agent phone's transfer key to the target's phone ringing, through the real stack.

    .venv/bin/python tools/bench_transfer.py [--calls 20] [--json]    # after make stack-up

``--calls`` calls one after the other: a sipp caller into support (3100) is answered by agent
9001's sipp phone (tests/sipp/agent_transfer.xml), which ``--talk-ms`` later presses its transfer
key to agent 9002 (a REFER, Refer-To 9002); 9002's sipp phone (tests/sipp/agent_answer.xml) answers
and hangs up. The engine runs in this process on a fresh database, as in the tests. Measured from
sipp's own message logs (``-trace_msg``, the wall clock of one box): from the REFER 9001's phone
sent to the INVITE 9002's phone received (the target ringing), and to the BYE 9001's phone got (its
part over). Printed as a table, or one JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.app import Engine  # noqa: E402
from engine.core import agent as ag  # noqa: E402
from engine.shared.logsetup import configure  # noqa: E402
from tests.integration.harness import SIPP_DIR, fresh_database, running, sipp, sipp_listening, stack_env  # noqa: E402
from tests.integration.test_acd import acd_config, log_in  # noqa: E402

_BLOCK = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d[ \t]\d\d:\d\d:\d\d\.\d+)", re.M)


def messages(log: Path) -> list[tuple[float, str, str]]:
    """sipp's ``-trace_msg`` file as (wall time, sent|received, the message's first line)."""
    text = log.read_text(errors="replace")
    out = []
    marks = list(_BLOCK.finditer(text))
    for i, mark in enumerate(marks):
        body = text[mark.end():marks[i + 1].start() if i + 1 < len(marks) else len(text)]
        at = datetime.strptime(mark.group(1).replace("\t", " "), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        way = "sent" if "message sent" in body.split("\n", 2)[1] else "received"
        first = next((line.strip() for line in body.split("\n")[2:] if line.strip()), "")
        out.append((at, way, first))
    return out


def phone(stack: dict[str, str], agent: int, scenario: str, folder: Path, calls: int, **variables: str) -> list[str]:
    port = int(stack["ASTERISK_AGENT_PORT_BASE"]) + agent
    args = ["sipp", "-sf", str(SIPP_DIR / scenario), "-i", "127.0.0.1", "-p", str(port), "-m", str(calls),
            "-nostdin", "-timeout", f"{30 + calls * 10}s", "-timeout_error", "-trace_msg",
            "-message_file", str(folder / f"agent{agent}.log")]
    for k, v in variables.items():
        args += ["-set", k, v]
    return args


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def bench(calls: int, talk_ms: int) -> dict:
    stack = stack_env()
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as tmp:
        folder = Path(tmp)
        async with fresh_database(stack["CALLCENTER_DSN"]) as dsn:
            engine = Engine(acd_config(stack, dsn, folder / "state"))   # wrap-up 1 s
            async with running(engine):
                await log_in(engine, "9001", "support")
                await log_in(engine, "9002", "support")
                first = await sipp_listening(phone(stack, 1, "agent_transfer.xml", folder, calls, target="9002",
                                                   answer_ms="200", transfer_after_ms=str(talk_ms)))
                second = await sipp_listening(phone(stack, 2, "agent_answer.xml", folder, calls, answer_ms="200",
                                                    hangup_ms="300"))
                for _ in range(calls):
                    (await sipp(stack, "caller_wait_bye.xml", "3100")).check()
                    async with asyncio.timeout(10):   # both free again: the next call is 9001's first
                        await engine.acd.wait_until(lambda acd: all(
                            acd.agents[a].phase is ag.AgentPhase.AVAILABLE for a in ("9001", "9002")))
                (await first[1]()).check()
                (await second[1]()).check()
        refers = [at for at, way, line in messages(folder / "agent1.log") if way == "sent" and line.startswith("REFER")]
        byes = [at for at, way, line in messages(folder / "agent1.log")
                if way == "received" and line.startswith("BYE")]
        rings = [at for at, way, line in messages(folder / "agent2.log")
                 if way == "received" and line.startswith("INVITE")]
    assert len(refers) == len(rings) == len(byes) == calls, (len(refers), len(rings), len(byes))
    to_ring = [(r - k) * 1000 for k, r in zip(refers, rings)]
    to_bye = [(b - k) * 1000 for k, b in zip(refers, byes)]
    return {"calls": calls, "talk_ms": talk_ms,
            **{f"key_to_ring_{n}_ms": round(f(to_ring), 1) for n, f in _FIGURES},
            **{f"key_to_agent_released_{n}_ms": round(f(to_bye), 1) for n, f in _FIGURES}}


_FIGURES = (("p50", lambda v: statistics.median(v)), ("p99", lambda v: percentile(v, 0.99)), ("max", max))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--talk-ms", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure(level="warning", fmt="json", stream=sys.stderr)   # the engine's lines stay off the table
    result = asyncio.run(bench(args.calls, args.talk_ms))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['calls']} blind transfers, agent phone to agent phone")
        print("| from the REFER to | p50 | p99 | max |\n|---|---|---|---|")
        for what, key in (("the target's INVITE (ringing)", "key_to_ring"),
                          ("the BYE to the transferring phone", "key_to_agent_released")):
            print(f"| {what} | " + " | ".join(f"{result[f'{key}_{n}_ms']} ms" for n, _ in _FIGURES) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
