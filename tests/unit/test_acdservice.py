"""The ACD service never waits on Asterisk to decide: an offer's POST /channels runs beside the
ACD's session, and a withdrawal of that offer hangs the leg up only once the POST was answered."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from engine.config.model import load_config
from engine.core import acd as A
from engine.core import agent as ag
from engine.runtime.acdservice import AcdService
from engine.runtime.router import Router


class SlowAri:
    """Asterisk whose POST /channels answers only when the test says (each request its own gate)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, str]] = []          # (method, path, channelId or '') as they come
        self.gates: dict[str, asyncio.Event] = {}
        self.posted = asyncio.Event()

    async def request(self, method: str, url_path: str, *, params=None, body=None):
        channel = (params or {}).get("channelId", "")
        self.log.append((method, url_path, channel))
        if method == "POST" and url_path == "/channels":
            self.posted.set()
            gate = self.gates.setdefault(channel, asyncio.Event())
            await gate.wait()
            self.log.append(("answered", url_path, channel))
        return None


class Desk:
    """The calls as the ACD sees them; hang-ups go to Asterisk like CallManager's."""

    def __init__(self, ari: SlowAri) -> None:
        self.ari = ari

    def caller_of(self, call_id: str) -> str:
        return "5550100"

    def is_outbound(self, call_id: str) -> bool:
        return False

    async def hang_up(self, channel_id: str, why: str, reason: str = "normal") -> None:
        await self.ari.request("DELETE", f"/channels/{channel_id}")

    def connect(self, *args, **kwargs) -> None:
        pass

    def post(self, *args) -> None:
        pass


async def _service(example_env) -> tuple[AcdService, SlowAri, asyncio.Task]:
    cfg = load_config(example_env)
    ari = SlowAri()
    writer = SimpleNamespace(submit=lambda write: None, hub=SimpleNamespace(publish=lambda kind, **data: None))
    svc = AcdService(ari=ari, db=None, writer=writer, config=lambda: cfg,  # type: ignore[arg-type]
                     router=Router(lambda event, channel: None))
    svc.attach(Desk(ari))  # type: ignore[arg-type]
    task = asyncio.create_task(svc.session.run())
    for agent_id in ("9001", "9002"):
        await svc.request(A.AgentRequest(agent_id, ag.LogIn(frozenset({"support"}), f"PJSIP/agent{agent_id}")))
    return svc, ari, task


async def _until(condition, what: str) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0)   # let the session and the requests run; bounded by the timeout
    assert condition(), what


async def test_a_second_offer_is_placed_while_the_first_post_is_unanswered(example_env):
    svc, ari, task = await _service(example_env)
    try:
        svc.post(A.Enqueue("call-1", "support"))
        svc.post(A.Enqueue("call-2", "support"))
        posts = lambda: [c for m, p, c in ari.log if m == "POST"]  # noqa: E731
        await _until(lambda: len(posts()) == 2, "both offers placed")
        assert not any(m == "answered" for m, _, _ in ari.log)   # the first POST is still in flight
        assert {svc.legs[c].call_id for c in posts()} == {"call-1", "call-2"}
    finally:
        for gate in ari.gates.values():
            gate.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_withdrawn_offer_is_hung_up_only_after_its_post_was_answered(example_env):
    svc, ari, task = await _service(example_env)
    try:
        svc.post(A.Enqueue("call-1", "support"))
        await _until(lambda: ari.posted.is_set(), "the offer placed")
        channel = next(c for m, _, c in ari.log if m == "POST")
        svc.post(A.Dequeue("call-1"))               # the caller hangs up while the phone is being called
        await _until(lambda: channel not in svc.legs, "the leg dropped")
        for _ in range(50):
            await asyncio.sleep(0)
        assert not any(m == "DELETE" for m, _, _ in ari.log)   # not before Asterisk has the channel
        ari.gates[channel].set()
        await _until(lambda: any(m == "DELETE" for m, _, _ in ari.log), "the leg hung up")
        order = [(m, c) for m, _, c in ari.log if m in ("answered", "DELETE")]
        assert order == [("answered", channel), ("DELETE", "")]
        assert ari.log[-1][1] == f"/channels/{channel}"
    finally:
        for gate in ari.gates.values():
            gate.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
