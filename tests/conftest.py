"""Test set-up shared by every layer.

- Every async test runs twice: on asyncio's own loop and on uvloop (the daemon's default).
- An exception that reaches the event loop's handler (a task that died unseen, a callback that
  raised) fails the test that was running, as asyncpg's test base does.
"""

from __future__ import annotations

import asyncio
import gc
import inspect

import pytest
import uvloop


def pytest_asyncio_loop_factories(config, item):
    if item.get_closest_marker("one_loop"):   # the engine under test is a subprocess
        return {"uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if inspect.iscoroutinefunction(getattr(item, "function", None)):
            item.add_marker(pytest.mark.usefixtures("loop_exceptions_fail"))


@pytest.fixture
async def loop_exceptions_fail():
    loop = asyncio.get_running_loop()
    seen: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    yield seen
    gc.collect()  # "Task exception was never retrieved" is reported when the task is collected
    await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert not seen, "exceptions reached the event loop: " + "; ".join(
        f"{c.get('message')}: {c.get('exception')!r}" for c in seen)
