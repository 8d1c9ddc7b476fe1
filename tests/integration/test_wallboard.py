"""The live wallboard against the real stack: a sipp caller waits in a queue and a real browser
(Debian's headless chromium) shows it without reloading, then shows the agent taking it."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace

import aiohttp
import pytest

from engine.app import Engine
from engine.core import acd as A
from engine.core import agent as ag

from . import browser
from .browser import call, text, until
from .harness import running, sipp, wait_until_quiet
from .test_acd import acd_config, agent_phone, log_in

QUEUE = '[data-queue="support"]'
WAITING = QUEUE + ' [data-role="waiting"] .value'
LONGEST = QUEUE + ' [data-role="longest"] .value'
SERVICE_LEVEL = QUEUE + ' [data-role="sl"]'
OFFERED = QUEUE + " h3 small"
GENERAL = '[data-queue="general"]'
AGENT = '[data-agent="9001"]'


def seconds(shown: str | None) -> int:
    """'1:05' or '1:02:03' as the page shows a duration -> seconds."""
    total = 0
    for part in (shown or "0").split(":"):
        total = total * 60 + int(part)
    return total


def classes(driver, css: str) -> str:
    return driver.execute_script("const n = document.querySelector(arguments[0]); return n ? n.className : '';", css)


async def agent_request(engine: Engine, agent_id: str, request: ag.Event) -> None:
    assert engine.acd is not None
    await engine.acd.request(A.AgentRequest(agent_id, request))


@pytest.mark.skipif(browser.missing() is not None, reason=browser.missing() or "")
async def test_the_wallboard_shows_a_waiting_call_live_then_the_agent_taking_it(stack, dsn, tmp_path):
    engine = Engine(acd_config(stack, dsn, tmp_path))
    async with running(engine), browser.chromium() as driver:
        assert engine.acd is not None
        await log_in(engine, "9001", "support", "general")
        await agent_request(engine, "9001", ag.Pause("lunch"))
        await call(driver.get, f"http://127.0.0.1:{engine.http_port}/wallboard")
        await until(driver, lambda d: text(d, AGENT + " .reason") == "lunch" and text(d, WAITING) == "0",
                    what="agent 9001 paused for lunch, nobody waiting")
        assert "s-paused" in await call(classes, driver, AGENT)
        assert text(driver, "#link") == "live"
        await call(driver.execute_script, "window.notReloaded = true;")

        # A caller dials the support queue; the only agent is paused, so the call waits.
        caller = asyncio.create_task(sipp(stack, "caller_wait_bye.xml", "3100", variables={"caller": "5557010"}))
        async with asyncio.timeout(15):
            await engine.acd.wait_until(lambda acd: any(w.queue == "support" for w in acd.waiting.values()))
        queued = time.monotonic()
        await until(driver, lambda d: text(d, WAITING) == "1", what="the waiting call on the page")
        latency = time.monotonic() - queued
        assert await call(text, driver, OFFERED) == "offered today 1"   # the caller waiting now was offered to support
        first = seconds(await call(text, driver, LONGEST))
        await until(driver, lambda d: seconds(text(d, LONGEST)) > first, what="the longest wait ticking")
        print(f"\nwallboard: waiting call shown {latency * 1000:.0f} ms after it entered the queue")
        assert latency < 1.0   # measured 10-20 ms: pushed on the queue.entered event (tests/unit/test_wallboard.py)

        # The agent comes back from lunch: the call is offered, answered, and the page follows.
        phone, phone_done = await agent_phone(stack, 1, answer_ms="300", hangup_ms="3000")
        await agent_request(engine, "9001", ag.Unpause())
        await until(driver, lambda d: text(d, WAITING) == "0" and "s-on_call" in classes(d, AGENT),
                    what="nobody waiting, agent 9001 on the call")
        assert text(driver, LONGEST) == "0:00"
        # the agent's card names the call (its queue and caller), not the agent's queues; the agent
        # counts as on call in support, whose call it is, and not in general
        assert await call(text, driver, AGENT + " .reason") == "support · 5557010"
        assert await call(text, driver, QUEUE + ' [data-state="on_call"]') == "on call 1"
        assert await call(text, driver, GENERAL + ' [data-state="on_call"]') is None
        (await caller).check()
        (await phone_done()).check()
        await wait_until_quiet(engine, 1)
        # answered within the queue's 20 s: today's service level (from PostgreSQL) is 100%, on target
        await until(driver, lambda d: text(d, SERVICE_LEVEL + " .value") == "100%", timeout=20,
                    what="service level today 100%")
        assert "good" in await call(classes, driver, SERVICE_LEVEL)
        assert await call(driver.execute_script, "return window.notReloaded === true;")


async def test_the_wallboard_stream_sends_a_snapshot_at_once_and_asks_for_a_token_when_the_api_has_them(
        stack, dsn, tmp_path):
    token = "wallboard-test-token-0123456789"
    cfg = acd_config(stack, dsn, tmp_path)
    engine = Engine(replace(cfg, http=replace(cfg.http, tokens=(token,))))
    async with aiohttp.ClientSession() as http:
        async with running(engine):
            snapshots = await read_stream(http, engine, token)
            # a viewer still connected when the engine stops does not hold the shutdown up
            viewer = await http.get(f"http://127.0.0.1:{engine.http_port}/wallboard/events?token={token}")
            await viewer.content.readline()
            stopping = time.monotonic()
        assert time.monotonic() - stopping < 5
        await viewer.content.read()   # the server ended the stream
        assert viewer.content.at_eof()
        viewer.release()
    first_at, first = snapshots[0]
    assert first_at < 0.5   # at once, not after the first period
    assert [q["name"] for q in first["queues"]] == [q.name for q in cfg.queues]
    # every configured agent, by name, nobody logged in yet
    assert {a["id"]: (a["name"], a["state"]) for a in first["agents"]} == {
        "9001": ("Alice", "logged_out"), "9002": ("Bob", "logged_out"), "9003": ("Carol", "logged_out")}
    assert snapshots[2][0] - first_at < 3.5   # then about every second


async def read_stream(http: aiohttp.ClientSession, engine: Engine, token: str) -> list[tuple[float, dict]]:
    """Check the page and the token rule; then three snapshots from the stream, with when they came."""
    base = f"http://127.0.0.1:{engine.http_port}"
    async with http.get(base + "/wallboard") as page:   # the page itself holds no data
        assert page.status == 200 and "wallboard.js" in await page.text()
    for bad in ("", "?token=wrong"):
        async with http.get(base + "/wallboard/events" + bad) as refused:
            assert refused.status == 401
    started = time.monotonic()
    async with http.get(f"{base}/wallboard/events?token={token}") as stream:
        assert stream.status == 200 and stream.headers["Content-Type"] == "text/event-stream"
        snapshots = []
        async for line in stream.content:
            if line.startswith(b"data: "):
                snapshots.append((time.monotonic() - started, json.loads(line[6:])))
                if len(snapshots) == 3:
                    break
    return snapshots
