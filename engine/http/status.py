"""The live picture: queues, agents and campaigns now, for the API and the wallboard.

Everything here is read from the engine's memory through its view (the snapshots of
:class:`~engine.runtime.view.EngineView`: the ACD's agents and callers, the dialer's campaigns) except
each queue's service level *today*, which comes from PostgreSQL (``queue_entries`` of inbound calls
since local midnight, as ``callcenter report inbound`` counts them) and is cached for a few seconds so a wallboard refreshing every second costs one query
per period, not one per viewer. With the database down the live part still answers and the
service level is ``null``.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.core import agent as ag
from engine.store.reports import service_level_today

if TYPE_CHECKING:
    from engine.runtime.view import EngineView as Engine

__all__ = ["LiveStatus"]

SL_CACHE_SECONDS = 5.0


class LiveStatus:
    """``await status.snapshot()`` -> a JSON-ready dict (see :meth:`snapshot`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sl: dict[str, dict[str, Any]] = {}
        self._sl_at = -1e18

    async def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """``{"at", "queues": [...], "agents": [...], "campaigns": [...]}``.

        queue: name, waiting, longest_wait_seconds, agents {state: count} (an agent with a call, ringing,
        on it or wrapping it up, counts on the call's queue only; the others on each queue they are
        logged in to), offered_today (the callers who left the queue today, short abandons excluded,
        and those waiting in it now; null with the database down), answered_today, abandoned_today,
        service_level_today (answered within the queue's target / offered, of the callers who left:
        short abandons excluded; null before the first call or with the database down),
        service_level_target {seconds, percent}.
        agent: id, state, reason (pause reason), since (epoch s), seconds_in_state, call_id, queues,
        call_queue and caller (the queue and caller number of the agent's call; null without one).
        campaign: name, mode, active, dial_rate_per_minute, lines_in_flight, live_answers, abandoned,
        abandon_rate (over the campaign's window, as its rule counts), abandon_target_percent,
        agents_busy (on a call or in wrap-up for it), agents_logged_in."""
        now = time.time() if now is None else now
        engine = self.engine
        cfg = engine.config
        await self._refresh_sl(now)
        all_agents = engine.agents()
        agents = [{
            "id": a.id, "state": a.phase.value, "reason": a.pause_reason,
            "since": a.since, "seconds_in_state": round(max(0.0, now - a.since), 1),
            "call_id": a.call_id, "queues": sorted(a.queues), "call_queue": a.call_queue, "caller": a.caller,
        } for a in sorted(all_agents.values(), key=lambda a: a.id)]
        queues: list[dict[str, Any]] = []
        midnight = _midnight(now).timestamp()
        for q in engine.queues().values():
            waits = [now - w.queued_at for w in q.waiting]
            states: dict[str, int] = {}
            for a in all_agents.values():
                if a.phase is ag.AgentPhase.LOGGED_OUT or q.name not in a.queues:
                    continue
                if a.call_queue in (None, q.name):   # busy with a call: on that call's queue only
                    states[a.phase.value] = states.get(a.phase.value, 0) + 1
            sl = self._sl.get(q.name, {})
            offered = None
            if self._sl_known:   # those who left today, as PostgreSQL counts them, and those waiting now
                offered = sl.get("offered", 0) + sum(1 for w in q.waiting if w.queued_at >= midnight
                                                     and not w.outbound)
            queues.append({
                "name": q.name, "waiting": len(waits),
                "longest_wait_seconds": round(max(waits), 1) if waits else 0.0,
                "agents": states,
                "offered_today": offered, "answered_today": sl.get("answered"),
                "abandoned_today": sl.get("abandoned"),
                "service_level_today": sl.get("service_level"),
                "service_level_target": {"seconds": q.service_level.seconds,
                                         "percent": q.service_level.percent},
            })
        campaigns: list[dict[str, Any]] = []
        runs = engine.campaigns(now)
        for c in cfg.campaigns:
            run = runs.get(c.name)
            entry: dict[str, Any] = {"name": c.name, "mode": c.mode, "active": c.active,
                                     "abandon_target_percent": c.abandon.target_percent}
            if run is not None:
                entry["active"] = run.active
                busy = logged = 0
                if c.queue is not None:
                    for a in all_agents.values():
                        if c.queue in a.queues and a.phase is not ag.AgentPhase.LOGGED_OUT:
                            logged += 1
                            if a.campaign is not None:
                                busy += 1
                entry.update({
                    "dial_rate_per_minute": run.dial_rate_per_minute,
                    "lines_in_flight": run.lines_in_flight,
                    "live_answers": run.live_answers, "abandoned": run.abandoned,
                    "abandon_rate": run.abandoned / run.live_answers if run.live_answers else 0.0,
                    "agents_busy": busy, "agents_logged_in": logged,
                })
            campaigns.append(entry)
        return {"at": now, "queues": queues, "agents": agents, "campaigns": campaigns}

    @property
    def _sl_known(self) -> bool:
        """Whether today's figures came from PostgreSQL (no row for a queue: nobody left it yet)."""
        return self._sl_at > -1e18

    async def _refresh_sl(self, now: float) -> None:
        if now - self._sl_at < SL_CACHE_SECONDS:
            return
        pool = self.engine.pool()
        if pool is None:
            self._sl, self._sl_at = {}, -1e18
            return
        midnight = _midnight(now)
        short = getattr(getattr(self.engine.config, "reports", None), "short_abandon_seconds", 5.0)
        targets = {q.name: float(q.service_level.seconds) for q in self.engine.config.queues}
        try:
            rows = await service_level_today(pool, midnight, short, targets)
        except Exception:  # the database went away (health says so): the live part still answers
            self._sl, self._sl_at = {}, -1e18
            return
        self._sl = {r["queue"]: {"offered": r["offered"], "answered": r["answered"], "abandoned": r["abandoned"],
                                 "service_level": (r["in_sl"] / r["offered"]) if r["offered"] else None}
                    for r in rows}
        self._sl_at = now


def _midnight(now: float) -> datetime:
    """The start of ``now``'s day in the engine's local time (where "today" begins)."""
    return datetime.fromtimestamp(now).astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
