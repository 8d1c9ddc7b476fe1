"""Keypad codes from a real softphone (Debian's baresip), not only from sipp scripts written to match
the engine: every feature a phone key drives is checked once with a real phone.

baresip is agent 9001's phone with call waiting off (``call_max_calls 1``): a call offered while the
phone has one up is refused by the phone itself (486), which the engine records as the agent paused
``busy``, the failure of issue 11 item 10.
"""

from __future__ import annotations

import asyncio
import time
import wave
from pathlib import Path

from engine.app import Engine
from engine.core import acd as A
from engine.core import agent as ag

from .harness import rows, running, sipp, wait_until_quiet
from .softphone import Baresip, is_event
from .test_acd import acd_config

AGENT = "9001"


async def until(engine: Engine, condition, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        await engine.acd.wait_until(condition)


def phase(expected: ag.AgentPhase):
    return lambda acd: acd.agents[AGENT].phase is expected


async def log_in_paused(engine: Engine, phone: Baresip, stack) -> int:
    """Agent 9001 logged in to support on PJSIP/agent9001, then paused from the phone with *131
    (reason 1, break): the engine answers, confirms and hangs up. The index of that call's end."""
    await engine.acd.request(A.AgentRequest(AGENT, ag.LogIn(frozenset({"support"}), "PJSIP/agent9001")))
    await phone.command("dial", phone.dial_uri(stack, "*131"))
    closed = await phone.event(is_event("CALL_CLOSED", direction="outgoing"))
    agent = engine.acd.acd.agents[AGENT]
    assert agent.phase is ag.AgentPhase.PAUSED and agent.pause_reason == "break", agent
    return closed


async def talk_and_hang_up(engine: Engine, phone: Baresip, incoming: int) -> Path:
    """The phone rings: the agent accepts; once the bridge's recording holds half a second of the
    conversation the agent hangs up. The recording's file."""
    await phone.command("accept")
    await phone.event(is_event("CALL_ESTABLISHED", direction="incoming"), after=incoming)
    await until(engine, phase(ag.AgentPhase.ON_CALL))
    call_id = engine.acd.acd.agents[AGENT].call_id
    folder = Path(engine.config.recording.dir)
    async with asyncio.timeout(10):   # 8 kHz 16-bit: 8,000 bytes of audio after the header
        while not (files := list(folder.glob(f"{call_id}-*.wav"))) or files[0].stat().st_size < 8044:
            await asyncio.sleep(0.05)
    await phone.command("hangup")
    return files[0]


def tone_hz(file: Path) -> float:
    """The frequency of the tone in a 16-bit mono WAV file, by counting zero crossings."""
    with wave.open(str(file)) as w:
        rate, frames = w.getframerate(), w.readframes(w.getnframes())
    samples = memoryview(frames).cast("h")
    loud = [s for s in samples if abs(s) > 500]
    assert len(loud) > len(samples) // 4, "the recording is silent: no audio from the phone"
    crossings = sum(1 for a, b in zip(samples, samples[1:]) if (a < 0) != (b < 0))
    return crossings / 2 / (len(samples) / rate)


async def assert_answered_by_9001_never_busy(dsn: str, recording: Path) -> None:
    [entry] = await rows(dsn, "SELECT outcome, agent_id FROM queue_entries")
    assert (entry["outcome"], entry["agent_id"]) == ("answered", AGENT)
    [offer] = await rows(dsn, "SELECT agent_id, result FROM queue_offers")   # one offer, taken
    assert (offer["agent_id"], offer["result"]) == (AGENT, "answered")
    history = [(r["state"], r["reason"]) for r in await rows(
        dsn, "SELECT state, reason FROM agent_states WHERE agent_id = $1 ORDER BY at", AGENT)]
    assert ("paused", "busy") not in history, history
    assert history == [("available", None), ("paused", "break"), ("available", None), ("reserved", None),
                       ("on_call", None), ("wrap_up", None), ("available", None)], history
    [call] = await rows(dsn, "SELECT ended_by, answered_at FROM calls")
    assert call["ended_by"] == "agent" and call["answered_at"] is not None
    # caller and agent were connected: the bridge's recording holds baresip's 440 Hz tone
    assert 400 < tone_hz(recording) < 480


async def rings(engine: Engine, phone: Baresip, after: int) -> int:
    """Once the phone's own call is over, the waiting call is offered to it and it rings (the
    index of that event). Offered while the call was up, baresip refuses it, 486 Max Calls, and the
    engine pauses the agent `busy`: said as such rather than as a phone that never rang."""
    try:
        return await phone.event(is_event("CALL_INCOMING"), after=after, timeout=5)
    except AssertionError:
        agent = engine.acd.acd.agents[AGENT]
        refusals = [line for line in phone.output if line.startswith("SIP/2.0 4")]
        assert agent.phase is not ag.AgentPhase.PAUSED, f"paused {agent.pause_reason!r}; the phone said {refusals}"
        raise


async def paused_with_a_caller_dialling_unpause(engine: Engine, phone: Baresip, stack):
    """Agent 9001 paused, a caller waiting for support, and the agent dialling *14 from the phone:
    the caller's sipp (a task) and the index of the *14 call's answer."""
    closed = await log_in_paused(engine, phone, stack)
    caller = asyncio.create_task(sipp(stack, "caller_wait_bye.xml", "3100", timeout=60))
    await until(engine, lambda acd: len(acd.waiting) == 1)
    await phone.command("dial", phone.dial_uri(stack, "*14"))
    return caller, await phone.event(is_event("CALL_ESTABLISHED", direction="outgoing"), after=closed + 1)


async def served(engine: Engine, phone: Baresip, caller: asyncio.Task, incoming: int) -> Path:
    """The offer that rang (event ``incoming``) taken and talked through: the call's recording."""
    recording = await talk_and_hang_up(engine, phone, incoming)
    (await caller).check()
    await wait_until_quiet(engine, 1)
    await until(engine, phase(ag.AgentPhase.AVAILABLE))   # wrapped up
    [only] = phone.calls("incoming")   # the phone rang once: the offer was never refused and redone
    assert phone.events.index(only) == incoming
    return recording


async def test_an_agent_who_unpauses_from_baresip_gets_the_waiting_call_once_the_feature_call_is_over(
        stack, dsn, tmp_path):
    """Issue 11 item 10 with a real phone: agent 9001, paused, dials *14 from baresip while a caller
    waits. The engine unpauses, says "thank you" and hangs up; only then does baresip ring. The agent
    accepts and talks to the caller, then hangs up."""
    engine = Engine(acd_config(stack, dsn, tmp_path))
    async with running(engine), Baresip.running(stack, 1, tmp_path / "baresip") as phone:
        caller, dialled = await paused_with_a_caller_dialling_unpause(engine, phone, stack)
        ended = await phone.event(is_event("CALL_CLOSED", direction="outgoing"), after=dialled)
        assert phone.events[ended]["param"] == "Connection reset by peer"   # the engine hung up
        incoming = await rings(engine, phone, ended)
        recording = await served(engine, phone, caller, incoming)
    await assert_answered_by_9001_never_busy(dsn, recording)
    [offer] = await rows(dsn, "SELECT offered_at FROM queue_offers")
    [unpaused] = await rows(dsn, "SELECT at FROM agent_states WHERE agent_id = $1 AND state = 'available' "
                                 "ORDER BY at LIMIT 1 OFFSET 1", AGENT)
    # after the confirmation prompt (about a second), not as the unpause happened
    assert (offer["offered_at"] - unpaused["at"]).total_seconds() > 0.6


async def test_an_agent_who_hangs_up_the_unpause_call_at_once_gets_the_waiting_call(stack, dsn, tmp_path):
    """The agent does not wait for the confirmation: baresip hangs up the *14 call as soon as the
    engine has unpaused. The phone's own hang-up ends the feature call for the ACD as the engine's
    does, so the waiting call is offered right after it."""
    engine = Engine(acd_config(stack, dsn, tmp_path))
    async with running(engine), Baresip.running(stack, 1, tmp_path / "baresip") as phone:
        caller, dialled = await paused_with_a_caller_dialling_unpause(engine, phone, stack)
        await until(engine, lambda acd: acd.agents[AGENT].pause_reason != "break")   # unpaused
        agent = engine.acd.acd.agents[AGENT]
        assert agent.phase is ag.AgentPhase.AVAILABLE, f"offered while the phone's own call is up: {agent}"
        assert not phone.calls("incoming")
        hung_up = time.time()
        await phone.command("hangup")
        ended = await phone.event(is_event("CALL_CLOSED", direction="outgoing"), after=dialled)
        assert phone.events[ended]["param"] == "Connection reset by user"   # the phone hung up
        incoming = await rings(engine, phone, ended)
        # rung once the phone has surely had its BYE, not left waiting on a ring or call timeout
        assert phone.events[incoming]["at"] - hung_up < A.PHONE_SETTLE_SECONDS + 1.0
        recording = await served(engine, phone, caller, incoming)
    await assert_answered_by_9001_never_busy(dsn, recording)
