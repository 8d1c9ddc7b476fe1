"""The books a fault run (tools/faults.py) checks once the engine is stopped: what the world saw
(sipp's calls, the webhook receiver's deliveries, the recording files) against what the engine
wrote. Each check adds to an :class:`Outcome`: lost, duplicated, wrong state, and one line of
detail per finding."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from tests.integration.harness import rows

__all__ = ["Hooks", "Outcome", "inbound", "outbound", "agents", "HOOK_SECRET"]

HOOK_SECRET = "fault-run-webhook-secret-0123456789"


@dataclass
class Outcome:
    fault: str
    calls: int
    rate: float
    kills: int
    placed: int = 0
    rows: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong_state: int = 0
    recovery_s: list[float] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    def found(self, what: str, items: list, line: str) -> None:
        """Count ``items`` as ``what`` (lost, duplicated, wrong_state) with one detail line each (first 5)."""
        setattr(self, what, getattr(self, what) + len(items))
        self.details += [line.format(*(i if isinstance(i, tuple) else (i,))) for i in items[:5]]
        if len(items) > 5:
            self.details.append(f"... and {len(items) - 5} more")


class Hooks:
    """A CRM's webhook endpoint on loopback: keeps every delivery it is sent (answering 200)."""

    def __init__(self) -> None:
        self.received: list[dict] = []   # bodies, in arrival order (a delivery may come twice)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> Hooks:
        async def hook(request: web.Request) -> web.Response:
            self.received.append(json.loads(await request.read()))
            return web.Response(status=200)

        app = web.Application()
        app.router.add_post("/hook", hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]   # type: ignore[union-attr]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def config(self, events: list[str]) -> str:
        """The ``webhooks:`` block of the main configuration file."""
        return (f"webhooks:\n  - url: {self.url}\n    secret: {HOOK_SECRET}\n    events: {json.dumps(events)}\n"
                f"    retry_seconds: 1\n    retry_max_seconds: 5\n")

    def deliveries(self, kind: str, key: str) -> dict[str, set[str]]:
        """For each value of ``data[key]`` of the events ``kind``: the distinct delivery ids."""
        out: dict[str, set[str]] = defaultdict(set)
        for body in self.received:
            if body.get("kind") == kind:
                out[str(body["data"].get(key))].add(body["id"])
        return out

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _webhooks(out: Outcome, hooks: Hooks, kind: str, key: str, ids: dict[str, str]) -> None:
    """Every fact ``ids`` (id -> what it is) reached the receiver as ``kind`` once (a delivery id
    may repeat: at least once)."""
    got = hooks.deliveries(kind, key)
    out.found("lost", [(i, what) for i, what in ids.items() if not got.get(i)], f"{kind} of {{}} ({{}}) never delivered")
    out.found("duplicated", [(i, len(got[i])) for i in ids if len(got.get(i, ())) > 1],
              f"{kind} of {{}} delivered as {{}} different events")


async def inbound(dsn: str, out: Outcome, hooks: Hooks, recording_dir: Path | None, talk_s: float | None) -> None:
    """``talk_s``: how long the agents talk (None: calls may be cut, as by an Asterisk restart)."""
    calls = await rows(dsn, "SELECT id, answered_at, ended_at FROM calls WHERE direction = 'inbound'")
    out.rows = len(calls)
    out.found("lost", [c["id"] for c in calls if c["ended_at"] is None], "call {} never closed")
    if out.placed > len(calls):
        out.found("lost", [out.placed - len(calls)], "{} calls placed never reached the engine (no row)")
    twice = await rows(dsn, """SELECT call_id FROM queue_entries WHERE outcome = 'answered'
                               GROUP BY call_id HAVING count(*) > 1""")
    out.found("duplicated", [r["call_id"] for r in twice], "call {} answered in two queue stays")
    steps = await rows(dsn, "SELECT call_id, seq FROM ivr_steps GROUP BY call_id, seq HAVING count(*) > 1")
    out.found("duplicated", [(r["call_id"], r["seq"]) for r in steps], "call {} has IVR step {} twice")
    _webhooks(out, hooks, "call.ended", "call_id", {str(c["id"]): "answered" if c["answered_at"] else "unanswered"
                                                    for c in calls})
    # the support queue records every answered call: one finished recording with its file each
    answered = await rows(dsn, """
        SELECT q.call_id, count(r.id) AS recordings, count(r.ended_at) AS finished, min(r.path) AS path,
               min(r.size_bytes) AS size
        FROM queue_entries q JOIN calls c ON c.id = q.call_id AND c.answered_at IS NOT NULL
        LEFT JOIN recordings r ON r.call_id = q.call_id
        WHERE q.outcome = 'answered' AND q.queue = 'support' GROUP BY q.call_id""")
    out.found("lost", [r["call_id"] for r in answered if r["finished"] == 0], "answered call {} has no recording")
    out.found("duplicated", [(r["call_id"], r["recordings"]) for r in answered if r["recordings"] > 1],
              "call {} has {} recordings")
    if recording_dir is not None:
        missing = [r["call_id"] for r in answered if r["finished"] and not (
            r["path"] and Path(r["path"]).is_file() and (r["size"] or 0) > 44)]
        out.found("lost", missing, "the recording of call {} has no audio file")
    if talk_s is not None:
        await conversations(dsn, out, "inbound", talk_s)
    await agents(dsn, out)


async def outbound(dsn: str, out: Outcome, hooks: Hooks, campaign: str, leads: int, talk_s: float) -> None:
    """``out.placed``: the calls the customers' side received."""
    # an attempt's end: when its record says, or when its call really ended if that was later
    attempts = await rows(dsn, """
        SELECT a.id, a.lead_id, a.placed_at, a.outcome, a.connected_at, a.call_id,
               CASE WHEN a.ended_at IS NULL THEN NULL ELSE greatest(a.ended_at, c.ended_at) END AS ended_at,
               c.answered_at AS call_answered
        FROM dial_attempts a LEFT JOIN calls c ON c.channel_id = 'dial-' || a.id::text
        WHERE a.campaign = $1 ORDER BY a.placed_at""", campaign)
    out.rows = len(attempts)
    out.found("lost", [str(a["id"]) for a in attempts if a["outcome"] is None or a["ended_at"] is None],
              "attempt {} never closed")
    if out.placed > len(attempts):
        out.found("lost", [out.placed - len(attempts)], "{} calls the customers got have no attempt row")
    by_lead: dict[int, list] = defaultdict(list)
    for a in attempts:
        by_lead[a["lead_id"]].append(a)
    overlapping = [lead for lead, xs in by_lead.items() for a, b in zip(xs, xs[1:])
                   if a["ended_at"] is None or b["placed_at"] < a["ended_at"]]
    out.found("duplicated", overlapping, "lead {} dialled while its last attempt was still up")
    talked = [(lead, n) for lead, xs in by_lead.items() if (n := sum(a["connected_at"] is not None for a in xs)) > 1]
    out.found("duplicated", talked, "lead {} reached an agent {} times")
    out.found("wrong_state", [(str(a["id"]), a["outcome"]) for a in attempts
                              if a["outcome"] == "lost" and a["call_answered"] is not None],
              "attempt {} answered by the customer, recorded {}")
    calls = await rows(dsn, "SELECT id FROM calls WHERE direction = 'outbound' AND ended_at IS NULL")
    out.found("lost", [c["id"] for c in calls], "outbound call {} never closed")
    left = await rows(dsn, """SELECT id, status FROM leads WHERE campaign = $1
                              AND status NOT IN ('done', 'retry', 'dnc', 'invalid')""", campaign)
    out.found("wrong_state", [(r["id"], r["status"]) for r in left], "lead {} left {}")
    never = leads - len(by_lead)
    if never > 0:
        out.details.append(f"{never} leads not dialled by the end of the run")
    _webhooks(out, hooks, "dial.ended", "attempt_id", {str(a["id"]): f"{a['outcome']}, connected: {a['connected_at'] is not None}"
                                                      for a in attempts if a["outcome"] is not None})
    await conversations(dsn, out, "outbound", talk_s)
    await agents(dsn, out)


async def conversations(dsn: str, out: Outcome, direction: str, talk_s: float) -> None:
    """Every conversation lasted as long as the phones talk (an agent hangs up ``talk_s`` after
    answering; a customer ``talk_s`` after answering the dialer's call): a shorter one was cut,
    by the engine or by its restart."""
    since = "q.left_at" if direction == "inbound" else "c.answered_at"
    cut = await rows(dsn, f"""
        SELECT c.id, extract(epoch FROM c.ended_at - {since}) AS talk, c.ended_by FROM calls c
        JOIN queue_entries q ON q.call_id = c.id AND q.outcome = 'answered'
        WHERE c.direction = $1 AND c.ended_at IS NOT NULL AND extract(epoch FROM c.ended_at - {since}) < $2""",
        direction, talk_s - 0.2)
    out.found("lost", [(r["id"], float(r["talk"]), r["ended_by"]) for r in cut],
              "call {} cut after {:.1f} s of talk (ended by {})")


async def agents(dsn: str, out: Outcome) -> None:
    stuck = await rows(dsn, """SELECT a.agent_id, a.state FROM agents_current a
                               LEFT JOIN calls c ON c.id = a.call_id
                               WHERE a.state IN ('on_call', 'reserved') AND (c.id IS NULL OR c.ended_at IS NOT NULL)""")
    out.found("wrong_state", [(r["agent_id"], r["state"]) for r in stuck], "agent {} left {}")
