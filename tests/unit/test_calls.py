"""The calls shell (engine/runtime/calls.py) around the real call machine, with Asterisk and the ACD played by
fakes: an agent who answers just as the caller hangs up is released, and nothing of the call stays."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from engine.runtime.ports import AgentLeg as Leg
from engine.runtime.calls import CallManager, call_id_for
from engine.config.model import load_config
from engine.core import acd as A
from engine.core import call as core


class Ari:
    """Asterisk's REST side: every request succeeds and is remembered."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    async def request(self, method: str, url_path: str, *, params=None, body=None) -> None:
        self.requests.append((method, url_path))

    async def post(self, url_path: str, **params) -> None:
        await self.request("POST", url_path)

    async def delete(self, url_path: str, **params) -> None:
        await self.request("DELETE", url_path)


class Acd:
    """The ACD as a call sees it: it queues the call, and turns its Dequeue down, as the real one
    does when it has just connected the call to an agent."""

    def __init__(self) -> None:
        self.legs: dict[str, Leg] = {}
        self.posted: list[A.Event] = []

    async def request(self, event: A.Event) -> None:
        if isinstance(event, A.Dequeue):
            raise A.Refused(f"call {event.call_id} is not waiting")

    def post(self, event: A.Event) -> None:
        self.posted.append(event)


async def nothing(*args) -> None:
    return None


async def test_an_agent_who_answers_as_the_caller_hangs_up_is_released_and_nothing_of_the_call_stays(example_env):
    cfg = load_config(example_env)
    ari, acd, tasks = Ari(), Acd(), set()

    def spawn(coro):
        task = asyncio.create_task(coro)
        tasks.add(task)
        return task

    writer = SimpleNamespace(submit=lambda write: None, hub=SimpleNamespace(publish=lambda kind, **data: None),
                             journal=SimpleNamespace(full=False, bytes=0))
    calls = CallManager(ari=ari, db=None, writer=writer, config=lambda: cfg, spawn=spawn, acd=acd,  # type: ignore[arg-type]
                        recordings=SimpleNamespace(stop_for=nothing))  # type: ignore[arg-type]
    call_id = call_id_for("caller-1")
    calls.on_event({"type": "StasisStart", "args": [], "channel": {
        "id": "caller-1", "state": "Ring", "caller": {"number": "5557010"}, "dialplan": {"exten": "3100"}}})
    async with asyncio.timeout(5):
        await calls.wait_until(lambda m: m.by_call[call_id].state.phase is core.Phase.QUEUED)

    # The caller hangs up (their StasisEnd is queued first) as the ACD connects agent 9001's answer.
    leg = Leg("agentleg-1", call_id, "9001", "offer-1")
    acd.legs[leg.channel_id] = leg
    calls.on_event({"type": "StasisEnd", "channel": {"id": "caller-1"}})
    calls.connect(leg, "support", alive=True)
    async with asyncio.timeout(5):
        await calls.wait_handled(1)
        await asyncio.gather(*tasks)

    assert ("DELETE", "/channels/agentleg-1") in ari.requests   # the agent is not left on a dead line
    assert A.CallFinished("9001") in acd.posted                  # and the ACD frees them
    assert (calls.sessions, calls.by_call, len(calls.router), calls._followed) == ({}, {}, 0, {})
