"""Leads into the database: a CSV import in one transaction (:mod:`engine.services.leadimport`: COPY, and
the merge into leads already there) and one lead from the API (``POST /campaigns/{name}/leads``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

__all__ = ["LEAD_COLUMNS", "NUMBER_COLUMNS", "copy_lead_numbers", "copy_leads", "insert_lead", "lead_with",
           "leads_by_external_id", "leads_by_number", "merge_into_leads", "new_lead_ids", "next_positions",
           "record_import"]

# The columns of the records copy_leads and copy_lead_numbers take, in order.
LEAD_COLUMNS = ("id", "campaign", "external_id", "first_name", "last_name", "name", "fields", "timezone",
                "timezone_source", "consent_autodial", "consent_text", "priority", "status", "next_due_at",
                "import_id", "source_row", "created_at", "updated_at")
NUMBER_COLUMNS = ("lead_id", "position", "campaign", "number", "kind", "line_type", "time_zones", "raw")
# The columns of the records merge_into_leads takes, in order.
MERGE_COLUMNS = ("id", "fields", "external_id", "first_name", "last_name", "name", "timezone", "consent_text")


async def leads_by_external_id(conn: Any, campaign: str, external_ids: Sequence[str]) -> dict[str, int]:
    """external id -> lead id, for those of ``external_ids`` the campaign has."""
    return {r["external_id"]: r["id"] for r in await conn.fetch(
        "SELECT id, external_id FROM leads WHERE campaign = $1 AND external_id = ANY($2::text[])",
        campaign, list(external_ids))}


async def leads_by_number(conn: Any, campaign: str, numbers: Sequence[str]) -> dict[str, int]:
    """number -> lead id, for those of ``numbers`` (E.164) a lead of the campaign has."""
    return {r["number"]: r["lead_id"] for r in await conn.fetch(
        "SELECT lead_id, number FROM lead_numbers WHERE campaign = $1 AND number = ANY($2::text[])",
        campaign, list(numbers))}


async def lead_with(conn: Any, campaign: str, numbers: Sequence[str], external_id: str | None) -> int | None:
    """A lead of the campaign that has one of ``numbers`` or ``external_id``, or None."""
    return await conn.fetchval("""
        SELECT lead_id FROM lead_numbers WHERE campaign = $1 AND number = ANY($2::text[])
        UNION ALL SELECT id FROM leads WHERE campaign = $1 AND external_id = $3 LIMIT 1""",
        campaign, list(numbers), external_id)


async def new_lead_ids(conn: Any, count: int) -> list[int]:
    """``count`` ids for new leads, from the leads' sequence."""
    return [r["id"] for r in await conn.fetch(
        "SELECT nextval(pg_get_serial_sequence('leads', 'id')) AS id FROM generate_series(1, $1)", count)]


async def copy_leads(conn: Any, records: Iterable[tuple[Any, ...]]) -> None:
    """New leads, each a tuple in :data:`LEAD_COLUMNS` order (ids from :func:`new_lead_ids`)."""
    await conn.copy_records_to_table("leads", records=records, columns=list(LEAD_COLUMNS))


async def copy_lead_numbers(conn: Any, records: Iterable[tuple[Any, ...]]) -> None:
    """Lead numbers, each a tuple in :data:`NUMBER_COLUMNS` order."""
    await conn.copy_records_to_table("lead_numbers", records=records, columns=list(NUMBER_COLUMNS))


async def insert_lead(conn: Any, campaign: str, external_id: str | None, first_name: str, last_name: str,
                      name: str, fields: str, timezone: str | None, timezone_source: str | None, consent: bool,
                      consent_text: str, priority: int, now: datetime) -> int:
    """One new lead, due ``now`` (``fields``: JSON); its id."""
    return await conn.fetchval("""
        INSERT INTO leads (campaign, external_id, first_name, last_name, name, fields, timezone, timezone_source,
                           consent_autodial, consent_text, priority, status, next_due_at, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, 'new', $12, $12, $12) RETURNING id""",
        campaign, external_id, first_name, last_name, name, fields, timezone, timezone_source, consent,
        consent_text, priority, now)


async def next_positions(conn: Any, lead_ids: Sequence[int]) -> dict[int, int]:
    """lead id -> the position its next number takes (leads without numbers are left out)."""
    return {r["lead_id"]: r["next"] for r in await conn.fetch("""
        SELECT lead_id, max(position) + 1 AS next FROM lead_numbers WHERE lead_id = ANY($1::bigint[])
        GROUP BY lead_id""", list(lead_ids))}


async def merge_into_leads(conn: Any, updates: Sequence[tuple[Any, ...]], now: datetime) -> None:
    """What later rows add to leads already stored (tuples in :data:`MERGE_COLUMNS` order): the
    stored values win, a field or name the lead lacks is filled, a time zone given in a file's
    column replaces one derived from a number. Inside the caller's transaction."""
    await conn.execute("""
        CREATE TEMP TABLE lead_merge (id bigint, fields jsonb, external_id text, first_name text, last_name text,
                                      name text, timezone text, consent_text text)
        ON COMMIT DROP""")
    await conn.copy_records_to_table("lead_merge", records=updates, columns=list(MERGE_COLUMNS))
    await conn.execute("""
        UPDATE leads l SET
            fields = m.fields || l.fields,
            external_id = COALESCE(l.external_id, m.external_id),
            first_name = CASE WHEN l.first_name = '' THEN COALESCE(m.first_name, '') ELSE l.first_name END,
            last_name = CASE WHEN l.last_name = '' THEN COALESCE(m.last_name, '') ELSE l.last_name END,
            name = CASE WHEN l.name = '' THEN COALESCE(NULLIF(m.name, ''),
                        concat_ws(' ', NULLIF(m.first_name, ''), NULLIF(m.last_name, ''))) ELSE l.name END,
            timezone = CASE WHEN l.timezone_source = 'column' THEN l.timezone ELSE COALESCE(m.timezone, l.timezone) END,
            timezone_source = CASE WHEN l.timezone_source <> 'column' AND m.timezone IS NOT NULL THEN 'column'
                                   ELSE l.timezone_source END,
            consent_text = CASE WHEN l.consent_text = '' THEN COALESCE(m.consent_text, '') ELSE l.consent_text END,
            updated_at = $1
        FROM lead_merge m WHERE l.id = m.id""", now)


async def record_import(conn: Any, import_id: uuid.UUID, campaign: str, file: str, at: datetime, rows: int,
                        leads: int, merged: int, rejected: int, numbers_dropped: int, rejects_file: str | None) -> None:
    """One row of ``lead_imports``: what an import did."""
    await conn.execute("""
        INSERT INTO lead_imports (id, campaign, file, imported_at, rows, leads, merged, rejected,
                                  numbers_dropped, rejects_file)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        import_id, campaign, file, at, rows, leads, merged, rejected, numbers_dropped, rejects_file)
