"""The live picture (engine/http/status.py) the wallboard and the API show: an agent's call, agents counted
per queue, offered today. It reads the engine's view (engine/runtime/face.py) over the real pure ACD; the
database answers as PostgreSQL would."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from engine.core import acd as A
from engine.core import agent as ag
from engine.http.status import LiveStatus
from engine.runtime.face import LiveView
from engine.shared.events import Hub

T0 = 1_000_000_000.0   # 2001-09-09 01:46:40 UTC


def queue(name: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, service_level=SimpleNamespace(seconds=20, percent=80))


class Pool:
    """PostgreSQL's answer to the service-level query: the callers who left each queue today."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows

    async def fetch(self, sql: str, *args) -> list[dict]:
        return self.rows


class Calls:
    def __init__(self, callers: dict[str, str], outbound: set[str] = frozenset()) -> None:
        self.callers, self.outbound = callers, outbound

    def caller_of(self, call_id: str) -> str:
        return self.callers.get(call_id, "")

    def is_outbound(self, call_id: str) -> bool:
        return call_id in self.outbound


def engine(acd: A.Acd, *, rows: list[dict] | None = None, calls: Calls | None = None) -> LiveView:
    """The view app.py builds, over the ACD, the calls and the database (no campaigns)."""
    ready = asyncio.Event()
    if rows is not None:
        ready.set()
    config = SimpleNamespace(queues=[queue("support"), queue("general")], campaigns=[], agents=[],
                             reports=SimpleNamespace(short_abandon_seconds=5.0))
    return LiveView(config=lambda: config, health=dict, db=SimpleNamespace(ready=ready, pool=Pool(rows or [])),
                    hub=Hub(), acd=SimpleNamespace(acd=acd), calls=calls or Calls({}),
                    dialer=SimpleNamespace(by_call={}, campaigns={}, control={}), phones=None)  # type: ignore[arg-type]


def two_agents_in_two_queues() -> A.Acd:
    acd = A.Acd({"support": A.QueueRules("support"), "general": A.QueueRules("general")},
                {"9001": A.AgentProfile("9001", endpoint="PJSIP/agent9001"),
                 "9002": A.AgentProfile("9002", endpoint="PJSIP/agent9002")})
    for agent_id, at in (("9001", T0), ("9002", T0 + 1)):   # 9001 idle longest: offered first
        acd.handle(A.AgentRequest(agent_id, ag.LogIn(frozenset({"support", "general"}), "")), at)
    return acd


async def snapshot(e: LiveView, now: float) -> dict:
    return await LiveStatus(e).snapshot(now=now)


def by_name(snap: dict, key: str) -> dict[str, dict]:
    return {x["name" if key == "queues" else "id"]: x for x in snap[key]}


async def test_an_agent_on_a_call_shows_the_calls_queue_and_caller_not_their_queues():
    acd = two_agents_in_two_queues()
    acd.handle(A.Enqueue("c1", "support"), T0 + 10)
    acd.handle(A.OfferAnswered("c1", "9001"), T0 + 12)
    agents = by_name(await snapshot(engine(acd, calls=Calls({"c1": "5557010"})), T0 + 20), "agents")
    assert agents["9001"]["state"] == "on_call" and agents["9001"]["call_id"] == "c1"
    assert (agents["9001"]["call_queue"], agents["9001"]["caller"]) == ("support", "5557010")
    assert agents["9001"]["queues"] == ["general", "support"]   # still logged in to both
    assert (agents["9002"]["call_queue"], agents["9002"]["caller"]) == (None, None)


async def test_an_agent_on_a_call_counts_on_the_calls_queue_only():
    acd = two_agents_in_two_queues()
    acd.handle(A.Enqueue("c1", "general"), T0 + 10)
    acd.handle(A.OfferAnswered("c1", "9001"), T0 + 12)
    queues = by_name(await snapshot(engine(acd), T0 + 20), "queues")
    assert queues["general"]["agents"] == {"on_call": 1, "available": 1}
    assert queues["support"]["agents"] == {"available": 1}   # 9001 is not on a support call


async def test_a_ringing_agent_counts_on_the_queue_of_the_call_offered():
    acd = two_agents_in_two_queues()
    acd.handle(A.Enqueue("c1", "support"), T0 + 10)
    snap = await snapshot(engine(acd, calls=Calls({"c1": "5557011"})), T0 + 11)
    queues, agents = by_name(snap, "queues"), by_name(snap, "agents")
    assert agents["9001"]["state"] == "reserved"
    assert (agents["9001"]["call_queue"], agents["9001"]["caller"]) == ("support", "5557011")
    assert queues["support"]["agents"] == {"reserved": 1, "available": 1}
    assert queues["general"]["agents"] == {"available": 1}


async def test_a_paused_or_available_agent_counts_on_every_queue_they_are_logged_in_to():
    acd = two_agents_in_two_queues()
    acd.handle(A.AgentRequest("9002", ag.Pause("lunch")), T0 + 5)
    queues = by_name(await snapshot(engine(acd), T0 + 20), "queues")
    assert queues["support"]["agents"] == queues["general"]["agents"] == {"available": 1, "paused": 1}


async def test_offered_today_counts_the_callers_waiting_now():
    acd = two_agents_in_two_queues()
    for agent_id in ("9001", "9002"):
        acd.handle(A.AgentRequest(agent_id, ag.Pause("lunch")), T0 + 5)   # nobody free: callers wait
    acd.handle(A.Enqueue("c1", "support"), T0 + 10)
    acd.handle(A.Enqueue("c2", "general"), T0 + 11)
    acd.handle(A.Enqueue("dial-answered", "general"), T0 + 12)   # a campaign's call: not inbound
    left_today = [{"queue": "support", "offered": 3, "answered": 2, "abandoned": 1, "in_sl": 2}]
    e = engine(acd, rows=left_today, calls=Calls({}, outbound={"dial-answered"}))
    queues = by_name(await snapshot(e, T0 + 20), "queues")
    assert queues["support"]["offered_today"] == 4   # three who left, one waiting now
    assert queues["support"]["answered_today"] == 2 and queues["support"]["service_level_today"] == 2 / 3
    # nobody has left general today yet: its caller waiting now is offered, the outbound call is not
    assert queues["general"]["offered_today"] == 1 and queues["general"]["waiting"] == 2
    assert queues["general"]["answered_today"] is None and queues["general"]["service_level_today"] is None


async def test_offered_today_is_unknown_with_the_database_down():
    acd = two_agents_in_two_queues()
    acd.handle(A.AgentRequest("9001", ag.Pause("lunch")), T0 + 5)
    acd.handle(A.AgentRequest("9002", ag.Pause("lunch")), T0 + 5)
    acd.handle(A.Enqueue("c1", "support"), T0 + 10)
    queues = by_name(await snapshot(engine(acd, rows=None), T0 + 20), "queues")
    assert queues["support"]["offered_today"] is None and queues["support"]["waiting"] == 1
