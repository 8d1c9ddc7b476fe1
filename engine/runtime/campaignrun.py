"""One campaign's dialing loop, and the shell around each of its attempts.

Every attempt is the pure machine of :mod:`engine.core.attempt`; this module only translates: ARI
events and the answered call's session into the machine's events (:meth:`Campaign.on_event`,
:meth:`Campaign.on_call`), and the machine's commands into ARI requests, timers, the pacer and
the database (:meth:`Campaign.run_command`, one table). The simulator (engine/sim/dialer.py) runs
the same machine with its own table of commands.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import structlog

from engine.store import hopper
from engine.adapters.ari import AriError, path
from engine.config.campaign import CampaignConfig
from engine.core import acd as A
from engine.core import attempt as AT
from engine.core import call as C
from engine.core import callback as K
from engine.core import campaign as CP
from engine.core import leg as L
from engine.core import pacing as P
from engine.core.common import CancelTimer, Command, Event, IllegalTransition, Rejected, StartTimer, TimerFired
from engine.core.compliance import Decision, Scope
from engine.store.db import Write
from engine.runtime.legs import LegWatch

if TYPE_CHECKING:
    from engine.runtime.dialer import Dialer
    from engine.runtime.dialrecover import Adopted

__all__ = ["Attempt", "Campaign", "OUTBOUND_PRIORITY", "plan_for"]

TICK = 1.0                  # the pacer is asked at least this often
LEASE_RENEW = 60.0          # leads being worked are renewed this often (the lease is 300 s)
MAX_DIALS_PER_TICK = 50     # at most this many originates in one step (the rest next tick)
OUTBOUND_PRIORITY = 1000    # answered outbound calls go ahead of inbound callers: 2 s grace
GRACE_SECONDS = 2.0         # a live answer may wait this long for an agent (US TSR and Ofcom)
_PREVIEW = uuid.UUID("0b6f7c3e-8d7a-4d0e-9a55-3f2a9c1e7b42")   # preview call ids from attempt ids
_PREVIEW_OUTCOMES = {"answered": None, "busy": "busy", "no-answer": "no_answer"}


def plan_for(cfg: CampaignConfig) -> AT.Plan:
    """What each attempt of the campaign does (its machine's fixed settings)."""
    machine = (f"sound:{cfg.amd.message}",) if cfg.amd.action == "message" and cfg.amd.message else ()
    agentless = cfg.agentless if cfg.mode == "agentless" else None
    return AT.Plan(amd=cfg.amd.enabled, machine_media=machine, preview=cfg.mode == "preview",
                   agentless_media=None if agentless is None else tuple(f"sound:{m}" for m in agentless.message),
                   keys=MappingProxyType(dict(agentless.keys) if agentless is not None else {}))


@dataclass(slots=True)
class Attempt:
    """The shell's side of one attempt: the lead, the channel, the machine's state, its timers."""

    id: uuid.UUID
    lead: hopper.Lead
    number: str
    channel_id: str
    state: AT.Attempt
    call_id: str | None = None
    channel: dict[str, Any] = field(default_factory=dict)    # as the last StasisStart showed it
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    log: Any = field(default=None, repr=False)
    watch: LegWatch | None = field(default=None, repr=False)   # the customer's channel until the hand-over

    @property
    def stage(self) -> AT.Stage:
        return self.state.stage

    @property
    def agent_id(self) -> str | None:
        return self.state.agent_id


class Campaign:
    """One campaign's dialing loop and the calls it has in flight."""

    def __init__(self, dialer: Dialer, cfg: CampaignConfig) -> None:
        self.dialer = dialer
        self.cfg = cfg
        self.plan = plan_for(cfg)
        self.pacer = P.make_pacer(cfg.algorithm, self._settings(cfg))
        self.attempts: dict[str, Attempt] = {}        # channel id -> attempt
        self.tally = CP.Tally()                       # over the abandon window (loaded, then counted)
        self.kept_for_inbound: frozenset[str] = frozenset()   # blended agents the dialer left to inbound
        self.wake = asyncio.Event()
        self.log = dialer.log.bind(campaign=cfg.name)
        self._renewed = 0.0
        self.recent_dials: deque[float] = deque(maxlen=10_000)   # dial times (the live dial rate)
        self._commands: Mapping[type, Callable[[Attempt, Any, float], None]] = {
            AT.Originate: self._originate, AT.ScreenWithAmd: self._screen, AT.PlayTo: self._play,
            AT.HangUpCustomer: self._hang_up, AT.Probe: self._probe, AT.HandOver: self._hand_over,
            AT.Tell: self._tell, AT.Count: self._count, AT.Closed: self._closed, StartTimer: self._start_timer,
            CancelTimer: self._cancel_timer,
        }

    @staticmethod
    def _settings(cfg: CampaignConfig) -> P.PacingSettings:
        return P.PacingSettings(abandon_target=cfg.abandon.target_percent / 100.0,
                                connect_grace_seconds=GRACE_SECONDS, ring_timeout_seconds=cfg.ring_timeout_seconds)

    def reconfigure(self, cfg: CampaignConfig) -> None:
        if cfg.algorithm != self.cfg.algorithm:
            self.pacer = P.make_pacer(cfg.algorithm, self._settings(cfg))
        self.cfg, self.plan = cfg, plan_for(cfg)
        self.wake.set()

    # -- what the face's view reads (engine/runtime/face.py) ------------------------------------
    def lines_in_flight(self) -> int:
        return CP.in_flight(a.state for a in self.attempts.values())

    def dials_since(self, since: float) -> int:
        """Dials placed at or after ``since`` (the live dial rate)."""
        return sum(1 for t in self.recent_dials if t >= since)

    def leads_in_flight(self) -> list[int]:
        return [a.lead.id for a in self.attempts.values() if a.stage is not AT.Stage.ENDED]

    def counted_abandons(self) -> tuple[int, int]:
        a = self.cfg.abandon
        return self.tally.counted(rule=a.rule, amd=self.cfg.amd.enabled, false_positive_percent=a.amd_false_positive_percent or 0.0)

    # -- the loop ------------------------------------------------------------------------------
    async def run(self) -> None:
        structlog.contextvars.bind_contextvars(campaign=self.cfg.name)
        await self.dialer.retrying(self._load_counters, self.log, "dialer.counters_failed")
        self.log.info("dialer.campaign_started", mode=self.cfg.mode, algorithm=self.cfg.algorithm,
                      live_answers=self.tally.live_answers, abandoned=self.tally.abandoned)
        while True:
            try:
                async with asyncio.timeout(TICK):
                    await self.wake.wait()
            except TimeoutError:
                pass
            self.wake.clear()
            try:
                await self.step(time.time())
            except self.dialer.db_errors as exc:
                self.log.warning("dialer.step_failed", error=f"{type(exc).__name__}: {exc}")
            except Exception:   # a bug: log it, keep the engine and the other campaigns going
                self.log.exception("dialer.step_crashed")

    async def _load_counters(self) -> None:
        live, abandoned, machines = await self.dialer.window_counts(self.cfg, time.time())
        self.tally = CP.Tally(live, abandoned, machines)

    def snapshot(self, now: float) -> P.Snapshot:
        """The campaign now, for the pacer: its agents (less those inbound needs) and its lines."""
        snap, self.kept_for_inbound = CP.snapshot(self.dialer.acd.acd, self.cfg.queue,
                                                  [a.state for a in self.attempts.values()],
                                                  self.counted_abandons(), now)
        return snap

    def wanted(self, now: float) -> int:
        return CP.wanted(self.cfg.mode, self.pacer, self.snapshot(now), [a.state for a in self.attempts.values()],
                         now, agentless_lines=self.dialer.agentless_lines)

    async def step(self, now: float) -> int:
        """Dial what the pacer wants now; returns how many calls were placed."""
        if not self.cfg.active or not self.dialer.ready():
            return 0
        await self._renew(now)
        n = min(self.wanted(now), MAX_DIALS_PER_TICK)
        if n <= 0:
            return 0
        leads = await hopper.take(self.dialer.pool(), self.cfg.name, n, now, owner=self.dialer.instance)
        placed = 0
        for lead in leads:
            placed += await self.dial(lead, now)
        return placed

    async def _renew(self, now: float) -> None:
        if now - self._renewed < LEASE_RENEW:
            return
        self._renewed = now
        if ids := self.leads_in_flight():
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
            self.dialer.progressed()
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
        state, commands = AT.dial(str(attempt_id), self.plan, now)
        a = Attempt(attempt_id, lead, result.number, f"dial-{attempt_id}", state,
                    log=bound.bind(attempt_id=str(attempt_id), number=result.number))
        self.attempts[a.channel_id] = a
        a.watch = LegWatch(self.dialer.calls.router, a.channel_id, lambda command: self.on_leg(a, command),
                           other=lambda event: self.on_event(a, event), leaves=False)
        a.log.info("dialer.dialing", mode=mode, caller_id=caller_id)
        self.run_commands(a, commands, now)
        return 1

    async def _preview(self, lead: hopper.Lead, result: Any, mode: str, attempt_id: uuid.UUID, caller_id: str,
                       bound: Any, now: float) -> int:
        """Offer the lead to an agent first (the phone shows the customer); the number is dialled
        once the agent answers (:class:`engine.runtime.callbacks.Callbacks`, as for a callback)."""
        pool, instance, cfg, calls = self.dialer.pool(), self.dialer.instance, self.cfg, self.dialer.calls
        call_id = str(uuid.uuid5(_PREVIEW, str(attempt_id)))
        a = Attempt(attempt_id, lead, result.number, f"preview-{attempt_id}", AT.preview(str(attempt_id), self.plan, now),
                    call_id=call_id, log=bound.bind(attempt_id=str(attempt_id), number=result.number, call_id=call_id))
        self.attempts[a.channel_id] = a
        self.dialer.by_call[call_id] = (self, a)
        # The preview is a call from the agent's point of view (offers and waits refer to it).
        calls.writer.submit(Write("call_started", (call_id, a.channel_id, "outbound", result.number,
                                                   lead.name, result.number, now)))
        try:
            await self.dialer.acd.request(A.Enqueue(call_id, cfg.queue or "", OUTBOUND_PRIORITY, callback=result.number))
        except Rejected as exc:
            refused = str(exc)
        else:
            refused = None if call_id in self.dialer.acd.acd.waiting else "nobody staffs the queue"
        if refused is not None:
            calls.record_end(call_id, now, None, refused, "system")
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

    def adopt(self, x: Adopted, now: float) -> None:
        """An attempt whose customer was still with an agent at the restart goes on here."""
        calls = self.dialer.calls
        state = AT.adopt(str(x.id), self.plan, placed_at=x.placed_at, answered_at=x.answered_at,
                         connected_at=x.connected_at or now, agent_id=x.agent_id,
                         call_over=x.call_id not in calls.by_call, now=now)
        a = Attempt(x.id, x.lead, x.number, x.channel_id, state, call_id=x.call_id,
                    log=self.log.bind(lead_id=x.lead.id, attempt_id=str(x.id), number=x.number, call_id=x.call_id))
        self.attempts[x.channel_id] = a
        self.dialer.by_call[x.call_id] = (self, a)
        if x.call_id in calls.by_call:
            calls.observers[x.call_id] = lambda c: self.on_call(a, c)
        a.log.info("dialer.attempt_adopted", agent_id=a.agent_id, stage=a.stage.value)
        agent = self.dialer.acd.acd.agents.get(x.agent_id or "")
        if agent is None or agent.call_id != x.call_id or agent.phase not in (*A.ag.CALL_PHASES,
                                                                                A.ag.AgentPhase.WRAP_UP):
            self.feed(a, AT.AgentFree(now), now)
        elif agent.phase is A.ag.AgentPhase.WRAP_UP:
            self.feed(a, AT.AgentWrapup(agent.since), now)

    # -- into the machine -----------------------------------------------------------------------
    def feed(self, a: Attempt, event: Event, now: float | None = None) -> None:
        """One event into the attempt's machine; its commands carried out. An event its table has
        no row for (a late or repeated one) changes nothing and is logged."""
        now = time.time() if now is None else now
        try:
            state, commands = AT.handle(a.state, event, now)
        except IllegalTransition:
            a.log.debug("dialer.event_ignored", stage=a.stage.value, on=type(event).__name__)
            return
        if state.stage is not a.state.stage:
            a.log.info("dialer.attempt", stage=state.stage.value, was=a.stage.value, on=type(event).__name__)
        a.state = state
        self.run_commands(a, commands, now)

    def on_leg(self, a: Attempt, command: Command) -> None:
        """What the leg machine says of the customer's channel before the hand-over (synchronous)."""
        if isinstance(command, L.LegRinging):
            self.feed(a, AT.Rang())
            self.dialer.progressed()
        elif isinstance(command, L.LegAnswered):
            a.channel = a.watch.channel if a.watch is not None else {}
            self.feed(a, AT.Answered())
        elif isinstance(command, L.LegFailed) and command.cause is None and command.detail:
            self.feed(a, AT.OriginateFailed(command.permanent))
        elif isinstance(command, (L.LegFailed, L.LegEnded)):
            self.feed(a, AT.Hungup(command.cause))

    def on_event(self, a: Attempt, event: dict[str, Any]) -> None:
        """The channel's other ARI events: AMD's verdict, a playback's end, a key."""
        kind = event.get("type")
        args = event.get("args") or []
        if kind == "StasisStart" and args[:1] == ["amd"]:
            a.channel = event.get("channel") or {}
            a.log.info("dialer.amd", status=args[1] if len(args) > 1 else "NOTSURE",
                       cause=args[2] if len(args) > 2 else "")
            self.feed(a, AT.AmdVerdict(args[1] if len(args) > 1 else "NOTSURE"))
        elif kind == "PlaybackFinished":
            self.feed(a, AT.PlaybackFinished(str((event.get("playback") or {}).get("id"))))
        elif kind == "ChannelDtmfReceived":
            self.feed(a, AT.Key(str(event.get("digit", ""))))

    def on_call(self, a: Attempt, command: Command) -> None:
        """The answered call's session at work: connected, abandoned, its cause, its end."""
        if isinstance(command, C.RecordEvent) and command.kind == "connected":
            self.feed(a, AT.CallConnected(command.detail))
        elif isinstance(command, C.RecordEvent) and command.kind == "abandoned":
            self.feed(a, AT.CallAbandoned())
        elif isinstance(command, C.RecordEnded):
            self.feed(a, AT.CallCause(command.cause))
        elif isinstance(command, C.Finish):
            self.feed(a, AT.CallOver())

    def on_preview(self, a: Attempt, command: Command) -> None:
        """The callback machine that dials a preview's customer (engine/runtime/callbacks.py)."""
        if isinstance(command, K.DialCustomer):
            self.feed(a, AT.CustomerDialled())
        elif isinstance(command, C.AgentCallOver):
            self.feed(a, AT.AgentKnown(command.agent_id))
        elif isinstance(command, K.RecordOutcome):
            self.feed(a, AT.AgentKnown(command.agent_id))
            outcome = _PREVIEW_OUTCOMES.get(command.outcome, "failed")
            self.feed(a, AT.CustomerAnswered(command.agent_id) if outcome is None else AT.CustomerFailed(outcome))

    # -- out of the machine: one table ----------------------------------------------------------
    def run_commands(self, a: Attempt, commands: list[Command], now: float) -> None:
        for c in commands:
            self._commands[type(c)](a, c, now)

    def _originate(self, a: Attempt, c: AT.Originate, now: float) -> None:
        cfg = self.cfg
        self.recent_dials.append(now)
        self.dialer.calls.writer.hub.publish("dial.placed", campaign=cfg.name, attempt_id=str(a.id),
                                             lead_id=a.lead.id, number=a.number, at=now)
        self.dialer.spawn(self._request(a, lambda: self.dialer.calls.ari.post(
            "/channels", endpoint=cfg.dial.format(number=a.number), app=self.dialer.app(), appArgs="dial",
            channelId=a.channel_id, timeout=int(cfg.ring_timeout_seconds), callerId=cfg.caller_id_for(a.number)),
            lambda exc: self._not_placed(a, exc), "dialer.originate_failed"))

    @staticmethod
    def _not_placed(a: Attempt, exc: AriError) -> None:
        if a.watch is not None:   # the leg fails; its LegFailed comes back to on_leg
            a.watch.not_placed(exc.message or str(exc), exc.status in (400, 404))

    async def _request(self, a: Attempt, call: Callable[[], Any], failed: Callable[[AriError], Event | None],
                       event: str) -> None:
        try:
            await call()
        except AriError as exc:
            a.log.warning(event, status=exc.status, error=exc.message)
            answer = failed(exc)
            if answer is not None:
                self.feed(a, answer)

    def _screen(self, a: Attempt, c: AT.ScreenWithAmd, now: float) -> None:
        self.dialer.spawn(self._request(a, lambda: self.dialer.calls.ari.post(
            path("channels", a.channel_id, "continue"), context="callcenter-amd", extension="s", priority=1),
            lambda exc: AT.AmdUnavailable(exc.message), "dialer.amd_failed"))

    def _play(self, a: Attempt, c: AT.PlayTo, now: float) -> None:
        self.dialer.spawn(self._request(a, lambda: self.dialer.calls.ari.post(
            path("channels", a.channel_id, "play", c.playback), media=list(c.media)),
            lambda exc: AT.PlaybackFailed(exc.message), "dialer.play_failed"))

    def _hang_up(self, a: Attempt, c: AT.HangUpCustomer, now: float) -> None:
        self.dialer.spawn(self.dialer.calls.hang_up(a.channel_id, c.reason))

    def _probe(self, a: Attempt, c: AT.Probe, now: float) -> None:
        self.dialer.spawn(self._request(a, lambda: self.dialer.calls.ari.get(path("channels", a.channel_id)),
                                        lambda exc: AT.Gone() if exc.gone else None, "dialer.probed"))

    def _hand_over(self, a: Attempt, c: AT.HandOver, now: float) -> None:
        """A person: the call becomes an ordinary call in the campaign's queue."""
        self.dialer.calls.router.forget(a.channel_id)   # the call session owns the channel now
        cfg = self.dialer.config()
        q = next((q for q in cfg.queues if q.name == self.cfg.queue), None)
        route = C.Route(queue=self.cfg.queue, priority=OUTBOUND_PRIORITY,
                        music=q.announce.music if q is not None else "default",
                        music_after=q.announce.music_after_seconds if q is not None else 0.0,
                        recording=q.recording if q is not None else "none", record_code=cfg.agent_codes.record,
                        connect_grace=GRACE_SECONDS,
                        abandon_media=(f"sound:{self.cfg.safe_harbor_sound}",) if self.cfg.safe_harbor_sound else (),
                        avoid_agents=self.kept_for_inbound)
        a.call_id = self.dialer.calls.begin_outbound(a.channel, route, number=a.number, name=a.lead.name,
                                                     observer=lambda command: self.on_call(a, command))
        self.dialer.by_call[a.call_id] = (self, a)
        a.log = a.log.bind(call_id=a.call_id)

    def _tell(self, a: Attempt, c: AT.Tell, now: float) -> None:
        self.pacer.observe(c.event, now)

    def _count(self, a: Attempt, c: AT.Count, now: float) -> None:
        self.tally = self.tally.count(c.kind)
        if c.kind == "abandoned":
            t = self.tally
            a.log.warning("dialer.abandoned", live_answers=t.live_answers, abandoned=t.abandoned,
                          rate=round(t.abandoned / t.live_answers, 4))
        elif c.kind == "live" and a.stage is AT.Stage.CONNECTED:
            s = a.state
            a.log.info("dialer.connected", agent_id=s.agent_id,
                       answer_to_agent=round((s.connected_at or now) - (s.verdict_at or now), 3))
            self.dialer.progressed()

    def _start_timer(self, a: Attempt, c: StartTimer, now: float) -> None:
        self._cancel_timer(a, CancelTimer(c.key), now)
        loop = asyncio.get_running_loop()
        a.timers[c.key] = loop.call_later(max(0.0, c.at - time.time()), self.feed, a, TimerFired(c.key))

    def _cancel_timer(self, a: Attempt, c: CancelTimer, now: float) -> None:
        handle = a.timers.pop(c.key, None)
        if handle is not None:
            handle.cancel()

    def _closed(self, a: Attempt, c: AT.Closed, now: float) -> None:
        s = a.state
        calls = self.dialer.calls
        calls.router.forget(a.channel_id)
        if s.plan.preview and a.call_id is not None:
            calls.record_end(a.call_id, s.ended_at or now, s.cause, c.outcome, "system")
        a.log.info("dialer.attempt_ended", outcome=c.outcome, disposition=s.disposition, cause=s.cause,
                   agent_id=s.agent_id)
        calls.writer.hub.publish("dial.ended", campaign=self.cfg.name, attempt_id=str(a.id), lead_id=a.lead.id,
                                 number=a.number, outcome=c.outcome, call_id=a.call_id, agent_id=s.agent_id,
                                 at=s.ended_at)
        self.dialer.spawn(self._close(a, now, c.wrapup))
        self.wake.set()

    async def _close(self, a: Attempt, now: float, wrapup: float | None) -> None:
        """Write the attempt's times and move the lead on; retried while the database is away."""
        await self.dialer.retrying(lambda: self.dialer.close_attempt(self.cfg, a, now, wrapup), a.log,
                                   "dialer.close_failed")
        self.attempts.pop(a.channel_id, None)
        if a.call_id is not None:
            self.dialer.by_call.pop(a.call_id, None)
        self.dialer.closed += 1
        self.dialer.progressed()
