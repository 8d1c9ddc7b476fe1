"""Reconciliation: after each ARI (re)connect, what Asterisk really has becomes the engine's state.

Asterisk is the truth for what is connected, PostgreSQL for what only the engine knew:

- a caller in one of our bridges was talking to an agent. The bridge's *name* says which agent,
  which leg, which queue and where the caller goes after the agent (the engine names each bridge
  so when it makes it), so the call is adopted connected even if the database never heard of it.
  With the agent's leg beside it the call goes on; alone, the agent hung up while we were away and
  the call goes on from there (it ends, or goes to the queue's ``after:`` node) as if we had seen it;
- a caller in no bridge was waiting (or in the IVR): the database's open queue entry gives its
  queue, its place in line and when it entered the queue, so its wait goes on from there;
- left-over agent legs and feature calls are hung up, empty bridges of ours removed;
- rows the database thinks are open but whose channel is gone are closed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from engine.adapters.ari import AriError, path
from engine.store import calls as call_store
from engine.store.db import Write
from engine.shared.logsetup import get_logger

if TYPE_CHECKING:
    from engine.runtime.calls import CallManager

__all__ = ["BRIDGE_PREFIX", "BridgeInfo", "Reconciler", "bridge_name", "call_id_for", "parse_bridge_name", "stasis_role"]

log = get_logger("calls")

# The roles of a caller's or a customer's channel (the other end of an agent's leg).
CUSTOMER_ROLES = ("inbound", "dial", "amd")
# Every bridge the engine creates is named with this prefix, so reconciliation knows its own.
BRIDGE_PREFIX = "cc-"
# Call ids are derived from the channel id, so adopting a channel after a restart (or replaying a
# journalled write) finds the same row instead of making a second one.
_NAMESPACE = uuid.UUID("5b0f8e39-33a4-4f7c-9a43-6c1f0a8e2d11")


def call_id_for(channel_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, channel_id))


@dataclass(frozen=True, slots=True)
class BridgeInfo:
    """What a call's bridge name says: who the caller was connected to, and what comes after."""

    agent: str | None = None
    leg: str | None = None
    queue: str | None = None
    after: tuple[str, str] | None = None   # (tree, node) for the caller once the agent hangs up


def bridge_name(call_id: str, *, agent: str | None, leg: str, queue: str | None,
                after: tuple[str, str] | None) -> str:
    """``cc-<call>;agent=9001;leg=agentleg-...;queue=support;after=main%2Fsurvey``."""
    fields = {"agent": agent, "leg": leg, "queue": queue, "after": "/".join(after) if after else None}
    return ";".join([f"{BRIDGE_PREFIX}{call_id}", *(f"{k}={quote(v, safe='')}" for k, v in fields.items() if v)])


def parse_bridge_name(name: str) -> BridgeInfo:
    fields = {k: unquote(v) for k, _, v in (part.partition("=") for part in name.split(";")[1:]) if v}
    tree, _, node = fields.get("after", "").partition("/")
    return BridgeInfo(agent=fields.get("agent"), leg=fields.get("leg"), queue=fields.get("queue"),
                      after=(tree, node) if tree and node else None)


class Reconciler:
    def __init__(self, calls: CallManager) -> None:
        self.calls = calls
        self.lost_swept = asyncio.Event()  # set once open rows were checked against Asterisk

    async def reconcile(self) -> None:
        calls = self.calls
        app = calls.config().asterisk.ari.app
        channels = await calls.ari.get("/channels")
        bridges = await calls.ari.get("/bridges")
        ours: dict[str, tuple[BridgeInfo, list[str]]] = {}  # channel -> its cc- bridge and the members
        for b in bridges:
            if str(b.get("name", "")).startswith(BRIDGE_PREFIX):
                members = list(b.get("channels") or [])
                for m in members:
                    ours[m] = (parse_bridge_name(str(b["name"])), members)
        by_id = {ch["id"]: ch for ch in channels}
        adopted, hung_up = 0, 0
        try:  # the database says where each waiting caller was, once it holds what the journal
            async with asyncio.timeout(5):   # of the run before has (give it a moment at start-up)
                await calls.writer.caught_up()
        except TimeoutError:
            log.warning("calls.reconcile_without_database", database_up=calls.db.ready.is_set(),
                        journal_replayed=calls.writer.replayed.is_set())
        current = calls.db.ready.is_set() and calls.writer.replayed.is_set()
        followed: set[str] = set()      # agent legs adopted with their caller
        with_agent: set[str] = set()    # calls adopted with their agent (who they release themselves)
        # Callers and customers first, so that an agent leg still bridged to one is adopted with
        # it, not hung up.
        for ch in sorted(channels, key=lambda c: stasis_role(c, app) not in CUSTOMER_ROLES):
            cid = ch["id"]
            role = stasis_role(ch, app)
            if role is None or calls.knows(cid):
                continue
            if role == "inbound" or (role in CUSTOMER_ROLES and cid in ours):
                info, members = ours.get(cid, (None, []))
                mate = next((m for m in members if m != cid and m in by_id), None)
                if await self._adopt(ch, mate, info, current=current):
                    with_agent.add(call_id_for(cid))
                if mate is not None:
                    followed.add(mate)
                adopted += 1
            elif cid in followed:
                continue
            else:  # an agent leg or a feature call whose session did not survive: hang up
                await calls.hang_up(cid, f"left over {role} channel")
                hung_up += 1
        removed = 0
        for b in bridges:
            if str(b.get("name", "")).startswith(BRIDGE_PREFIX) and not b.get("channels"):
                try:
                    await calls.ari.delete(path("bridges", b["id"]))
                    removed += 1
                except AriError as exc:
                    log.warning("calls.bridge_cleanup_failed", bridge_id=b["id"], error=str(exc))
        log.info("calls.reconciled", channels=len(channels), adopted=adopted, hung_up=hung_up,
                 live=len(calls.sessions), bridges_removed=removed)
        # The agents must be restored before we can tell which of them lost their call meanwhile
        # (the restore waits for the database at most 10 s, then goes on without it).
        await calls.acd.ready.wait()
        calls.acd.after_reconcile(calls.connected_calls() | with_agent)
        if current:
            await self.close_lost_calls(set(by_id))

    async def _adopt(self, ch: dict[str, Any], mate: str | None, bridge: BridgeInfo | None, *,
                     current: bool) -> bool:
        """Adopt one caller's channel (``current``: the database may be read); True if it was
        adopted with its agent."""
        calls = self.calls
        call_id = call_id_for(ch["id"])
        queued: tuple[str, float, float] | None = None
        agent_id = bridge.agent if bridge is not None else None
        steps = 0
        if current and calls.db.pool is not None:
            entry = await call_store.open_queue_entry(calls.db.pool, call_id)
            if entry is not None:
                queued = (entry["queue"], entry["line_since"].timestamp(), entry["entered_at"].timestamp())
            if bridge is not None and agent_id is None:  # a bridge named before names said who
                agent_id = await call_store.answering_agent(calls.db.pool, call_id)
            steps = await call_store.last_ivr_step(calls.db.pool, call_id)
        agent: tuple[str, str] | None = None
        if agent_id is not None:
            # with its agent's leg beside it; or alone: the agent hung up while we were away
            agent = (agent_id, mate or (bridge.leg if bridge else None) or f"gone-{call_id}")
            queued = None
        await calls.adopt(ch, queued=queued, agent=agent, queue=bridge.queue if bridge else None, ivr_steps=steps,
                          post_call=bridge.after if bridge is not None and agent is not None else None,
                          agent_left=agent is not None and mate is None)
        return agent is not None

    async def close_lost_calls(self, live_channels: set[str] | None = None) -> int:
        """Close rows left open by a run that stopped while their channel went away."""
        calls = self.calls
        if live_channels is None:
            live_channels = {ch["id"] for ch in await calls.ari.get("/channels")}
        assert calls.db.pool is not None
        rows = await call_store.open_calls(calls.db.pool)
        now = time.time()
        closed = 0
        for row in rows:
            if row["channel_id"] in live_channels or row["channel_id"] in calls.sessions:
                continue
            call_id = str(row["id"])
            calls.writer.submit(Write("queue_left_lost", (call_id, now)))
            calls.record_end(call_id, now, None, "channel gone while the engine was away", "system")
            closed += 1
        if closed:
            log.warning("calls.closed_lost", calls=closed)
        self.lost_swept.set()
        return closed


def stasis_role(channel: dict[str, Any], app: str) -> str | None:
    """The Stasis role of one of our channels (inbound, agentleg, agent), or None if not ours."""
    dialplan = channel.get("dialplan") or {}
    if dialplan.get("app_name") == "Stasis":
        parts = str(dialplan.get("app_data", "")).split(",")
        if parts[0] == app:
            return parts[1] if len(parts) > 1 and parts[1] else "inbound"
    if str(channel.get("id", "")).startswith("agentleg-"):
        return "agentleg"  # originated into the app: its dialplan shows no Stasis while ringing
    if str(channel.get("id", "")).startswith("dial-"):
        return "dial"      # the dialer's call to a customer, ringing or in AMD
    return None
