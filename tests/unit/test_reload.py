"""SIGHUP (issue 11, item 15): the file is read off the event loop, the old configuration serves
until the new one is ready, and what a file may hold is bounded."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import typing
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from engine.runtime import reloader

from engine.config import yamlconf
from engine.app import Engine
from engine.config.model import MAX_INBOUND, load_config
from engine.config.yamlconf import ConfigError
from tests.unit.test_config import MINIMAL


def routes(count: int, prompt: str = "beep") -> str:
    return "inbound:\n" + "".join(f'  - {{number: "{100000 + n}", prompt: {prompt}}}\n' for n in range(count))


def engine_on(tmp_path: Path, text: str = MINIMAL) -> tuple[Engine, Path]:
    path = tmp_path / "cc.yaml"
    path.write_text(text)
    return Engine(load_config(path), path), path


class Gate:
    """A load_config that waits, in its worker thread, until the test opens the gate."""

    def __init__(self) -> None:
        self.reading = threading.Event()
        self.release = threading.Event()
        self.calls: list[bool] = []    # per read: was it in a worker thread

    def __call__(self, path: Path):
        self.calls.append(threading.current_thread() is not threading.main_thread())
        self.reading.set()
        if not self.release.wait(10):   # only if the read blocked the loop: the test never got to open it
            raise AssertionError("the gate was never opened: the read ran on the event loop")
        return load_config(path)


async def test_a_reload_reads_off_the_loop_and_the_old_config_serves_until_the_new_is_ready(tmp_path, monkeypatch):
    engine, path = engine_on(tmp_path)
    old = engine.config
    path.write_text(MINIMAL + routes(1))
    gate = Gate()
    monkeypatch.setattr(reloader, "load_config", gate)
    task = engine.reload()
    await asyncio.to_thread(gate.reading.wait, 10)
    for _ in range(20):   # other tasks run meanwhile, on the old configuration
        await asyncio.sleep(0)
        assert engine.config is old and engine.config.route("100000").prompt == "hello-world"
    assert not task.done()
    gate.release.set()
    assert await task is True
    assert gate.calls == [True]
    assert engine.config.route("100000").prompt == "beep"


async def test_the_loop_keeps_ticking_while_a_big_config_is_read(tmp_path):
    engine, path = engine_on(tmp_path)
    old = engine.config
    path.write_text(MINIMAL + routes(MAX_INBOUND))     # the most a file may hold: about 2 s of work
    task = engine.reload()
    gaps: list[float] = []
    last = start = time.perf_counter()
    while not task.done():
        assert engine.config is old
        await asyncio.sleep(0)   # a ticker: how long until the loop comes back to it
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    assert await task is True
    elapsed = time.perf_counter() - start
    assert len(gaps) > 100 and max(gaps) < elapsed / 4, (len(gaps), max(gaps), elapsed)
    assert len(engine.config.inbound) == MAX_INBOUND and engine.config.route("100042").prompt == "beep"


async def test_a_reload_beyond_the_bounds_is_refused_and_the_old_config_kept(tmp_path):
    engine, path = engine_on(tmp_path)
    old = engine.config
    for text, problem in (
        (MINIMAL + routes(MAX_INBOUND + 1), f"{path}:7:3: inbound: {MAX_INBOUND + 1} entries; at most "
                                            f"{MAX_INBOUND} are allowed here"),
        (MINIMAL + "#" * (5 * 2**20), f"{path}:1:1: the file is {len(MINIMAL) + 5 * 2**20:,} bytes; a "
                                      "configuration file may be at most 4,194,304 bytes (4 MiB)"),
    ):
        path.write_text(text)
        with capture_logs() as logs:
            assert await engine.reload() is False
        assert engine.config is old
        assert [(e["event"], e["problems"]) for e in logs] == [("config.reload_rejected", [problem])]


async def test_sighups_during_a_read_fold_into_one_more_read(tmp_path, monkeypatch):
    engine, path = engine_on(tmp_path)
    gate = Gate()
    monkeypatch.setattr(reloader, "load_config", gate)
    path.write_text(MINIMAL + routes(1, "first"))
    task = engine.reload()
    await asyncio.to_thread(gate.reading.wait, 10)
    path.write_text(MINIMAL + routes(1, "last"))   # changed while the first read runs
    assert engine.reload() is task and engine.reload() is task
    gate.release.set()
    assert await task is True
    assert gate.calls == [True, True]   # the first read, and one more for the SIGHUPs during it
    assert engine.config.route("100000").prompt == "last"


async def test_a_read_that_fails_unexpectedly_is_logged_and_the_engine_goes_on(tmp_path, monkeypatch):
    engine, path = engine_on(tmp_path)
    old = engine.config

    def broken(path: Path):
        raise RuntimeError("a bug in a check")

    monkeypatch.setattr(reloader, "load_config", broken)
    with capture_logs() as logs:
        assert await engine.reload() is False
    assert engine.config is old
    assert [(e["event"], e["error"]) for e in logs] == [("config.reload_failed", "RuntimeError: a bug in a check")]


def test_reading_works_out_each_schema_once_not_once_per_entry(monkeypatch, tmp_path):
    """The cost of 230,000 entries was per entry: typing.get_type_hints for every mapping read (a
    quarter of the time), the cyclic collector walking the growing tree again and again, the pure
    Python parser; now a class's hints are worked out once and the collector waits."""
    calls: list[type] = []
    real = typing.get_type_hints
    monkeypatch.setattr(typing, "get_type_hints", lambda cls, *a, **k: calls.append(cls) or real(cls, *a, **k))
    yamlconf._schema.cache_clear()
    path = tmp_path / "cc.yaml"
    path.write_text(MINIMAL + routes(2_000))
    assert len(load_config(path).inbound) == 2_000
    assert len(calls) == len(set(calls)) and len(calls) < 20
    assert gc.isenabled()
    path.write_text(MINIMAL + routes(1) + "bad: key\n")
    with pytest.raises(ConfigError):
        load_config(path)
    assert gc.isenabled()   # switched back on after a refused file too
