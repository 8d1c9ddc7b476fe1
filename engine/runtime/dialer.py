"""The outbound dialer in the shell: pacing, the gate, originate, AMD, hand-over to an agent.

Each attempt is the pure machine of :mod:`engine.core.attempt` (the simulator runs the same one);
what the pacer is shown and the blending hold are :mod:`engine.core.campaign`. This module holds
what the campaigns share (the gate, recovery, control, the preview and disposition hooks); each
campaign's loop and the shell around its attempts are :mod:`engine.runtime.campaignrun`.

One :class:`Campaign` task per active campaign (predictive, progressive, agentless). Once a
second, and whenever an agent frees up or a call ends, it asks its pacer (:mod:`engine.core.pacing`,
pure) how many numbers to dial now, takes that many leads from the hopper (:mod:`engine.store.hopper`,
shared by every engine instance), asks the compliance gate (:mod:`engine.runtime.gate`) about each number
(the decision is stored before anything is dialled), and originates the allowed ones.

A call's life, as ARI shows it (shared/docs/asterisk.md, tests/sipp/README.md)::

    POST /channels ?endpoint=PJSIP/{number}@carrier &app=callcenter &appArgs=dial &timeout=RING
      ChannelDestroyed before an answer -> busy (17), no answer (18, 19, 102; 21 declined),
                                           invalid number (1, 22, 28), failed (the rest)
      StasisStart ["dial"] (answered)   -> with AMD: continue into [callcenter-amd];
                                           StasisStart ["amd", STATUS, CAUSE] comes back
      HUMAN / NOTSURE (or no AMD)       -> a live answer: the call becomes an ordinary call
                                           (:meth:`CallManager.begin_outbound`) queued for the
                                           campaign's agents with a 2 s grace; no agent in time:
                                           the safe-harbor message, hang up, an abandon
      MACHINE                           -> hang up, or play the campaign's message first

When the call is over (and the agent's wrap-up, where the disposition is keyed), the attempt is
closed in ``dial_attempts`` with its times (answered, verdict, connected, ended, wrap-up) and the
lead moves on (:func:`engine.store.hopper.finish`: retry by outcome or disposition, done, DNC).

Agentless campaigns play their message to a person and take one key as the disposition.

Blended agents: the dialer paces only on the agents that inbound does not need. For every
inbound queue the campaign's agents also serve, it holds back the callers waiting there plus the
agents the queue needs to hold its service level (Erlang C on its recent traffic,
:meth:`engine.core.acd.Acd.agents_needed`) beyond those already busy on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import asyncpg

from engine.store import hopper, outbound
from engine.config.campaign import CampaignConfig
from engine.runtime.campaignrun import Attempt, Campaign
from engine.core import agent as ag
from engine.core import attempt as AT
from engine.core import campaign as CP
from engine.core.common import Command
from engine.store.db import UNAVAILABLE
from engine.runtime.dialrecover import Adopted, recover
from engine.runtime.gate import Gate
from engine.shared.logsetup import get_logger

if TYPE_CHECKING:
    from engine.runtime.acdservice import AcdService
    from engine.runtime.calls import CallManager
    from engine.config.model import Config

__all__ = ["Attempt", "Campaign", "Dialer"]

log = get_logger("dialer")

_DB_ERRORS = (*UNAVAILABLE, asyncpg.PostgresError)


def _ts(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc)


async def _retrying(work: Callable[[], Any], logger: Any, event: str) -> None:
    """Run ``work`` until the database lets it (a dead database must not stop the engine)."""
    delay = 1.0
    while True:
        try:
            await work()
            return
        except _DB_ERRORS as exc:
            logger.warning(event, error=f"{type(exc).__name__}: {exc}", retry_in=delay)
            await asyncio.sleep(delay)   # back-off while the database is away
            delay = min(30.0, delay * 2)


class Dialer:
    """Every campaign's loop, and what they share: the gate, the instance name, the agents."""

    def __init__(self, *, calls: CallManager, acd: AcdService, config: Callable[[], Config],
                 spawn: Callable[[Any], asyncio.Task[None]], agentless_lines: int = 10) -> None:
        self.calls = calls
        self.acd = acd
        self.config = config
        self.spawn = spawn
        self.instance = config().engine.instance
        self.gate = Gate(None, instance=self.instance, writer=calls.writer)
        self.campaigns: dict[str, Campaign] = {}
        self.by_call: dict[str, tuple[Campaign, Attempt]] = {}
        self.agentless_lines = agentless_lines
        self.closed = 0                   # attempts closed in this run
        self.refused = 0                  # leads the gate refused in this run
        self.changed = asyncio.Event()    # the configuration changed: look at the campaigns again
        # Start / pause / stop from the API (campaign_control): wins over the YAML's ``active``.
        self.control: dict[str, str] = {}
        self._progress = asyncio.Event()
        self.recovered = asyncio.Event()  # what an earlier run left open is closed
        self._adopted: list[Adopted] = []   # attempts still with an agent at the restart (dialrecover)
        self.log = log
        self.db_errors = _DB_ERRORS
        self.retrying = _retrying
        acd.listeners.append(self._agent_changed)

    def progressed(self) -> None:
        """Something :meth:`wait_until` waits for may have happened."""
        self._progress.set()

    async def wait_until(self, condition: Callable[[Dialer], bool]) -> None:
        """Until ``condition(self)`` holds, checked after every ring, refusal, connection and
        attempt closed (tests, the demo)."""
        while not condition(self):
            self._progress.clear()
            await self._progress.wait()

    def pool(self) -> Any:
        assert self.calls.db.pool is not None
        return self.calls.db.pool

    def app(self) -> str:
        return self.config().asterisk.ari.app

    def ready(self) -> bool:
        return self.calls.db.ready.is_set() and self.calls.ari.connected.is_set() and self.acd.ready.is_set()

    async def run(self) -> None:
        """Start a loop per active campaign once the database is up; follow reloads."""
        await self.calls.writer.caught_up()   # attempts are recovered from what the last run wrote
        await self.calls.ari.connected.wait()   # and from what Asterisk still has (reconciled)
        self.gate.db = self.pool()
        await _retrying(self._recover, log, "dialer.recover_failed")
        await _retrying(self._load_control, log, "dialer.control_failed")
        self.recovered.set()
        tasks: dict[str, asyncio.Task[None]] = {}
        try:
            while True:
                current = {c.name for c in self.config().campaigns}
                for name, gone in self.campaigns.items():
                    if name not in current and gone.cfg.active:   # removed by a reload: stop dialling it
                        gone.reconfigure(replace(gone.cfg, active=False))
                        gone.log.info("dialer.campaign_removed", in_flight=len(gone.attempts))
                for c in map(self.controlled, self.config().campaigns):
                    if c.name in self.campaigns:
                        self.campaigns[c.name].reconfigure(c)
                    else:
                        self.campaigns[c.name] = Campaign(self, c)
                        for x in [x for x in self._adopted if x.campaign == c.name]:
                            self.campaigns[c.name].adopt(x, time.time())
                        tasks[c.name] = self.spawn(self.campaigns[c.name].run())
                self.changed.clear()
                try:
                    async with asyncio.timeout(5.0):
                        await self.changed.wait()
                except TimeoutError:
                    pass
        finally:
            for t in tasks.values():
                t.cancel()

    async def _recover(self) -> None:
        """After a restart: the attempts this instance left open (engine/runtime/dialrecover.py)."""
        self._adopted = await recover(self)

    async def _load_control(self) -> None:
        rows = await outbound.campaign_controls(self.pool())
        self.control = {r["name"]: r["state"] for r in rows}

    def controlled(self, c: CampaignConfig) -> CampaignConfig:
        """The campaign as the API left it: running dials, paused and stopped do not (calls in
        flight finish either way; engine/http/api/campaigns.py releases a stopped campaign's idle leases)."""
        state = self.control.get(c.name)
        return c if state is None else replace(c, active=state == "running")

    def set_control(self, name: str, state: str) -> None:
        """Apply a start / pause / stop already stored in campaign_control."""
        self.control[name] = state
        configured = next((c for c in self.config().campaigns if c.name == name), None)
        if configured is not None and name in self.campaigns:
            self.campaigns[name].reconfigure(self.controlled(configured))

    async def window_counts(self, cfg: CampaignConfig, now: float) -> tuple[int, int, int]:
        """(live answers, abandons, AMD machine verdicts) of the campaign over its abandon window."""
        row = await outbound.abandon_counts(self.pool(), cfg.name, _ts(now - cfg.abandon.window_seconds))
        return row["live"], row["abandoned"], row["machines"]

    def inbound_hold(self, queue: str, now: float) -> int:
        """Idle agents of ``queue`` kept for inbound now (:func:`engine.core.campaign.inbound_hold`)."""
        return CP.inbound_hold(self.acd.acd, queue, now)

    def held_agents(self, queue: str, count: int) -> frozenset[str]:
        """Which idle agents of ``queue`` are kept (:func:`engine.core.campaign.held_agents`)."""
        return CP.held_agents(self.acd.acd, queue, count)

    def _agent_changed(self, change: ag.AgentChanged) -> None:
        for campaign in self.campaigns.values():
            for a in list(campaign.attempts.values()):
                if a.agent_id == change.agent_id and a.stage in (AT.Stage.CONNECTED, AT.Stage.WRAPUP):
                    if change.phase is ag.AgentPhase.WRAP_UP:
                        campaign.feed(a, AT.AgentWrapup(change.at), change.at)
                    elif change.phase not in ag.CALL_PHASES:
                        campaign.feed(a, AT.AgentFree(change.at), change.at)
            if change.phase is ag.AgentPhase.AVAILABLE:
                campaign.wake.set()

    def preview_dial(self, call_id: str) -> tuple[str, str, float] | None:
        """For a preview the agent answered: (dial template, caller id, ring seconds)."""
        found = self.by_call.get(call_id)
        if found is None or found[1].stage is not AT.Stage.PREVIEW:
            return None
        campaign, a = found
        return campaign.cfg.dial, campaign.cfg.caller_id_for(a.number), campaign.cfg.ring_timeout_seconds

    async def preview_recheck(self, call_id: str) -> str | None:
        """The agent answered a preview, maybe minutes after it was offered: ask the gate again
        before dialling. None: allowed; else the reason it is not."""
        found = self.by_call.get(call_id)
        if found is None or not found[1].channel_id.startswith("preview-"):
            return None
        campaign, a = found
        result = await self.gate.check(campaign.cfg, mode="preview", number=a.number, lead=a.lead, now=time.time())
        if result.allowed:
            return None
        a.log.info("dialer.refused", reason=result.reason, detail=result.decision.detail, at="preview dial")
        return result.reason

    def preview_caller(self, call_id: str) -> str | None:
        """What the agent's phone shows for a preview: the customer's name and number."""
        found = self.by_call.get(call_id)
        if found is None or found[1].stage is not AT.Stage.PREVIEW:
            return None
        a = found[1]
        name = a.lead.name.replace('"', "'")[:40]
        return f'"{name}" <{a.number}>' if name else a.number

    def preview_observe(self, call_id: str, command: Command) -> None:
        found = self.by_call.get(call_id)
        if found is not None:
            found[0].on_preview(found[1], command)

    def dispositions(self, call_id: str) -> Mapping[str, str]:
        """The keypad codes of the campaign that placed ``call_id`` (none for other calls)."""
        found = self.by_call.get(call_id)
        return found[0].cfg.dispositions if found is not None else {}

    def on_disposition(self, call_id: str, agent_id: str, name: str) -> None:
        """An agent keyed a disposition for one of our calls (before the wrap-up ends)."""
        found = self.by_call.get(call_id)
        if found is None:
            return
        campaign, a = found
        campaign.feed(a, AT.Disposition(name))
        if name in hopper.DNC_DISPOSITIONS:
            self.spawn(self._dnc_now(campaign, a, agent_id))

    async def _dnc_now(self, campaign: Campaign, a: Attempt, agent_id: str) -> None:
        e164 = await self.gate.add_dnc(a.number, now=time.time(), source=f"agent:{agent_id}",
                                       reason=f"disposition DNC (campaign {campaign.cfg.name})",
                                       region=campaign.cfg.default_region)
        a.log.info("dialer.dnc_listed", number=e164, agent_id=agent_id)

    async def close_attempt(self, cfg: CampaignConfig, a: Attempt, now: float, wrapup: float | None) -> None:
        s = a.state
        assert s.outcome is not None
        async with self.pool().acquire() as conn:
            await outbound.attempt_closed(conn, a.id, _ts(s.answered_at), _ts(s.verdict_at), s.amd_status,
                                          _ts(s.connected_at), s.cause, wrapup, _ts(s.placed_at))
            step = await hopper.finish(conn, cfg, a.lead.id, now, owner=self.instance, outcome=s.outcome,
                                       disposition=s.disposition, attempt_id=a.id, number=a.number,
                                       agent_id=s.agent_id, call_id=a.call_id)
            if s.ended_at is not None:
                await outbound.attempt_ended_at(conn, a.id, _ts(s.ended_at))
        a.log.info("dialer.lead_moved", status=None if step is None else step.status,
                   next_due=None if step is None or step.next_due_at is None else round(step.next_due_at - now))
