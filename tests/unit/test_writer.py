"""The write queue's promise with no database at all: every write journalled on disk as it is
queued, in order, read back by the next start (a SIGKILL included), nothing silently dropped."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import threading
from types import SimpleNamespace

import asyncpg
import pytest

from engine.store import journal as J
from engine.config.model import DatabaseConfig
from engine.store.db import Database, Write, Writer


def writer(tmp_path, **kw) -> Writer:
    return Writer(Database(DatabaseConfig(dsn="postgresql://127.0.0.1:1/none")), tmp_path, **kw)


def journal_lines(tmp_path) -> list[dict]:
    return [json.loads(line) for f in sorted((tmp_path / "journal").glob("*.jsonl"))
            for line in f.read_text().splitlines()]


def test_a_write_is_on_disk_when_submit_returns_private_to_the_engine(tmp_path):
    w = writer(tmp_path)
    w.submit(Write("call_started", ("a", "ch", "inbound", "1", "", "2", 1.5)))
    # no run(), no close(): what a SIGKILL right now would leave
    [line] = journal_lines(tmp_path)
    assert (line["op"], line["args"], line["seq"]) == ("call_started", ["a", "ch", "inbound", "1", "", "2", 1.5], 1)
    assert stat.S_IMODE(os.stat(tmp_path / "journal").st_mode) == 0o700
    for f in (tmp_path / "journal").glob("*.jsonl"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600


def test_the_next_start_queues_what_the_last_left_first_in_order(tmp_path):
    w = writer(tmp_path)
    w.submit(Write("call_started", ("a", "ch", "inbound", "1", "", "2", 1.5)))
    w.submit(Write("call_answered", ("a", 2.5)))
    # the engine dies here (nothing closed)

    again = writer(tmp_path)
    assert again.open() == 2
    again.submit(Write("call_ended", ("a", 3.5, 16, "Normal Clearing", "engine")))
    assert [e.op for e in again._queue] == ["call_started", "call_answered", "call_ended"]
    assert again._queue[0].args == ("a", "ch", "inbound", "1", "", "2", 1.5)
    # the recovered entries keep their identity (run, seq): the database's checkpoint can skip them
    assert [e.seq for e in again._queue][:2] == [1, 2] and again._queue[0].run == w.journal.run
    assert again._queue[2].run == again.journal.run != w.journal.run


def test_a_clean_stop_keeps_what_was_not_applied(tmp_path):
    w = writer(tmp_path)
    w.open()
    w.submit(Write("call_answered", ("a", 2.5)))
    assert w.close() == 1 and w.pending == 0
    again = writer(tmp_path)
    assert again.open() == 1 and again._queue[0].op == "call_answered"


def test_a_torn_or_corrupt_line_is_kept_aside_not_lost(tmp_path):
    (tmp_path / "journal").mkdir()
    good = '{"run":"r1","seq":1,"op":"call_answered","args":["a",1.0]}'
    (tmp_path / "journal" / "00000000000000000001-r1.jsonl").write_text(
        good + '\nnot json at all\n{"run":"r1","seq":3,"op":"drop_tables","args":[]}\n{"run":"r1","seq":4,"op":"ca')
    w = writer(tmp_path)
    assert w.open() == 1
    rejected = (tmp_path / "rejected.jsonl").read_text().splitlines()
    assert rejected == ["not json at all", '{"run":"r1","seq":3,"op":"drop_tables","args":[]}',
                        '{"run":"r1","seq":4,"op":"ca']
    assert stat.S_IMODE((tmp_path / "rejected.jsonl").stat().st_mode) == 0o600


def test_an_older_engines_spool_is_replayed_first(tmp_path):
    (tmp_path / "spool.jsonl").write_text('{"op": "call_answered", "args": ["a", 1.0]}\n')
    w = writer(tmp_path)
    assert w.open() == 1
    assert w._queue[0].run == "legacy" and w._queue[0].args == ("a", 1.0)


def test_unknown_operations_are_refused_at_submit(tmp_path):
    with pytest.raises(ValueError, match="unknown write operation"):
        writer(tmp_path).submit(Write("DROP TABLE calls", ()))


def test_nothing_left_leaves_no_file(tmp_path):
    w = writer(tmp_path)
    w.open()
    assert w.close() == 0
    assert list((tmp_path / "journal").iterdir()) == []


def test_applied_segments_are_deleted_and_the_journal_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(J, "SEGMENT_BYTES", 200)
    w = writer(tmp_path, journal_max_bytes=2000)
    entries = [w.submit(Write("call_answered", (f"call-{i}", float(i)))) for i in range(30)]
    assert w.journal.full and w.journal.bytes >= 2000
    j = w.journal
    for e in entries[:10]:  # the writer applied the first ten: rotated segments behind them go
        j.applied(e)
    files_after_ten = len(list((tmp_path / "journal").glob("*.jsonl")))
    for e in entries[10:]:
        j.applied(e)
    assert len(list((tmp_path / "journal").glob("*.jsonl"))) <= files_after_ten
    assert j.bytes < 200 and not j.full
    # what was not applied is never deleted: a restart now finds nothing to replay, and that is right
    assert writer(tmp_path).open() == 0


def test_an_unapplied_segment_survives_rotation(tmp_path, monkeypatch):
    monkeypatch.setattr(J, "SEGMENT_BYTES", 200)
    w = writer(tmp_path)
    entries = [w.submit(Write("call_answered", (f"call-{i}", float(i)))) for i in range(20)]
    w.journal.applied(entries[0])  # triggers rotation; 19 entries still to apply
    again = writer(tmp_path)
    recovered = again.open()
    # whole segments are kept until every entry in them is applied: at least the 19 unapplied come back
    assert recovered >= 19
    assert [e.args[0] for e in again._queue][-19:] == [f"call-{i}" for i in range(1, 20)]


class _BrokenOnce:
    """A pool whose first connection fails as asyncpg does on a connection the server dropped
    mid-use (``pg_ctl restart``): its first statement raises; later connections take every
    statement. The writer holds a connection between batches and gives it back to the pool."""

    def __init__(self) -> None:
        self.broken, self.statements, self.released = True, [], []

    async def acquire(self):
        pool = self

        class _Conn:
            closed = False

            def is_closed(self):
                return self.closed

            def transaction(self):
                return self

            async def __aenter__(self):
                return self

            async def __aexit__(self, *exc):
                return False

            async def execute(self, sql, *args):
                if pool.broken:
                    pool.broken, self.closed = False, True
                    raise asyncpg.exceptions.InternalClientError("cannot switch to state 15; another operation "
                                                                 "(2) is in progress")
                pool.statements.append(" ".join([sql.split()[0], *map(str, args)]))

            async def prepare(self, sql):   # the batch function's statements (engine/store/batchsql.py)
                await self.execute("PREPARE")
                count = max(map(int, re.findall(r"\$(\d+)", sql)), default=0)

                class _Statement:
                    def get_parameters(self):
                        return [SimpleNamespace(oid=25)] * count   # every parameter text
                return _Statement()

            async def fetch(self, sql, *args):
                return [(25, "text")]

            async def executemany(self, sql, args):
                for a in args:
                    await self.execute(sql, *a)

            async def fetchval(self, sql, *args):
                return None

        return _Conn()

    async def release(self, conn, timeout=None):
        self.released.append(conn)

    async def fetchval(self, sql, *args):
        return None


async def test_a_connection_broken_by_a_server_restart_is_waited_out_not_fatal(tmp_path):
    """Seen in tools/faults.py (postgres-restart): asyncpg's InternalClientError escaped the writer
    and stopped the engine. It is the database being away: the write is tried again and lands."""
    w = writer(tmp_path)
    pool = _BrokenOnce()
    w.db.pool = pool   # type: ignore[assignment]
    w.db.ready.set()
    w.submit(Write("call_answered", ("a", 2.5)))
    task = asyncio.create_task(w.run())
    try:
        async with asyncio.timeout(10):
            await w.wait_idle()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not pool.broken and w.written == 1
    assert pool.statements[-1].startswith("SELECT") and '["call_answered", ["a", 2.5]]' in pool.statements[-1]
    assert w.db.last_error is None   # it said it was away, then that it is back
    assert len(pool.released) == 2   # the broken connection at once, the good one when the writer stopped


async def test_a_burst_of_appends_is_synced_once_within_the_window_by_the_sync_thread(tmp_path, monkeypatch):
    synced: list[list[int]] = []
    done = threading.Event()

    def sync_all(fds):
        synced.append(list(fds))
        done.set()

    monkeypatch.setattr(J, "_sync_all", sync_all)
    w = writer(tmp_path)
    w.open()
    task = asyncio.create_task(w.journal.sync_forever())
    try:
        await asyncio.sleep(0)   # the task starts its thread
        syncer = w.journal._syncer
        assert syncer is not None and syncer.is_alive()
        for i in range(50):
            w.submit(Write("call_answered", (f"call-{i}", 1.0)))
        assert await asyncio.to_thread(done.wait, 5)
        assert synced == [[w.journal._current.fd]]   # one sync for the 50, of the segment they are in
        done.clear()
        w.submit(Write("call_answered", ("call-50", 1.0)))   # a later one: a sync of its own
        assert await asyncio.to_thread(done.wait, 5) and len(synced) == 2
        w.submit(Write("call_answered", ("call-51", 1.0)))   # stopped while this one's window runs
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not syncer.is_alive() and w.journal._syncer is None   # stopped at once, not at join's timeout
    before = len(synced)   # 2, or 3 if the thread got to the last window before the stop
    assert w.close() == 52 and len(synced) == before + 1 >= 3   # and the close syncs what may be left
