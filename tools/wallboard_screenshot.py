"""Regenerate docs/wallboard.png: the live wallboard on the real stack, with real calls.

    .venv/bin/python tools/wallboard_screenshot.py [--out docs/wallboard.png] [--hold 12]

Needs the stack (`make stack-up`) and Debian's chromium (`python3 tools/stack.py deps`). Runs an
engine on a fresh database of the stack's PostgreSQL (dropped afterwards) with the example queues
and agents (plus Dana, on `general`), and with sipp on loopback:

- Bob (support) answers a caller and stays on the call; Carol is paused for lunch; Dana is free
  on `general`; Alice takes the renewals campaign's calls;
- two more callers wait in `support`, one in `billing`; another gives up in `billing` after 6 s
  (an abandon: billing's service level today is below target, in red);
- the renewals campaign (3 lines per agent) dials three customers: a person, whom Alice gets, a
  busy line and one that rings.

After ``--hold`` seconds (the waits grow), headless chromium loads /wallboard at 1920x1080 and
saves the screenshot; then every call is hung up. It hangs up every channel in Asterisk: run it
when no test uses the stack (`flock /tmp/stack.lock .venv/bin/python tools/wallboard_screenshot.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from contextlib import suppress
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

import make_rtp_pcap  # noqa: E402

from engine.config.acd import AgentConfig  # noqa: E402
from engine.app import Engine  # noqa: E402
from engine.adapters.ari import AriError, path  # noqa: E402
from engine.core import acd as A  # noqa: E402
from engine.core import agent as ag  # noqa: E402
from tests.integration import browser  # noqa: E402
from tests.integration.harness import fresh_database, running, sipp, stack_env  # noqa: E402
from tests.integration.test_acd import agent_phone, log_in  # noqa: E402
from tests.integration.test_dialer import add_leads, campaign, customers, dialer_config  # noqa: E402

DANA = AgentConfig(id="9004", name="Dana", endpoint="PJSIP/agent9004", pin="4567", skills={"general": 1},
                   queues=("general",))


def phase(engine: Engine, agent_id: str) -> ag.AgentPhase:
    assert engine.acd is not None
    return engine.acd.acd.agents[agent_id].phase


async def until(engine: Engine, what: str, condition) -> None:
    assert engine.acd is not None
    try:
        async with asyncio.timeout(30):
            await engine.acd.wait_until(condition)
    except TimeoutError:
        raise SystemExit(f"wallboard_screenshot: gave up waiting for {what}") from None


async def shoot(out: Path, hold: float) -> None:
    stack = stack_env()
    if reason := browser.missing():
        raise SystemExit(f"wallboard_screenshot: {reason}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        voices = {preset: tmp_path / f"{preset}.pcap" for preset in ("human", "machine")}
        for preset, file in voices.items():
            make_rtp_pcap.write_pcap(file, preset)
        async with fresh_database(stack["CALLCENTER_DSN"]) as dsn:
            cfg = dialer_config(stack, dsn, tmp_path, campaign(pacing="ratio:3"), wrapup=5)
            engine = Engine(replace(cfg, agents=(*cfg.agents, DANA)))
            carrier, _ = await customers(stack, voices, 3)
            processes = [carrier]
            async with running(engine):
                assert engine.acd is not None and engine.ari is not None
                # Bob takes the first support caller and stays on the line.
                bob, _ = await agent_phone(stack, 2, answer_ms="500")
                alice, _ = await agent_phone(stack, 1, answer_ms="300")
                processes += [bob, alice]
                await log_in(engine, "9002", "support", "billing")
                await log_in(engine, "9003", "support", "general")
                await engine.acd.request(A.AgentRequest("9003", ag.Pause("lunch")))
                await log_in(engine, "9004", "general")
                callers = [asyncio.create_task(sipp(stack, "caller_wait_bye.xml", "3100",
                                                    variables={"caller": "5550101"}, timeout=120))]
                await until(engine, "Bob on the call", lambda acd: phase(engine, "9002") is ag.AgentPhase.ON_CALL)
                # Then the queue builds up: two wait for support, one for billing, one gives up.
                for number, dialed in (("5550102", "3100"), ("5550103", "3100"), ("5550104", "3200")):
                    callers.append(asyncio.create_task(sipp(stack, "caller_wait_bye.xml", dialed,
                                                            variables={"caller": number}, timeout=120)))
                callers.append(asyncio.create_task(sipp(stack, "caller_hangup.xml", "3200",
                                                        variables={"caller": "5550105", "hangup_ms": "6000"})))
                # The campaign: a person (...1), a busy line (...3), one that rings (...5).
                await add_leads(dsn, "renewals", ["+12125550111", "+12125550123", "+12125550135"])
                await log_in(engine, "9001", "renewals")
                await until(engine, "Alice on a campaign call",
                            lambda acd: phase(engine, "9001") is ag.AgentPhase.ON_CALL)
                await asyncio.sleep(hold)   # the waits and times in state grow, as on a real wall
                async with browser.chromium(1920, 1080) as driver:
                    await browser.call(driver.get, f"http://127.0.0.1:{engine.http_port}/wallboard")
                    await browser.until(driver, lambda d: browser.text(d, '[data-agent="9002"] .state'),
                                        what="the wallboard rendered")
                    await browser.until(driver, lambda d: browser.text(d, "#link") == "live")
                    out.parent.mkdir(parents=True, exist_ok=True)
                    await browser.call(driver.save_screenshot, str(out))
                print(f"wallboard_screenshot: wrote {out}")
                # Hang up everything, so the stack is left as it was found.
                for channel in await engine.ari.get("/channels"):
                    with suppress(AriError):   # gone meanwhile
                        await engine.ari.delete(path("channels", channel["id"]))
                await asyncio.gather(*callers, return_exceptions=True)
            for proc in processes:
                if proc.returncode is None:
                    proc.terminate()
                await proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "wallboard.png")
    parser.add_argument("--hold", type=float, default=12.0, help="seconds of waiting before the screenshot")
    args = parser.parse_args()
    asyncio.run(shoot(args.out, args.hold))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
