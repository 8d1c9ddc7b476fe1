"""Leads, DNC lists, the compliance gate and the hopper against the real PostgreSQL.

Each test has a database of its own. Times are fixed (``NOW``), never the wall clock, so calling
hours do not depend on when the tests run.
"""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from engine.services import dnc
from engine.store import hopper
from engine.config.campaign import CampaignConfig, CampaignsFile
from engine.store.db import OPERATIONS
from engine.runtime.gate import Gate
from engine.services.leadimport import import_leads
from engine.config.yamlconf import load_text

from .harness import REPO

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 6, 10, 14, 0, tzinfo=NY).timestamp()     # a Wednesday afternoon in New York


def campaign(**changes: object) -> CampaignConfig:
    c = load_text(textwrap.dedent("""\
        campaigns:
          - name: renewals
            mode: predictive
            queue: renewals
            caller_id: "+12125550100"
            safe_harbor_sound: custom/safe-harbor
            calling_hours: {start: "08:00", end: "21:00", days: [mon, tue, wed, thu, fri, sat, sun]}
            retry: {busy: 10m, no_answer: 2h, machine: 4h, max_attempts: 3}
            success_dispositions: [SALE, APPT]
        """), CampaignsFile, file="test", base_dir=Path("."), environ={}).campaigns[0]
    return replace(c, **changes)  # type: ignore[arg-type]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


HEADER = ["external_id", "first_name", "last_name", "phone", "mobile", "timezone", "consent", "priority", "plan"]


async def lead_rows(conn) -> list[dict]:
    rows = await conn.fetch("""
        SELECT l.id, l.external_id, l.name, l.timezone, l.timezone_source, l.consent_autodial, l.priority,
               l.fields::text AS fields, l.status, array_agg(n.number ORDER BY n.position) AS numbers
        FROM leads l JOIN lead_numbers n ON n.lead_id = l.id GROUP BY l.id ORDER BY l.id""")
    return [dict(r) for r in rows]


# -- import ----------------------------------------------------------------------------------------

async def test_import_keeps_good_rows_and_reports_bad_ones(db, tmp_path):
    f = write_csv(tmp_path / "leads.csv", [
        HEADER,
        ["C1", "Ada", "Lovelace", "(212) 555-0123", "+1 917 555 0101", "", "yes", "5", "gold"],
        ["C2", "Alan", "Turing", "555-1234", "", "", "yes", "", "silver"],           # no valid number
        ["C3", "Grace", "Hopper", "415 555 0199", "bad", "America/Los_Angeles", "no", "", "gold"],
        ["C4", "Edsger", "Dijkstra", "312-555-0177", "", "", "perhaps", "", ""],       # unreadable consent
        ["C5", "Barbara", "Liskov", "+1 208 555 0111", "", "", "", "", ""],
        ["C6", "short row"],
    ])
    report = await import_leads(db, campaign(), f, progress=False, now=NOW)
    assert (report.rows, report.leads, report.merged, report.rejected, report.numbers_dropped) == (6, 3, 0, 3, 2)
    assert report.rejects_file == tmp_path / "leads.rejects.csv"
    with report.rejects_file.open() as rf:
        lines = [(r["row"], r["outcome"], r["column"], r["value"], r["reason"]) for r in csv.DictReader(rf)]
    assert lines == [
        ("3", "number_dropped", "phone", "555-1234", "not a valid number in +1"),
        ("3", "rejected", "", "", "no valid phone number"),
        ("4", "number_dropped", "mobile", "bad", "not a phone number (no digits)"),
        ("5", "rejected", "consent", "perhaps",
         "consent must read yes or no (yes, y, true, 1, x, opt-in / no, n, false, 0)"),
        ("7", "rejected", "", "", "has 2 fields, the header has 9"),
    ]
    leads = await lead_rows(db)
    assert [(r["external_id"], r["numbers"], r["timezone"], r["timezone_source"], r["consent_autodial"], r["priority"])
            for r in leads] == [
        ("C1", ["+12125550123", "+19175550101"], "America/New_York", "number", True, 5),
        ("C3", ["+14155550199"], "America/Los_Angeles", "column", False, 0),
        ("C5", ["+12085550111"], "America/Boise", "number", False, 0),     # two zones: the easternmost
    ]
    assert leads[0]["name"] == "Ada Lovelace" and leads[0]["fields"] == '{"plan": "gold"}'
    zones = await db.fetchval("SELECT time_zones FROM lead_numbers WHERE number = '+12085550111'")
    assert zones == ["America/Boise", "America/Los_Angeles"]
    imp = await db.fetchrow("SELECT * FROM lead_imports")
    assert (imp["rows"], imp["leads"], imp["rejected"], imp["numbers_dropped"]) == (6, 3, 3, 2)


async def test_a_database_failure_mid_import_leaves_nothing(db, tmp_path):
    # The numbers go in after the leads: a trigger that refuses one number fails the import there.
    await db.execute("""
        CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.number = '+13125550177' THEN RAISE EXCEPTION 'disk full (simulated)'; END IF; RETURN NEW; END $$;
        CREATE TRIGGER refuse BEFORE INSERT ON lead_numbers FOR EACH ROW EXECUTE FUNCTION refuse();""")
    rows = [HEADER] + [[f"C{i}", "", "", f"212555{i:04d}", "", "", "yes", "", ""] for i in range(100, 600)]
    rows.append(["C9", "", "", "312-555-0177", "", "", "", "", ""])
    rows.append(["C10", "bad", "row"])
    f = write_csv(tmp_path / "leads.csv", rows)
    with pytest.raises(asyncpg.RaiseError, match="disk full"):
        await import_leads(db, campaign(), f, progress=False, now=NOW)
    assert await db.fetchval("SELECT count(*) FROM leads") == 0
    assert await db.fetchval("SELECT count(*) FROM lead_numbers") == 0
    assert await db.fetchval("SELECT count(*) FROM lead_imports") == 0
    assert not (tmp_path / "leads.rejects.csv").exists()
    await db.execute("DROP TRIGGER refuse ON lead_numbers")
    report = await import_leads(db, campaign(), f, progress=False, now=NOW)
    assert (report.leads, report.rejected) == (501, 1)


async def test_duplicates_merge_in_the_file_and_with_earlier_imports(db, tmp_path):
    first = write_csv(tmp_path / "a.csv", [
        HEADER,
        ["C1", "Ada", "", "2125550123", "", "", "yes", "5", "gold"],
        ["C1", "", "Lovelace", "", "9175550101", "", "", "", "silver"],     # same external id: merged
        ["C2", "Alan", "", "3125550177", "", "", "", "", ""],
        ["C3", "Alan", "", "", "3125550177", "", "", "", "x"],             # same number: merged into C2
    ])
    r1 = await import_leads(db, campaign(), first, progress=False, now=NOW)
    assert (r1.leads, r1.merged) == (2, 2)
    second = write_csv(tmp_path / "b.csv", [
        HEADER,
        ["C1", "Other", "", "6465550142", "", "America/Chicago", "no", "", "platinum"],   # C1 is in the database
        ["C7", "", "", "9175550101", "2025550143", "", "", "", "y"],                    # a number of C1
        ["C8", "New", "", "4155550199", "", "", "", "", ""],
    ])
    r2 = await import_leads(db, campaign(), second, progress=False, now=NOW)
    assert (r2.leads, r2.merged, r2.rejected) == (1, 2, 0)
    leads = await lead_rows(db)
    assert [(r["external_id"], r["name"], r["numbers"]) for r in leads] == [
        ("C1", "Ada Lovelace", ["+12125550123", "+19175550101", "+16465550142", "+12025550143"]),
        ("C2", "Alan", ["+13125550177"]),
        ("C8", "New", ["+14155550199"]),
    ]
    ada = leads[0]
    assert ada["consent_autodial"] is True and ada["priority"] == 5   # the earliest values win
    assert ada["fields"] == '{"plan": "gold"}'
    assert (ada["timezone"], ada["timezone_source"]) == ("America/Chicago", "column")  # a stated zone beats a guess
    other_campaign = await import_leads(db, campaign(name="other"), second, progress=False, now=NOW)
    assert other_campaign.leads == 3     # duplicates are per campaign


async def test_the_import_command(stack, dsn, db, tmp_path):
    env = {**os.environ, **stack, "CALLCENTER_DSN": dsn, "CALLCENTER_STATE_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "engine"]
    config = str(REPO / "examples" / "callcenter.yaml")
    rejects = tmp_path / "rejects.csv"
    out = await asyncio.to_thread(subprocess.run, [
        *cmd, "import-leads", "renewals", str(REPO / "examples" / "leads.csv"), "--config", config,
        "--rejects", str(rejects)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("11 rows: 4 new leads, 2 merged into others, 5 rejected, 1 invalid numbers dropped")
    assert out.stderr == ""    # no progress bar when stderr is not a terminal
    assert rejects.read_text().count("rejected") == 5
    nope = await asyncio.to_thread(subprocess.run, [*cmd, "import-leads", "nope", str(REPO / "examples" / "leads.csv"),
                                                    "--config", config], capture_output=True, text=True, env=env)
    assert nope.returncode == 1 and "no campaign 'nope'; the campaigns are: renewals, appointment-reminders" in nope.stderr
    added = await asyncio.to_thread(subprocess.run, [*cmd, "dnc", "add", "(212) 555-0123", "--config", config,
                                                     "--reason", "asked"], capture_output=True, text=True, env=env)
    assert added.returncode == 0 and added.stdout == "+12125550123: added to global\n"
    checked = await asyncio.to_thread(subprocess.run, [*cmd, "dnc", "check", "2125550123", "--config", config],
                                      capture_output=True, text=True, env=env)
    assert checked.stdout.startswith("+12125550123: global (source cli, added ") and "asked" in checked.stdout


# -- DNC -------------------------------------------------------------------------------------------

async def test_dnc_import_lookup_and_replace(db, tmp_path):
    national = tmp_path / "national.txt"
    national.write_text("# the registry\n2125550123\n212,5550124\n+1 (212) 555-0125\n2125550123\nnot a number\n")
    first = await dnc.import_file(db, national, "national", now=NOW)
    assert (first.lines, first.added, first.rejected, first.removed) == (4, 3, 1, 0)
    national.write_text("2125550124\n2125550126\n")
    second = await dnc.import_file(db, national, "national", replace=True, now=NOW + 86400)
    assert (second.added, second.removed) == (1, 2)
    numbers = [r["number"] for r in await db.fetch("SELECT number FROM dnc_numbers WHERE scope = 'national' ORDER BY 1")]
    assert numbers == ["+12125550124", "+12125550126"]
    assert await dnc.add(db, "+12125550124", "global", source="cli", reason="asked", now=NOW)
    assert not await dnc.add(db, "+12125550124", "global", source="cli", now=NOW)
    assert [r["scope"] for r in await dnc.scopes_of(db, "+12125550124")] == ["global", "national"]
    imports = await db.fetch("SELECT scope, lines, added, removed FROM dnc_imports ORDER BY imported_at")
    assert [tuple(r) for r in imports] == [("national", 4, 3, 0), ("national", 2, 1, 2)]
    with pytest.raises(ValueError):
        await dnc.import_file(db, national, "campaign:", now=NOW)

    # A campaign's own files: a new version replaces what that file brought, not what agents added.
    own = tmp_path / "own.txt"
    own.write_text("2125550123\n2125550124\n")
    c = campaign(dnc_lists=(own,))
    await dnc.add(db, "+12125550199", "campaign:renewals", source="agent:9001", now=NOW)
    await dnc.sync_campaigns(db, [c], now=NOW)
    own.write_text("2125550124\n")
    await dnc.sync_campaigns(db, [c], now=NOW)
    rows = await db.fetch("SELECT number, source FROM dnc_numbers WHERE scope = 'campaign:renewals' ORDER BY 1")
    assert [r["number"] for r in rows] == ["+12125550124", "+12125550199"]   # the agent's entry stays


async def test_a_big_list_goes_in_fast_in_one_statement(db, tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("".join(f"2{i:09d}\n" for i in range(200_000, 300_000)))
    result = await dnc.import_file(db, big, "national", now=NOW)
    assert result.added == 100_000
    assert result.seconds < 20   # generous: well under a second here


# -- the gate --------------------------------------------------------------------------------------

async def one_lead(db, tmp_path, *, consent: str = "yes", number: str = "2125550123", tz: str = "") -> hopper.Lead:
    f = write_csv(tmp_path / f"one-{number}.csv", [HEADER, ["X" + number, "Ada", "", number, "", tz, consent, "", ""]])
    await import_leads(db, campaign(), f, progress=False, now=NOW)
    (lead,) = await hopper.take(db, "renewals", 1, NOW, owner="a")
    return lead


async def decisions(db) -> list[tuple]:
    rows = await db.fetch("SELECT allowed, reason, detail, scope, retry_at, rules, lead_id FROM dial_decisions ORDER BY seq")
    return [tuple(r) for r in rows]


async def test_the_gate_refuses_dnc_hours_and_consent_and_records_why(db, tmp_path):
    c = campaign()
    gate = Gate(db, instance="a")
    lead = await one_lead(db, tmp_path)
    number = lead.next_number().number

    missing = await gate.check(c, mode="predictive", number=number, lead=lead, now=NOW)
    assert (missing.allowed, missing.reason) == (False, "national_list_missing")
    national = tmp_path / "national.txt"
    national.write_text("9175550101\n")
    await dnc.import_file(db, national, "national", now=NOW - 3600)

    ok = await gate.check(c, mode="predictive", number=number, lead=lead, now=NOW)
    assert ok.allowed and ok.reason == "allowed" and ok.number == "+12125550123"

    night = datetime(2026, 6, 10, 22, 15, tzinfo=NY).timestamp()
    late = await gate.check(c, mode="predictive", number=number, lead=lead, now=night)
    assert (late.allowed, late.reason) == (False, "outside_hours")
    assert late.decision.retry_at == datetime(2026, 6, 11, 8, 0, tzinfo=NY).timestamp()

    await dnc.add(db, "+12125550123", "campaign:renewals", now=NOW)
    listed = await gate.check(c, mode="preview", number="(212) 555-0123", lead=lead, now=night)
    assert listed.reason == "dnc_campaign"    # DNC is checked before the hour

    manual = await gate.check(c, mode="manual", number="+1 917 555 0101", now=NOW)   # no lead: an agent dials
    assert manual.reason == "dnc_national"

    no_consent = await one_lead(db, tmp_path, consent="no", number="3125550177")
    refused = await gate.check(c, mode="progressive", number=no_consent.next_number().number, lead=no_consent, now=NOW)
    assert refused.reason == "no_consent"
    preview = await gate.check(c, mode="preview", number=no_consent.next_number().number, lead=no_consent, now=NOW)
    assert preview.allowed

    rows = await decisions(db)
    assert [(allowed, reason, scope) for allowed, reason, _, scope, *_ in rows] == [
        (False, "national_list_missing", "wait"), (True, "allowed", None), (False, "outside_hours", "wait"),
        (False, "dnc_campaign", "number"), (False, "dnc_national", "number"), (False, "no_consent", "lead"),
        (True, "allowed", None)]
    detail, rules, lead_id = rows[2][2], rows[2][5], rows[2][6]
    assert detail == "outside calling hours: Wed 22:15 America/New_York; the window is 08:00-21:00 on " \
                     "mon,tue,wed,thu,fri,sat,sun"
    assert '"local_times": {"America/New_York": "2026-06-10T22:15-04:00"}' in rules and lead_id == lead.id
    assert rows[4][6] is None     # the manual dial had no lead


async def test_a_dnc_disposition_is_refused_at_once(db, tmp_path):
    class Queue:
        def __init__(self):
            self.writes = []

        def submit(self, write):
            self.writes.append(write)

    writer = Queue()
    gate = Gate(db, instance="a", writer=writer)
    national = tmp_path / "national.txt"
    national.write_text("")
    await dnc.import_file(db, national, "national", now=NOW)
    lead = await one_lead(db, tmp_path)
    number = lead.next_number().number
    assert (await gate.check(campaign(), mode="predictive", number=number, lead=lead, now=NOW)).allowed
    await gate.add_dnc(number, now=NOW, source="agent:9001")
    # The write has not landed yet, and the number is already refused.
    assert await db.fetchval("SELECT count(*) FROM dnc_numbers") == 0
    assert (await gate.check(campaign(), mode="preview", number=number, lead=lead, now=NOW)).reason == "dnc_global"
    (write,) = writer.writes
    await db.execute(OPERATIONS[write.op], *write.args)
    await db.execute(OPERATIONS[write.op], *write.args)     # idempotent, as every queued write
    row = await db.fetchrow("SELECT * FROM dnc_numbers")
    assert (row["number"], row["scope"], row["source"], row["reason"]) == (
        "+12125550123", "global", "agent:9001", "DNC disposition")
    fresh_gate = Gate(db, instance="b")
    assert (await fresh_gate.check(campaign(), mode="manual", number=number, now=NOW)).reason == "dnc_global"


# -- the hopper ------------------------------------------------------------------------------------

async def seed(db, tmp_path, count: int, **kw) -> None:
    rows = [HEADER] + [[f"L{i}", "", "", f"212555{i:04d}", "", "", "yes", str(kw.get("priority", "")), ""]
                       for i in range(count)]
    await import_leads(db, campaign(), write_csv(tmp_path / f"seed{count}.csv", rows), progress=False, now=NOW)


async def test_two_instances_never_take_the_same_lead(db, dsn, tmp_path):
    await seed(db, tmp_path, 300)
    a, b = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        taken_a: list[int] = []
        taken_b: list[int] = []
        while True:
            got_a, got_b = await asyncio.gather(hopper.take(a, "renewals", 37, NOW, owner="a"),
                                                hopper.take(b, "renewals", 41, NOW, owner="b"))
            if not got_a and not got_b:
                break
            taken_a += [x.id for x in got_a]
            taken_b += [x.id for x in got_b]
        assert len(taken_a) == len(set(taken_a)) and len(taken_b) == len(set(taken_b))
        assert not set(taken_a) & set(taken_b)
        assert len(taken_a) + len(taken_b) == 300
        owners = await db.fetch("SELECT locked_by, count(*) FROM leads WHERE status = 'active' GROUP BY 1 ORDER BY 1")
        assert [tuple(r) for r in owners] == [("a", len(taken_a)), ("b", len(taken_b))]
    finally:
        await a.close()
        await b.close()


async def test_locked_leads_are_skipped_not_waited_for(db, dsn, tmp_path):
    await seed(db, tmp_path, 10)
    other = await asyncpg.connect(dsn)
    try:
        async with db.transaction():      # another instance is in the middle of taking the first five
            held = [r["id"] for r in await db.fetch(
                "SELECT id FROM leads ORDER BY lane, priority DESC, next_due_at, id LIMIT 5 FOR UPDATE")]
            async with asyncio.timeout(5):
                got = await hopper.take(other, "renewals", 10, NOW, owner="b")
        assert {x.id for x in got}.isdisjoint(held) and len(got) == 5
    finally:
        await other.close()


async def test_due_callbacks_then_fresh_leads_then_retries(db, tmp_path):
    await seed(db, tmp_path, 6)
    ids = [r["id"] for r in await db.fetch("SELECT id FROM leads ORDER BY id")]
    # ids[0], ids[1]: retries (attempted before), one with a high priority; ids[2]: fresh, priority 3;
    # ids[3]: a callback due now; ids[4]: a callback due tomorrow; ids[5]: fresh.
    await db.execute("UPDATE leads SET attempts = 1, status = 'retry', next_due_at = to_timestamp($2) "
                     "WHERE id = ANY($1::bigint[])", ids[:2], NOW - 7200)
    await db.execute("UPDATE leads SET priority = 100 WHERE id = $1", ids[1])
    await db.execute("UPDATE leads SET priority = 3 WHERE id = $1", ids[2])
    await db.execute("UPDATE leads SET attempts = 2, status = 'retry' WHERE id = ANY($1::bigint[])", ids[3:5])
    assert await hopper.schedule_callback(db, ids[3], NOW - 60, agent="9001")
    assert await hopper.schedule_callback(db, ids[4], NOW + 86400)
    taken = await hopper.take(db, "renewals", 10, NOW, owner="a", lease=2 * 86400)
    assert [x.id for x in taken] == [ids[3], ids[2], ids[5], ids[1], ids[0]]
    assert [x.lane for x in taken] == [0, 1, 1, 2, 2]
    assert await hopper.take(db, "renewals", 10, NOW, owner="a") == []
    later = await hopper.take(db, "renewals", 10, NOW + 86400, owner="a")
    assert [x.id for x in later] == [ids[4]]


async def test_retries_by_disposition_and_the_end_of_a_lead(db, tmp_path):
    c = campaign()
    await seed(db, tmp_path, 4)
    week = 7 * 86400.0     # the test jumps hours ahead: the leases must outlast it
    leads = {x.id: x for x in await hopper.take(db, "renewals", 4, NOW, owner="a", lease=week)}
    busy, sale, dnc_lead, tired = sorted(leads)

    async def attempt(lead_id, outcome, disposition=None, at=NOW):
        lead = leads[lead_id]
        number = lead.next_number().number
        attempt_id = await hopper.start_attempt(db, lead, number, at, owner="a", mode="predictive", lease=week)
        return await hopper.finish(db, c, lead_id, at + 30, owner="a", outcome=outcome, disposition=disposition,
                                   attempt_id=attempt_id, number=number, agent_id="9001")

    # max_attempts is 3: no answer, machine, no answer -> done (the others are still leased: only
    # this lead comes back each time).
    t = NOW
    for outcome in ("no_answer", "machine", "no_answer"):
        if t != NOW:
            (leads[tired],) = await hopper.take(db, "renewals", 5, t, owner="a", lease=week)
        step = await attempt(tired, outcome, at=t)
        t = (step.next_due_at or t) + 1
    assert (step.status, step.result) == ("done", "max_attempts")

    step = await attempt(busy, "busy")
    assert (step.status, step.next_due_at) == ("retry", NOW + 30 + 600)
    assert (await attempt(sale, "answered", "SALE")).status == "done"
    assert (await attempt(dnc_lead, "answered", "DNC")).status == "dnc"
    assert await db.fetchval("SELECT source FROM dnc_numbers WHERE scope = 'global'") == "agent:9001"
    assert await db.fetchval("SELECT status FROM lead_numbers WHERE lead_id = $1", dnc_lead) == "dnc"
    rows = await db.fetch("SELECT id, status, result, attempts, last_outcome FROM leads ORDER BY id")
    assert [(r["status"], r["result"], r["attempts"]) for r in rows] == [
        ("retry", None, 1), ("done", "SALE", 1), ("dnc", "DNC", 1), ("done", "max_attempts", 3)]
    attempts = await db.fetch("SELECT outcome, disposition FROM dial_attempts WHERE lead_id = $1 ORDER BY placed_at",
                              tired)
    assert [r["outcome"] for r in attempts] == ["no_answer", "machine", "no_answer"]
    # The retried lead comes back when due, not before.
    assert await hopper.take(db, "renewals", 5, NOW + 600, owner="a") == []
    (again,) = await hopper.take(db, "renewals", 5, NOW + 631, owner="a")
    assert (again.id, again.attempts, again.lane) == (busy, 1, 2)


async def test_a_lapsed_lease_comes_back_and_the_late_holder_is_ignored(db, tmp_path):
    c = campaign()
    await seed(db, tmp_path, 1)
    (lead,) = await hopper.take(db, "renewals", 1, NOW, owner="crashed", lease=60)
    attempt_id = await hopper.start_attempt(db, lead, lead.next_number().number, NOW, owner="crashed",
                                            mode="predictive", lease=60)
    assert await hopper.take(db, "renewals", 1, NOW + 59, owner="b") == []
    (back,) = await hopper.take(db, "renewals", 1, NOW + 61, owner="b")
    assert (back.id, back.attempts, back.locked_by) == (lead.id, 1, "b")
    assert await db.fetchval("SELECT outcome FROM dial_attempts WHERE id = $1", attempt_id) == "lost"
    assert await hopper.finish(db, c, lead.id, NOW + 70, owner="crashed", outcome="answered", disposition="SALE") is None
    with pytest.raises(LookupError):
        await hopper.start_attempt(db, lead, lead.next_number().number, NOW + 70, owner="crashed", mode="predictive")
    assert await hopper.renew(db, [lead.id], NOW + 80, owner="b") == 1
    assert await db.fetchval("SELECT status FROM leads") == "active"


async def test_release_after_a_refusal(db, tmp_path):
    c = campaign()
    f = write_csv(tmp_path / "two.csv", [HEADER, ["T", "", "", "2125550123", "9175550101", "", "no", "", ""],
                                         ["W", "", "", "3125550177", "", "", "yes", "", ""]])
    await import_leads(db, c, f, progress=False, now=NOW)
    national = tmp_path / "national.txt"
    national.write_text("2125550123\n")
    await dnc.import_file(db, national, "national", now=NOW)
    gate = Gate(db)
    two, wait = await hopper.take(db, "renewals", 2, NOW, owner="a")
    # A number on the national list: that number is marked, the lead comes back for its next one.
    first = two.next_number()
    refused = await gate.check(c, mode="preview", number=first.number, lead=two, now=NOW)
    assert refused.reason == "dnc_national"
    step = await hopper.release(db, two, refused.decision, NOW, owner="a", number=first.number)
    assert (step.status, step.next_due_at) == ("new", NOW)
    (two,) = [x for x in await hopper.take(db, "renewals", 5, NOW, owner="a") if x.id == two.id]
    assert two.next_number().number == "+19175550101"
    # No consent for a predictive call: the lead ends here.
    refused = await gate.check(c, mode="predictive", number=two.next_number().number, lead=two, now=NOW)
    assert (await hopper.release(db, two, refused.decision, NOW, owner="a")).result == "no_consent"
    # Outside hours: back when the window opens where the callee is (312: Chicago).
    night = datetime(2026, 6, 10, 23, 0, tzinfo=NY).timestamp()
    refused = await gate.check(c, mode="predictive", number=wait.next_number().number, lead=wait, now=night)
    step = await hopper.release(db, wait, refused.decision, night, owner="a")
    chicago_8 = datetime(2026, 6, 11, 8, 0, tzinfo=ZoneInfo("America/Chicago")).timestamp()
    assert (step.status, step.next_due_at) == ("new", chicago_8)
    rows = await db.fetch("SELECT status, result FROM leads ORDER BY id")
    assert [tuple(r) for r in rows] == [("done", "no_consent"), ("new", None)]
    assert await db.fetchval("SELECT status FROM lead_numbers WHERE number = '+12125550123'") == "dnc"
