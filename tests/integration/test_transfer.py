"""Blind transfer with real calls: the agent phone's transfer key (a REFER, handed to the engine by
Asterisk's ``transfer_handling = ari-only``) and the API's, to a queue and to a number."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from types import MappingProxyType

import aiohttp
import asyncpg

from engine.app import Engine
from engine.core import agent as ag
from engine.services.reports import agents_report, inbound_report

from .harness import rows, running, sipp, wait_until_quiet
from .test_acd import acd_config, agent_phone, log_in
from .test_api import Api, with_api
from .test_dialer import customers, voices  # noqa: F401 (fixture)


def transfer_config(stack, dsn, tmp_path):
    """Billing (3200) takes any agent, so that 9002 can take what 9001 sends on."""
    cfg = acd_config(stack, dsn, tmp_path)
    return replace(cfg, queues=tuple(replace(q, skills=MappingProxyType({})) if q.name == "billing" else q
                                     for q in cfg.queues))


async def report_rows(dsn: str, cfg) -> tuple[dict, dict]:
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    conn = await asyncpg.connect(dsn)
    try:
        agents = {r["agent"]: r for r in (await agents_report(conn, cfg, start, end)).rows}
        inbound = {r["queue"]: r for r in (await inbound_report(conn, cfg, start, end)).rows}
    finally:
        await conn.close()
    return agents, inbound


async def bridged_to_9001(engine: Engine) -> str:
    """Until agent 9001 is on a call and the call knows their leg: the call's id."""
    await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.ON_CALL)
    call_id = engine.acd.acd.agents["9001"].call_id
    assert call_id is not None
    await engine.calls.wait_until(lambda m: call_id in m.by_call and m.by_call[call_id].state.agent_channel)
    return call_id


async def states_of(dsn: str, agent: str) -> list[str]:
    return [r["state"] for r in await rows(dsn, "SELECT state FROM agent_states WHERE agent_id = $1 ORDER BY at", agent)]


async def sent_on_to_billing(stack, dsn, tmp_path, scenario: str, **first_phone: str):
    """A caller of support (3100) answered by 9001, whose phone (``scenario``) sends them on to
    billing (3200), where 9002 answers and hangs up 1.5 s later. The configuration."""
    cfg = transfer_config(stack, dsn, tmp_path)
    engine = Engine(cfg)
    async with running(engine):
        await log_in(engine, "9001", "support")
        await log_in(engine, "9002", "billing")
        first, first_done = await agent_phone(stack, 1, scenario, answer_ms="300", **first_phone)
        second, second_done = await agent_phone(stack, 2, answer_ms="300", hangup_ms="1500")
        (await sipp(stack, "caller_wait_bye.xml", "3100", variables={"caller": "5557201"})).check()
        (await first_done()).check()    # the engine hung the first agent's leg up
        (await second_done()).check()
        await wait_until_quiet(engine, 1)
        await engine.acd.wait_until(lambda acd: all(acd.agents[a].phase is ag.AgentPhase.AVAILABLE
                                                    for a in ("9001", "9002")))
    return cfg


async def test_the_agent_phones_transfer_key_sends_the_caller_to_another_queue_as_a_new_stay(stack, dsn, tmp_path):
    cfg = await sent_on_to_billing(stack, dsn, tmp_path, "agent_transfer.xml", target="3200",
                                   transfer_after_ms="1500")
    [call] = await rows(dsn, "SELECT id, ended_by FROM calls")
    assert call["ended_by"] == "agent"
    entries = await rows(dsn, "SELECT queue, outcome, agent_id, wait_seconds, entered_at, left_at "
                              "FROM queue_entries ORDER BY entered_at")
    assert [(e["queue"], e["outcome"], e["agent_id"]) for e in entries] == [("support", "answered", "9001"),
                                                                             ("billing", "answered", "9002")]
    assert entries[1]["wait_seconds"] < 1.5   # the second stay's wait is its own, not the first talk
    [xfer] = await rows(dsn, "SELECT at, detail FROM call_events WHERE kind = 'blind-transfer'")
    assert xfer["detail"] == "queue:billing by phone from 9001"
    [offer] = await rows(dsn, "SELECT offered_at FROM queue_offers WHERE agent_id = '9002'")
    key_to_ring = (offer["offered_at"] - xfer["at"]).total_seconds()
    assert 0 <= key_to_ring < 0.5, key_to_ring
    assert await states_of(dsn, "9001") == ["available", "reserved", "on_call", "wrap_up", "available"]
    assert await states_of(dsn, "9002") == ["available", "reserved", "on_call", "wrap_up", "available"]
    # support records every call: the first agent's segment, with the call's id
    recordings = await rows(dsn, "SELECT call_id, agent_id, queue FROM recordings")
    assert [(r["call_id"], r["agent_id"], r["queue"]) for r in recordings] == [(call["id"], "9001", "support")]
    agents, inbound = await report_rows(dsn, cfg)
    assert 1.0 < agents["9001"]["talk_seconds"] < 2.5 and 1.0 < agents["9002"]["talk_seconds"] < 2.5
    assert agents["9001"]["calls_inbound"] == 1 and agents["9002"]["calls_inbound"] == 1
    assert (inbound["support"]["answered"], inbound["billing"]["answered"]) == (1, 1)
    total = inbound["(total)"]
    assert total["offered"] == 1 and total["fcr"] == 1.0
    # each stay's AHT is its own agent's work, not the whole call's
    assert inbound["support"]["talk_seconds"] < 2.5 and inbound["billing"]["talk_seconds"] < 2.5


async def test_the_api_transfers_a_caller_to_a_number_and_back_to_the_queue_when_it_is_busy(stack, dsn, tmp_path,
                                                                                          voices):
    cfg = with_api(transfer_config(stack, dsn, tmp_path))
    engine = Engine(cfg)
    carrier, carrier_done = await customers(stack, voices, 1)   # ...3: 486 Busy Here at once
    async with running(engine), aiohttp.ClientSession() as session:
        api = Api(engine, session)
        await log_in(engine, "9001", "support")   # idle longest: offered first
        await log_in(engine, "9002", "support")
        phone, phone_done = await agent_phone(stack, 1, answer_ms="300", talk_max_ms="20000")
        other, other_done = await agent_phone(stack, 2, answer_ms="300", hangup_ms="1000")
        caller = asyncio.create_task(sipp(stack, "caller_wait_bye.xml", "3100", timeout=40))
        call_id = await bridged_to_9001(engine)
        status, err = await api.post(f"/calls/{call_id}/transfer", {"queue": "nowhere"})
        assert status == 400 and err["field"] == "queue"
        status, err = await api.post(f"/calls/{call_id}/transfer", {"agent": "9001"})   # the call's own agent
        assert status == 409 and "own agent" in err["error"]
        status, err = await api.post(f"/calls/{call_id}/transfer", {"ivr": "main/no-such-node"})
        assert status == 400 and err["field"] == "ivr"
        status, answer = await api.post(f"/calls/{call_id}/transfer", {"number": "5550003"})
        assert (status, answer) == (200, {"call_id": call_id, "kind": "number", "target": "5550003"})
        await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is not ag.AgentPhase.ON_CALL)
        (await phone_done()).check()   # the engine hung the agent's leg up
        # the number fails: the caller is back in support, and 9002 takes them (9001 is in wrap-up)
        (await carrier_done()).check()
        (await caller).check()
        (await other_done()).check()
        await wait_until_quiet(engine, 1)
    events = [(r["kind"], r["detail"]) for r in await rows(
        dsn, "SELECT kind, detail FROM call_events WHERE kind IN ('blind-transfer', 'transfer-failed', 'connected') "
             "ORDER BY at")]
    assert events[0] == ("connected", "9001") and events[1] == ("blind-transfer", "number:5550003 by api from 9001")
    assert events[2][0] == "transfer-failed" and events[3] == ("connected", "9002")
    entries = await rows(dsn, "SELECT queue, outcome FROM queue_entries ORDER BY entered_at")
    assert [(e["queue"], e["outcome"]) for e in entries] == [("support", "answered"), ("support", "answered")]


async def test_an_agent_keys_a_transfer_on_a_phone_without_a_transfer_key(stack, dsn, tmp_path):
    await sent_on_to_billing(stack, dsn, tmp_path, "agent_answer.xml", digits="##3200#", dtmf_delay_ms="800",
                             dtmf_gap_ms="100", talk_max_ms="10000")
    [xfer] = await rows(dsn, "SELECT detail FROM call_events WHERE kind = 'blind-transfer'")
    assert xfer["detail"] == "queue:billing by keys from 9001"
    entries = await rows(dsn, "SELECT queue, agent_id FROM queue_entries ORDER BY entered_at")
    assert [(e["queue"], e["agent_id"]) for e in entries] == [("support", "9001"), ("billing", "9002")]


async def test_a_real_phones_transfer_key_sends_the_caller_on(stack, dsn, tmp_path):
    """Once with a real softphone (Debian's baresip) as agent 9001's desk phone: its own blind
    transfer (``/transfer``: a REFER as baresip writes it), not a sipp script."""
    from .softphone import Baresip, is_event

    cfg = transfer_config(stack, dsn, tmp_path)
    engine = Engine(cfg)
    async with running(engine), Baresip.running(stack, 1, tmp_path / "baresip") as phone:
        await log_in(engine, "9001", "support")
        await log_in(engine, "9002", "billing")
        second, second_done = await agent_phone(stack, 2, answer_ms="300", hangup_ms="1000")
        caller = asyncio.create_task(sipp(stack, "caller_wait_bye.xml", "3100"))
        incoming = await phone.event(is_event("CALL_INCOMING"))
        await phone.command("accept")
        await phone.event(is_event("CALL_ESTABLISHED", direction="incoming"), after=incoming)
        async with asyncio.timeout(10):
            await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.ON_CALL)
        await phone.command("transfer", phone.dial_uri(stack, "3200"))
        await phone.event(is_event("CALL_CLOSED", direction="incoming"), after=incoming)   # its leg is over
        (await second_done()).check()
        (await caller).check()
        await wait_until_quiet(engine, 1)
    [xfer] = await rows(dsn, "SELECT detail FROM call_events WHERE kind = 'blind-transfer'")
    assert xfer["detail"] == "queue:billing by phone from 9001"
    entries = await rows(dsn, "SELECT queue, agent_id FROM queue_entries ORDER BY entered_at")
    assert [(e["queue"], e["agent_id"]) for e in entries] == [("support", "9001"), ("billing", "9002")]


async def test_an_agent_transfers_a_caller_to_another_agent_by_their_id(stack, dsn, tmp_path):
    cfg = transfer_config(stack, dsn, tmp_path)
    engine = Engine(cfg)
    async with running(engine):
        await log_in(engine, "9001", "support")   # idle longest: the first offer is theirs
        await log_in(engine, "9002", "support")
        await log_in(engine, "9003", "support")   # free, but the transfer names 9002
        first, first_done = await agent_phone(stack, 1, "agent_transfer.xml", target="9002", transfer_after_ms="800")
        second, second_done = await agent_phone(stack, 2, answer_ms="300", hangup_ms="1000")
        (await sipp(stack, "caller_wait_bye.xml", "3100")).check()
        (await first_done()).check()
        (await second_done()).check()
        await wait_until_quiet(engine, 1)
    offers = await rows(dsn, "SELECT agent_id, result FROM queue_offers ORDER BY offered_at")
    assert [(o["agent_id"], o["result"]) for o in offers] == [("9001", "answered"), ("9002", "answered")]
    [xfer] = await rows(dsn, "SELECT detail FROM call_events WHERE kind = 'blind-transfer'")
    assert xfer["detail"] == "agent:9002 by phone from 9001"


async def test_a_caller_transferred_to_a_queue_keeps_that_stay_across_an_engine_restart(stack, dsn, tmp_path):
    """The engine stops while the transferred caller waits in billing (its only agent paused): the
    next one adopts them in billing, and the stay goes on to its answer: one billing row, not two."""
    from engine.core import acd as A

    cfg = transfer_config(stack, dsn, tmp_path)
    cfg = replace(cfg, engine=replace(cfg.engine, shutdown_grace_seconds=0.1))
    async with running(Engine(cfg)) as first:
        await log_in(first, "9001", "support")
        await log_in(first, "9002", "billing")
        await first.acd.request(A.AgentRequest("9002", ag.Pause("break")))   # billing staffed, nobody free
        phone, phone_done = await agent_phone(stack, 1, "agent_transfer.xml", target="3200", transfer_after_ms="500")
        caller = asyncio.create_task(sipp(stack, "caller_wait_bye.xml", "3100", timeout=40))
        (await phone_done()).check()
        await first.acd.wait_until(lambda acd: any(w.queue == "billing" for w in acd.waiting.values()))
        await first.writer.wait_idle()
    second = Engine(cfg)
    async with running(second):
        async with asyncio.timeout(10):
            await second.acd.wait_until(lambda acd: any(w.queue == "billing" for w in acd.waiting.values()))
        other, other_done = await agent_phone(stack, 2, answer_ms="300", hangup_ms="1000")
        await second.acd.request(A.AgentRequest("9002", ag.Unpause()))
        (await other_done()).check()
        (await caller).check()
        await wait_until_quiet(second, 1)
    entries = await rows(dsn, "SELECT queue, outcome, agent_id FROM queue_entries ORDER BY entered_at")
    assert [(e["queue"], e["outcome"], e["agent_id"]) for e in entries] == [("support", "answered", "9001"),
                                                                             ("billing", "answered", "9002")]


async def test_the_api_transfers_a_caller_into_an_ivr_node(stack, dsn, tmp_path):
    engine = Engine(with_api(transfer_config(stack, dsn, tmp_path)))
    async with running(engine), aiohttp.ClientSession() as session:
        api = Api(engine, session)
        await log_in(engine, "9001", "support")
        phone, phone_done = await agent_phone(stack, 1, answer_ms="300", talk_max_ms="20000")
        caller = asyncio.create_task(sipp(stack, "caller_wait_bye.xml", "3100", timeout=40))
        call_id = await bridged_to_9001(engine)
        status, _ = await api.post(f"/calls/{call_id}/transfer", {"ivr": "main/survey"})
        assert status == 200
        (await phone_done()).check()   # the agent's part is over at once
        (await caller).check()         # the survey asks, thanks and hangs up
        await wait_until_quiet(engine, 1)
    steps = await rows(dsn, "SELECT tree, node FROM ivr_steps ORDER BY seq")
    assert steps and {(s["tree"], s["node"]) for s in steps} == {("main", "survey")}
    [call] = await rows(dsn, "SELECT ended_by FROM calls")
    assert call["ended_by"] == "engine"
