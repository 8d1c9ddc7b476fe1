"""The engine as the face sees it (:class:`~engine.runtime.view.EngineView`), over the services.

Every read copies what the face shows into frozen snapshots at the moment it is asked; nothing
returned is a live object of the runtime, and no read changes anything. The actions go to the
service that owns them: agent requests to the ACD's session, dispositions to the phones (as the
keypad's), do-not-call entries to the dialer's gate, campaign control to the dialer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from engine.core import acd as A
from engine.core.common import Event
from engine.runtime.view import AgentSnapshot, CampaignSnapshot, QueueSnapshot, WaitingCaller

if TYPE_CHECKING:
    from engine.config.model import Config
    from engine.runtime.acdservice import AcdService
    from engine.runtime.calls import CallManager
    from engine.runtime.dialer import Dialer
    from engine.runtime.phones import Phones
    from engine.shared.events import Hub, Listener
    from engine.store.db import Database

__all__ = ["DIAL_RATE_WINDOW", "LiveView"]

DIAL_RATE_WINDOW = 60.0   # dials per minute, over the last minute


class LiveView:
    """Implements :class:`~engine.runtime.view.EngineView`; engine/app.py builds it once the services exist."""

    def __init__(self, *, config: Callable[[], Config], health: Callable[[], dict[str, Any]], db: Database,
                 hub: Hub, acd: AcdService, calls: CallManager, dialer: Dialer, phones: Phones) -> None:
        self._config, self._health, self._db, self._hub = config, health, db, hub
        self._acd, self._calls, self._dialer, self._phones = acd, calls, dialer, phones

    @property
    def config(self) -> Config:
        return self._config()

    def health(self) -> dict[str, Any]:
        return self._health()

    def pool(self) -> Any:
        return self._db.pool if self._db.ready.is_set() else None

    async def database_ready(self) -> None:
        await self._db.ready.wait()

    def subscribe(self, listener: Listener) -> None:
        self._hub.subscribe(listener)

    def unsubscribe(self, listener: Listener) -> None:
        self._hub.unsubscribe(listener)

    # -- snapshots ---------------------------------------------------------------------------------
    def agents(self) -> Mapping[str, AgentSnapshot]:
        acd, calls, by_call = self._acd.acd, self._calls, self._dialer.by_call
        out = {}
        for a in acd.agents.values():
            call = a.call_id
            placed = by_call.get(call) if call is not None else None
            out[a.id] = AgentSnapshot(
                id=a.id, phase=a.phase, queues=a.queues, pause_reason=a.pause_reason, since=a.since, call_id=call,
                call_queue=acd.call_queue(a.id) if call is not None else None,
                caller=(calls.caller_of(call) or None) if call is not None else None,
                campaign=placed[0].cfg.name if placed is not None else None)
        return MappingProxyType(out)

    def queues(self) -> Mapping[str, QueueSnapshot]:
        waiting: dict[str, list[WaitingCaller]] = {}
        for w in self._acd.acd.waiting.values():
            waiting.setdefault(w.queue, []).append(
                WaitingCaller(w.call_id, w.queue, w.queued_at, self._calls.is_outbound(w.call_id)))
        return MappingProxyType({q.name: QueueSnapshot(q.name, q.service_level, tuple(waiting.get(q.name, ())))
                                 for q in self._config().queues})

    def campaigns(self, now: float) -> Mapping[str, CampaignSnapshot]:
        out = {}
        for name, run in self._dialer.campaigns.items():
            live, abandoned = run.counted_abandons()
            out[name] = CampaignSnapshot(
                name=name, active=run.cfg.active,
                dial_rate_per_minute=run.dials_since(now - DIAL_RATE_WINDOW) * 60.0 / DIAL_RATE_WINDOW,
                lines_in_flight=run.lines_in_flight(), leads_in_flight=tuple(run.leads_in_flight()),
                live_answers=live, abandoned=abandoned)
        return MappingProxyType(out)

    def campaign_controls(self) -> Mapping[str, str]:
        return MappingProxyType(dict(self._dialer.control))

    def disposition_codes(self, call_id: str) -> Mapping[str, str]:
        return MappingProxyType(self._phones.disposition_codes(call_id))

    # -- actions -----------------------------------------------------------------------------------
    async def agent_request(self, agent_id: str, event: Event) -> None:
        await self._acd.request(A.AgentRequest(agent_id, event))

    async def disposition(self, agent_id: str, code: str) -> tuple[bool, str]:
        return await self._phones.disposition(agent_id, code)

    async def hold(self, call_id: str, held: bool) -> None:
        await self._calls.hold(call_id, held)

    async def transfer(self, call_id: str, kind: str, target: str) -> None:
        await self._calls.transfer(call_id, kind, target)

    async def add_dnc(self, number: str, *, now: float, source: str, reason: str, scope: str, region: str,
                      store_in: Any) -> str:
        return await self._dialer.gate.add_dnc(number, now=now, source=source, reason=reason, scope=scope,
                                               region=region, store_in=store_in)

    def set_campaign_control(self, name: str, state: str) -> None:
        self._dialer.set_control(name, state)

    def wake_campaign(self, name: str) -> None:
        run = self._dialer.campaigns.get(name)
        if run is not None:
            run.wake.set()
