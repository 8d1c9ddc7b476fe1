"""Reports, recording retention and GDPR export/erase on data made by real calls through the stack:
sipp callers into queues (one through an IVR with a post-call survey), sipp agent phones, a
campaign dialling sipp customers; then the report functions and the ``callcenter`` command read
PostgreSQL and must say what happened."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import asyncpg

from engine.app import Engine
from engine.core import acd as A
from engine.core import agent as ag
from engine.services.gdpr import erase_number, export_number, number_forms, purge_recordings
from engine.services.reports import agents_report, format_report, inbound_report, outbound_report

from .harness import REPO, running, sipp, wait_until_quiet
from .test_acd import acd_config, agent_phone, log_in
from .test_dialer import (add_leads, campaign, customers, dialer_config, migrated, one_abandon,  # noqa: F401
                          voices)  # voices: a fixture
from .test_ivr import NUMBER, ivr_config

SURVEYED = """\
start: support
nodes:
  support: {queue: {name: support, after: survey}}
  survey:
    survey: {questions: [{name: satisfaction, prompt: [beep]}], timeout_seconds: 8}
"""


def now() -> datetime:
    return datetime.now(timezone.utc)


async def connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn)


async def cli(stack, dsn: str, state: Path, *args: str) -> tuple[int, str, str]:
    """The ``callcenter`` command on examples/callcenter.yaml with the test database."""
    env = {**os.environ, **stack, "CALLCENTER_DSN": dsn, "CALLCENTER_STATE_DIR": str(state)}
    proc = await asyncio.create_subprocess_exec(str(REPO / ".venv" / "bin" / "callcenter"), *args, "--config",
                                                str(REPO / "examples" / "callcenter.yaml"), env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_inbound_and_agent_reports_count_what_the_calls_did(stack, dsn, tmp_path):
    cfg = ivr_config(stack, dsn, tmp_path, SURVEYED)
    start = now()
    engine = Engine(cfg)
    async with running(engine):
        await log_in(engine, "9001", "support")
        phone, phone_done = await agent_phone(stack, 1, calls=2, answer_ms="300", hangup_ms="1500")
        # 1. Through the IVR into support; after the agent hangs up the caller answers the survey: 4.
        (await sipp(stack, "caller_dtmf.xml", NUMBER, variables={"caller": "5557101", "digits": "4",
                                                                  "dtmf_delay_ms": "5000"})).check()
        await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE)
        # 2. The same caller calls again (so the first call was not resolved first time): answered.
        (await sipp(stack, "caller_wait_bye.xml", "3100", variables={"caller": "5557101"})).check()
        (await phone_done()).check()
        await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE)
        # 3. The agent pauses; one caller gives up after 7 s (an abandon), one after 2 s (a short one).
        await engine.acd.request(A.AgentRequest("9001", ag.Pause("lunch")))
        long_, short = await asyncio.gather(
            sipp(stack, "caller_hangup.xml", "3100", variables={"caller": "5557102", "hangup_ms": "7000"}),
            sipp(stack, "caller_hangup.xml", "3100", variables={"caller": "5557103", "hangup_ms": "2000"}))
        long_.check(), short.check()
        await wait_until_quiet(engine, 4)
        await engine.acd.request(A.AgentRequest("9001", ag.LogOut()))
        await engine.writer.wait_idle()
    end = now()

    conn = await connect(dsn)
    try:
        report = await inbound_report(conn, cfg, start, end)
        by_queue = {r["queue"]: r for r in report.rows}
        assert set(by_queue) == {"support", "(total)"}
        s = by_queue["support"]
        assert (s["offered"], s["answered"], s["abandoned"], s["short_abandoned"]) == (4, 2, 1, 1)
        assert s["abandon_rate"] == 1 / 3             # short abandons are out of the base
        assert s["service_level"] == 2 / 3            # both answered within 20 s, of 3 (short abandon out)
        assert s["service_level_target"] == "80% in 20s"
        waits = [r["wait_seconds"] for r in await conn.fetch(
            "SELECT wait_seconds FROM queue_entries WHERE outcome = 'answered'")]
        assert abs(s["asa_seconds"] - sum(waits) / 2) < 1e-9 and 0.2 < s["asa_seconds"] < 3
        # AHT: the agent talked ~1.5 s on each call, then 1 s of wrap-up (the queue's, in acd_config)
        assert 0.8 < s["talk_seconds"] < 3.0 and abs(s["wrap_up_seconds"] - 1.0) < 0.3
        assert abs(s["aht_seconds"] - s["talk_seconds"] - s["wrap_up_seconds"]) < 1e-9
        assert s["fcr"] == 0.5                          # the first call was followed by a repeat call
        assert (s["csat"], s["surveys"]) == (4.0, 1)
        assert {k: v for k, v in by_queue["(total)"].items() if k != "service_level_target"} == \
               {k: v for k, v in s.items() if k not in ("service_level_target", "queue")} | {"queue": "(total)"}

        # With a 1-minute interval the bins add up to the period's figures.
        binned = await inbound_report(conn, cfg, start, end, timedelta(minutes=1))
        queue_rows = [r for r in binned.rows if r["queue"] == "support"]
        for key in ("offered", "answered", "abandoned", "short_abandoned", "surveys"):
            assert sum(r[key] for r in queue_rows) == s[key], key
        assert all(start - timedelta(minutes=1) < r["interval"] <= end for r in binned.rows)

        agents = await agents_report(conn, cfg, start, end)
        a = next(r for r in agents.rows if r["agent"] == "9001")
        assert (a["calls_inbound"], a["calls_outbound"]) == (2, 0)
        assert a["talk_inbound_seconds"] == a["talk_seconds"] and a["talk_outbound_seconds"] == 0
        assert abs(a["talk_seconds"] - 2 * s["talk_seconds"]) < 0.01      # the same history, both ways
        assert abs(a["wrap_up_seconds"] - 2 * s["wrap_up_seconds"]) < 0.01
        assert list(a["paused_by_reason"]) == ["lunch"] and a["paused_by_reason"]["lunch"] > 6.5
        assert abs(a["paused_seconds"] - a["paused_by_reason"]["lunch"]) < 0.1
        login = await conn.fetchval("SELECT min(at) FROM agent_states WHERE state = 'available'")
        logout = await conn.fetchval("SELECT max(at) FROM agent_states WHERE state = 'logged_out'")
        assert abs(a["logged_in_seconds"] - (logout - login).total_seconds()) < 0.01
        assert a["occupancy"] == (a["talk_seconds"] + a["wrap_up_seconds"]) / (a["logged_in_seconds"]
                                                                               - a["paused_seconds"])
        per_minute = [r for r in (await agents_report(conn, cfg, start, end, timedelta(minutes=1))).rows
                      if r["agent"] == "9001"]
        for key in ("logged_in_seconds", "talk_seconds", "wrap_up_seconds", "paused_seconds"):
            assert abs(sum(r[key] for r in per_minute) - a[key]) < 1e-6, key
        assert sum(r["calls_inbound"] for r in per_minute) == 2
        text = format_report(report)
        print(text, format_report(agents), sep="\n\n")   # shown by pytest -rP
        assert "support" in text and "33.3%" in text and "66.7%" in text and "(total)" in text
    finally:
        await conn.close()

    # The command prints the same figures (JSON), from the same database.
    code, out, err = await cli(stack, dsn, tmp_path, "report", "inbound", "--from", start.isoformat(),
                               "--to", end.isoformat(), "--format", "json")
    assert code == 0, err
    printed = {r["queue"]: r for r in json.loads(out)["rows"]}
    assert printed["support"]["offered"] == 4 and printed["support"]["fcr"] == 0.5
    code, out, err = await cli(stack, dsn, tmp_path, "report", "agents", "--from", start.isoformat(),
                               "--format", "csv")
    assert code == 0, err
    header, *lines = out.splitlines()
    assert header.startswith("agent,logged_in_seconds,talk_seconds") and lines[0].startswith("9001,")
    code, out, err = await cli(stack, dsn, tmp_path, "report", "inbound", "--from", "tomorrow")
    assert code == 2 and "--from: expected now, today" in err


async def test_outbound_report_counts_dials_connects_conversions_and_refusals(stack, dsn, tmp_path, voices):
    # Two people (...1), a machine (...2), a busy line (...3); one more lead whose number is on the
    # global DNC list: the gate refuses it.
    c = campaign(pacing="ratio:3")
    cfg = dialer_config(stack, dsn, tmp_path, c, wrapup=60)
    numbers = ["+12125550111", "+12125550121", "+12125550132", "+12125550143"]
    start = now()
    engine = Engine(cfg)
    carrier, carrier_done = await customers(stack, voices, 4)
    async with running(engine):
        await migrated(engine)
        conn = await connect(dsn)
        try:
            await conn.execute("INSERT INTO dnc_numbers (number, scope, source) VALUES ('+12125550151', 'global', 'cli')")
        finally:
            await conn.close()
        await add_leads(dsn, "renewals", [*numbers, "+12125550151"])
        phones = [await agent_phone(stack, i, answer_ms="100", hangup_ms="3000") for i in (1, 2)]
        await log_in(engine, "9001", "renewals", "support")   # blended
        await log_in(engine, "9002", "renewals")
        async with asyncio.timeout(60):
            await engine.acd.wait_until(lambda acd: all(acd.agents[a].phase is ag.AgentPhase.WRAP_UP
                                                        for a in ("9001", "9002")))
        for _, done in phones:
            (await done()).check()
        # 9001 keys a sale, 9002 ends the wrap-up without one.
        (await sipp(stack, "agent_feature.xml", "*161", variables={"agent": "agent9001"})).check()
        (await sipp(stack, "agent_feature.xml", "*15", variables={"agent": "agent9002"})).check()
        async with asyncio.timeout(30):
            await engine.dialer.wait_until(lambda d: d.closed >= 4)
        # The list is done; 9001, blended, takes an inbound caller.
        await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE)
        phone, phone_done = await agent_phone(stack, 1, answer_ms="200", hangup_ms="1000")
        (await sipp(stack, "caller_wait_bye.xml", "3100", variables={"caller": "5557301"})).check()
        (await phone_done()).check()
        await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE)
        await engine.writer.wait_idle()
    (await carrier_done()).check()
    end = now()

    conn = await connect(dsn)
    try:
        report = await outbound_report(conn, cfg, start, end)
        [r] = report.rows
        assert r["campaign"] == "renewals"
        assert (r["dials"], r["connects"], r["live_answers"], r["abandoned"]) == (4, 3, 2, 0)
        assert r["connect_rate"] == 0.75 and r["abandon_rate"] == 0.0
        assert (r["window"], r["window_live_answers"], r["window_abandoned"]) == ("30d", 2, 0)
        assert (r["conversions"], r["conversion_rate"]) == (1, 0.5)
        assert r["refused"] == 1 and r["refused_by_reason"] == {"dnc_global": 1}
        # talk: the customers' ~3 s with each agent; agent hours: the two agents' logged-in time
        talk = sum((a["ended_at"] - a["connected_at"]).total_seconds() for a in await conn.fetch(
            "SELECT ended_at, connected_at FROM dial_attempts WHERE connected_at IS NOT NULL"))
        assert abs(r["talk_minutes"] - talk / 60) < 1e-6 and 4 < talk < 10
        assert 0 < r["agent_hours"] < 2 * (end - start).total_seconds() / 3600
        assert abs(r["talk_minutes_per_agent_hour"] - r["talk_minutes"] / r["agent_hours"]) < 1e-9
        binned = (await outbound_report(conn, cfg, start, end, timedelta(minutes=1))).rows
        for key in ("dials", "connects", "live_answers", "conversions", "refused"):
            assert sum(b[key] for b in binned) == r[key], key
        # The blended agent's two directions are reported apart.
        agents = {a["agent"]: a for a in (await agents_report(conn, cfg, start, end)).rows}
        a9001, a9002 = agents["9001"], agents["9002"]
        assert (a9001["calls_outbound"], a9001["calls_inbound"]) == (1, 1)
        assert a9001["talk_outbound_seconds"] > 2 and 0.5 < a9001["talk_inbound_seconds"] < 2
        assert abs(a9001["talk_seconds"] - a9001["talk_inbound_seconds"] - a9001["talk_outbound_seconds"]) < 1e-6
        assert (a9002["calls_outbound"], a9002["calls_inbound"]) == (1, 0)
        inbound = {q["queue"]: q for q in (await inbound_report(conn, cfg, start, end)).rows}
        print(format_report(report))   # shown by pytest -rP
        assert (inbound["support"]["offered"], inbound["support"]["answered"]) == (1, 1)
        # The campaign's answered calls went through its queue, but they are outbound: not here.
        assert c.queue not in inbound and inbound["(total)"]["offered"] == 1
        # A rule-uk campaign counts the estimated AMD false positives as live answers and abandons:
        # 100% of the one machine verdict -> one more of each, over 24 h.
        uk = replace(c, abandon=replace(c.abandon, rule="uk", window=None, amd_false_positive_percent=100))
        r_uk = (await outbound_report(conn, replace(cfg, campaigns=(uk,)), start, end)).rows[0]
        assert (r_uk["window"], r_uk["window_live_answers"], r_uk["window_abandoned"]) == ("24h", 3, 1)
    finally:
        await conn.close()


async def test_purge_and_gdpr_export_and_erase_on_recorded_calls(stack, dsn, tmp_path):
    cfg = acd_config(stack, dsn, tmp_path)
    engine = Engine(cfg)
    async with running(engine):
        await log_in(engine, "9001", "support")
        phone, phone_done = await agent_phone(stack, 1, calls=2, answer_ms="200", hangup_ms="1000")
        for caller in ("2125557201", "2125557202"):   # support records every call
            (await sipp(stack, "caller_wait_bye.xml", "3100", variables={"caller": caller})).check()
            await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE)
        (await phone_done()).check()
        await wait_until_quiet(engine, 2)
    await add_leads(dsn, "renewals", ["+12125557202", "+12125557299"])
    conn = await connect(dsn)
    try:
        recs = {r["caller_number"]: r for r in await conn.fetch(
            "SELECT r.*, c.caller_number FROM recordings r JOIN calls c ON c.id = r.call_id")}
        old, kept = recs["2125557201"], recs["2125557202"]
        assert Path(old["path"]).exists() and Path(kept["path"]).exists()
        # Retention: nothing is 90 days old yet.
        assert (await purge_recordings(conn, timedelta(days=90), directory=cfg.recording.dir)).deleted == []
        # The first recording ages 100 days; a row whose file is already gone is as old.
        await conn.execute("UPDATE recordings SET started_at = started_at - interval '100 days', "
                           "ended_at = ended_at - interval '100 days' WHERE id = $1", old["id"])
        await conn.execute("""INSERT INTO recordings (id, name, format, path, ended_at, created_at)
                              VALUES (gen_random_uuid(), 'gone', 'wav', $1, now() - interval '95 days', now())""",
                           str(tmp_path / "gone.wav"))
        dry = await purge_recordings(conn, timedelta(days=90), directory=cfg.recording.dir, dry_run=True)
        assert (dry.deleted, dry.missing) == ([old["path"]], [str(tmp_path / "gone.wav")])
        assert Path(old["path"]).exists()
        assert await conn.fetchval("SELECT count(*) FROM recordings WHERE purged_at IS NOT NULL") == 0
        done = await purge_recordings(conn, timedelta(days=90), directory=cfg.recording.dir)
        assert (done.deleted, done.missing, done.failed) == ([old["path"]], [str(tmp_path / "gone.wav")], [])
        assert done.freed_bytes == old["size_bytes"]
        assert not Path(old["path"]).exists() and Path(kept["path"]).exists()
        purged = {r["name"] for r in await conn.fetch("SELECT name FROM recordings WHERE purged_at IS NOT NULL")}
        assert purged == {old["name"], "gone"}
        again = await purge_recordings(conn, timedelta(days=90), directory=cfg.recording.dir)
        assert (again.deleted, again.missing, again.failed) == ([], [], [])   # idempotent

        # GDPR: the second caller's number, written as a person would, is also a lead's and on DNC.
        await conn.execute("INSERT INTO dnc_numbers (number, scope, source) VALUES ('+12125557202', 'global', 'cli')")
        forms = number_forms("(212) 555-7202")
        assert forms.e164 == "+12125557202"
        data = await export_number(conn, forms)
        [call] = data["calls"]
        assert call["caller_number"] == "2125557202" and call["id"] == str(kept["call_id"])
        assert [r["name"] for r in data["recordings"]] == [kept["name"]]
        assert len(data["queue_entries"]) == 1 and len(data["queue_offers"]) == 1
        assert [n["number"] for n in data["lead_numbers"]] == ["+12125557202"] and len(data["leads"]) == 1
        assert [(d["number"], d["scope"]) for d in data["dnc_numbers"]] == [("+12125557202", "global")]
        json.dumps(data)   # JSON-ready

        done = await erase_number(conn, forms, directory=cfg.recording.dir)
        assert done["files_deleted"] == [kept["path"]] and not Path(kept["path"]).exists()
        assert done["dnc_numbers_kept"] == [{"number": "+12125557202", "scope": "global"}]
        assert await conn.fetchval("SELECT caller_number FROM calls WHERE id = $1", kept["call_id"]) == ""
        assert await conn.fetchval("SELECT count(*) FROM recordings WHERE call_id = $1", kept["call_id"]) == 0
        assert [r["number"] for r in await conn.fetch("SELECT number FROM lead_numbers")] == ["+12125557299"]
        assert await conn.fetchval("SELECT caller_number FROM calls WHERE id = $1", old["call_id"]) == "2125557201"
        after = await export_number(conn, forms)
        assert after["calls"] == [] and after["leads"] == [] and len(after["dnc_numbers"]) == 1
        # The erased call still counts in reports (its number is gone, not the call).
        report = await inbound_report(conn, cfg, now() - timedelta(hours=1), now())
        assert next(r for r in report.rows if r["queue"] == "support")["answered"] == 2
    finally:
        await conn.close()

    # The commands: export to a file (owner-only), erase needs --yes.
    out = tmp_path / "export.json"
    code, stdout, err = await cli(stack, dsn, tmp_path, "gdpr", "export", "2125557201", "--out", str(out))
    assert code == 0, err
    assert json.loads(out.read_text())["calls"][0]["caller_number"] == "2125557201"
    assert out.stat().st_mode & 0o777 == 0o600 and "calls 1" in stdout
    code, _, err = await cli(stack, dsn, tmp_path, "gdpr", "erase", "2125557201")
    assert code == 2 and "--yes" in err
    code, stdout, err = await cli(stack, dsn, tmp_path, "gdpr", "erase", "2125557201", "--yes")
    assert code == 0 and "erased in one transaction" in stdout, err
    code, stdout, err = await cli(stack, dsn, tmp_path, "recordings", "purge", "--older-than", "90d")
    assert code == 0 and stdout.startswith("deleted 0 recording file(s)"), err


async def test_an_abandoned_live_answer_counts_in_the_period_and_the_window(stack, dsn, tmp_path, voices):
    start = now()
    # The agent's phone only rings: nobody takes the person within 2 s, an abandon.
    async with one_abandon(stack, dsn, tmp_path, voices) as engine:
        cfg = engine.config
    end = now()
    conn = await connect(dsn)
    try:
        [r] = (await outbound_report(conn, cfg, start, end)).rows
        assert (r["dials"], r["connects"], r["live_answers"], r["abandoned"], r["conversions"]) == (1, 1, 1, 1, 0)
        assert r["abandon_rate"] == 1.0 and r["window_abandon_rate"] == 1.0 and r["talk_minutes"] == 0
        # The period after the call: nothing dialled in it, but the 30-day window still holds the abandon.
        [later] = (await outbound_report(conn, cfg, end, end + timedelta(minutes=5))).rows
        assert (later["campaign"], later["dials"], later["abandon_rate"]) == ("renewals", 0, None)
        assert (later["window_live_answers"], later["window_abandoned"], later["window_abandon_rate"]) == (1, 1, 1.0)
        [agent] = [a for a in (await agents_report(conn, cfg, start, end)).rows if a["agent"] == "9001"]
        assert (agent["calls_outbound"], agent["talk_seconds"]) == (0, 0)   # the person never reached the agent
    finally:
        await conn.close()
