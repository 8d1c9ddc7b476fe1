"""SQL migrations: ``migrations/NNNN_name.sql``, applied in order, each in its own transaction.

Applied versions are recorded in ``schema_migrations`` with a checksum; a migration edited after it
was applied is an error, not a silent drift. Concurrent runners (two engines starting together,
an operator running ``callcenter migrate`` during a start) are serialised with an advisory lock.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg

__all__ = ["Migration", "MigrationError", "default_dir", "discover", "migrate"]

# pg_advisory_lock key: the first 8 bytes of sha256("callcenter.migrations"), as a signed bigint.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"callcenter.migrations").digest()[:8], "big", signed=True)
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def default_dir() -> Path:
    """migrations/ at the top of the checkout, else where the wheel installed them."""
    for candidate in (Path(__file__).resolve().parents[2] / "migrations",
                      Path(sys.prefix) / "share" / "callcenter" / "migrations"):
        if candidate.is_dir():
            return candidate
    raise MigrationError("cannot find the migrations folder; set database.migrations_dir")


def discover(directory: Path) -> list[Migration]:
    found: dict[int, Migration] = {}
    for p in sorted(directory.iterdir()):
        if p.suffix != ".sql":
            continue
        m = _NAME.match(p.name)
        if not m:
            raise MigrationError(f"{p}: a migration is named NNNN_lowercase_name.sql")
        version = int(m.group(1))
        if version in found:
            raise MigrationError(f"{p}: version {version} also used by {found[version].path.name}")
        found[version] = Migration(version, m.group(2), p, p.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


async def migrate(conn: asyncpg.Connection, directory: Path) -> list[Migration]:
    """Apply what is missing; return what was applied now (empty if the schema was current)."""
    migrations = discover(directory)
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        await conn.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )""")
        applied = {r["version"]: r for r in await conn.fetch("SELECT version, name, checksum FROM schema_migrations")}
        known = {m.version for m in migrations}
        unknown = sorted(set(applied) - known)
        if unknown:
            raise MigrationError(f"the database has migrations this engine does not know: {unknown} "
                                 "(is this engine older than the schema?)")
        done: list[Migration] = []
        for m in migrations:
            row = applied.get(m.version)
            if row is not None:
                if row["checksum"] != m.checksum:
                    raise MigrationError(f"{m.path.name} was changed after it was applied; "
                                         "write a new migration instead")
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                                   m.version, m.name, m.checksum)
            done.append(m)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
