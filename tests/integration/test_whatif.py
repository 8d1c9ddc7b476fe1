"""`callcenter campaign what-if` against the real PostgreSQL: the campaign's history in, the
estimated traffic and the simulated figures out."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

import pytest


from .harness import REPO

NOW = datetime.now(timezone.utc)


def lognormal_quantiles(n: int, median: float, sigma: float) -> list[float]:
    from statistics import NormalDist

    return [median * math.exp(sigma * NormalDist().inv_cdf((i + 0.5) / n)) for i in range(n)]


async def history(conn, *, attempts: int) -> None:
    """``attempts`` attempts: 30% people (talk 60-180 s, wrap-up 12 s), 20% machines, 30% ring out,
    20% busy; answers after a lognormal delay (median 6 s, sigma 0.4); five agents."""
    people, machines, rang_out = int(attempts * 0.3), int(attempts * 0.2), int(attempts * 0.3)
    delays = iter(lognormal_quantiles(people + machines, 6.0, 0.4))
    rows = []
    for i in range(attempts):
        placed = NOW - timedelta(days=2, seconds=i * 60)
        kind = "answered" if i < people else "machine" if i < people + machines else \
            "no_answer" if i < people + machines + rang_out else "busy"
        answered = placed + timedelta(seconds=next(delays)) if kind in ("answered", "machine") else None
        connected = answered + timedelta(seconds=0.2) if kind == "answered" else None
        talk = 60 + 120 * (i % 7) / 6 if kind == "answered" else 0
        ended = (connected + timedelta(seconds=talk)) if connected else placed + timedelta(seconds=20)
        rows.append((uuid.uuid4(), "renewals", f"+1212555{i:04d}", "predictive", placed, answered, answered,
                     connected, ended, kind, f"{9001 + i % 5}" if connected else None,
                     12.0 if connected else None))
    await conn.executemany("""
        INSERT INTO dial_attempts (id, campaign, number, mode, placed_at, answered_at, verdict_at, connected_at,
                                   ended_at, outcome, agent_id, wrapup_seconds)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)""", rows)


async def what_if(stack, dsn, tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **stack, "CALLCENTER_DSN": dsn, "CALLCENTER_STATE_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "engine", "campaign", "what-if", "renewals", "--config",
           str(REPO / "examples" / "callcenter.yaml"), *args]
    return await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, env=env)


async def test_what_if_estimates_the_traffic_from_history_and_simulates_it(stack, dsn, db, tmp_path):
    await history(db, attempts=600)
    out = await what_if(stack, dsn, tmp_path, "--hours", "1", "--algorithm", "progressive", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    inputs = {i["name"]: i for i in report["inputs"]}
    assert report["attempts"] == 600 and report["from_defaults"] == ["amd_delay_seconds"]   # no AMD verdicts
    shares = {k: inputs[k]["value"] for k in ("live_answer", "machine_answer", "no_answer", "busy")}
    assert shares == {"live_answer": 0.3, "machine_answer": 0.2, "no_answer": 0.3, "busy": 0.2}
    assert "median 6.0 s, sigma 0.40" in inputs["answer_delay"]["value"]
    talks = [60 + 120 * (i % 7) / 6 for i in range(180)]       # what history() wrote for the people
    mean = sum(talks) / len(talks)
    cv = math.sqrt(sum((t - mean) ** 2 for t in talks) / len(talks)) / mean
    assert inputs["talk"]["value"] == f"lognormal mean {mean:.0f} s, cv {cv:.2f}" and inputs["talk"]["samples"] == 180
    assert (inputs["wrapup_seconds"]["value"], inputs["agents"]["value"]) == (12.0, 5)
    assert inputs["ring_timeout_seconds"]["source"] == "campaign"
    result = report["results"]["progressive"]
    assert 0.3 < result["occupancy"] < 1.0 and result["abandon_rate"] == 0.0 and result["live_answers"] > 50


async def test_what_if_with_little_history_says_what_it_assumed(stack, dsn, db, tmp_path):
    await history(db, attempts=50)
    out = await what_if(stack, dsn, tmp_path, "--hours", "0.5", "--agents", "3", "--algorithm", "predictive")
    assert out.returncode == 0, out.stderr
    assert "campaign renewals: 50 attempts in the last 30 days" in out.stdout
    assert "too little history for: live_answer, machine_answer, no_answer, busy" in out.stdout
    assert "predictive" in out.stdout.splitlines()[-1]
    bad = await what_if(stack, dsn, tmp_path, "--algorithm", "guess")
    assert bad.returncode == 2 and "unknown pacing algorithm 'guess'" in bad.stderr
