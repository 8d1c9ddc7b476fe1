"""Migrations against the real PostgreSQL: order, transactions, checksums, concurrent runners."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys

import asyncpg
import pytest

from engine.store.migrate import MigrationError, default_dir, migrate


async def test_concurrent_runners_apply_each_migration_once(dsn):
    a, b = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        done_a, done_b = await asyncio.gather(migrate(a, default_dir()), migrate(b, default_dir()))
        applied = sorted([m.version for m in done_a] + [m.version for m in done_b])
        expected = sorted(int(p.name[:4]) for p in default_dir().glob("*.sql"))
        assert applied == expected  # each version applied by exactly one runner
        rows = await a.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == expected
        assert await migrate(a, default_dir()) == []
        assert await a.fetchval("SELECT count(*) FROM calls") == 0
    finally:
        await a.close()
        await b.close()


async def test_a_failing_migration_leaves_nothing_behind(dsn, tmp_path):
    for p in default_dir().glob("*.sql"):
        shutil.copy(p, tmp_path / p.name)
    (tmp_path / "0900_broken.sql").write_text("CREATE TABLE half_done (x int);\nSELECT no_such_function();\n")
    conn = await asyncpg.connect(dsn)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await migrate(conn, tmp_path)
        versions = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        assert 900 not in versions and 1 in versions
        assert await conn.fetchval("SELECT to_regclass('half_done')") is None
    finally:
        await conn.close()


async def test_an_edited_migration_is_refused(dsn, tmp_path):
    for p in default_dir().glob("*.sql"):
        shutil.copy(p, tmp_path / p.name)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, tmp_path)
        first = sorted(tmp_path.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited\n")
        with pytest.raises(MigrationError, match="was changed after it was applied"):
            await migrate(conn, tmp_path)
    finally:
        await conn.close()


async def test_migrate_command(dsn):
    cmd = [sys.executable, "-m", "engine", "migrate", "--dsn", dsn]
    first = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_calls.sql" in first.stdout
    again = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout.strip() == "schema is up to date"
    dead = await asyncio.to_thread(subprocess.run, [*cmd[:-1], "postgresql://postgres@127.0.0.1:1/x"],
                                   capture_output=True, text=True)
    assert dead.returncode == 1 and "cannot connect to the database" in dead.stderr
