"""The ACD with real calls: sipp callers into queues, sipp agent phones answering (or not)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path


from engine.app import Engine
from engine.core import acd as A
from engine.core import agent as ag
from engine.runtime.recordings import wav_duration

from .harness import REPO, SIPP_DIR, engine_config, rows, running, running_without_database, sipp, sipp_listening, wait_until_quiet


def acd_config(stack, dsn, tmp_path, **queue_changes):
    """The example configuration with quick timers, so tests do not wait on ring timeouts."""
    cfg = engine_config(stack, dsn, tmp_path)
    queues = tuple(replace(q, ring_timeout_seconds=5, wrapup_seconds=1, **queue_changes) for q in cfg.queues)
    return replace(cfg, queues=queues)


async def agent_phone(stack, agent: int, scenario: str = "agent_answer.xml", *, calls: int = 1, timeout: int = 60,
                      **variables: str):
    """A sipp agent phone listening for the engine's offer on agent900N's port (``calls`` offers)."""
    port = int(stack["ASTERISK_AGENT_PORT_BASE"]) + agent
    args = ["sipp", "-sf", str(SIPP_DIR / scenario), "-i", "127.0.0.1", "-p", str(port), "-m", str(calls),
            "-nostdin", "-timeout", f"{timeout}s", "-timeout_error", "-trace_err", "-error_file", "/dev/stderr"]
    for k, v in variables.items():
        args += ["-set", k, v]
    return await sipp_listening(args, timeout=timeout + 30)


async def log_in(engine: Engine, agent_id: str, *queues: str) -> None:
    await engine.acd.request(A.AgentRequest(agent_id, ag.LogIn(frozenset(queues), "")))


async def test_a_caller_in_a_queue_is_bridged_to_an_agent_and_recorded(stack, dsn, tmp_path):
    engine = Engine(acd_config(stack, dsn, tmp_path))
    async with running(engine):
        await log_in(engine, "9001", "support")
        phone, phone_done = await agent_phone(stack, 1, answer_ms="300", hangup_ms="2500")
        caller = await sipp(stack, "caller_wait_bye.xml", "3100", variables={"caller": "5557001"})
        caller.check()
        (await phone_done()).check()
        await wait_until_quiet(engine, 1)
        await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE)
    [call] = await rows(dsn, "SELECT * FROM calls")
    assert call["ended_by"] == "agent" and call["caller_number"] == "5557001"
    [entry] = await rows(dsn, "SELECT * FROM queue_entries")
    assert (entry["queue"], entry["outcome"], entry["agent_id"]) == ("support", "answered", "9001")
    [offer] = await rows(dsn, "SELECT * FROM queue_offers")
    # the wait runs from entering the queue to the agent's answer, which ended the offer
    assert entry["wait_seconds"] > 0.2  # the phone rang 300 ms
    assert abs(entry["wait_seconds"] - (offer["ended_at"] - entry["entered_at"]).total_seconds()) < 0.01
    assert offer["agent_id"] == "9001" and offer["result"] == "answered"
    assert offer["reason"].startswith("longest_idle: 9001 chosen of 1 eligible [support>=1]")
    states = [r["state"] for r in await rows(dsn, "SELECT state FROM agent_states WHERE agent_id = '9001' ORDER BY at")]
    assert states == ["available", "reserved", "on_call", "wrap_up", "available"]
    # The support queue records every call: the file is there and its row says how long it is.
    [rec] = await rows(dsn, "SELECT * FROM recordings")
    assert (rec["call_id"], rec["agent_id"], rec["queue"], rec["format"]) == (call["id"], "9001", "support", "wav")
    file = Path(rec["path"])
    assert file.exists() and rec["size_bytes"] == file.stat().st_size > 44
    assert abs(rec["duration_seconds"] - wav_duration(file)) < 1e-9
    # the file holds the conversation: from the bridge's recording start to the agent's hang-up
    talk = (rec["ended_at"] - rec["started_at"]).total_seconds()
    assert 1.0 < rec["duration_seconds"] < 3.5 and abs(rec["duration_seconds"] - talk) < 0.5


async def test_an_agent_who_does_not_answer_is_paused_and_the_call_goes_to_the_next(stack, dsn, tmp_path):
    engine = Engine(acd_config(stack, dsn, tmp_path))
    async with running(engine):
        await log_in(engine, "9001", "support")  # idle longest: offered first
        await log_in(engine, "9002", "support")
        silent, silent_done = await agent_phone(stack, 1, "agent_noanswer.xml")
        phone, phone_done = await agent_phone(stack, 2, answer_ms="200", hangup_ms="1000")
        (await sipp(stack, "caller_wait_bye.xml", "3100", timeout=40)).check()
        (await silent_done()).check()
        (await phone_done()).check()
        await wait_until_quiet(engine, 1)
        a9001 = engine.acd.acd.agents["9001"]
        assert a9001.phase is ag.AgentPhase.PAUSED and a9001.pause_reason == "no-answer"
    offers = await rows(dsn, "SELECT agent_id, result FROM queue_offers ORDER BY offered_at")
    assert [(o["agent_id"], o["result"]) for o in offers] == [("9001", "no-answer"), ("9002", "answered")]
    [entry] = await rows(dsn, "SELECT outcome, agent_id, wait_seconds FROM queue_entries")
    assert entry["outcome"] == "answered" and entry["agent_id"] == "9002" and entry["wait_seconds"] > 4.5


async def test_a_caller_who_hangs_up_while_waiting_is_counted_as_abandoned(stack, dsn, tmp_path):
    engine = Engine(acd_config(stack, dsn, tmp_path))
    async with running(engine):
        await log_in(engine, "9001", "support")
        await engine.acd.request(A.AgentRequest("9001", ag.Pause("break")))  # staffed, nobody free
        (await sipp(stack, "caller_hangup.xml", "3100", variables={"hangup_ms": "2000"})).check()
        await wait_until_quiet(engine, 1)
    [entry] = await rows(dsn, "SELECT outcome, wait_seconds, agent_id FROM queue_entries")
    assert entry["outcome"] == "abandoned" and entry["agent_id"] is None
    assert 1.5 < entry["wait_seconds"] < 3.5
    assert await rows(dsn, "SELECT * FROM queue_offers") == []
    # who hung up and what Asterisk said (sipp's BYE carries no Reason header), never an empty field
    [call] = await rows(dsn, "SELECT ended_by, hangup_cause, hangup_cause_text FROM calls")
    assert call["ended_by"] == "caller", call
    assert call["hangup_cause"] is not None and call["hangup_cause_text"], call


async def test_wideband_callers_and_phones_are_served_and_a_codec_mismatch_is_named(stack, dsn, tmp_path):
    """Issue 11 item 11: a caller offering only G.722, an agent phone answering only G.722, and a
    phone that refuses every codec Asterisk offers (488): recorded as `codec`, not `unreachable`."""
    engine = Engine(acd_config(stack, dsn, tmp_path))
    async with running(engine):
        await log_in(engine, "9001", "support")   # idle longest: offered first
        await log_in(engine, "9002", "support")
        refusing, refusing_done = await agent_phone(stack, 1, "agent_busy.xml", status="488")
        phone, phone_done = await agent_phone(stack, 2, answer_ms="200", hangup_ms="1000", codecs="9")
        (await sipp(stack, "caller_wait_bye.xml", "3100", variables={"codecs": "9"}, timeout=40)).check()
        (await refusing_done()).check()
        (await phone_done()).check()
        await wait_until_quiet(engine, 1)
        a9001 = engine.acd.acd.agents["9001"]
        assert a9001.phase is ag.AgentPhase.PAUSED and a9001.pause_reason == "codec"
    offers = await rows(dsn, "SELECT agent_id, result FROM queue_offers ORDER BY offered_at")
    assert [(o["agent_id"], o["result"]) for o in offers] == [("9001", "codec"), ("9002", "answered")]
    [call] = await rows(dsn, "SELECT answered_at, ended_by FROM calls")
    assert call["answered_at"] is not None and call["ended_by"] == "agent"


async def test_an_offer_whose_originate_timed_out_still_connects_when_asterisk_made_the_leg(stack, dsn, tmp_path):
    """Issue 11 item 8: the engine's request timed out, but Asterisk made the channel and the agent
    answered. Asterisk is frozen (SIGSTOP) while the engine sends the originate, so the request
    times out; thawed, it makes the leg and the phone answers: the engine must follow that leg."""
    import os
    import signal

    cfg = acd_config(stack, dsn, tmp_path)
    cfg = replace(cfg, asterisk=replace(cfg.asterisk, ari=replace(cfg.asterisk.ari, request_timeout_seconds=1.0)))
    engine = Engine(cfg)
    pid = int((REPO / ".run" / "asterisk.pid").read_text())
    async with running(engine):
        await log_in(engine, "9001", "support")
        await engine.acd.request(A.AgentRequest("9001", ag.Pause("break")))
        phone, phone_done = await agent_phone(stack, 1, answer_ms="200", hangup_ms="1000")
        caller = asyncio.create_task(sipp(stack, "caller_wait_bye.xml", "3100", timeout=60))
        await engine.acd.wait_until(lambda acd: len(acd.waiting) == 1)
        os.kill(pid, signal.SIGSTOP)
        try:
            # the unpause makes the offer; the ACD answers once its POST /channels has timed out
            await engine.acd.request(A.AgentRequest("9001", ag.Unpause()))
        finally:
            os.kill(pid, signal.SIGCONT)
        (await caller).check()
        (await phone_done()).check()
        await wait_until_quiet(engine, 1)
        await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE)
    [offer] = await rows(dsn, "SELECT agent_id, result FROM queue_offers")
    assert (offer["agent_id"], offer["result"]) == ("9001", "answered")
    [call] = await rows(dsn, "SELECT ended_by FROM calls")
    assert call["ended_by"] == "agent"


async def test_agents_log_in_pause_and_unpause_with_feature_codes(stack, dsn, tmp_path):
    engine = Engine(acd_config(stack, dsn, tmp_path))

    async def feature(code: str, digits: str = "") -> None:
        (await sipp(stack, "agent_feature.xml", code, variables={"agent": "agent9002", "digits": digits})).check()

    async with running(engine):
        agents = engine.acd.acd.agents
        await feature("*11", "9002#0000#9002#2345#")  # a wrong PIN first, then the right one
        assert agents["9002"].phase is ag.AgentPhase.AVAILABLE
        assert agents["9002"].endpoint == "PJSIP/agent9002"
        # support 5, billing 3, renewals 5: support, renewals and general (no skill needed); not
        # billing (needs 5)
        assert agents["9002"].queues == frozenset({"support", "renewals", "general"})
        await feature("*132")  # pause, reason 2 in one go
        assert agents["9002"].phase is ag.AgentPhase.PAUSED and agents["9002"].pause_reason == "lunch"
        await feature("*13", "1#")  # change the reason
        assert agents["9002"].pause_reason == "break"
        await feature("*14")
        assert agents["9002"].phase is ag.AgentPhase.AVAILABLE
        await feature("*12")
        assert agents["9002"].phase is ag.AgentPhase.LOGGED_OUT
    history = await rows(dsn, "SELECT state, reason FROM agent_states WHERE agent_id = '9002' ORDER BY at")
    assert [(r["state"], r["reason"]) for r in history] == [
        ("available", None), ("paused", "lunch"), ("paused", "break"), ("available", None), ("logged_out", None)]


async def test_an_agent_who_unpauses_from_the_keypad_is_offered_the_waiting_call_after_the_feature_call(
        stack, dsn, tmp_path):
    """Issue 11 item 10: the offer came 3-8 ms after *14, while the phone's own call (with its
    confirmation prompt) was up: a desk phone without call waiting answered 486 and was paused."""
    engine = Engine(acd_config(stack, dsn, tmp_path))
    async with running(engine):
        await engine.acd.request(A.AgentRequest("9002", ag.LogIn(frozenset({"support"}), "PJSIP/agent9002")))
        await engine.acd.request(A.AgentRequest("9002", ag.Pause("break")))
        caller = asyncio.create_task(sipp(stack, "caller_wait_bye.xml", "3100", timeout=60))
        await engine.acd.wait_until(lambda acd: len(acd.waiting) == 1)
        phone, phone_done = await agent_phone(stack, 2, answer_ms="100", hangup_ms="500")
        (await sipp(stack, "agent_feature.xml", "*14", variables={"agent": "agent9002"})).check()
        (await caller).check()
        (await phone_done()).check()
        await wait_until_quiet(engine, 1)
    [offer] = await rows(dsn, "SELECT offered_at, result FROM queue_offers")
    assert offer["result"] == "answered"
    [unpaused] = await rows(dsn, "SELECT at FROM agent_states WHERE agent_id = '9002' AND state = 'available' "
                                 "AND at < $1 ORDER BY at DESC LIMIT 1", offer["offered_at"])
    # offered once the phone's own call was over (after its confirmation prompt, which lasts about
    # a second), not 3-8 ms after the unpause while that call was still up
    gap = (offer["offered_at"] - unpaused["at"]).total_seconds()
    assert gap > 0.6, gap


async def test_agents_and_waiting_callers_survive_an_engine_restart(stack, dsn, tmp_path):
    cfg = acd_config(stack, dsn, tmp_path)
    cfg = replace(cfg, engine=replace(cfg.engine, shutdown_grace_seconds=0.1))
    first = Engine(cfg)
    async with running(first):
        await log_in(first, "9001", "support")
        await first.acd.request(A.AgentRequest("9001", ag.Pause("break")))
        caller = asyncio.create_task(sipp(stack, "caller_wait_bye.xml", "3100", timeout=60))
        await first.acd.wait_until(lambda acd: len(acd.waiting) == 1)
        queued = asyncio.get_running_loop().time()
    second = Engine(cfg)
    async with running(second):
        await second.acd.ready.wait()
        agent = second.acd.acd.agents["9001"]
        assert agent.phase is ag.AgentPhase.PAUSED and agent.pause_reason == "break"  # still logged in
        await second.acd.wait_until(lambda acd: len(acd.waiting) == 1)  # the caller is back in line
        phone, phone_done = await agent_phone(stack, 1, answer_ms="200", hangup_ms="1000")
        waited = asyncio.get_running_loop().time() - queued
        await second.acd.request(A.AgentRequest("9001", ag.Unpause()))
        (await caller).check()
        (await phone_done()).check()
        await second.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE)  # wrapped up
        await wait_until_quiet(second, 1)
    entries = await rows(dsn, "SELECT outcome, agent_id, wait_seconds FROM queue_entries")
    assert [(e["outcome"], e["agent_id"]) for e in entries] == [("answered", "9001")]  # not counted twice
    assert entries[0]["wait_seconds"] > waited  # the whole wait, not the part after the restart
    logins = await rows(dsn, "SELECT 1 FROM agent_states WHERE agent_id = '9001' AND state = 'available' "
                             "AND reason IS NULL")
    assert len(logins) == 3  # log in, unpause, after wrap-up: the restart logged nobody in again


async def connected_then_stopped(stack, cfg, *, hangup_ms: str, running_as=running):
    """An engine on ``cfg`` connects a caller on 3100 to agent 9001 and stops at once, leaving the
    call up for the next engine; the agent phone's and the caller's results, still to come."""
    cfg = replace(cfg, engine=replace(cfg.engine, shutdown_grace_seconds=0.1))
    async with running_as(Engine(cfg)) as first:
        await first.acd.ready.wait()
        await log_in(first, "9001", "support")
        phone, phone_done = await agent_phone(stack, 1, answer_ms="200", hangup_ms=hangup_ms)
        caller = asyncio.create_task(sipp(stack, "caller_wait_bye.xml", "3100", timeout=60))
        await first.calls.wait_until(lambda m: any(s.state.phase.value == "connected" for s in m.sessions.values()))
    return phone_done, caller


async def test_a_connected_call_the_database_never_heard_of_stays_connected_after_a_restart(stack, dsn, tmp_path):
    """Issue 11 item 2: Asterisk's bridges are the truth. The first engine ran with PostgreSQL
    away and its journal is gone: the restarted engine must not take the bridged caller for a
    waiting one (it offered them to a second agent, then hung them up on a 409)."""
    phone_done, caller = await connected_then_stopped(
        stack, acd_config(stack, "postgresql://postgres@127.0.0.1:1/nowhere", tmp_path / "first"),
        hangup_ms="7000", running_as=running_without_database)
    second = Engine(acd_config(stack, dsn, tmp_path / "second"))   # another state folder: nothing replayed
    async with running(second):
        await log_in(second, "9002", "support")   # free, with a phone that would answer
        spare, spare_done = await agent_phone(stack, 2, answer_ms="100", hangup_ms="500", timeout=15)
        [session] = second.calls.sessions.values()
        assert session.state.phase.value == "connected" and session.state.agent_id == "9001"
        (await phone_done()).check()  # the first agent talked to the end and hung up
        (await caller).check()
        await wait_until_quiet(second, 1)
        assert second.acd.acd.agents["9002"].phase is ag.AgentPhase.AVAILABLE
    spare.kill()
    await spare_done()
    assert await rows(dsn, "SELECT * FROM queue_offers") == []   # never offered to the second agent
    [call] = await rows(dsn, "SELECT ended_by FROM calls")
    assert call["ended_by"] == "agent"


async def test_a_caller_whose_agent_hung_up_while_the_engine_was_down_is_not_sent_back_to_the_start(
        stack, dsn, tmp_path):
    """Issue 11 item 3: the caller is alone in the call's bridge; the call goes on as if the
    engine had seen the agent hang up (here: it ends), and the agent gets wrap-up."""
    cfg = acd_config(stack, dsn, tmp_path)
    phone_done, caller = await connected_then_stopped(stack, cfg, hangup_ms="1500")
    (await phone_done()).check()  # the agent hangs up while no engine runs
    second = Engine(cfg)
    async with running(second):
        (await caller).check()   # hung up at once: no greeting, no menu
        await second.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE)
        await wait_until_quiet(second, 1)
    [call] = await rows(dsn, "SELECT ended_by, ended_at - answered_at AS talk FROM calls")
    assert call["ended_by"] == "agent"
    assert await rows(dsn, "SELECT * FROM ivr_steps") == []
    assert [e["outcome"] for e in await rows(dsn, "SELECT outcome FROM queue_entries")] == ["answered"]
    states = [r["state"] for r in await rows(dsn, "SELECT state FROM agent_states WHERE agent_id = '9001' ORDER BY at")]
    assert states[-2:] == ["wrap_up", "available"]


async def test_reload_keeps_agents_logged_in_and_callers_in_place(stack, dsn, tmp_path):
    engine = Engine(acd_config(stack, dsn, tmp_path))
    async with running(engine):
        await log_in(engine, "9001", "support")
        await engine.acd.request(A.AgentRequest("9001", ag.Pause("break")))
        caller = asyncio.create_task(sipp(stack, "caller_hangup.xml", "3100", variables={"hangup_ms": "4000"}))
        await engine.acd.wait_until(lambda acd: len(acd.waiting) == 1)
        new = replace(engine.config, queues=tuple(replace(q, strategy="round_robin") for q in engine.config.queues))
        engine.acd.reconfigure(new)
        await engine.acd.wait_until(lambda acd: acd.rules["support"].strategy == "round_robin")
        assert engine.acd.acd.agents["9001"].phase is ag.AgentPhase.PAUSED
        assert len(engine.acd.acd.waiting) == 1
        (await caller).check()
        await wait_until_quiet(engine, 1)
    [entry] = await rows(dsn, "SELECT outcome FROM queue_entries")
    assert entry["outcome"] == "abandoned"


async def called_back(stack, dsn, tmp_path, number: str, customer_scenario: str, **customer: str) -> dict:
    """A caller keys * in the support queue (its callback key) while 9001 is paused and hangs up;
    9001 comes back, answers, and the engine dials the caller through the carrier, where a sipp
    ``customer_scenario`` plays the customer. Returns the callbacks row."""
    engine = Engine(acd_config(stack, dsn, tmp_path))
    async with running(engine):
        await log_in(engine, "9001", "support")
        await engine.acd.request(A.AgentRequest("9001", ag.Pause("break")))
        # The caller presses * (the support queue's callback key), hears "thank you", is hung up.
        (await sipp(stack, "caller_dtmf.xml", "3100",
                    variables={"caller": number, "digits": "*", "dtmf_delay_ms": "1500"})).check()
        await engine.calls.wait_handled(1)
        assert len(engine.acd.acd.waiting) == 1  # still in line
        # Their turn: the agent answers, then the engine dials the caller back through the carrier.
        phone, phone_done = await agent_phone(stack, 1, answer_ms="200")
        port = int(stack["ASTERISK_CARRIER_SIP_PORT"]) - int(stack["ASTERISK_AGENT_PORT_BASE"])
        _, customer_done = await agent_phone(stack, port, customer_scenario, **customer)
        await engine.acd.request(A.AgentRequest("9001", ag.Unpause()))
        (await customer_done()).check()
        (await phone_done()).check()              # the agent's leg ends with the customer's
        await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE)
        await engine.writer.wait_idle()
    [cb] = await rows(dsn, "SELECT * FROM callbacks")
    return cb


async def test_a_caller_who_asks_for_a_callback_keeps_the_place_and_is_called_back(stack, dsn, tmp_path):
    cb = await called_back(stack, dsn, tmp_path, "5557002", "agent_answer.xml", answer_ms="500", hangup_ms="1500")
    assert (cb["number"], cb["queue"], cb["agent_id"], cb["outcome"]) == ("5557002", "support", "9001", "answered")
    [entry] = await rows(dsn, "SELECT outcome, agent_id FROM queue_entries")
    assert (entry["outcome"], entry["agent_id"]) == ("answered", "9001")


async def test_a_callback_whose_customer_is_busy_is_recorded_busy_and_frees_the_agent(stack, dsn, tmp_path):
    """The callback's customer leg failing before an answer was never run by a test: its cause
    mapping was not even imported (engine/runtime/callbacks.py, a NameError in the event router)."""
    cb = await called_back(stack, dsn, tmp_path, "5557003", "agent_busy.xml")
    assert (cb["number"], cb["agent_id"], cb["outcome"]) == ("5557003", "9001", "busy")


async def test_disposition_from_the_keypad_during_wrap_up(stack, dsn, tmp_path):
    cfg = acd_config(stack, dsn, tmp_path)
    cfg = replace(cfg, queues=tuple(replace(q, wrapup_seconds=120) for q in cfg.queues))
    engine = Engine(cfg)
    async with running(engine):
        await log_in(engine, "9001", "support")
        phone, phone_done = await agent_phone(stack, 1, answer_ms="200", hangup_ms="1000")
        (await sipp(stack, "caller_wait_bye.xml", "3100")).check()
        (await phone_done()).check()
        await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.WRAP_UP)
        (await sipp(stack, "agent_feature.xml", "*163", variables={"agent": "agent9001"})).check()
        assert engine.acd.acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE  # the disposition ends wrap-up
        await wait_until_quiet(engine, 1)
    [call] = await rows(dsn, "SELECT id FROM calls")
    [d] = await rows(dsn, "SELECT * FROM dispositions")
    assert (d["call_id"], d["agent_id"], d["code"], d["name"]) == (call["id"], "9001", "3", "escalated")


async def test_on_demand_recording_starts_when_the_agent_keys_the_code(stack, dsn, tmp_path):
    engine = Engine(acd_config(stack, dsn, tmp_path))
    async with running(engine):
        await log_in(engine, "9001", "billing")  # billing records on demand
        phone, phone_done = await agent_phone(stack, 1, answer_ms="200", digits="*7", dtmf_delay_ms="500",
                                              hangup_ms="2000")
        (await sipp(stack, "caller_wait_bye.xml", "3200")).check()
        (await phone_done()).check()
        await wait_until_quiet(engine, 1)
    [rec] = await rows(dsn, "SELECT queue, agent_id, duration_seconds FROM recordings")
    assert rec["queue"] == "billing" and rec["agent_id"] == "9001"
    assert 1.0 < rec["duration_seconds"] < 3.0  # from the keys to the end, not the whole call
    events = await rows(dsn, "SELECT kind FROM call_events ORDER BY at")
    assert "recording-requested" in [e["kind"] for e in events]


async def test_a_connected_call_stays_connected_across_an_engine_restart(stack, dsn, tmp_path):
    cfg = acd_config(stack, dsn, tmp_path)
    phone_done, caller = await connected_then_stopped(stack, cfg, hangup_ms="6000")
    second = Engine(cfg)  # the agent and the caller keep talking meanwhile
    async with running(second):
        agent = second.acd.acd.agents["9001"]
        assert agent.phase is ag.AgentPhase.ON_CALL
        [session] = second.calls.sessions.values()
        assert session.state.phase.value == "connected" and session.state.agent_id == "9001"
        (await phone_done()).check()  # the agent hangs up: the caller is hung up too
        (await caller).check()
        await second.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE)
        await wait_until_quiet(second, 1)
    [call] = await rows(dsn, "SELECT ended_by, hangup_cause FROM calls")
    assert call["ended_by"] == "agent"
    entries = await rows(dsn, "SELECT outcome FROM queue_entries")
    assert [e["outcome"] for e in entries] == ["answered"]
    # the recording survived too: one, from the connection (not the restart) to the end
    [rec] = await rows(dsn, "SELECT duration_seconds, started_at, ended_at FROM recordings")
    [entry] = await rows(dsn, "SELECT left_at FROM queue_entries")
    assert rec["duration_seconds"] > 4.0
    assert abs((rec["started_at"] - entry["left_at"]).total_seconds()) < 1.0
