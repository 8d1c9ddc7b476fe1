"""The ACD in the shell: one session around the pure :class:`~engine.core.acd.Acd`, and the agent legs.

The ACD runs as a single :class:`~engine.runtime.session.Session` (its events are handled one at a time, in
order, so no two offers can race). This module carries out what it decides:

- ``Offer``: originate a leg to the agent's phone (``POST /channels``, our app, a ring timeout);
  the leg's StasisStart means the agent answered (``OfferAnswered``); its ChannelDestroyed before
  that, with the Q.850 cause, means busy / no answer / rejected / unreachable (``OfferFailed``);
- ``Connect`` / ``Unroutable`` / ``Announce``: hand the news to the caller's call session;
- ``Withdraw``: hang up the agent's leg;
- ``Record*`` and ``AgentChanged``: ordered database writes.

It also restores agents after a restart (from ``agents_current``) before it handles anything else.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from engine.config.acd import to_profile, to_rules
from engine.adapters.ari import AriClient, AriError, AriUnavailable
from engine.config.model import Config
from engine.core import acd as A
from engine.core.causes import offer_result
from engine.core import agent as ag
from engine.core import call as C
from engine.core.common import Command, StartTimer
from engine.core import leg as L
from engine.store import acd as acd_store
from engine.store.db import Database, Write, Writer
from engine.shared.logsetup import get_logger
from engine.runtime.legs import LegWatch
from engine.runtime.ports import AgentLeg, CallDesk
from engine.runtime.router import Router
from engine.runtime.session import Session

__all__ = ["AcdService"]

log = get_logger("acd")

# The best candidates stored with each offer (the reason line also says how many there were).
STORED_CANDIDATES = 25
AUTO_ANSWER = {"PJSIP_HEADER(add,Call-Info)": "<sip:callcenter>;answer-after=0",
               "PJSIP_HEADER(add,Alert-Info)": "<http://callcenter>;info=alert-autoanswer;delay=0"}
# The phone's transfer key (a REFER) comes to the engine as ChannelTransfer instead of Asterisk
# moving the channels itself (out of our bridge): Asterisk 22.3's channel function (the endpoint
# option is not in 22.10's pjsip.conf).
TRANSFERS_TO_ENGINE = {"PJSIP_TRANSFER_HANDLING()": "ari-only"}
# Offer ids are made by the core per run; database ids must be unique across runs.
_RUN = uuid.uuid4()


class AcdService:
    def __init__(self, *, ari: AriClient, db: Database, writer: Writer, config: Callable[[], Config],
                 router: Router) -> None:
        self.ari = ari
        self.db = db
        self.writer = writer
        self.config = config
        cfg = config()
        self.acd = A.Acd({q.name: to_rules(q) for q in cfg.queues}, {a.id: to_profile(a) for a in cfg.agents})
        self.session: Session[A.Acd] = Session(state=self.acd, handle=A.step, execute=self._execute,
                                               log=log, on_transition=self._notify)
        self.router = router                     # the agent legs' events come here through it
        self.legs: dict[str, AgentLeg] = {}          # agent leg channel id -> leg
        self._desk: CallDesk | None = None        # the calls (attach(), by app.py)
        self.ready = asyncio.Event()             # agents restored; events flow
        self.listeners: list[Callable[[ag.AgentChanged], None]] = []   # told of every agent state change
        self._changed = asyncio.Event()
        self._placing: dict[str, asyncio.Task[None]] = {}   # agent leg channel id -> its POST /channels
        self._jobs: set[asyncio.Task[None]] = set()          # ARI requests running beside the session

    def attach(self, desk: CallDesk) -> None:
        """The calls that answered agent legs and the ACD's news go to (engine/app.py wires it)."""
        self._desk = desk

    @property
    def desk(self) -> CallDesk:
        if self._desk is None:
            raise RuntimeError("the ACD service is not attached to the calls (engine/app.py wires it)")
        return self._desk

    # -- running -------------------------------------------------------------------------------
    async def run(self) -> None:
        await self._restore()
        self.ready.set()
        try:
            await self.session.run()
        finally:
            for task in list(self._jobs):
                task.cancel()
            await asyncio.gather(*self._jobs, return_exceptions=True)

    def post(self, event: A.Event) -> None:
        self.session.post(event)

    async def request(self, event: A.Event) -> None:
        """Hand an event to the ACD and wait; raises Refused / IllegalTransition if turned down."""
        await self.session.request(event)

    def _notify(self) -> None:
        self._changed.set()

    async def wait_until(self, condition: Callable[[A.Acd], bool]) -> None:
        """Until ``condition(acd)`` holds, checked after every event the ACD handles."""
        while not condition(self.acd):
            self._changed.clear()
            await self._changed.wait()

    def reconfigure(self, cfg: Config) -> None:
        self.post(A.Reconfigure({q.name: to_rules(q) for q in cfg.queues}, {a.id: to_profile(a) for a in cfg.agents}))

    # -- restart -------------------------------------------------------------------------------
    async def _restore(self) -> None:
        """Agents stay logged in across a restart, in the state they were in."""
        try:
            async with asyncio.timeout(10):   # the database, with what the run before journalled
                await self.writer.caught_up()
        except TimeoutError:
            log.error("acd.restore_skipped", reason="database not ready; agents must log in again",
                      database_up=self.db.ready.is_set(), journal_replayed=self.writer.replayed.is_set())
            return
        assert self.db.pool is not None
        rows = await acd_store.logged_in_agents(self.db.pool)
        now = time.time()
        restored = 0
        for row in rows:
            agent_id = row["agent_id"]
            if agent_id not in self.acd.profiles:
                continue
            queues = frozenset(q for q in row["queues"] if q in self.acd.rules)
            phase = ag.AgentPhase(row["state"])
            if phase is ag.AgentPhase.RESERVED:
                phase = ag.AgentPhase.AVAILABLE  # the ringing leg did not survive us
            agent = ag.Agent(
                id=agent_id, phase=phase, queues=queues, endpoint=row["endpoint"], pause_reason=row["reason"],
                call_id=str(row["call_id"]) if row["call_id"] and phase is not ag.AgentPhase.AVAILABLE else None,
                since=row["since"].timestamp(),
                idle_since=row["idle_since"].timestamp() if row["idle_since"] else row["since"].timestamp(),
                calls_taken=row["calls_taken"], pending=row["pending"])
            queue = None
            if agent.phase in ag.CALL_PHASES and agent.call_id is not None:
                queue = await acd_store.agent_call_queue(self.db.pool, agent.call_id, agent_id)
            commands = self.acd.restore_agent(agent, now, queue=queue)
            for c in commands:
                if isinstance(c, StartTimer):
                    self.session.timers.start(c.key, c.at)
            restored += 1
        log.info("acd.restored", agents=restored)

    def after_reconcile(self, connected_calls: set[str]) -> None:
        """Agents on a call that did not survive the restart go to wrap-up."""
        for agent in list(self.acd.agents.values()):
            if agent.phase in ag.CALL_PHASES and agent.call_id not in connected_calls:
                self.post(A.CallFinished(agent.id))

    # -- agent legs (events routed here by the CallManager) ------------------------------------
    def on_leg(self, leg: AgentLeg, command: Command) -> None:
        """What the leg machine says of an agent leg (engine/runtime/legs.py)."""
        if isinstance(command, L.LegAnswered):
            self.post(A.OfferAnswered(leg.call_id, leg.agent_id))
        elif isinstance(command, L.LegFailed):
            self.legs.pop(leg.channel_id, None)
            self.post(A.OfferFailed(leg.call_id, leg.agent_id, offer_result(command.cause, command.rang)))
        elif isinstance(command, L.LegEnded):
            self.legs.pop(leg.channel_id, None)

    def drop_leg(self, channel_id: str) -> bool:
        """Stop following an agent leg; whether it was still followed."""
        self.router.forget(channel_id)
        return self.legs.pop(channel_id, None) is not None

    def leg_of(self, call_id: str, agent_id: str) -> AgentLeg | None:
        for leg in self.legs.values():
            if leg.call_id == call_id and leg.agent_id == agent_id:
                return leg
        return None

    # -- commands --------------------------------------------------------------------------------
    async def _execute(self, session: Session[A.Acd], command: Command) -> None:
        submit, publish = self.writer.submit, self.writer.hub.publish
        if isinstance(command, A.Offer):
            self._offer(command)
        elif isinstance(command, A.Withdraw):
            leg = self.leg_of(command.call_id, command.agent_id)
            if leg is not None:
                self.drop_leg(leg.channel_id)
                self._beside(self._withdraw(leg.channel_id))
        elif isinstance(command, A.Connect):
            leg = self.leg_of(command.call_id, command.agent_id)
            if leg is None:
                # The agent's leg went between its answer and now: the caller goes back in line.
                log.warning("acd.connect_without_leg", call_id=command.call_id, agent_id=command.agent_id)
                self.post(A.ConnectFailed(command.call_id, command.agent_id))
            else:
                self.desk.connect(leg, command.queue, alive=self.drop_leg(leg.channel_id))
        elif isinstance(command, A.Unroutable):
            self.desk.post(command.call_id, C.GaveUp(command.reason))
        elif isinstance(command, A.Announce):
            self.desk.post(command.call_id, C.Announcement(command.position, command.expected_wait))
        elif isinstance(command, ag.AgentChanged):
            a = self.acd.agents.get(command.agent_id) or ag.Agent(command.agent_id)
            log.info("agent.state", agent_id=command.agent_id, state=command.phase.value, reason=command.reason,
                     call_id=command.call_id)
            for listener in self.listeners:
                listener(command)
            submit(Write("agent_state", (str(uuid.uuid4()), command.agent_id, command.phase.value, command.reason,
                                         command.call_id, command.at, sorted(a.queues), a.endpoint, a.idle_since,
                                         a.calls_taken, a.pending)))
            publish("agent.state", agent_id=command.agent_id, state=command.phase.value, reason=command.reason,
                    call_id=command.call_id, at=command.at)
        elif isinstance(command, A.QueueEntered):
            log.info("queue.entered", call_id=command.call_id, queue=command.queue, priority=command.priority)
            submit(Write("queue_entered", (str(uuid.uuid4()), command.call_id, command.queue, command.priority,
                                           command.at, command.entered_at)))
            publish("queue.entered", call_id=command.call_id, queue=command.queue, priority=command.priority,
                    at=command.at)
        elif isinstance(command, A.QueueLeft):
            log.info("queue.left", call_id=command.call_id, queue=command.queue, outcome=command.outcome,
                     wait=round(command.wait, 2), agent_id=command.agent_id)
            submit(Write("queue_left", (command.call_id, command.queue, command.at, command.outcome,
                                        command.wait, command.agent_id)))
            publish("queue.left", call_id=command.call_id, queue=command.queue, outcome=command.outcome,
                    wait_seconds=command.wait, agent_id=command.agent_id, at=command.at)
            if command.outcome == "answered":
                publish("call.answered", call_id=command.call_id, agent_id=command.agent_id, queue=command.queue,
                        at=command.at)
        elif isinstance(command, A.OfferMade):
            d, offer_id = command.decision, self.offer_uuid(command.offer_id)
            reason = d.explain()
            log.info("queue.offer", call_id=command.call_id, queue=command.queue, agent_id=command.agent_id,
                     reason=reason)
            submit(Write("offer_made", (offer_id, command.call_id, command.queue,
                                        command.agent_id, command.at, d.strategy, json.dumps(dict(d.requirement)),
                                        d.step, json.dumps([list(c) for c in d.candidates[:STORED_CANDIDATES]]), reason)))
            publish("call.offered", call_id=command.call_id, queue=command.queue, agent_id=command.agent_id,
                    offer_id=offer_id, reason=reason, at=command.at)
        elif isinstance(command, A.OfferEnded):
            offer_id = self.offer_uuid(command.offer_id)
            submit(Write("offer_ended", (offer_id, command.at, command.result)))
            publish("call.offer_ended", offer_id=offer_id, result=command.result,
                    at=command.at)
        elif isinstance(command, A.QueueReopened):
            log.info("queue.reopened", call_id=command.call_id, queue=command.queue, agent_id=command.agent_id)
            submit(Write("queue_reopened", (command.call_id, command.queue, command.agent_id)))
            publish("queue.reopened", call_id=command.call_id, queue=command.queue, agent_id=command.agent_id,
                    at=command.at)
        elif isinstance(command, A.CallbackRequested):
            submit(Write("callback_requested", (command.call_id, command.queue, command.number, command.at)))
        else:
            raise TypeError(f"no executor for {command!r}")

    @staticmethod
    @functools.lru_cache(maxsize=4096)   # an offer's id is asked for five times in its life
    def offer_uuid(offer_id: str) -> str:
        return str(uuid.uuid5(_RUN, offer_id))

    def _offer(self, offer: A.Offer) -> None:
        channel_id = f"agentleg-{self.offer_uuid(offer.offer_id)}"
        leg = AgentLeg(channel_id, offer.call_id, offer.agent_id, offer.offer_id, callback_number=offer.callback_number)
        self.legs[channel_id] = leg
        watch = LegWatch(self.router, channel_id, lambda command: self.on_leg(leg, command))
        caller = self.desk.caller_of(offer.call_id)
        app = self.config().asterisk.ari.app
        # An answered outbound call has seconds to reach an agent: ask the phone to answer by itself
        # (Call-Info answer-after: Yealink, Snom, Grandstream, Cisco; Alert-Info: Polycom and others).
        variables = {**AUTO_ANSWER} if self.desk.is_outbound(offer.call_id) else {}
        if offer.endpoint.startswith("PJSIP/"):
            variables.update(TRANSFERS_TO_ENGINE)
        body = {"variables": variables} if variables else None
        params = dict(endpoint=offer.endpoint, app=app, channelId=channel_id,
                      appArgs=f"agentleg,{offer.call_id},{offer.agent_id}", timeout=int(offer.ring_timeout),
                      callerId=caller or None)
        # The ACD goes on deciding while Asterisk makes the channel: the request runs beside the
        # session (its leg is followed already); a withdrawal of this offer waits for it.
        self._placing[channel_id] = self._beside(self._place(offer, watch, params, body))

    async def _place(self, offer: A.Offer, watch: LegWatch, params: dict[str, Any], body: Any) -> None:
        channel_id = watch.channel_id
        try:
            await self.ari.request("POST", "/channels", params=params, body=body)
        except AriUnavailable as exc:
            # No answer in time (or the connection dropped): Asterisk may well have made the channel
            # and be ringing the phone. Keep following the leg (we chose its id): its StasisStart
            # still answers the offer, its ChannelDestroyed fails it, and the ring timer withdraws
            # it (hanging it up) if neither comes.
            log.warning("acd.offer_unconfirmed", call_id=offer.call_id, agent_id=offer.agent_id,
                        channel_id=channel_id, error=str(exc))
        except AriError as exc:
            # 500 "Allocation failed": no reachable contact for the phone; 4xx: a bad endpoint.
            log.warning("acd.offer_failed", call_id=offer.call_id, agent_id=offer.agent_id, error=str(exc))
            if channel_id in self.legs:   # not withdrawn meanwhile
                watch.not_placed(str(exc))
        finally:
            self._placing.pop(channel_id, None)

    async def _withdraw(self, channel_id: str) -> None:
        """Hang up a withdrawn offer's leg, once the request that places it has been answered."""
        placing = self._placing.get(channel_id)
        if placing is not None:
            await asyncio.wait([placing])
        await self.desk.hang_up(channel_id, "offer withdrawn")

    def _beside(self, job: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(job)
        self._jobs.add(task)
        task.add_done_callback(self._job_done)
        return task

    def _job_done(self, task: asyncio.Task[None]) -> None:
        self._jobs.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("acd.request_failed", error=repr(task.exception()))

