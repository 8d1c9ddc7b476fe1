"""The HTTP API and the webhooks with real calls: the engine on the real stack, sipp callers,
agent phones and customers, a local aiohttp receiver standing in for the CRM.

Every answer the API gives here is validated against the OpenAPI document's schema for that
route and status (:class:`Api`), so the document is checked against what the server does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import aiohttp
import jsonschema
from aiohttp import web

from engine.http import api
from engine.app import Engine
from engine.config.campaign import Amd
from engine.config.model import WebhookConfig
from engine.core import agent as ag

from .harness import engine_config, journalled, running, running_without_database, sipp, wait_until_quiet
from .test_acd import acd_config, agent_phone, rows
from .test_dialer import campaign, customers, dialer_config, migrated, voices  # noqa: F401 (fixture)

TOKEN = "test-token-0123456789abcdef"
SECRET = "crm-secret-0123456789"
DOC = api.openapi()


def with_api(cfg, *hooks: WebhookConfig, tokens: tuple[str, ...] = (TOKEN,)):
    return replace(cfg, http=replace(cfg.http, tokens=tokens), webhooks=hooks)


class Api:
    """A client of the engine's API that checks every answer against the OpenAPI document."""

    def __init__(self, engine: Engine, session: aiohttp.ClientSession) -> None:
        self.base = f"http://127.0.0.1:{engine.http_port}"
        self.session = session

    async def __call__(self, method: str, path: str, body: Any = None, *, token: str | None = TOKEN,
                       raw: bytes | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.request(method, self.base + api.PREFIX + path, json=body, data=raw,
                                        headers=headers) as response:
            answer = await response.json()
            self.validate(method, path, response.status, answer)
            if response.status == 401:
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
            return response.status, answer

    @staticmethod
    def validate(method: str, path: str, status: int, answer: Any) -> None:
        bare = path.split("?", 1)[0]
        for template, ops in DOC["paths"].items():
            pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template.removeprefix(api.PREFIX)))
            if re.fullmatch(pattern, bare) and method.lower() in ops:
                responses = ops[method.lower()]["responses"]
                assert str(status) in responses, f"{method} {path}: status {status} is not documented"
                schema = responses[str(status)]["content"]["application/json"]["schema"]
                jsonschema.validate(answer, {**schema, "components": DOC["components"]})
                return
        raise AssertionError(f"{method} {path} is not in the OpenAPI document")

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return await self("POST", path, body, **kw)


class Crm:
    """A webhook receiver on 127.0.0.1: records every request; ``fail[path]`` answers 503 that many
    times first."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes, int]] = []
        self.fail: dict[str, int] = {}
        self.changed = asyncio.Event()
        self.port = 0

    async def __aenter__(self) -> Crm:
        app = web.Application()
        app.router.add_post("/{hook}", self._receive)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()

    def url(self, hook: str) -> str:
        return f"http://127.0.0.1:{self.port}/{hook}"

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        path = request.path
        status = 200
        if self.fail.get(path, 0) > 0:
            self.fail[path] -= 1
            status = 503
        self.requests.append((path, dict(request.headers), body, status))
        self.changed.set()
        return web.Response(status=status)

    async def wait_until(self, condition: Callable[[Crm], bool], timeout: float = 20) -> None:
        async with asyncio.timeout(timeout):
            while not condition(self):
                self.changed.clear()
                await self.changed.wait()

    def delivered(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(body) for p, _, body, status in self.requests if p == path and status == 200]


async def settled(engine: Engine) -> None:
    """Until no webhook delivery is pending and every try is written back to the outbox."""
    async with asyncio.timeout(10):
        await engine.webhooks.wait_until(lambda w: not w.pending)
        await engine.writer.wait_idle()


def hook(crm: Crm, path: str, *events: str, **more: Any) -> WebhookConfig:
    return WebhookConfig(url=crm.url(path), secret=SECRET, events=events, **{"retry_seconds": 0.2, **more})


async def test_an_agent_works_a_call_through_the_api_and_the_crm_gets_signed_webhooks(stack, dsn, tmp_path):
    async with Crm() as crm, aiohttp.ClientSession() as session:
        crm.fail["/flaky"] = 2
        kinds = ("call.offered", "call.answered", "call.ended", "call.dispositioned")
        cfg = with_api(acd_config(stack, dsn, tmp_path), hook(crm, "crm", *kinds),
                       hook(crm, "flaky", "call.answered", max_attempts=5))
        cfg = replace(cfg, queues=tuple(replace(q, wrapup_seconds=60) for q in cfg.queues))
        engine = Engine(cfg)
        async with running(engine):
            call = Api(engine, session)
            status, agent = await call.post("/agents/9001/login", {"queues": ["support"]})
            assert status == 200 and (agent["state"], agent["queues"]) == ("available", ["support"])
            status, agent = await call.post("/agents/9001/pause", {"reason": "2"})
            assert status == 200 and (agent["state"], agent["reason"]) == ("paused", "lunch")
            status, agent = await call.post("/agents/9001/resume")
            assert status == 200 and agent["state"] == "available"

            phone, phone_done = await agent_phone(stack, 1, answer_ms="300", hangup_ms="2000")
            (await sipp(stack, "caller_wait_bye.xml", "3100", variables={"caller": "5557001"})).check()
            (await phone_done()).check()
            await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.WRAP_UP)
            status, agents = await call.get("/agents")
            [mine] = [a for a in agents["agents"] if a["id"] == "9001"]
            assert mine["state"] == "wrap_up" and mine["call_id"]
            call_id = mine["call_id"]

            status, done = await call.post(f"/calls/{call_id}/disposition", {"name": "resolved"})
            assert status == 200 and done == {"call_id": call_id, "agent_id": "9001", "code": "1", "name": "resolved"}
            await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE)
            status, err = await call.post(f"/calls/{call_id}/disposition", {"code": "1"})
            assert status == 409 and "wrap-up" in err["error"]
            await wait_until_quiet(engine, 1)

            status, history = await call.get(f"/calls/{call_id}")
            assert status == 200 and history["caller_number"] == "5557001" and history["direction"] == "inbound"
            [offer] = history["offers"]
            assert offer["reason"].startswith("longest_idle: 9001 chosen of 1 eligible [support>=1]")
            assert (offer["agent_id"], offer["result"]) == ("9001", "answered")
            [entry] = history["queue_entries"]
            assert (entry["queue"], entry["outcome"], entry["agent_id"]) == ("support", "answered", "9001")
            assert [(d["agent_id"], d["code"], d["name"]) for d in history["dispositions"]] == [("9001", "1", "resolved")]
            assert history["dial_attempt"] is None
            status, listing = await call.get("/calls?number=5557001&limit=5")
            assert status == 200 and [c["id"] for c in listing["calls"]] == [call_id]
            status, status_now = await call.get("/status")
            assert status == 200 and {q["name"] for q in status_now["queues"]} >= {"support"}

            # The CRM got every kind, each signed; the flaky receiver got its delivery on the third try.
            await crm.wait_until(lambda c: {d["kind"] for d in c.delivered("/crm")} >= set(kinds)
                                 and len(c.delivered("/flaky")) == 1)
            await settled(engine)
            outbox = await rows(dsn, "SELECT url, attempts, last_status, delivered_at FROM webhook_outbox")
        for path, headers, body, _ in crm.requests:
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(headers["X-Callcenter-Signature"], expected)
            sent = json.loads(body)
            assert headers["X-Callcenter-Event"] == sent["kind"] and headers["X-Callcenter-Delivery"] == sent["id"]
        by_kind = {d["kind"]: d for d in crm.delivered("/crm")}
        pop = by_kind["call.offered"]["data"]
        assert (pop["call_id"], pop["caller_number"], pop["queue"], pop["agent_id"]) == (call_id, "5557001", "support",
                                                                                          "9001")
        assert by_kind["call.dispositioned"]["data"]["name"] == "resolved"
        assert by_kind["call.ended"]["data"]["call_id"] == call_id
        flaky = [(h["X-Callcenter-Delivery"], status) for p, h, _, status in crm.requests if p == "/flaky"]
        assert [s for _, s in flaky] == [503, 503, 200] and len({d for d, _ in flaky}) == 1
        assert all(r["delivered_at"] is not None for r in outbox)
        [flaky_row] = [r for r in outbox if r["url"].endswith("/flaky")]
        assert (flaky_row["attempts"], flaky_row["last_status"]) == (3, 200)


async def test_the_api_refuses_without_a_token_and_names_what_is_wrong(stack, dsn, tmp_path):
    engine = Engine(with_api(acd_config(stack, dsn, tmp_path)))
    async with running(engine), aiohttp.ClientSession() as session:
        call = Api(engine, session)
        assert (await call.get("/status", token=None))[0] == 401
        assert (await call.get("/status", token="not-the-token-0123456789"))[0] == 401
        status, doc = await call.get("/openapi.json", token=None)      # the document is public
        assert status == 200 and doc == json.loads(json.dumps(DOC))
        status, err = await call.post("/agents/9001/pause", {"reason": "nap"})
        assert status == 400 and err["field"] == "reason" and "lunch" in err["error"]
        status, err = await call.post("/agents/9001/login", {"queues": ["nowhere"]})
        assert status == 400 and err["field"] == "queues"
        status, err = await call.post("/agents/9001/login", {"queue": "support"})
        assert status == 400 and err["field"] == "queue" and "unknown field" in err["error"]
        status, err = await call.post("/agents/9001/login", raw=b"{not json")
        assert status == 400 and err["error"] == "the body is not JSON"
        status, err = await call.get("/calls?from=yesterday")
        assert status == 400 and err["field"] == "from"
        status, err = await call.post("/campaigns/renewals/leads", {"numbers": ["+12125550111", "12"]})
        assert status == 400 and err["reasons"][0]["field"] == "numbers[1]" and "wrong length" in err["reasons"][0]["reason"]
        assert (await call.post("/agents/7777/login", {}))[0] == 404
        assert (await call.get("/calls/3f0e8a52-3c39-4a5c-9d4c-2f0f1b7f0f55"))[0] == 404
        assert (await call.post("/campaigns/nope/pause"))[0] == 404
        status, err = await call.post("/agents/9001/resume")       # logged out: nothing to resume
        assert status == 409 and "LOGGED_OUT" in err["error"]
        engine.config = replace(engine.config, http=replace(engine.config.http, tokens=()))
        status, err = await call.get("/status")
        assert status == 403 and "no token is configured" in err["error"]


async def test_campaign_control_outlives_a_restart_and_api_leads_are_dialled_at_once(stack, dsn, tmp_path, voices):
    cfg = with_api(dialer_config(stack, dsn, tmp_path, campaign(amd=Amd()), wrapup=60))
    carrier, carrier_done = await customers(stack, voices, 2)
    placed: list[tuple[float, dict[str, Any]]] = []
    async with aiohttp.ClientSession() as session:
        first = Engine(cfg)
        async with running(first):
            await migrated(first)
            call = Api(first, session)
            status, c = await call.post("/campaigns/renewals/pause")
            assert status == 200 and (c["state"], c["active"], c["controlled_by"]) == ("paused", False, "api")
            status, lead = await call.post("/campaigns/renewals/leads", {
                "number": "(212) 555-0111", "first_name": "Ann", "consent": True, "fields": {"source": "web"}})
            assert status == 201 and lead["numbers"][0]["number"] == "+12125550111" and lead["state"] == "paused"
            status, again = await call.post("/campaigns/renewals/leads", {"number": "+12125550111"})
            assert status == 409 and again["lead_id"] == lead["lead_id"]

        engine = Engine(cfg)     # a restart: the pause holds, whatever the YAML says
        engine.writer.hub.subscribe(lambda kind, data: placed.append((time.time(), data)) if kind == "dial.placed"
                                    else None)
        async with running(engine):
            call = Api(engine, session)
            async with asyncio.timeout(20):
                await engine.dialer.recovered.wait()
            status, campaigns = await call.get("/campaigns")
            [renewals] = [c for c in campaigns["campaigns"] if c["name"] == "renewals"]
            assert (renewals["state"], renewals["active"]) == ("paused", False)
            phone, phone_done = await agent_phone(stack, 1, calls=2, answer_ms="100", hangup_ms="1500")
            assert (await call.post("/agents/9001/login", {"queues": ["renewals"]}))[0] == 200
            assert await engine.dialer.campaigns["renewals"].step(time.time()) == 0   # paused: nothing dialled
            assert not placed

            status, c = await call.post("/campaigns/renewals/start")
            assert status == 200 and c["state"] == "running"
            async with asyncio.timeout(30):
                await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.WRAP_UP)
            first_call = engine.acd.acd.agents["9001"].call_id
            status, done = await call.post(f"/calls/{first_call}/disposition", {"code": "1"})
            assert status == 200 and done["name"] == "SALE"        # the campaign's own codes
            async with asyncio.timeout(20):
                await engine.dialer.wait_until(lambda d: d.closed >= 1)

            # Speed to lead: a lead posted to the running campaign is dialled at once.
            posted = time.time()
            status, lead2 = await call.post("/campaigns/renewals/leads", {"number": "+12125550121", "consent": True})
            assert status == 201 and lead2["state"] == "running"
            async with asyncio.timeout(30):
                await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.WRAP_UP)
            [when] = [t for t, d in placed if d["lead_id"] == lead2["lead_id"]]
            print(f"API lead -> dial placed: {when - posted:.3f} s")
            assert when - posted < 2.0
            second_call = engine.acd.acd.agents["9001"].call_id
            status, done = await call.post(f"/calls/{second_call}/disposition", {"name": "DNC"})
            assert status == 200 and done["code"] == "9"
            async with asyncio.timeout(20):
                await engine.dialer.wait_until(lambda d: d.closed >= 2)
            (await phone_done()).check()

            # DNC through the API: the gate refuses the number from then on.
            status, listed = await call.post("/dnc", {"number": "212-555-0131", "reason": "asked by e-mail"})
            assert status == 201 and (listed["number"], listed["list"]) == ("+12125550131", "global")
            status, lead3 = await call.post("/campaigns/renewals/leads", {"number": "+12125550131", "consent": True})
            assert status == 201
            async with asyncio.timeout(20):
                await engine.dialer.wait_until(lambda d: d.refused >= 1)
            status, c = await call.post("/campaigns/renewals/stop")
            assert status == 200 and c["state"] == "stopped" and c["leases_released"] == 0
            await engine.writer.wait_idle()
            status, history = await call.get(f"/calls/{first_call}")
        (await carrier_done()).check()

    attempt = history["dial_attempt"]
    assert (attempt["campaign"], attempt["outcome"], attempt["disposition"], attempt["agent_id"]) == (
        "renewals", "answered", "SALE", "9001")
    assert (attempt["decision"]["allowed"], attempt["decision"]["reason"]) == (True, "allowed")
    decisions = await rows(dsn, "SELECT lead_id, allowed, reason FROM dial_decisions ORDER BY seq")
    assert [(d["lead_id"], d["allowed"], d["reason"]) for d in decisions][-1] == (lead3["lead_id"], False, "dnc_global")
    leads = {r["id"]: r for r in await rows(dsn, "SELECT id, status, result, priority FROM leads")}
    assert (leads[lead["lead_id"]]["status"], leads[lead["lead_id"]]["result"]) == ("done", "SALE")
    assert leads[lead2["lead_id"]]["status"] == "dnc" and leads[lead3["lead_id"]]["status"] == "dnc"
    assert leads[lead2["lead_id"]]["priority"] == api.SPEED_TO_LEAD_PRIORITY
    [control] = await rows(dsn, "SELECT name, state, by FROM campaign_control")
    assert (control["name"], control["state"], control["by"]) == ("renewals", "stopped", "api:token1")


async def test_a_webhook_the_crm_did_not_take_is_delivered_after_a_restart(stack, dsn, tmp_path):
    async with Crm() as crm:
        crm.fail["/crm"] = 1_000                      # the CRM is down
        cfg = with_api(acd_config(stack, dsn, tmp_path), hook(crm, "crm", "call.ended", retry_seconds=0.5))
        first = Engine(cfg)
        async with running(first):
            (await sipp(stack, "caller_wait_bye.xml", "2000")).check()
            await crm.wait_until(lambda c: len(c.requests) >= 1)     # tried, refused
        [(_, headers, _, status)] = crm.requests[:1]
        assert status == 503
        crm.fail["/crm"] = 0                          # back up; the engine restarts
        second = Engine(cfg)
        async with running(second):
            await crm.wait_until(lambda c: len(c.delivered("/crm")) == 1)
            await settled(second)
    [delivered] = crm.delivered("/crm")
    assert delivered["id"] == headers["X-Callcenter-Delivery"] and delivered["kind"] == "call.ended"
    [row] = await rows(dsn, "SELECT attempts, last_status, delivered_at FROM webhook_outbox")
    assert row["attempts"] >= 2 and row["last_status"] == 200 and row["delivered_at"] is not None


async def test_with_the_database_down_webhooks_still_go_out_and_the_outbox_catches_up(stack, dsn, tmp_path):
    async with Crm() as crm, aiohttp.ClientSession() as session:
        cfg = with_api(engine_config(stack, "postgresql://postgres@127.0.0.1:1/nowhere", tmp_path),
                       hook(crm, "crm", "call.started", "call.ended"))
        async with running_without_database(Engine(cfg)) as down:
            (await sipp(stack, "caller_wait_bye.xml", "2000")).check()
            await crm.wait_until(lambda c: len(c.delivered("/crm")) == 2)     # from memory, no database
            await down.webhooks.wait_until(lambda w: not w.pending)
            status, err = await Api(down, session).get("/calls")
            assert status == 503 and "database" in err["error"]
        assert sum(w["op"].startswith("webhook_") for w in journalled(tmp_path)) == 4

        up = Engine(replace(cfg, database=replace(cfg.database, dsn=dsn)))
        async with running(up):
            async with asyncio.timeout(20):
                await up.webhooks.loaded.wait()
            assert not up.webhooks.pending          # delivered before: not sent again
    assert len(crm.requests) == 2
    outbox = await rows(dsn, "SELECT kind, attempts, last_status, delivered_at FROM webhook_outbox ORDER BY created_at")
    assert [(r["kind"], r["attempts"], r["last_status"]) for r in outbox] == [("call.started", 1, 200),
                                                                              ("call.ended", 1, 200)]
    assert all(r["delivered_at"] is not None for r in outbox)
