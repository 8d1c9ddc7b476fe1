"""The outbound dialer in the shell: pacing, the gate, originate, AMD, hand-over to an agent.

One :class:`Campaign` task per active campaign (predictive, progressive, agentless). Once a
second, and whenever an agent frees up or a call ends, it asks its pacer (:mod:`engine.core.pacing`,
pure) how many numbers to dial now, takes that many leads from the hopper (:mod:`engine.hopper`,
shared by every engine instance), asks the compliance gate (:mod:`engine.gate`) about each number
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
lead moves on (:func:`engine.hopper.finish`: retry by outcome or disposition, done, DNC).

Agentless campaigns play their message to a person and take one key as the disposition.

Blended agents: the dialer paces only on the agents that inbound does not need. For every
inbound queue the campaign's agents also serve, it holds back the callers waiting there plus the
agents the queue needs to hold its service level (Erlang C on its recent traffic,
:meth:`engine.core.acd.Acd.agents_needed`) beyond those already busy on it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog

from .store import hopper, outbound
from .ari import AriError, path
from .campaignconf import CampaignConfig
from .core import acd as A
from .core import agent as ag
from .core import call as core
from .core import call as C
from .core import callback as K
from .core.causes import dial_result
from .core import pacing as P
from .core.common import Command, Rejected
from .core.compliance import Decision, Scope
from .store.db import UNAVAILABLE, Write
from .dialrecover import Adopted, recover
from .gate import Gate
from .logsetup import get_logger

if TYPE_CHECKING:
    from .acdservice import AcdService
    from .calls import CallManager
    from .config import Config

__all__ = ["Attempt", "Dialer"]

log = get_logger("dialer")

TICK = 1.0                  # the pacer is asked at least this often
LEASE_RENEW = 60.0          # leads being worked are renewed this often (the lease is 300 s)
MAX_DIALS_PER_TICK = 50     # at most this many originates in one step (the rest next tick)
SCREEN_LIMIT = 15.0         # AMD takes at most ~5 s: no verdict by then, the call is checked
AGENTLESS_KEY_SECONDS = 10.0
OUTBOUND_PRIORITY = 1000    # answered outbound calls go ahead of inbound callers: 2 s grace
_PREVIEW = uuid.UUID("0b6f7c3e-8d7a-4d0e-9a55-3f2a9c1e7b42")   # preview call ids from attempt ids
_DB_ERRORS = (*UNAVAILABLE, asyncpg.PostgresError)


def _ts(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc)


@dataclass(slots=True)
class Attempt:
    """One call to a lead, from the originate to the end of the agent's wrap-up."""

    id: uuid.UUID
    lead: hopper.Lead
    number: str
    channel_id: str
    placed_at: float
    stage: str = "ringing"      # ringing, screening, waiting, talking, wrapup, machine, agentless, ended
    rang: bool = False
    answered_at: float | None = None
    verdict_at: float | None = None
    amd_status: str | None = None
    call_id: str | None = None
    connected_at: float | None = None
    agent_id: str | None = None
    abandoned: bool = False
    ended_at: float | None = None
    cause: int | None = None
    outcome: str | None = None
    disposition: str | None = None
    agent_free_at: float | None = None
    wrapup_started: float | None = None
    keys: str = ""
    playback: str | None = None
    log: Any = field(default=None, repr=False)


class Campaign:
    """One campaign's dialing loop and the calls it has in flight."""

    def __init__(self, dialer: Dialer, cfg: CampaignConfig) -> None:
        self.dialer = dialer
        self.cfg = cfg
        self.pacer = P.make_pacer(cfg.algorithm, self._settings(cfg))
        self.attempts: dict[str, Attempt] = {}        # channel id -> attempt
        self.live_answers = 0                         # over the abandon window (loaded, then counted)
        self.abandoned = 0
        self.machines = 0                             # AMD "machine" verdicts over the window (rule uk)
        self.kept_for_inbound: frozenset[str] = frozenset()   # blended agents the dialer left to inbound
        self.wake = asyncio.Event()
        self.log = log.bind(campaign=cfg.name)
        self._renewed = 0.0
        self.recent_dials: deque[float] = deque(maxlen=10_000)   # dial times (the live dial rate)

    @staticmethod
    def _settings(cfg: CampaignConfig) -> P.PacingSettings:
        return P.PacingSettings(abandon_target=cfg.abandon.target_percent / 100.0,
                                connect_grace_seconds=dialer_grace(cfg),
                                ring_timeout_seconds=cfg.ring_timeout_seconds)

    def reconfigure(self, cfg: CampaignConfig) -> None:
        if cfg.algorithm != self.cfg.algorithm:
            self.pacer = P.make_pacer(cfg.algorithm, self._settings(cfg))
        self.cfg = cfg
        self.wake.set()

    # -- the loop ------------------------------------------------------------------------------
    async def run(self) -> None:
        structlog.contextvars.bind_contextvars(campaign=self.cfg.name)
        await _retrying(self._load_counters, self.log, "dialer.counters_failed")
        self.log.info("dialer.campaign_started", mode=self.cfg.mode, algorithm=self.cfg.algorithm,
                      live_answers=self.live_answers, abandoned=self.abandoned)
        while True:
            try:
                async with asyncio.timeout(TICK):
                    await self.wake.wait()
            except TimeoutError:
                pass
            self.wake.clear()
            try:
                await self.step(time.time())
            except _DB_ERRORS as exc:
                self.log.warning("dialer.step_failed", error=f"{type(exc).__name__}: {exc}")
            except Exception:   # a bug: log it, keep the engine and the other campaigns going
                self.log.exception("dialer.step_crashed")

    async def _load_counters(self) -> None:
        pool = self.dialer.pool()
        since = _ts(time.time() - self.cfg.abandon.window_seconds)
        row = await outbound.abandon_counts(pool, self.cfg.name, since)
        self.live_answers, self.abandoned, self.machines = row["live"], row["abandoned"], row["machines"]

    def counted_abandons(self) -> tuple[int, int]:
        """(live answers, abandons) as the campaign's rule counts them: rule uk adds the estimated
        AMD false positives (people taken for machines) to both."""
        fp = self.cfg.abandon.amd_false_positive_percent
        if self.cfg.abandon.rule != "uk" or not self.cfg.amd.enabled or not fp:
            return self.live_answers, self.abandoned
        people = round(self.machines * fp / 100.0)
        return self.live_answers + people, self.abandoned + people

    def snapshot(self, now: float) -> P.Snapshot:
        """The campaign now, for the pacer: its agents (less those inbound needs) and its lines."""
        acd = self.dialer.acd.acd
        queue = self.cfg.queue
        available, on_call, wrapup, paused = 0, [], [], 0
        if queue is not None:
            rules = acd.rules.get(queue)
            wrap = rules.wrapup if rules is not None else 0.0
            for a in acd.agents.values():
                if queue not in a.queues:
                    continue
                if a.phase is ag.AgentPhase.AVAILABLE:
                    available += 1
                elif a.phase in (ag.AgentPhase.ON_CALL, ag.AgentPhase.RESERVED):
                    on_call.append(max(0.0, now - a.since))
                elif a.phase is ag.AgentPhase.WRAP_UP:
                    wrapup.append(max(0.0, a.since + wrap - now))
                elif a.phase is ag.AgentPhase.PAUSED:
                    paused += 1
            held = min(available, self.dialer.inbound_hold(queue, now))
            self.kept_for_inbound = self.dialer.held_agents(queue, held) if held else frozenset()
            available -= held
            paused += held
        ringing = tuple(now - a.placed_at for a in self.attempts.values() if a.stage == "ringing")
        screening = tuple(now - (a.answered_at or now) for a in self.attempts.values() if a.stage == "screening")
        waiting = sum(1 for a in self.attempts.values() if a.stage == "waiting")
        live_answers, abandoned = self.counted_abandons()
        return P.Snapshot(available=available, on_call=tuple(on_call), wrapup=tuple(wrapup), ringing=ringing,
                          screening=screening, waiting=waiting, paused=paused, live_answers=live_answers,
                          abandoned=abandoned)

    def wanted(self, now: float) -> int:
        if self.cfg.mode == "preview":
            # One lead per free agent, shown to the agent before anything is dialled.
            pending = sum(1 for a in self.attempts.values() if a.stage == "preview")
            return max(0, self.snapshot(now).available - pending)
        if self.cfg.mode == "agentless":
            # No agents: keep as many lines busy as the campaign allows.
            busy = sum(1 for a in self.attempts.values() if a.stage != "ended")
            return max(0, self.dialer.agentless_lines - busy)
        return self.pacer.dials_wanted(self.snapshot(now), now)

    async def step(self, now: float) -> int:
        """Dial what the pacer wants now; returns how many calls were placed."""
        if not self.cfg.active or not self.dialer.ready():
            return 0
        await self._renew(now)
        n = min(self.wanted(now), MAX_DIALS_PER_TICK)
        if n <= 0:
            return 0
        pool = self.dialer.pool()
        leads = await hopper.take(pool, self.cfg.name, n, now, owner=self.dialer.instance)
        placed = 0
        for lead in leads:
            placed += await self.dial(lead, now)
        return placed

    async def _renew(self, now: float) -> None:
        if now - self._renewed < LEASE_RENEW:
            return
        self._renewed = now
        ids = [a.lead.id for a in self.attempts.values() if a.stage != "ended"]
        if ids:
            await hopper.renew(self.dialer.pool(), ids, now, owner=self.dialer.instance)

    async def dial(self, lead: hopper.Lead, now: float) -> int:
        """Ask the gate, record the attempt, originate. 1 if a call was placed."""
        pool, instance, cfg = self.dialer.pool(), self.dialer.instance, self.cfg
        number = lead.next_number()
        bound = self.log.bind(lead_id=lead.id)
        if number is None:
            decision = Decision(False, "invalid_number", "the lead has no dialable number", Scope.LEAD, None, {})
            await hopper.release(pool, lead, decision, now, owner=instance)
            bound.info("dialer.refused", reason="invalid_number", detail=decision.detail)
            return 0
        mode = "callback" if lead.lane == 0 else cfg.mode
        result = await self.dialer.gate.check(cfg, mode=mode, number=number.number, lead=lead, now=now)
        if not result.allowed:
            bound.info("dialer.refused", number=result.number, reason=result.reason, detail=result.decision.detail)
            await hopper.release(pool, lead, result.decision, now, owner=instance, number=result.number)
            self.dialer.refused += 1
            self.dialer._progress.set()
            return 0
        attempt_id = uuid.uuid4()
        caller_id = cfg.caller_id_for(result.number)
        if cfg.mode == "preview":
            return await self._preview(lead, result, mode, attempt_id, caller_id, bound, now)
        try:
            await hopper.start_attempt(pool, lead, result.number, now, owner=instance, mode=mode,
                                       decision_id=result.id, caller_id=caller_id, attempt_id=attempt_id)
        except LookupError:
            return 0   # the lease lapsed: another instance has the lead now
        channel_id = f"dial-{attempt_id}"
        attempt = Attempt(attempt_id, lead, result.number, channel_id, now,
                          log=bound.bind(attempt_id=str(attempt_id), number=result.number))
        self.attempts[channel_id] = attempt
        self.dialer.calls.routes[channel_id] = lambda event: self.on_event(attempt, event)
        self.pacer.observe(P.Dialed(), now)
        self.recent_dials.append(now)
        self.dialer.calls.writer.hub.publish("dial.placed", campaign=cfg.name, attempt_id=str(attempt_id),
                                             lead_id=lead.id, number=result.number, at=now)
        attempt.log.info("dialer.dialing", mode=mode, caller_id=caller_id)
        try:
            await self.dialer.calls.ari.post(
                "/channels", endpoint=cfg.dial.format(number=result.number), app=self.dialer.app(),
                appArgs="dial", channelId=channel_id, timeout=int(cfg.ring_timeout_seconds), callerId=caller_id)
        except AriError as exc:
            attempt.log.warning("dialer.originate_failed", status=exc.status, error=exc.message)
            self._ended(attempt, time.time(), "invalid_number" if exc.status in (400, 404) else "failed")
        return 1

    async def _preview(self, lead: hopper.Lead, result: Any, mode: str, attempt_id: uuid.UUID, caller_id: str,
                       bound: Any, now: float) -> int:
        """Offer the lead to an agent first (the phone shows the customer); the number is dialled
        once the agent answers (:class:`engine.callbacks.Callbacks`, as for a callback)."""
        pool, instance, cfg = self.dialer.pool(), self.dialer.instance, self.cfg
        call_id = str(uuid.uuid5(_PREVIEW, str(attempt_id)))
        a = Attempt(attempt_id, lead, result.number, f"preview-{attempt_id}", now, stage="preview", call_id=call_id,
                    log=bound.bind(attempt_id=str(attempt_id), number=result.number, call_id=call_id))
        self.attempts[a.channel_id] = a
        self.dialer.by_call[call_id] = (self, a)
        # The preview is a call from the agent's point of view (offers and waits refer to it).
        self.dialer.calls.writer.submit(Write("call_started", (call_id, a.channel_id, "outbound", result.number,
                                                               lead.name, result.number, now)))
        try:
            await self.dialer.acd.request(A.Enqueue(call_id, cfg.queue or "", OUTBOUND_PRIORITY, callback=result.number))
        except Rejected as exc:
            refused = str(exc)
        else:
            refused = None if call_id in self.dialer.acd.acd.waiting else "nobody staffs the queue"
        if refused is not None:
            self.dialer.calls.record_end(call_id, now, None, refused, "system")
            self.attempts.pop(a.channel_id, None)
            self.dialer.by_call.pop(call_id, None)
            wait = Decision(False, "no_agent", f"preview: {refused}", Scope.WAIT, now + 60.0, {})
            await hopper.release(pool, lead, wait, now, owner=instance)
            return 0
        try:
            await hopper.start_attempt(pool, lead, result.number, now, owner=instance, mode=mode,
                                       decision_id=result.id, caller_id=caller_id, attempt_id=attempt_id,
                                       call_id=call_id)
        except LookupError:
            self.dialer.acd.post(A.Dequeue(call_id, "withdrawn"))
            self.attempts.pop(a.channel_id, None)
            return 0
        a.log.info("dialer.preview_offered", queue=cfg.queue)
        return 1

    def preview_observe(self, a: Attempt, command: Command) -> None:
        now = time.time()
        if isinstance(command, K.DialCustomer):
            a.stage, a.placed_at = "ringing", now
            a.log.info("dialer.dialing", mode="preview")
        elif isinstance(command, C.AgentCallOver) and a.agent_id is None:
            a.agent_id = command.agent_id
        elif isinstance(command, K.RecordOutcome):
            a.agent_id = command.agent_id
            if command.outcome == "answered":
                a.stage, a.answered_at, a.verdict_at, a.connected_at = "talking", now, now, now
                a.log.info("dialer.connected", agent_id=a.agent_id, answer_to_agent=0.0)
            else:
                outcome = {"busy": "busy", "no-answer": "no_answer"}.get(command.outcome, "failed")
                self._ended(a, now, outcome)

    # -- the call's events (from the ARI reader: synchronous, spawn anything that waits) ---------
    def on_event(self, a: Attempt, event: dict[str, Any]) -> None:
        kind = event.get("type")
        now = time.time()
        args = event.get("args") or []
        if kind == "ChannelStateChange" and (event.get("channel") or {}).get("state") == "Ringing":
            a.rang = True
            self.dialer._progress.set()
        elif kind == "StasisStart" and args[:1] == ["dial"] and a.stage == "ringing":
            a.answered_at = now
            if self.cfg.amd.enabled:
                a.stage = "screening"
                a.log.info("dialer.answered", ring=round(now - a.placed_at, 2), amd=True)
                self.dialer.spawn(self._screen(a))
            else:
                a.verdict_at = now
                a.log.info("dialer.answered", ring=round(now - a.placed_at, 2), amd=False)
                self._live(a, event["channel"], now)
        elif kind == "StasisStart" and args[:1] == ["amd"] and a.stage == "screening":
            a.verdict_at = now
            a.amd_status = args[1] if len(args) > 1 else "NOTSURE"
            a.log.info("dialer.amd", status=a.amd_status, cause=args[2] if len(args) > 2 else "",
                       screen=round(now - (a.answered_at or now), 2))
            if a.amd_status == "MACHINE":
                self._machine(a, now)
            else:
                self._live(a, event["channel"], now)
        elif kind == "PlaybackFinished" and a.playback == (event.get("playback") or {}).get("id"):
            a.playback = None
            if a.stage == "machine":
                self.dialer.spawn(self.dialer.calls.hang_up(a.channel_id, "machine message played"))
            elif a.stage == "agentless" and a.disposition is not None:
                self.dialer.spawn(self.dialer.calls.hang_up(a.channel_id, "agentless call done"))
            elif a.stage == "agentless":
                self.dialer.spawn(self._agentless_wait(a))
        elif kind == "ChannelDtmfReceived" and a.stage == "agentless":
            self._agentless_key(a, str(event.get("digit", "")), now)
        elif kind == "ChannelDestroyed":
            a.cause = event.get("cause")
            if a.stage == "ringing":
                outcome = dial_result(a.cause)
            elif a.stage == "screening":
                outcome, a.amd_status = "failed", a.amd_status or "HANGUP"   # hung up before AMD's verdict
            elif a.stage == "machine":
                outcome = "machine"
            else:  # agentless
                outcome = "answered"
            self._ended(a, now, outcome)

    async def _screen(self, a: Attempt) -> None:
        """Send the answered call through AMD; no verdict in time, look whether it is still there."""
        try:
            await self.dialer.calls.ari.post(path("channels", a.channel_id, "continue"), context="callcenter-amd",
                                             extension="s", priority=1)
        except AriError as exc:
            a.log.warning("dialer.amd_failed", error=str(exc))
            await self.dialer.calls.hang_up(a.channel_id, "AMD hand-off failed")
            return
        await asyncio.sleep(SCREEN_LIMIT)   # a watchdog, not synchronisation: AMD answers in ~2-5 s
        if a.stage == "screening":
            a.log.warning("dialer.amd_no_verdict", seconds=SCREEN_LIMIT)
            await self.dialer.calls.hang_up(a.channel_id, "no AMD verdict")
            try:
                await self.dialer.calls.ari.get(path("channels", a.channel_id))
            except AriError as exc:
                if exc.gone and a.stage == "screening":
                    self._ended(a, time.time(), "failed")

    def _machine(self, a: Attempt, now: float) -> None:
        a.stage = "machine"
        self.machines += 1
        self.pacer.observe(P.DialResult("machine", (a.answered_at or now) - a.placed_at,
                                        now - (a.answered_at or now)), now)
        if self.cfg.amd.action == "message" and self.cfg.amd.message:
            a.playback = f"{a.channel_id}-vm"
            self.dialer.spawn(self._play(a, (f"sound:{self.cfg.amd.message}",)))
        else:
            self.dialer.spawn(self.dialer.calls.hang_up(a.channel_id, "answering machine"))

    async def _play(self, a: Attempt, media: tuple[str, ...]) -> None:
        assert a.playback is not None
        try:
            await self.dialer.calls.ari.post(path("channels", a.channel_id, "play", a.playback), media=list(media))
        except AriError as exc:
            a.log.warning("dialer.play_failed", error=str(exc))
            await self.dialer.calls.hang_up(a.channel_id, "playback failed")

    def _live(self, a: Attempt, channel: dict[str, Any], now: float) -> None:
        """A person: to an agent (or, agentless, the message)."""
        ring = (a.answered_at or now) - a.placed_at
        if self.cfg.mode == "agentless":
            a.stage = "agentless"
            assert self.cfg.agentless is not None
            a.playback = f"{a.channel_id}-msg"
            self.dialer.spawn(self._play(a, tuple(f"sound:{m}" for m in self.cfg.agentless.message)))
            return
        self.pacer.observe(P.DialResult("live", ring, now - (a.answered_at or now)), now)
        a.stage = "waiting"
        self.dialer.calls.routes.pop(a.channel_id, None)   # the call session owns the channel now
        cfg = self.dialer.config()
        q = next((q for q in cfg.queues if q.name == self.cfg.queue), None)
        route = core.Route(queue=self.cfg.queue, priority=OUTBOUND_PRIORITY,
                           music=q.announce.music if q is not None else "default",
                           recording=q.recording if q is not None else "none", record_code=cfg.agent_codes.record,
                           connect_grace=dialer_grace(self.cfg),
                           abandon_media=(f"sound:{self.cfg.safe_harbor_sound}",) if self.cfg.safe_harbor_sound else (),
                           avoid_agents=self.kept_for_inbound)
        a.call_id = self.dialer.calls.begin_outbound(channel, route, number=a.number, name=a.lead.name,
                                                     observer=lambda c: self._observe(a, c))
        self.dialer.by_call[a.call_id] = (self, a)
        a.log = a.log.bind(call_id=a.call_id)

    def _observe(self, a: Attempt, command: Command) -> None:
        """The answered call's session at work: connected, abandoned, ended."""
        now = time.time()
        if isinstance(command, core.RecordEvent) and command.kind == "connected" and a.stage == "waiting":
            a.stage, a.connected_at, a.agent_id = "talking", now, command.detail
            self.live_answers += 1
            self.pacer.observe(P.Connected(now - (a.verdict_at or now)), now)
            a.log.info("dialer.connected", agent_id=a.agent_id, answer_to_agent=round(now - (a.verdict_at or now), 3))
            self.dialer._progress.set()
        elif isinstance(command, core.RecordEvent) and command.kind == "abandoned" and a.stage == "waiting":
            a.abandoned = True
            self.live_answers += 1
            self.abandoned += 1
            self.pacer.observe(P.Abandoned(), now)
            a.log.warning("dialer.abandoned", live_answers=self.live_answers, abandoned=self.abandoned,
                          rate=round(self.abandoned / self.live_answers, 4))
        elif isinstance(command, core.RecordEnded):
            a.cause = command.cause
        elif isinstance(command, core.Finish):
            if a.stage == "talking":
                a.stage, a.ended_at = "wrapup", now
                self._maybe_done(a, now)
            else:
                self._ended(a, now, "abandoned" if a.abandoned else "failed")

    def agent_changed(self, a: Attempt, change: ag.AgentChanged) -> None:
        if change.phase is ag.AgentPhase.WRAP_UP:
            a.wrapup_started = change.at
            if self.cfg.mode == "preview" and a.stage == "talking":   # the preview call is over
                a.stage, a.ended_at = "wrapup", change.at
        elif change.phase is not ag.AgentPhase.ON_CALL:
            a.agent_free_at = change.at
            self._maybe_done(a, change.at)

    def adopt(self, x: Adopted, now: float) -> None:
        """An attempt whose customer was still with an agent at the restart goes on here."""
        a = Attempt(x.id, x.lead, x.number, x.channel_id, x.placed_at, stage="talking", rang=True,
                    answered_at=x.answered_at, verdict_at=x.answered_at, call_id=x.call_id,
                    connected_at=x.connected_at or now, agent_id=x.agent_id,
                    log=self.log.bind(lead_id=x.lead.id, attempt_id=str(x.id), number=x.number, call_id=x.call_id))
        self.attempts[x.channel_id] = a
        self.dialer.by_call[x.call_id] = (self, a)
        if x.call_id in self.dialer.calls.by_call:
            self.dialer.calls.observers[x.call_id] = lambda c: self._observe(a, c)
        else:   # over since the recovery looked
            a.stage, a.ended_at = "wrapup", now
        agent = self.dialer.acd.acd.agents.get(x.agent_id or "")
        if agent is None or agent.call_id != x.call_id or agent.phase not in (ag.AgentPhase.ON_CALL,
                                                                                ag.AgentPhase.WRAP_UP):
            a.agent_free_at = now
        elif agent.phase is ag.AgentPhase.WRAP_UP:
            a.wrapup_started = agent.since
        a.log.info("dialer.attempt_adopted", agent_id=a.agent_id, stage=a.stage)
        self._maybe_done(a, now)

    def _maybe_done(self, a: Attempt, now: float) -> None:
        if a.stage == "wrapup" and a.agent_free_at is not None:
            assert a.connected_at is not None and a.ended_at is not None
            talk = a.ended_at - a.connected_at
            wrap = max(0.0, a.agent_free_at - (a.wrapup_started or a.agent_free_at))
            self.pacer.observe(P.Handled(talk, wrap), now)
            self._ended(a, now, "answered", wrapup=wrap)

    # -- agentless ------------------------------------------------------------------------------
    async def _agentless_wait(self, a: Attempt) -> None:
        await asyncio.sleep(AGENTLESS_KEY_SECONDS)   # the callee's time to press a key
        if a.stage == "agentless" and a.disposition is None:
            await self.dialer.calls.hang_up(a.channel_id, "no key pressed")

    def _agentless_key(self, a: Attempt, digit: str, now: float) -> None:
        assert self.cfg.agentless is not None
        name = self.cfg.agentless.keys.get(digit)
        if name is None or a.disposition is not None:
            return
        a.disposition = name
        a.log.info("dialer.agentless_key", key=digit, disposition=name)
        a.playback = f"{a.channel_id}-bye"
        self.dialer.spawn(self._play(a, ("sound:auth-thankyou", "sound:goodbye")))

    # -- the end --------------------------------------------------------------------------------
    def _ended(self, a: Attempt, now: float, outcome: str, *, wrapup: float | None = None) -> None:
        if a.stage == "ended":
            return
        if a.stage == "ringing":
            result = {"busy": "busy", "no_answer": "no_answer"}.get(outcome)
            if result is not None:
                self.pacer.observe(P.DialResult(result, now - a.placed_at), now)  # type: ignore[arg-type]
        a.stage, a.outcome = "ended", outcome
        a.ended_at = a.ended_at or now
        self.dialer.calls.routes.pop(a.channel_id, None)
        if a.channel_id.startswith("preview-") and a.call_id is not None:
            self.dialer.calls.record_end(a.call_id, a.ended_at, a.cause, outcome, "system")
        a.log.info("dialer.attempt_ended", outcome=outcome, disposition=a.disposition, cause=a.cause,
                   agent_id=a.agent_id)
        self.dialer.calls.writer.hub.publish("dial.ended", campaign=self.cfg.name, attempt_id=str(a.id),
                                             lead_id=a.lead.id, number=a.number, outcome=outcome, call_id=a.call_id,
                                             agent_id=a.agent_id, at=a.ended_at)
        self.dialer.spawn(self._close(a, now, wrapup))
        self.wake.set()

    async def _close(self, a: Attempt, now: float, wrapup: float | None) -> None:
        """Write the attempt's times and move the lead on; retried while the database is away."""
        assert a.outcome is not None
        await _retrying(lambda: self.dialer.close_attempt(self.cfg, a, now, wrapup), a.log, "dialer.close_failed")
        self.attempts.pop(a.channel_id, None)
        if a.call_id is not None:
            self.dialer.by_call.pop(a.call_id, None)
        self.dialer.closed += 1
        self.dialer._progress.set()


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


def dialer_grace(cfg: CampaignConfig) -> float:
    """Seconds a live answer may wait for an agent: 2 (US TSR and Ofcom)."""
    return 2.0


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
        acd.listeners.append(self._agent_changed)

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
        """After a restart: the attempts this instance left open (engine/dialrecover.py)."""
        self._adopted = await recover(self)

    async def _load_control(self) -> None:
        rows = await outbound.campaign_controls(self.pool())
        self.control = {r["name"]: r["state"] for r in rows}

    def controlled(self, c: CampaignConfig) -> CampaignConfig:
        """The campaign as the API left it: running dials, paused and stopped do not (calls in
        flight finish either way; engine/api/campaigns.py releases a stopped campaign's idle leases)."""
        state = self.control.get(c.name)
        return c if state is None else replace(c, active=state == "running")

    def set_control(self, name: str, state: str) -> None:
        """Apply a start / pause / stop already stored in campaign_control."""
        self.control[name] = state
        configured = next((c for c in self.config().campaigns if c.name == name), None)
        if configured is not None and name in self.campaigns:
            self.campaigns[name].reconfigure(self.controlled(configured))

    def inbound_hold(self, queue: str, now: float) -> int:
        """Idle agents of ``queue`` to keep for inbound: for each other queue they serve, its
        waiting callers plus the agents its service level needs (Erlang C on its recent traffic),
        less the agents already busy on it and the idle agents who take only inbound, at most the
        idle campaign agents who can take that queue's calls."""
        acd = self.acd.acd
        idle = [a for a in acd.agents.values() if queue in a.queues and a.phase is ag.AgentPhase.AVAILABLE]
        hold = 0
        for q in sorted({q for a in idle for q in a.queues if q != queue and q in acd.rules}):
            waiting = sum(1 for w in acd.waiting.values() if w.queue == q)
            covered = sum(1 for a in acd.agents.values() if q in a.queues and (
                a.phase in (ag.AgentPhase.ON_CALL, ag.AgentPhase.RESERVED, ag.AgentPhase.WRAP_UP)
                or (a.phase is ag.AgentPhase.AVAILABLE and queue not in a.queues)))
            able = sum(1 for a in idle if q in a.queues)
            hold += min(able, max(0, waiting + acd.agents_needed(q, now) - covered))
        return min(hold, len(idle))

    def held_agents(self, queue: str, count: int) -> frozenset[str]:
        """Which idle agents of ``queue`` are kept for inbound: those serving the most inbound
        queues (the most useful there), longest idle first. Answered calls of the campaign go to
        them only when no other agent is free (an abandon costs more than an inbound wait)."""
        acd = self.acd.acd
        idle = [a for a in acd.agents.values() if queue in a.queues and a.phase is ag.AgentPhase.AVAILABLE
                and any(q != queue and q in acd.rules for q in a.queues)]
        idle.sort(key=lambda a: (-len(a.queues), a.idle_since))
        return frozenset(a.id for a in idle[:count])

    def _agent_changed(self, change: ag.AgentChanged) -> None:
        for campaign in self.campaigns.values():
            for a in list(campaign.attempts.values()):
                if a.agent_id == change.agent_id and a.stage in ("talking", "wrapup"):
                    campaign.agent_changed(a, change)
            if change.phase is ag.AgentPhase.AVAILABLE:
                campaign.wake.set()

    def preview_dial(self, call_id: str) -> tuple[str, str, float] | None:
        """For a preview the agent answered: (dial template, caller id, ring seconds)."""
        found = self.by_call.get(call_id)
        if found is None or found[1].stage != "preview":
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
        if found is None or found[1].stage != "preview":
            return None
        a = found[1]
        name = a.lead.name.replace('"', "'")[:40]
        return f'"{name}" <{a.number}>' if name else a.number

    def preview_observe(self, call_id: str, command: Command) -> None:
        found = self.by_call.get(call_id)
        if found is not None:
            found[0].preview_observe(found[1], command)

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
        a.disposition = name
        if name in hopper.DNC_DISPOSITIONS:
            self.spawn(self._dnc_now(campaign, a, agent_id))

    async def _dnc_now(self, campaign: Campaign, a: Attempt, agent_id: str) -> None:
        e164 = await self.gate.add_dnc(a.number, now=time.time(), source=f"agent:{agent_id}",
                                       reason=f"disposition DNC (campaign {campaign.cfg.name})",
                                       region=campaign.cfg.default_region)
        a.log.info("dialer.dnc_listed", number=e164, agent_id=agent_id)

    async def close_attempt(self, cfg: CampaignConfig, a: Attempt, now: float, wrapup: float | None) -> None:
        assert a.outcome is not None
        async with self.pool().acquire() as conn:
            await outbound.attempt_closed(conn, a.id, _ts(a.answered_at), _ts(a.verdict_at), a.amd_status,
                                          _ts(a.connected_at), a.cause, wrapup, _ts(a.placed_at))
            step = await hopper.finish(conn, cfg, a.lead.id, now, owner=self.instance, outcome=a.outcome,
                                       disposition=a.disposition, attempt_id=a.id, number=a.number,
                                       agent_id=a.agent_id, call_id=a.call_id)
            if a.ended_at is not None:
                await outbound.attempt_ended_at(conn, a.id, _ts(a.ended_at))
        a.log.info("dialer.lead_moved", status=None if step is None else step.status,
                   next_due=None if step is None or step.next_due_at is None else round(step.next_due_at - now))
