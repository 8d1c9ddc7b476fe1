from __future__ import annotations

import contextlib

import asyncpg
import pytest

from engine.adapters.ari import AriClient, AriError, path
from engine.config.model import AriConfig
from engine.store.migrate import default_dir, migrate

from .harness import fresh_database, stack_env


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/integration/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack() -> dict[str, str]:
    return stack_env()


@pytest.fixture
async def dsn(stack):
    async with fresh_database(stack["CALLCENTER_DSN"]) as url:
        yield url


@pytest.fixture
async def db(dsn):
    """A connection to the test's own database, migrated."""
    conn = await asyncpg.connect(dsn)
    await migrate(conn, default_dir())
    yield conn
    await conn.close()


@pytest.fixture
async def ari(stack):
    cfg = AriConfig(url=stack["ASTERISK_ARI_URL"], username=stack["ASTERISK_ARI_USER"],
                    password=stack["ASTERISK_ARI_PASSWORD"])
    async with AriClient(cfg) as client:
        yield client


@pytest.fixture(autouse=True)
async def no_channel_left_behind(stack):
    """After every integration test, Asterisk holds no channel and no bridge: nothing leaked."""
    yield
    cfg = AriConfig(url=stack["ASTERISK_ARI_URL"], username=stack["ASTERISK_ARI_USER"],
                    password=stack["ASTERISK_ARI_PASSWORD"])
    async with AriClient(cfg) as client:
        channels = await client.get("/channels")
        bridges = await client.get("/bridges")
        for ch in channels:  # clean up so one failure does not cascade into the next test
            with contextlib.suppress(AriError):
                await client.delete(path("channels", ch["id"]))
    assert channels == [], f"channels left in Asterisk: {[c['name'] for c in channels]}"
    assert bridges == [], f"bridges left in Asterisk: {bridges}"
