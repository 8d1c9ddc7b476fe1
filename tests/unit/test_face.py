"""The face needs nothing of the engine but its view (engine/runtime/view.py).

The whole HTTP app (/healthz, the API, /metrics, the wallboard's stream) is served here from a stub
that has exactly :class:`~engine.runtime.view.EngineView`'s members and answers from fixed
snapshots. A face module that read anything else of the engine (``engine.acd.acd.agents``,
``engine.dialer.gate``, ``engine.db``) would fail here: an import cannot show such a read, this does.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from engine.config.acd import ServiceLevel
from engine.config.model import Config
from engine.config.yamlconf import load_text
from engine.core import agent as ag
from engine.http.server import build_app
from engine.runtime.view import AgentSnapshot, CampaignSnapshot, EngineView, QueueSnapshot, WaitingCaller
from engine.shared.events import Listener

from .test_config import MINIMAL

TOKEN = "face-test-token-0123456789"
T0 = 1_000_000_000.0
CONFIG = MINIMAL + textwrap.dedent(f"""\
    http: {{tokens: ["{TOKEN}"]}}
    agents:
      - {{id: "9001", name: Alice, pin: "1234", endpoint: PJSIP/agent9001}}
      - {{id: "9002", name: Bob, pin: "1234", endpoint: PJSIP/agent9002}}
    queues:
      - {{name: support}}
    campaigns:
      - name: renewals
        mode: predictive
        queue: support
        caller_id: "+15551230000"
        safe_harbor_sound: custom/safe-harbor
    """)


class Connection:
    """What the store's functions run on, answering as PostgreSQL would for these requests."""

    def transaction(self) -> Connection:
        return self

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def execute(self, sql: str, *args: Any) -> str:
        return "UPDATE 2"

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return 7 if "INSERT" in sql else None   # a new lead's id; no lead with its number yet

    async def copy_records_to_table(self, *args: Any, **kwargs: Any) -> None:
        return None


class Pool:
    def acquire(self) -> Connection:
        return Connection()

    async def execute(self, sql: str, *args: Any) -> str:
        return await Connection().execute(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return 1


class StubView:
    """Exactly EngineView's members: one agent wrapping up a call, one idle, a caller waiting, a
    campaign paused through the API. The actions are recorded in ``asked``."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._pool = Pool()
        self.asked: list[tuple[Any, ...]] = []
        self.listeners: list[Listener] = []

    @property
    def config(self) -> Config:
        return self._config

    def health(self) -> dict[str, Any]:
        return {"ok": True, "ari": True, "ami": True, "database": True, "database_error": None, "live_calls": 2,
                "pending_writes": 0, "journal_bytes": 0, "journal_max_bytes": 1 << 20, "journal_full": False,
                "journal_error": None}

    def pool(self) -> Any:
        return self._pool

    async def database_ready(self) -> None:
        return None

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        self.listeners.remove(listener)

    def agents(self) -> dict[str, AgentSnapshot]:
        return {"9001": AgentSnapshot("9001", ag.AgentPhase.WRAP_UP, frozenset({"support"}), None, T0, "c1", "support",
                                      "5557010", None),
                "9002": AgentSnapshot("9002", ag.AgentPhase.AVAILABLE, frozenset({"support"}), None, T0, None, None,
                                      None, None)}

    def queues(self) -> dict[str, QueueSnapshot]:
        return {"support": QueueSnapshot("support", ServiceLevel(), (WaitingCaller("c2", "support", T0, False),))}

    def campaigns(self, now: float) -> dict[str, CampaignSnapshot]:
        return {"renewals": CampaignSnapshot("renewals", False, 3.0, 2, (11, 12), 40, 1)}

    def campaign_controls(self) -> dict[str, str]:
        return {"renewals": "paused"}

    def disposition_codes(self, call_id: str) -> dict[str, str]:
        return {"1": "resolved"}

    async def agent_request(self, agent_id: str, event: ag.Event) -> None:
        self.asked.append(("agent_request", agent_id, event))

    async def disposition(self, agent_id: str, code: str) -> tuple[bool, str]:
        self.asked.append(("disposition", agent_id, code))
        return True, ""

    async def hold(self, call_id: str, held: bool) -> None:
        self.asked.append(("hold", call_id, held))

    async def transfer(self, call_id: str, kind: str, target: str) -> None:
        self.asked.append(("transfer", call_id, kind, target))

    async def add_dnc(self, number: str, *, now: float, source: str, reason: str, scope: str, region: str,
                      store_in: Any) -> str:
        self.asked.append(("add_dnc", number, scope, store_in is self._pool))
        return number

    def set_campaign_control(self, name: str, state: str) -> None:
        self.asked.append(("set_campaign_control", name, state))

    def wake_campaign(self, name: str) -> None:
        self.asked.append(("wake_campaign", name))


def _members(cls: type) -> set[str]:
    return {n for n in vars(cls) if not n.startswith("_")}


def test_the_stub_has_exactly_the_views_members():
    assert _members(StubView) == _members(EngineView)


async def test_the_face_runs_on_the_view_alone():
    cfg = load_text(CONFIG, Config, file="cc.yaml", base_dir=Path("/etc/cc"), environ={})
    assert not cfg.problems()
    view = StubView(cfg)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with TestClient(TestServer(build_app(view))) as client:   # type: ignore[arg-type]
        assert (await client.get("/healthz")).status == 200

        status = await (await client.get("/api/v1/status", headers=auth)).json()
        assert [a["id"] for a in status["agents"]] == ["9001", "9002"]
        assert (status["agents"][0]["call_queue"], status["agents"][0]["caller"]) == ("support", "5557010")
        assert status["queues"][0]["waiting"] == 1 and status["queues"][0]["agents"] == {"wrap_up": 1, "available": 1}
        campaign = status["campaigns"][0]
        assert (campaign["state"], campaign["controlled_by"], campaign["active"]) == ("paused", "api", False)
        assert (campaign["lines_in_flight"], campaign["abandon_rate"], campaign["agents_logged_in"]) == (2, 1 / 40, 2)

        r = await client.post("/api/v1/agents/9002/pause", json={"reason": "lunch"}, headers=auth)
        assert r.status == 200 and (await r.json())["id"] == "9002"
        r = await client.post("/api/v1/calls/c1/disposition", json={"code": "1"}, headers=auth)
        assert await r.json() == {"call_id": "c1", "agent_id": "9001", "code": "1", "name": "resolved"}
        r = await client.post("/api/v1/dnc", json={"number": "+12125550123"}, headers=auth)
        assert r.status == 201
        r = await client.post("/api/v1/campaigns/renewals/stop", headers=auth)
        assert r.status == 200 and (await r.json())["leases_released"] == 2
        r = await client.post("/api/v1/campaigns/renewals/leads", json={"number": "+12125550124"}, headers=auth)
        assert r.status == 201 and (await r.json())["lead_id"] == 7
        assert view.asked == [("agent_request", "9002", ag.Pause("lunch")), ("disposition", "9001", "1"),
                              ("add_dnc", "+12125550123", "global", True),
                              ("set_campaign_control", "renewals", "stopped"), ("wake_campaign", "renewals")]

        metrics = await (await client.get("/metrics")).text()
        for line in ('callcenter_agents{queue="support",state="wrap_up"} 1.0', 'callcenter_up{dependency="ari"} 1.0',
                     'callcenter_queue_waiting{queue="support"} 1.0', "callcenter_live_calls 2.0",
                     'callcenter_campaign_lines{campaign="renewals"} 2.0'):
            assert line in metrics

        stream = await client.get(f"/wallboard/events?token={TOKEN}")
        line = b""
        while not line.startswith(b"data: "):
            line = await stream.content.readline()
        board = json.loads(line[len(b"data: "):])
        assert [(a["id"], a["name"]) for a in board["agents"]] == [("9001", "Alice"), ("9002", "Bob")]
        stream.close()
