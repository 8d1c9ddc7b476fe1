"""The outbound dialer with real calls: Asterisk, PostgreSQL, sipp customers behind the carrier
(tests/sipp/customer_mix.xml: what each does is chosen by the last digit of its number) and sipp
agent phones. The customers' voices are pcaps made at run time (tools/make_rtp_pcap.py), so AMD
hears speech or a machine's greeting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import pytest

from engine.app import Engine
from engine.config.campaign import Agentless, Amd, CallingHours, CampaignConfig, NationalDnc, Retry
from engine.core import agent as ag
from engine.core.attempt import Stage

from .harness import REPO, SIPP_DIR, running, sipp, sipp_listening
from .test_acd import acd_config, agent_phone, log_in, rows

ALL_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Any time of day, so the tests do not depend on when they run (the hours rule has its own test).
ANY_TIME = CallingHours(start="00:00", end="24:00", days=ALL_DAYS, legal_start="00:00", legal_end="24:00")
SAFE_HARBOR = "demo-thanks"          # a core sound: the test measures that it was played whole


def campaign(**changes: object) -> CampaignConfig:
    c = CampaignConfig(
        name="renewals", mode="predictive", queue="renewals", dial="PJSIP/{number}@carrier",
        caller_id="+12125550100", ring_timeout_seconds=15, safe_harbor_sound=SAFE_HARBOR,
        amd=Amd(enabled=True, on_machine="hangup"), calling_hours=ANY_TIME,
        retry=Retry(busy="10m", no_answer="2h", machine="4h", max_attempts=6),
        success_dispositions=("SALE", "APPT"), national_dnc=NationalDnc(required=False),
        dispositions={"1": "SALE", "9": "DNC"}, pacing="progressive")
    return replace(c, **changes)  # type: ignore[arg-type]


def dialer_config(stack, dsn, tmp_path, *campaigns: CampaignConfig, wrapup: float = 1):
    cfg = acd_config(stack, dsn, tmp_path)
    queues = tuple(replace(q, wrapup_seconds=wrapup) if q.name == "renewals" else q for q in cfg.queues)
    return replace(cfg, queues=queues, campaigns=campaigns)


async def add_leads(dsn: str, campaign: str, numbers: list[str], *, zone: str = "America/New_York",
                    consent: bool = True, crm: str = "crm") -> dict[str, int]:
    """Leads with one number each, as the importer leaves them; returns number -> lead id."""
    conn = await asyncpg.connect(dsn)
    try:
        ids = {}
        for i, number in enumerate(numbers):
            lead = await conn.fetchval("""
                INSERT INTO leads (campaign, external_id, name, timezone, timezone_source, consent_autodial, priority,
                                   next_due_at)
                VALUES ($1, $2, $3, $4, 'column', $5, $6, now() - interval '1 minute') RETURNING id""",
                campaign, f"{crm}-{i}", f"Customer {i}", zone, consent, len(numbers) - i)
            await conn.execute("""
                INSERT INTO lead_numbers (lead_id, position, campaign, number, time_zones)
                VALUES ($1, 0, $2, $3, ARRAY[$4])""", lead, campaign, number, zone)
            ids[number] = lead
        return ids
    finally:
        await conn.close()


async def migrated(engine: Engine) -> None:
    async with asyncio.timeout(20):
        await engine.db.ready.wait()


@pytest.fixture(scope="module")
def voices(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("voices")
    files = {}
    for preset in ("human", "machine"):
        files[preset] = out / f"{preset}.pcap"
        subprocess.run([sys.executable, str(REPO / "tools" / "make_rtp_pcap.py"), "--preset", preset,
                        str(files[preset])], check=True)
    return files


async def customers(stack, voices, calls: int, *, timeout: int = 90, **variables: str):
    """The carrier's side: a sipp answering ``calls`` calls as customer_mix.xml says."""
    args = ["sipp", "-sf", str(SIPP_DIR / "customer_mix.xml"), "-key", "human_pcap", str(voices["human"]),
            "-key", "machine_pcap", str(voices["machine"]), "-i", "127.0.0.1",
            "-p", stack["ASTERISK_CARRIER_SIP_PORT"], "-m", str(calls), "-nostdin", "-timeout", f"{timeout}s",
            "-timeout_error", "-trace_err", "-error_file", "/dev/stderr"]
    for k, v in {"ring_ms": "300", **variables}.items():
        args += ["-set", k, v]
    return await sipp_listening(args, timeout=timeout + 10)


def gsm_seconds(stack, sound: str) -> float:
    """The length of a core sound (GSM: 33 bytes per 20 ms frame) in the stack's Asterisk (sounds/en
    may be a link to the voice's own folder)."""
    sounds = Path(stack["ASTERISK_SOUNDS_DIR"])
    [f, *_] = [*sounds.glob(f"{sound}.gsm"), *sounds.parent.glob(f"*/{sound}.gsm")]
    return f.stat().st_size / 33 * 0.02


async def test_live_answers_reach_agents_and_every_outcome_is_classified_and_retried(stack, dsn, tmp_path, voices):
    # Two agents, six numbers dialled at once: two people (...1), a machine (...2), busy (...3),
    # a decline (...4), an unknown number (...9, a 404).
    cfg = dialer_config(stack, dsn, tmp_path, campaign(pacing="ratio:3"), wrapup=60)
    humans = ["+12125550111", "+12125550121"]
    numbers = [*humans, "+12125550132", "+12125550143", "+12125550154", "+12125550169"]
    engine = Engine(cfg)
    carrier, carrier_done = await customers(stack, voices, 6)
    async with running(engine):
        await migrated(engine)
        leads = await add_leads(dsn, "renewals", numbers)
        phones = [await agent_phone(stack, i, answer_ms="100", hangup_ms="3000") for i in (1, 2)]
        await log_in(engine, "9001", "renewals")
        await log_in(engine, "9002", "renewals")
        async with asyncio.timeout(60):
            await engine.acd.wait_until(lambda acd: all(acd.agents[a].phase is ag.AgentPhase.WRAP_UP
                                                        for a in ("9001", "9002")))
        for i, (_, done) in enumerate(phones):
            (await done()).check()
        # The agents key their dispositions from the keypad during wrap-up: 9001 a sale, 9002 DNC.
        (await sipp(stack, "agent_feature.xml", "*161", variables={"agent": "agent9001"})).check()
        (await sipp(stack, "agent_feature.xml", "*169", variables={"agent": "agent9002"})).check()
        async with asyncio.timeout(30):
            await engine.dialer.wait_until(lambda d: d.closed >= 6)
        await engine.writer.wait_idle()
    (await carrier_done()).check()

    attempts = {r["number"]: r for r in await rows(dsn, "SELECT * FROM dial_attempts")}
    assert set(attempts) == set(numbers)
    by_lead = {r["id"]: r for r in await rows(dsn, "SELECT * FROM leads")}
    outcome = {n: (attempts[n]["outcome"], attempts[n]["amd_status"]) for n in numbers}
    assert outcome == {humans[0]: ("answered", "HUMAN"), humans[1]: ("answered", "HUMAN"),
                       "+12125550132": ("machine", "MACHINE"), "+12125550143": ("busy", None),
                       "+12125550154": ("no_answer", None), "+12125550169": ("invalid_number", None)}
    # The people were bridged to the agents within the 2 s grace, and each agent's disposition stuck.
    answered = [attempts[n] for n in humans]
    assert {a["agent_id"] for a in answered} == {"9001", "9002"}
    assert {a["agent_id"]: a["disposition"] for a in answered} == {"9001": "SALE", "9002": "DNC"}
    for a in answered:
        wait = (a["connected_at"] - a["verdict_at"]).total_seconds()
        assert 0 <= wait < 2.0, wait
        assert (a["answered_at"] - a["placed_at"]).total_seconds() >= 0.25   # it rang first (ring_ms 300)
        assert a["wrapup_seconds"] is not None and a["call_id"] is not None
    sale = next(a for a in answered if a["disposition"] == "SALE")
    dnc = next(a for a in answered if a["disposition"] == "DNC")
    assert (by_lead[sale["lead_id"]]["status"], by_lead[sale["lead_id"]]["result"]) == ("done", "SALE")
    assert by_lead[dnc["lead_id"]]["status"] == "dnc"
    [listed] = await rows(dsn, "SELECT * FROM dnc_numbers")
    assert (listed["number"], listed["scope"], listed["source"]) == (dnc["number"], "global", "agent:9002")
    # Retries by outcome: busy 10 m, no answer (a decline) 2 h, machine 4 h; a 404 ends the lead.
    for number, delay in (("+12125550143", 600), ("+12125550154", 7200), ("+12125550132", 4 * 3600)):
        lead = by_lead[leads[number]]
        due = (lead["next_due_at"] - attempts[number]["ended_at"]).total_seconds()
        assert lead["status"] == "retry" and abs(due - delay) < 5, (number, lead["status"], due)
    assert by_lead[leads["+12125550169"]]["status"] == "invalid"
    # The answered calls are calls like any other, outbound, with the agent who took them.
    calls = await rows(dsn, "SELECT * FROM calls ORDER BY started_at")
    assert sorted((c["direction"], c["dialed_number"]) for c in calls) == [("outbound", n) for n in humans]
    assert all(c["ended_at"] is not None and c["answered_at"] is not None for c in calls)
    # Every dial had its recorded "allowed" first.
    decisions = await rows(dsn, "SELECT d.allowed, d.reason FROM dial_attempts a JOIN dial_decisions d "
                                "ON d.id = a.decision_id")
    assert len(decisions) == 6 and all(d["allowed"] and d["reason"] == "allowed" for d in decisions)


@contextlib.asynccontextmanager
async def one_abandon(stack, dsn, tmp_path, voices):
    """A campaign dials one person whose agent's phone only rings: nobody takes the call within
    2 s, an abandon. Yields the engine (still running, the attempt closed and written)."""
    cfg = dialer_config(stack, dsn, tmp_path, campaign())
    engine = Engine(cfg)
    carrier, carrier_done = await customers(stack, voices, 1)
    async with running(engine):
        await migrated(engine)
        await add_leads(dsn, "renewals", ["+12125550111"])
        phone, phone_done = await agent_phone(stack, 1, "agent_noanswer.xml")
        await log_in(engine, "9001", "renewals")
        async with asyncio.timeout(40):
            await engine.dialer.wait_until(lambda d: d.closed >= 1)
        await engine.writer.wait_idle()
        yield engine
        await phone_done()
    (await carrier_done()).check()


async def test_no_agent_within_two_seconds_is_an_abandon_with_the_safe_harbor_message(stack, dsn, tmp_path, voices):
    async with one_abandon(stack, dsn, tmp_path, voices) as engine:
        counters = engine.dialer.campaigns["renewals"]
        assert (counters.tally.live_answers, counters.tally.abandoned) == (1, 1)
    [a] = await rows(dsn, "SELECT * FROM dial_attempts")
    assert (a["outcome"], a["amd_status"], a["connected_at"]) == ("abandoned", "HUMAN", None)
    [call] = await rows(dsn, "SELECT * FROM calls")
    events = [e["kind"] for e in await rows(dsn, "SELECT kind FROM call_events WHERE call_id = $1 ORDER BY at",
                                             call["id"])]
    assert "abandoned" in events and "connected" not in events
    # The message was played whole before the engine hung up: 2 s grace, then the message.
    held = (call["ended_at"] - a["verdict_at"]).total_seconds()
    assert held >= 2.0 + gsm_seconds(stack, SAFE_HARBOR) - 0.3, held
    assert call["ended_by"] == "engine"
    [lead] = await rows(dsn, "SELECT status FROM leads")
    assert lead["status"] == "retry"


def zone_at_night() -> str:
    """A time zone where it is between 01:00 and 05:59 now (Etc/GMT+N is UTC-N)."""
    hour = datetime.now(timezone.utc).hour
    for offset in range(-12, 15):
        if 1 <= (hour + offset) % 24 <= 5:
            return f"Etc/GMT{-offset:+d}" if offset else "Etc/UTC"
    raise AssertionError("unreachable")


async def test_dnc_and_calling_hours_refuse_dials_with_their_reason(stack, dsn, tmp_path):
    hours = CallingHours(start="08:00", end="21:00", days=ALL_DAYS)
    cfg = dialer_config(stack, dsn, tmp_path, campaign(calling_hours=hours))
    engine = Engine(cfg)
    async with running(engine):
        await migrated(engine)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("INSERT INTO dnc_numbers (number, scope, source) VALUES ('+12125550111', 'global', 'cli')")
        finally:
            await conn.close()
        listed = await add_leads(dsn, "renewals", ["+12125550111"])
        night = zone_at_night()
        asleep = await add_leads(dsn, "renewals", ["+12125550121"], zone=night, crm="night")
        await log_in(engine, "9001", "renewals")
        async with asyncio.timeout(20):
            await engine.dialer.wait_until(lambda d: d.refused >= 2)
    assert await rows(dsn, "SELECT * FROM dial_attempts") == []
    decisions = {r["lead_id"]: r for r in await rows(dsn, "SELECT * FROM dial_decisions")}
    dnc, hours_refusal = decisions[listed["+12125550111"]], decisions[asleep["+12125550121"]]
    assert (dnc["allowed"], dnc["reason"]) == (False, "dnc_global")
    assert (hours_refusal["allowed"], hours_refusal["reason"]) == (False, "outside_hours")
    assert night in hours_refusal["detail"] or night in json.dumps(json.loads(hours_refusal["rules"]))
    leads = {r["id"]: r for r in await rows(dsn, "SELECT * FROM leads")}
    assert leads[listed["+12125550111"]]["status"] == "dnc"
    later = leads[asleep["+12125550121"]]
    assert later["status"] == "new" and later["next_due_at"] == hours_refusal["retry_at"]
    assert hours_refusal["retry_at"].timestamp() > time.time()


async def test_preview_offers_the_lead_to_the_agent_before_dialling(stack, dsn, tmp_path, voices):
    cfg = dialer_config(stack, dsn, tmp_path, campaign(mode="preview", pacing=None, amd=Amd()), wrapup=60)
    engine = Engine(cfg)
    carrier, carrier_done = await customers(stack, voices, 1)
    async with running(engine):
        await migrated(engine)
        # Preview needs no consent to autodial: the agent places the call.
        await add_leads(dsn, "renewals", ["+12125550111"], consent=False)
        phone, phone_done = await agent_phone(stack, 1, answer_ms="300", hangup_ms="2000")
        await log_in(engine, "9001", "renewals")
        async with asyncio.timeout(40):
            await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.WRAP_UP)
        (await phone_done()).check()
        (await sipp(stack, "agent_feature.xml", "*161", variables={"agent": "agent9001"})).check()
        async with asyncio.timeout(20):
            await engine.dialer.wait_until(lambda d: d.closed >= 1)
    (await carrier_done()).check()
    [a] = await rows(dsn, "SELECT * FROM dial_attempts")
    assert (a["mode"], a["outcome"], a["agent_id"], a["disposition"]) == ("preview", "answered", "9001", "SALE")
    # The agent was on the line before the customer's phone rang.
    [offer] = await rows(dsn, "SELECT * FROM queue_offers")
    assert offer["agent_id"] == "9001" and offer["offered_at"] < a["placed_at"] < a["connected_at"]
    # Asked when the lead was offered, and again when the agent answered, just before the dial.
    decisions = await rows(dsn, "SELECT mode, allowed FROM dial_decisions ORDER BY seq")
    assert [(d["mode"], d["allowed"]) for d in decisions] == [("preview", True), ("preview", True)]


async def test_agentless_plays_the_message_and_takes_the_key_as_the_disposition(stack, dsn, tmp_path):
    reminder = campaign(name="reminders", mode="agentless", queue=None, pacing=None, amd=Amd(),
                        safe_harbor_sound=None, agentless=Agentless(message=("beep",), keys={"1": "CONFIRMED"}),
                        success_dispositions=("CONFIRMED",))
    engine = Engine(dialer_config(stack, dsn, tmp_path, reminder))
    args = ["sipp", "-sf", str(SIPP_DIR / "customer_keys.xml"), "-i", "127.0.0.1",
            "-p", stack["ASTERISK_CARRIER_SIP_PORT"], "-m", "1", "-nostdin", "-timeout", "60s", "-timeout_error",
            "-trace_err", "-error_file", "/dev/stderr", "-set", "key", "1", "-set", "key_delay_ms", "1500"]
    customer, customer_done = await sipp_listening(args, timeout=30)
    async with running(engine):
        await migrated(engine)
        await add_leads(dsn, "reminders", ["+12125550111"])
        async with asyncio.timeout(40):
            await engine.dialer.wait_until(lambda d: d.closed >= 1)
    (await customer_done()).check()
    [a] = await rows(dsn, "SELECT * FROM dial_attempts")
    assert (a["mode"], a["outcome"], a["disposition"], a["agent_id"]) == ("agentless", "answered", "CONFIRMED", None)
    [lead] = await rows(dsn, "SELECT status, result FROM leads")
    assert (lead["status"], lead["result"]) == ("done", "CONFIRMED")


async def test_a_restart_closes_the_call_it_left_ringing_and_gives_the_lead_back(stack, dsn, tmp_path, voices):
    cfg = dialer_config(stack, dsn, tmp_path, campaign())
    carrier, carrier_done = await customers(stack, voices, 1)
    engine = Engine(cfg)
    async with running(engine):
        await migrated(engine)
        [lead_id] = (await add_leads(dsn, "renewals", ["+12125550115"])).values()   # ...5 rings and rings
        await log_in(engine, "9001", "renewals")
        async with asyncio.timeout(20):
            await engine.dialer.wait_until(lambda d: "renewals" in d.campaigns and any(   # started, then ringing
                a.state.rang for a in d.campaigns["renewals"].attempts.values()))
    # Stopped while the customer's phone rings. The next start (the campaign paused meanwhile)
    # closes the attempt as lost, hangs up the call left in Asterisk and returns the lead at once.
    engine = Engine(replace(cfg, campaigns=(campaign(active=False),)))
    async with running(engine):
        async with asyncio.timeout(20):
            await engine.dialer.recovered.wait()
            await engine.calls.lost_swept.wait()
        (await carrier_done()).check()            # the customer's phone stopped ringing (CANCEL)
    [a] = await rows(dsn, "SELECT * FROM dial_attempts")
    assert a["outcome"] == "lost" and a["ended_at"] is not None
    [lead] = await rows(dsn, "SELECT * FROM leads")
    assert (lead["id"], lead["status"], lead["attempts"], lead["locked_by"]) == (lead_id, "retry", 1, None)
    assert lead["next_due_at"] <= datetime.now(timezone.utc)


async def test_a_restart_keeps_the_attempt_of_a_customer_still_with_the_agent(stack, dsn, tmp_path, voices):
    """Seen in tools/faults.py: a restart marked such an attempt ``lost`` and gave its lead back,
    to be dialled again while (or just after) the customer talked to the agent; the answered call
    was recorded as neither answered nor abandoned. It goes on in its campaign and ends answered."""
    cfg = dialer_config(stack, dsn, tmp_path, campaign())
    cfg = replace(cfg, engine=replace(cfg.engine, shutdown_grace_seconds=0.1))
    carrier, carrier_done = await customers(stack, voices, 1)
    phone, phone_done = await agent_phone(stack, 1, answer_ms="100", hangup_ms="6000")
    engine = Engine(cfg)
    async with running(engine):
        await migrated(engine)
        [lead_id] = (await add_leads(dsn, "renewals", ["+12125550171"])).values()   # ...1: a person
        await log_in(engine, "9001", "renewals")
        async with asyncio.timeout(20):
            await engine.dialer.wait_until(lambda d: "renewals" in d.campaigns and any(
                a.stage is Stage.CONNECTED for a in d.campaigns["renewals"].attempts.values()))
    # stopped while the customer talks to 9001 (the call stays up in Asterisk)
    [a] = await rows(dsn, "SELECT * FROM dial_attempts")
    assert a["outcome"] is None
    engine = Engine(cfg)
    async with running(engine):
        async with asyncio.timeout(20):
            await engine.dialer.recovered.wait()
            await engine.dialer.wait_until(lambda d: "renewals" in d.campaigns)
        [kept] = engine.dialer.campaigns["renewals"].attempts.values()
        assert (kept.id, kept.stage, kept.agent_id) == (a["id"], Stage.CONNECTED, "9001")
        (await phone_done()).check()              # the agent talked to the end and hung up
        (await carrier_done()).check()            # the one call the customer got
        async with asyncio.timeout(20):
            await engine.dialer.wait_until(lambda d: not d.campaigns["renewals"].attempts)
    [a] = await rows(dsn, "SELECT * FROM dial_attempts")
    assert (a["outcome"], a["agent_id"]) == ("answered", "9001") and a["connected_at"] is not None
    [lead] = await rows(dsn, "SELECT * FROM leads")
    assert (lead["id"], lead["status"], lead["attempts"], lead["locked_by"]) == (lead_id, "done", 1, None)


async def test_the_dialer_leaves_a_blended_agent_to_inbound_while_inbound_needs_them(stack, dsn, tmp_path, voices):
    cfg = dialer_config(stack, dsn, tmp_path, campaign(amd=Amd()))
    engine = Engine(cfg)
    carrier, carrier_done = await customers(stack, voices, 2)
    async with running(engine):
        await migrated(engine)
        alice, alice_done = await agent_phone(stack, 1, calls=2, answer_ms="100", hangup_ms="1500")
        bob, bob_done = await agent_phone(stack, 2, calls=2, answer_ms="100", hangup_ms="1500")
        await log_in(engine, "9002", "renewals")               # Bob: outbound only
        await log_in(engine, "9001", "support", "renewals")    # Alice: blended
        # Inbound calls: support now has traffic, and Erlang C says it needs an agent on hand.
        for caller in ("5557001", "5557002"):
            (await sipp(stack, "caller_wait_bye.xml", "3100", variables={"caller": caller})).check()
        (await alice_done()).check()
        async with asyncio.timeout(10):
            await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE)
        assert engine.acd.acd.agents_needed("support", time.time()) >= 1
        assert engine.dialer.inbound_hold("renewals", time.time()) == 1
        # Two people to call: with Alice kept for inbound, one line at a time, both for Bob.
        await add_leads(dsn, "renewals", ["+12125550111", "+12125550121"])
        async with asyncio.timeout(60):
            await engine.dialer.wait_until(lambda d: d.closed >= 2)
        (await bob_done()).check()
        assert engine.acd.acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE
    (await carrier_done()).check()
    attempts = await rows(dsn, "SELECT * FROM dial_attempts ORDER BY placed_at")
    assert [(a["outcome"], a["agent_id"]) for a in attempts] == [("answered", "9002"), ("answered", "9002")]
    assert attempts[1]["placed_at"] >= attempts[0]["ended_at"]       # never two lines for one free agent


async def test_a_preview_is_checked_again_when_the_agent_answers(stack, dsn, tmp_path):
    cfg = dialer_config(stack, dsn, tmp_path, campaign(mode="preview", pacing=None, amd=Amd()), wrapup=1)
    engine = Engine(cfg)
    async with running(engine):
        await migrated(engine)
        await add_leads(dsn, "renewals", ["+12125550111"], consent=False)
        phone, phone_done = await agent_phone(stack, 1, answer_ms="2500", hangup_ms="1000")
        await log_in(engine, "9001", "renewals")
        async with asyncio.timeout(20):   # the lead is on the agent's phone, ringing
            await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.RESERVED)
        # The customer asks a colleague to stop calling them while the agent's phone rings.
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("INSERT INTO dnc_numbers (number, scope, source) VALUES ('+12125550111', 'global', "
                               "'agent:9002')")
        finally:
            await conn.close()
        async with asyncio.timeout(30):
            await engine.dialer.wait_until(lambda d: d.closed >= 1)
        await phone_done()
    decisions = await rows(dsn, "SELECT allowed, reason FROM dial_decisions ORDER BY seq")
    assert [(d["allowed"], d["reason"]) for d in decisions] == [(True, "allowed"), (False, "dnc_global")]
    [a] = await rows(dsn, "SELECT * FROM dial_attempts")
    assert a["outcome"] == "failed" and a["answered_at"] is None     # the number was never dialled
