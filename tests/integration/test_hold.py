"""Hold with real calls: the agent phone's hold key (a re-INVITE with a=sendonly) and the API's.

The caller's RTP comes to a socket of the test's (tests/sipp/caller_listen.xml), so what the caller
hears is measured: music on hold while held, and no music before or after. The sipp agent sends no
audio, so the only loud audio a caller can hear is the music.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import aiohttp

from engine.app import Engine
from engine.core import agent as ag
from engine.services.reports import agents_report, inbound_report

from .harness import rows, running, sipp, wait_until_quiet
from .test_acd import acd_config, agent_phone, log_in
from .test_api import Api, with_api
from .test_transfer import bridged_to_9001

PACKET_SECONDS = 0.02   # 20 ms of PCMU a packet


def ulaw_level(payload: bytes) -> float:
    """The RMS of a PCMU payload (G.711 mu-law decoded to 14-bit linear)."""
    total = 0
    for byte in payload:
        b = ~byte & 0xFF
        sample = (((b & 0x0F) << 3) + 0x84 << ((b >> 4) & 7)) - 0x84
        total += sample * sample
    return math.sqrt(total / max(1, len(payload)))


@dataclass
class Ear(asyncio.DatagramProtocol):
    """What the caller hears: (wall time, RMS) of each PCMU packet Asterisk sends to the caller."""

    heard: list[tuple[float, float]] = field(default_factory=list)

    def datagram_received(self, data: bytes, addr) -> None:
        if len(data) > 12 and data[1] & 0x7F == 0:
            self.heard.append((time.time(), ulaw_level(data[12:])))

    def loud(self, start: float, end: float, level: float = 30.0) -> int:
        return sum(1 for at, rms in self.heard if start <= at < end and rms > level)


async def ear() -> tuple[Ear, int, asyncio.DatagramTransport]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Ear, local_addr=("127.0.0.1", 0))
    return protocol, transport.get_extra_info("sockname")[1], transport


async def hold_events(dsn: str) -> list:
    return await rows(dsn, "SELECT kind, detail, at FROM call_events WHERE kind IN ('held', 'resumed') ORDER BY at")


async def agent_states(dsn: str) -> list:
    return await rows(dsn, "SELECT state, at FROM agent_states WHERE agent_id = '9001' ORDER BY at")


async def test_the_agent_phones_hold_key_plays_music_to_the_caller_and_counts_as_hold(stack, dsn, tmp_path):
    listener, port, transport = await ear()
    events: list[tuple[str, dict]] = []
    engine = Engine(acd_config(stack, dsn, tmp_path))
    try:
        async with running(engine):
            engine.writer.hub.subscribe(lambda kind, data: events.append((kind, data)))
            await log_in(engine, "9001", "support")
            phone, phone_done = await agent_phone(stack, 1, "agent_hold.xml", answer_ms="300", hold_after_ms="1000",
                                                  hold_ms="2500", hangup_ms="1000")
            (await sipp(stack, "caller_listen.xml", "3100",
                        variables={"caller": "5557101", "codecs": "0", "rtp_port": str(port)})).check()
            (await phone_done()).check()
            await wait_until_quiet(engine, 1)
            await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE)
            cfg = engine.config
    finally:
        transport.close()
    held, resumed = await hold_events(dsn)
    assert (held["kind"], held["detail"], resumed["kind"], resumed["detail"]) == (
        "held", "caller by phone", "resumed", "caller by phone")
    hold = (resumed["at"] - held["at"]).total_seconds()
    assert 2.0 < hold < 3.2, hold
    h0, h1 = held["at"].timestamp(), resumed["at"].timestamp()
    # the caller hears the music while held (50 packets a second), and none before or after
    assert listener.loud(h0 + 0.3, h1) >= 0.6 * (h1 - h0 - 0.3) / PACKET_SECONDS, listener.heard[-5:]
    [connected] = await rows(dsn, "SELECT at FROM call_events WHERE kind = 'connected'")
    assert listener.loud(connected["at"].timestamp(), h0) <= 2
    assert listener.loud(h1 + 0.3, time.time()) <= 2
    # the agent's own state: hold apart from talk, one call
    states = await agent_states(dsn)
    assert [s["state"] for s in states] == ["available", "reserved", "on_call", "on_hold", "on_call", "wrap_up",
                                            "available"]
    on_hold = states[3]
    assert abs((states[4]["at"] - on_hold["at"]).total_seconds() - hold) < 0.3
    assert [k for k, _ in events if k in ("call.held", "call.resumed")] == ["call.held", "call.resumed"]
    assert dict(events)["call.held"]["held_party"] == "caller" and dict(events)["call.held"]["agent_id"] == "9001"
    # reports: hold is its own figure, talk is talk, the call counts once
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    async with engine_pool(dsn) as conn:
        agents = {r["agent"]: r for r in (await agents_report(conn, cfg, start, end)).rows}
        inbound = {r["queue"]: r for r in (await inbound_report(conn, cfg, start, end)).rows}
    me = agents["9001"]
    assert abs(me["hold_seconds"] - hold) < 0.3 and 1.5 < me["talk_seconds"] < 3.0, me
    assert me["calls_inbound"] == 1
    support = inbound["support"]
    assert abs(support["hold_seconds"] - hold) < 0.3
    assert abs(support["aht_seconds"] - (support["talk_seconds"] + hold + support["wrap_up_seconds"])) < 0.3


def engine_pool(dsn: str):
    import asyncpg

    class _Conn:
        async def __aenter__(self):
            self.conn = await asyncpg.connect(dsn)
            return self.conn

        async def __aexit__(self, *exc):
            await self.conn.close()
    return _Conn()


async def test_the_api_holds_and_resumes_a_connected_call(stack, dsn, tmp_path):
    listener, port, transport = await ear()
    engine = Engine(with_api(acd_config(stack, dsn, tmp_path)))
    try:
        async with running(engine), aiohttp.ClientSession() as session:
            api = Api(engine, session)
            await log_in(engine, "9001", "support")
            phone, phone_done = await agent_phone(stack, 1, answer_ms="300", hangup_ms="4000")
            caller = asyncio.create_task(sipp(stack, "caller_listen.xml", "3100",
                                              variables={"codecs": "0", "rtp_port": str(port)}))
            call_id = await bridged_to_9001(engine)
            status, answer = await api.post(f"/calls/{call_id}/hold")
            assert (status, answer) == (200, {"call_id": call_id, "held": True})
            assert engine.acd.acd.agents["9001"].phase is ag.AgentPhase.ON_HOLD
            await listener_hears(listener, 100)   # two seconds of music: a window worth counting
            status, answer = await api.post(f"/calls/{call_id}/unhold")
            assert (status, answer) == (200, {"call_id": call_id, "held": False})
            assert engine.acd.acd.agents["9001"].phase is ag.AgentPhase.ON_CALL
            (await caller).check()
            (await phone_done()).check()
            await wait_until_quiet(engine, 1)
            status, err = await api.post(f"/calls/{call_id}/hold")   # over: nothing to hold
            assert status == 409 and "not connected" in err["error"]
    finally:
        transport.close()
    held, resumed = await hold_events(dsn)
    assert (held["detail"], resumed["detail"]) == ("caller by api", "caller by api")
    h0, h1 = held["at"].timestamp(), resumed["at"].timestamp()
    assert listener.loud(h0 + 0.3, h1) >= 0.6 * (h1 - h0 - 0.3) / PACKET_SECONDS
    assert listener.loud(h1 + 0.3, time.time()) <= 2
    assert [s["state"] for s in await agent_states(dsn)][2:5] == ["on_call", "on_hold", "on_call"]


async def listener_hears(listener: Ear, packets: int) -> None:
    """Until the caller has heard ``packets`` loud packets since now (the music)."""
    since = time.time()
    async with asyncio.timeout(10):
        while listener.loud(since, time.time() + 1) < packets:
            await asyncio.sleep(0.05)   # polling what a socket received, not synchronising on time


async def test_a_real_phones_hold_and_resume_keys_hold_the_caller(stack, dsn, tmp_path):
    """Once with a real softphone (Debian's baresip) as agent 9001's desk phone: its own hold and
    resume, not a sipp script written to match the engine."""
    from .softphone import Baresip, is_event

    listener, port, transport = await ear()
    engine = Engine(acd_config(stack, dsn, tmp_path))
    try:
        async with running(engine), Baresip.running(stack, 1, tmp_path / "baresip") as phone:
            await log_in(engine, "9001", "support")
            caller = asyncio.create_task(sipp(stack, "caller_listen.xml", "3100",
                                              variables={"codecs": "0", "rtp_port": str(port)}))
            incoming = await phone.event(is_event("CALL_INCOMING"))
            await phone.command("accept")
            await phone.event(is_event("CALL_ESTABLISHED", direction="incoming"), after=incoming)
            async with asyncio.timeout(10):
                await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.ON_CALL)
                await phone.command("hold")
                await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.ON_HOLD)
            await listener_hears(listener, 25)
            async with asyncio.timeout(10):
                await phone.command("resume")
                await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.ON_CALL)
            await phone.command("hangup")
            (await caller).check()
            await wait_until_quiet(engine, 1)
    finally:
        transport.close()
    held, resumed = await hold_events(dsn)
    assert (held["detail"], resumed["detail"]) == ("caller by phone", "caller by phone")
    assert listener.loud(resumed["at"].timestamp() + 0.3, time.time()) <= 2


async def test_a_hold_that_outlives_an_engine_restart_ends_when_the_phone_resumes(stack, dsn, tmp_path):
    """The engine stops while the caller is held: the next one restores the agent on hold, the
    caller keeps the music meanwhile (it is Asterisk's), and the phone's resume gives the caller
    back to the agent, with the hold counted from where it began."""
    from dataclasses import replace

    listener, port, transport = await ear()
    cfg = acd_config(stack, dsn, tmp_path)
    cfg = replace(cfg, engine=replace(cfg.engine, shutdown_grace_seconds=0.1))
    try:
        async with running(Engine(cfg)) as first:
            await log_in(first, "9001", "support")
            phone, phone_done = await agent_phone(stack, 1, "agent_hold.xml", answer_ms="200", hold_after_ms="500",
                                                  hold_ms="5000", hangup_ms="1000")
            caller = asyncio.create_task(sipp(stack, "caller_listen.xml", "3100",
                                              variables={"codecs": "0", "rtp_port": str(port)}))
            async with asyncio.timeout(10):
                await first.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.ON_HOLD)
            await first.writer.wait_idle()
        stopped = time.time()
        second = Engine(cfg)
        async with running(second):
            assert second.acd.acd.agents["9001"].phase is ag.AgentPhase.ON_HOLD
            await listener_hears(listener, 10)   # still the music, with no engine in between
            async with asyncio.timeout(10):      # the phone's resume
                await second.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.ON_CALL)
            (await phone_done()).check()
            (await caller).check()
            await wait_until_quiet(second, 1)
            await second.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE)
    finally:
        transport.close()
    states = await agent_states(dsn)
    assert [s["state"] for s in states] == ["available", "reserved", "on_call", "on_hold", "on_call", "wrap_up",
                                            "available"]
    hold = (states[4]["at"] - states[3]["at"]).total_seconds()
    assert 4.0 < hold < 6.5, hold   # from the hold key to the resume, across the restart
    assert stopped < states[4]["at"].timestamp()
    held, resumed = await hold_events(dsn)   # its end came to an engine that never saw it begin
    assert (held["kind"], resumed["kind"]) == ("held", "resumed")
    assert abs((resumed["at"] - states[4]["at"]).total_seconds()) < 0.5
    assert listener.loud(states[4]["at"].timestamp() + 0.3, time.time()) <= 2
