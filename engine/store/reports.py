"""The reports' aggregates (:mod:`engine.services.reports`: ``callcenter report inbound|outbound|agents``)
and today's service level per queue (:mod:`engine.runtime.status`), each one SQL statement over what the
engine stored. Bins: ``date_bin`` / ``generate_series`` from the period's start, ``step`` wide
(the whole period when the report has no interval)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

__all__ = ["agent_rows", "inbound_rows", "outbound_rows", "service_level_today", "window_counts"]

INBOUND_SQL = """
WITH e AS (
    SELECT q.id, q.call_id, q.queue, q.outcome, q.wait_seconds, q.agent_id,
           date_bin($3::interval, q.entered_at, $1::timestamptz) AS bin,
           coalesce(($6::jsonb ->> q.queue)::float8, 20) AS target
    FROM queue_entries q
    JOIN calls qc ON qc.id = q.call_id AND qc.direction = 'inbound'   -- a campaign's answered calls queue too
    WHERE q.entered_at >= $1 AND q.entered_at < $2 AND q.left_at IS NOT NULL),
handled AS (
    SELECT DISTINCT call_id FROM e WHERE outcome = 'answered'),
history AS (   -- the answering agents' states: how long each lasted
    SELECT s.call_id, s.agent_id, s.state,
           extract(epoch FROM coalesce(lead(s.at) OVER (PARTITION BY s.agent_id ORDER BY s.at), now()) - s.at)::float8
               AS seconds
    FROM agent_states s
    WHERE s.agent_id IN (SELECT agent_id FROM e WHERE outcome = 'answered' AND agent_id IS NOT NULL)
      AND s.at >= $1::timestamptz - interval '1 day' AND s.at < $2::timestamptz + interval '1 day'),
work AS (   -- per call and agent: a transferred call's talk is each agent's own
    SELECT call_id, agent_id, sum(seconds) FILTER (WHERE state = 'on_call') AS talk,
           coalesce(sum(seconds) FILTER (WHERE state = 'on_hold'), 0) AS hold,
           coalesce(sum(seconds) FILTER (WHERE state = 'wrap_up'), 0) AS wrap_up
    FROM history WHERE call_id IN (SELECT call_id FROM handled) GROUP BY call_id, agent_id),
fcr AS (
    SELECT c.id AS call_id, NOT EXISTS (
               SELECT 1 FROM calls r WHERE r.direction = 'inbound' AND r.caller_number = c.caller_number
                 AND r.started_at > c.started_at AND r.started_at <= c.started_at + $5::interval) AS resolved
    FROM calls c WHERE c.id IN (SELECT call_id FROM handled) AND c.caller_number NOT IN ('', 'anonymous')),
survey AS (
    SELECT call_id, sum(answer) AS points, count(answer) AS answers
    FROM survey_answers WHERE answer IS NOT NULL AND call_id IN (SELECT call_id FROM handled) GROUP BY call_id)
SELECT e.bin, e.queue, GROUPING(e.queue) = 1 AS is_total,
       count(DISTINCT e.call_id) AS offered,
       count(*) FILTER (WHERE e.outcome = 'answered') AS answered,
       count(*) FILTER (WHERE e.outcome = 'abandoned' AND e.wait_seconds >= $4) AS abandoned,
       count(*) FILTER (WHERE e.outcome = 'abandoned' AND e.wait_seconds < $4) AS short_abandoned,
       count(*) FILTER (WHERE e.outcome = 'answered' AND e.wait_seconds <= e.target) AS in_sl,
       avg(e.wait_seconds) FILTER (WHERE e.outcome = 'answered') AS asa,
       avg(w.talk + w.hold + w.wrap_up) FILTER (WHERE e.outcome = 'answered') AS aht,
       avg(w.talk) FILTER (WHERE e.outcome = 'answered') AS talk,
       avg(w.hold) FILTER (WHERE e.outcome = 'answered') AS hold,
       avg(w.wrap_up) FILTER (WHERE e.outcome = 'answered') AS wrap_up,
       count(DISTINCT f.call_id) FILTER (WHERE e.outcome = 'answered') AS fcr_calls,   -- a transferred call once
       count(DISTINCT f.call_id) FILTER (WHERE e.outcome = 'answered' AND f.resolved) AS fcr_resolved,
       sum(s.points) FILTER (WHERE e.outcome = 'answered') AS csat_points,
       sum(s.answers) FILTER (WHERE e.outcome = 'answered') AS csat_answers
FROM e
LEFT JOIN work w ON w.call_id = e.call_id AND w.agent_id = e.agent_id
LEFT JOIN fcr f ON f.call_id = e.call_id
LEFT JOIN survey s ON s.call_id = e.call_id
GROUP BY GROUPING SETS ((e.bin, e.queue), (e.bin))
ORDER BY e.bin, is_total, e.queue
"""


async def inbound_rows(conn: Any, start: datetime, end: datetime, step: timedelta, short_abandon: float,
                       fcr_window: timedelta, targets: Mapping[str, float]) -> list[Any]:
    """Per bin, per queue and in total (``is_total``), the stays of inbound calls in queues that
    entered in [start, end) and left: offered, answered, abandoned (apart: those gone within
    ``short_abandon`` seconds), in the service level (``targets``: seconds per queue, else 20),
    ASA, talk and wrap-up, first-call resolution within ``fcr_window``, survey points."""
    return await conn.fetch(INBOUND_SQL, start, end, step, short_abandon, fcr_window, json.dumps(dict(targets)))

SPANS_SQL = """
bins AS (
    SELECT b AS bin, least(b + $3::interval, $2::timestamptz) AS bin_end
    FROM generate_series($1::timestamptz, $2::timestamptz - interval '1 microsecond', $3::interval) b),
history AS (
    SELECT agent_id, state, reason, call_id, at,
           coalesce(lead(at) OVER (PARTITION BY agent_id ORDER BY at), now()) AS until,
           lag(state) OVER (PARTITION BY agent_id ORDER BY at) AS prev
    FROM agent_states WHERE at < $2),
spans AS (   -- each logged-in state, cut to the bins
    SELECT bins.bin, h.agent_id, h.state, h.reason, h.call_id, h.at AS began, h.prev,
           extract(epoch FROM least(h.until, bins.bin_end) - greatest(h.at, bins.bin))::float8 AS seconds
    FROM history h JOIN bins ON h.at < bins.bin_end AND h.until > bins.bin
    WHERE h.state <> 'logged_out')
"""

AGENTS_SQL = f"""
WITH {SPANS_SQL}
SELECT s.bin, s.agent_id, GROUPING(s.agent_id) = 1 AS is_total,
       sum(s.seconds) AS logged_in,
       coalesce(sum(s.seconds) FILTER (WHERE s.state = 'on_call'), 0) AS talk,
       coalesce(sum(s.seconds) FILTER (WHERE s.state = 'on_call' AND c.direction = 'inbound'), 0) AS talk_inbound,
       coalesce(sum(s.seconds) FILTER (WHERE s.state = 'on_call' AND c.direction = 'outbound'), 0) AS talk_outbound,
       coalesce(sum(s.seconds) FILTER (WHERE s.state = 'on_hold'), 0) AS hold,
       coalesce(sum(s.seconds) FILTER (WHERE s.state = 'wrap_up'), 0) AS wrap_up,
       coalesce(sum(s.seconds) FILTER (WHERE s.state = 'paused'), 0) AS paused,
       coalesce(sum(s.seconds) FILTER (WHERE s.state = 'available'), 0) AS idle,
       count(DISTINCT s.call_id) FILTER (WHERE s.state = 'on_call' AND s.began >= s.bin
                                          AND s.prev IS DISTINCT FROM 'on_hold'
                                          AND c.direction = 'inbound') AS calls_inbound,
       count(DISTINCT s.call_id) FILTER (WHERE s.state = 'on_call' AND s.began >= s.bin
                                          AND s.prev IS DISTINCT FROM 'on_hold'
                                          AND c.direction = 'outbound') AS calls_outbound,
       (SELECT jsonb_object_agg(reason, seconds) FROM (
            SELECT coalesce(p.reason, '(none)') AS reason, round(sum(p.seconds)::numeric, 1) AS seconds
            FROM spans p WHERE p.state = 'paused' AND p.bin = s.bin
              AND (s.agent_id IS NULL OR p.agent_id = s.agent_id)
            GROUP BY 1 ORDER BY 2 DESC) x) AS paused_by_reason
FROM spans s LEFT JOIN calls c ON c.id = s.call_id
GROUP BY GROUPING SETS ((s.bin, s.agent_id), (s.bin))
ORDER BY s.bin, is_total, s.agent_id
"""


async def agent_rows(conn: Any, start: datetime, end: datetime, step: timedelta) -> list[Any]:
    """Per bin, per agent and in total (``is_total``): seconds logged in, talking (inbound and
    outbound apart), in wrap-up, paused (and by reason), idle; calls taken by direction."""
    return await conn.fetch(AGENTS_SQL, start, end, step)

OUTBOUND_SQL = f"""
WITH {SPANS_SQL},
a AS (
    SELECT *, date_bin($3::interval, placed_at, $1::timestamptz) AS bin
    FROM dial_attempts WHERE placed_at >= $1 AND placed_at < $2),
per AS (
    SELECT bin, campaign, count(*) AS dials,
           count(*) FILTER (WHERE answered_at IS NOT NULL) AS connects,
           count(*) FILTER (WHERE connected_at IS NOT NULL OR outcome = 'abandoned') AS live_answers,
           count(*) FILTER (WHERE outcome = 'abandoned') AS abandoned,
           count(*) FILTER (WHERE amd_status = 'MACHINE') AS machines,
           count(*) FILTER (WHERE (connected_at IS NOT NULL OR outcome = 'abandoned')
                              AND coalesce($4::jsonb -> campaign, '[]'::jsonb) ? disposition) AS conversions,
           coalesce(sum(extract(epoch FROM ended_at - connected_at)::float8)
                    FILTER (WHERE connected_at IS NOT NULL AND ended_at IS NOT NULL), 0) AS talk,
           array_agg(DISTINCT agent_id) FILTER (WHERE agent_id IS NOT NULL AND connected_at IS NOT NULL) AS agents
    FROM a GROUP BY bin, campaign),
refused AS (
    SELECT bin, campaign, sum(n) AS refused, jsonb_object_agg(reason, n) AS by_reason FROM (
        SELECT date_bin($3::interval, at, $1::timestamptz) AS bin, campaign, reason, count(*) AS n
        FROM dial_decisions WHERE NOT allowed AND at >= $1 AND at < $2 GROUP BY 1, 2, 3) x
    GROUP BY bin, campaign)
SELECT coalesce(per.bin, refused.bin) AS bin, coalesce(per.campaign, refused.campaign) AS campaign,
       coalesce(per.dials, 0) AS dials, coalesce(per.connects, 0) AS connects,
       coalesce(per.live_answers, 0) AS live_answers, coalesce(per.abandoned, 0) AS abandoned,
       coalesce(per.conversions, 0) AS conversions, coalesce(per.talk, 0) AS talk,
       coalesce(refused.refused, 0) AS refused, refused.by_reason,
       (SELECT sum(s.seconds) FROM spans s
        WHERE s.bin = per.bin AND s.agent_id = ANY(per.agents) AND s.state <> 'paused') AS agent_seconds
FROM per FULL JOIN refused ON refused.bin = per.bin AND refused.campaign = per.campaign
ORDER BY 1, 2
"""

WINDOW_SQL = """
SELECT campaign,
       count(*) FILTER (WHERE connected_at IS NOT NULL OR outcome = 'abandoned') AS live,
       count(*) FILTER (WHERE outcome = 'abandoned') AS abandoned,
       count(*) FILTER (WHERE amd_status = 'MACHINE') AS machines
FROM dial_attempts
WHERE campaign = ANY($2::text[]) AND placed_at < $1
  AND placed_at >= $1::timestamptz - make_interval(secs => ($3::jsonb ->> campaign)::float8)
GROUP BY campaign
"""


async def outbound_rows(conn: Any, start: datetime, end: datetime, step: timedelta,
                        success: Mapping[str, Sequence[str]]) -> list[Any]:
    """Per bin and campaign: dials placed in [start, end), connects, live answers, abandons,
    conversions (``success``: each campaign's success dispositions), talk, the refused dials by
    reason, and the seconds of the agents who took the campaign's calls."""
    return await conn.fetch(OUTBOUND_SQL, start, end, step, json.dumps({k: list(v) for k, v in success.items()}))


async def window_counts(conn: Any, until: datetime, campaigns: Sequence[str],
                        windows: Mapping[str, float]) -> list[Any]:
    """(campaign, live, abandoned, machines) over each campaign's compliance window (``windows``:
    seconds) ending at ``until``."""
    return await conn.fetch(WINDOW_SQL, until, list(campaigns), json.dumps(dict(windows)))


async def service_level_today(pool: Any, since: datetime, short_abandon: float,
                              targets: Mapping[str, float]) -> list[Any]:
    """Per queue, the inbound callers who entered since ``since`` and left: offered (short abandons
    left out), answered, abandoned, answered within the queue's target (``targets``, else 20 s)."""
    return await pool.fetch("""
        SELECT queue,
               count(*) FILTER (WHERE outcome IN ('answered', 'abandoned', 'callback', 'overflow', 'unroutable', 'lost')
                                AND NOT (outcome = 'abandoned' AND wait_seconds < $2)) AS offered,
               count(*) FILTER (WHERE outcome = 'answered') AS answered,
               count(*) FILTER (WHERE outcome = 'abandoned' AND wait_seconds >= $2) AS abandoned,
               count(*) FILTER (WHERE outcome = 'answered'
                                AND wait_seconds <= coalesce(($3::jsonb ->> queue)::float8, 20)) AS in_sl
        FROM queue_entries JOIN calls c ON c.id = call_id AND c.direction = 'inbound'
        WHERE entered_at >= $1 AND left_at IS NOT NULL GROUP BY queue""",
        since, short_abandon, json.dumps(dict(targets)))
