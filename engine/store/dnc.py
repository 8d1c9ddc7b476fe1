"""The do-not-call lists (``dnc_numbers``, ``dnc_imports``): a list file loaded with COPY, one
number added, the lists a number is on (:mod:`engine.services.dnc`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable
from datetime import datetime
from typing import Any

__all__ = ["add_number", "load_numbers", "record_import", "scopes_of"]


def _count(status: str) -> int:
    """``INSERT 0 3`` / ``DELETE 3`` -> 3."""
    return int(status.rsplit(" ", 1)[1])


async def load_numbers(conn: Any, numbers: AsyncIterable[tuple[str]], scope: str, source: str, at: datetime,
                       reason: str, *, replace: bool) -> tuple[int, int]:
    """Stream ``numbers`` (E.164, one per record) into ``scope`` through a temporary table; with
    ``replace``, remove the scope's numbers from ``source`` that are not among them. Inside the
    caller's transaction. Returns (added, removed)."""
    await conn.execute("CREATE TEMP TABLE dnc_load (number text NOT NULL) ON COMMIT DROP")
    await conn.copy_records_to_table("dnc_load", records=numbers)
    added = _count(await conn.execute("""
        INSERT INTO dnc_numbers (number, scope, source, added_at, reason)
        SELECT DISTINCT number, $1::text, $2::text, $3::timestamptz, $4::text FROM dnc_load
        ON CONFLICT (number, scope) DO NOTHING""", scope, source, at, reason))
    removed = 0
    if replace:
        await conn.execute("CREATE INDEX ON dnc_load (number)")
        await conn.execute("ANALYZE dnc_load")
        removed = _count(await conn.execute("""
            DELETE FROM dnc_numbers d WHERE d.scope = $1 AND d.source = $2
            AND NOT EXISTS (SELECT 1 FROM dnc_load l WHERE l.number = d.number)""", scope, source))
    return added, removed


async def record_import(conn: Any, import_id: uuid.UUID, scope: str, source: str, file: str, at: datetime,
                        lines: int, added: int, removed: int, rejected: int) -> None:
    """One row of ``dnc_imports`` (the national list's latest is what the gate checks the age of)."""
    await conn.execute("""
        INSERT INTO dnc_imports (id, scope, source, file, imported_at, lines, added, removed, rejected)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        import_id, scope, source, file, at, lines, added, removed, rejected)


async def add_number(conn: Any, number: str, scope: str, source: str, at: datetime, reason: str) -> bool:
    """Put one E.164 number on a list; False if it was already there."""
    status = await conn.execute(
        "INSERT INTO dnc_numbers (number, scope, source, added_at, reason) VALUES ($1, $2, $3, $4, $5) "
        "ON CONFLICT (number, scope) DO NOTHING", number, scope, source, at, reason)
    return status.endswith(" 1")


async def scopes_of(conn: Any, number: str) -> list[Any]:
    """(scope, source, added_at, reason) of every list the number is on, by scope."""
    return await conn.fetch(
        "SELECT scope, source, added_at, reason FROM dnc_numbers WHERE number = $1 ORDER BY scope", number)
