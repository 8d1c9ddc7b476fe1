"""Recording retention and one phone number's rows: what :mod:`engine.services.gdpr` purges, exports and
erases. Numbers are matched by their digits (``regexp_replace(column, '\\D', '', 'g')``) against
every digit string the number may be stored as."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

__all__ = ["TABLES", "erase_rows", "expired_recordings", "export_rows", "mark_purged", "number_holders"]

_DIGITS = r"regexp_replace({}, '\D', '', 'g')"


# -- retention ----------------------------------------------------------------------------------------

async def expired_recordings(conn: Any, before: datetime) -> list[Any]:
    """(id, name, format, path) of the recordings not purged that ended (or started, or were
    stored) before ``before``, oldest first."""
    return await conn.fetch("""
        SELECT id, name, format, path FROM recordings
        WHERE purged_at IS NULL AND coalesce(ended_at, started_at, created_at) < $1
        ORDER BY coalesce(ended_at, started_at, created_at)""", before)


async def mark_purged(conn: Any, ids: Sequence[Any], at: datetime) -> None:
    await conn.execute("UPDATE recordings SET purged_at = $2 WHERE id = ANY($1::uuid[]) AND purged_at IS NULL",
                       list(ids), at)


# -- one number ---------------------------------------------------------------------------------------

# Each table: the rows of it that hold the number or one of its calls / leads ($1 digits, $2 calls, $3 leads).
TABLES: dict[str, str] = {
    "calls": "SELECT * FROM calls WHERE id = ANY($2::uuid[]) ORDER BY started_at",
    "call_events": "SELECT * FROM call_events WHERE call_id = ANY($2::uuid[]) ORDER BY at",
    "ivr_steps": "SELECT * FROM ivr_steps WHERE call_id = ANY($2::uuid[]) ORDER BY call_id, seq",
    "call_variables": "SELECT * FROM call_variables WHERE call_id = ANY($2::uuid[]) ORDER BY call_id, name",
    "survey_answers": "SELECT * FROM survey_answers WHERE call_id = ANY($2::uuid[]) ORDER BY at",
    "queue_entries": "SELECT * FROM queue_entries WHERE call_id = ANY($2::uuid[]) ORDER BY entered_at",
    "queue_offers": "SELECT * FROM queue_offers WHERE call_id = ANY($2::uuid[]) ORDER BY offered_at",
    "dispositions": "SELECT * FROM dispositions WHERE call_id = ANY($2::uuid[]) ORDER BY at",
    "callbacks": f"SELECT * FROM callbacks WHERE call_id = ANY($2::uuid[]) OR {_DIGITS.format('number')} = ANY($1)",
    "recordings": "SELECT * FROM recordings WHERE call_id = ANY($2::uuid[]) ORDER BY created_at",
    "leads": "SELECT * FROM leads WHERE id = ANY($3::bigint[]) ORDER BY id",
    "lead_numbers": "SELECT * FROM lead_numbers WHERE lead_id = ANY($3::bigint[]) ORDER BY lead_id, position",
    "dial_attempts": f"""SELECT * FROM dial_attempts WHERE lead_id = ANY($3::bigint[])
                         OR {_DIGITS.format('number')} = ANY($1) ORDER BY placed_at""",
    "dial_decisions": f"""SELECT * FROM dial_decisions WHERE lead_id = ANY($3::bigint[])
                          OR {_DIGITS.format('number')} = ANY($1) ORDER BY seq""",
    "dnc_numbers": f"SELECT * FROM dnc_numbers WHERE {_DIGITS.format('number')} = ANY($1) ORDER BY added_at",
}


async def number_holders(conn: Any, digits: Sequence[str]) -> tuple[list[Any], list[int], list[str]]:
    """(call ids, lead ids, the numbers of those leads) held on a number given as ``digits``: the
    calls from it inbound, to it outbound, dialled for its leads or called back on it."""
    digits = list(digits)
    leads = [r["lead_id"] for r in await conn.fetch(
        f"SELECT DISTINCT lead_id FROM lead_numbers WHERE {_DIGITS.format('number')} = ANY($1)", digits)]
    calls = [r["id"] for r in await conn.fetch(f"""
        SELECT id FROM calls WHERE (direction = 'inbound' AND {_DIGITS.format('caller_number')} = ANY($1))
                                OR (direction = 'outbound' AND {_DIGITS.format('dialed_number')} = ANY($1))
        UNION SELECT call_id FROM dial_attempts
              WHERE call_id IS NOT NULL AND (lead_id = ANY($2::bigint[]) OR {_DIGITS.format('number')} = ANY($1))
        UNION SELECT call_id FROM callbacks WHERE {_DIGITS.format('number')} = ANY($1)""", digits, leads)]
    numbers = [r["number"] for r in await conn.fetch(
        "SELECT DISTINCT number FROM lead_numbers WHERE lead_id = ANY($1::bigint[])", leads)]
    return calls, leads, numbers


async def export_rows(conn: Any, digits: Sequence[str], calls: Sequence[Any],
                      leads: Sequence[int]) -> dict[str, list[Any]]:
    """Every row of :data:`TABLES`, table by table, that holds the number or one of its calls or leads."""
    typed = "WITH p AS (SELECT $1::text[], $2::uuid[], $3::bigint[]) "   # every query takes all three
    return {table: await conn.fetch(typed + sql, list(digits), list(calls), list(leads))
            for table, sql in TABLES.items()}


def _count(status: str) -> int:
    """``UPDATE 3`` / ``DELETE 3`` -> 3."""
    return int(status.rsplit(" ", 1)[-1]) if status and status.rsplit(" ", 1)[-1].isdigit() else 0


async def erase_rows(conn: Any, calls: Sequence[Any], leads: Sequence[int], person: Sequence[str],
                     blank: Callable[[str], str]) -> tuple[dict[str, Any], list[Any]]:
    """Inside the caller's transaction: delete the recordings' rows, the call variables and the leads
    (their numbers go with them); blank the number (any of ``person``'s digit strings) in calls,
    callbacks and attempts, and IVR input; pass the gate decisions' and call events' texts through
    ``blank``. Returns (rows touched per table, in that order, and the DNC entries the number keeps
    as ``dnc_numbers_kept``; the deleted recordings' name, format, path, purged_at)."""
    calls, leads, person = list(calls), list(leads), list(person)
    done: dict[str, Any] = {}
    recordings = await conn.fetch("DELETE FROM recordings WHERE call_id = ANY($1::uuid[]) "
                                  "RETURNING name, format, path, purged_at", calls)
    done["recordings"] = len(recordings)
    done["call_variables"] = _count(await conn.execute(
        "DELETE FROM call_variables WHERE call_id = ANY($1::uuid[])", calls))
    done["ivr_steps"] = _count(await conn.execute(
        "UPDATE ivr_steps SET input = '' WHERE call_id = ANY($1::uuid[]) AND input <> ''", calls))
    done["calls"] = _count(await conn.execute(f"""
        UPDATE calls SET
            caller_name = CASE WHEN {_DIGITS.format('caller_number')} = ANY($2) THEN '' ELSE caller_name END,
            caller_number = CASE WHEN {_DIGITS.format('caller_number')} = ANY($2) THEN '' ELSE caller_number END,
            dialed_number = CASE WHEN direction = 'outbound' AND {_DIGITS.format('dialed_number')} = ANY($2)
                                 THEN '' ELSE dialed_number END
        WHERE id = ANY($1::uuid[])""", calls, person))
    done["callbacks"] = _count(await conn.execute(
        f"UPDATE callbacks SET number = '' WHERE {_DIGITS.format('number')} = ANY($1)", person))
    done["dial_attempts"] = _count(await conn.execute(f"""
        UPDATE dial_attempts SET number = '' WHERE lead_id = ANY($1::bigint[])
            OR {_DIGITS.format('number')} = ANY($2)""", leads, person))
    decided = await conn.fetch(f"""
        SELECT id, detail, rules::text AS rules FROM dial_decisions WHERE lead_id = ANY($1::bigint[])
            OR {_DIGITS.format('number')} = ANY($2)""", leads, person)
    for d in decided:
        await conn.execute("UPDATE dial_decisions SET number = '', detail = $2, rules = $3::jsonb WHERE id = $1",
                           d["id"], blank(d["detail"]), blank(d["rules"]))
    done["dial_decisions"] = len(decided)
    events = await conn.fetch("SELECT id, detail FROM call_events WHERE call_id = ANY($1::uuid[])", calls)
    changed = [(e["id"], blank(e["detail"])) for e in events if blank(e["detail"]) != e["detail"]]
    if changed:
        await conn.executemany("UPDATE call_events SET detail = $2 WHERE id = $1", changed)
    done["call_events"] = len(changed)
    done["leads"] = _count(await conn.execute("DELETE FROM leads WHERE id = ANY($1::bigint[])", leads))
    done["dnc_numbers_kept"] = [dict(r) for r in await conn.fetch(
        f"SELECT number, scope FROM dnc_numbers WHERE {_DIGITS.format('number')} = ANY($1) ORDER BY scope", person)]
    return done, list(recordings)
