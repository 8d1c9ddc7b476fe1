"""The write queue's promise with no database at all: in order, spilled at shutdown, replayed."""

from __future__ import annotations

import json

import pytest

from engine.config import DatabaseConfig
from engine.db import Database, Write, Writer


def writer(tmp_path) -> Writer:
    return Writer(Database(DatabaseConfig(dsn="postgresql://127.0.0.1:1/none")), tmp_path)


def test_spill_then_load_keeps_order_and_puts_old_writes_first(tmp_path):
    w = writer(tmp_path)
    w.submit(Write("call_started", ("a", "ch", "inbound", "1", "", "2", 1.5)))
    w.submit(Write("call_answered", ("a", 2.5)))
    assert w.spill() == 2 and w.pending == 0
    lines = (tmp_path / "spool.jsonl").read_text().splitlines()
    assert [json.loads(x)["op"] for x in lines] == ["call_started", "call_answered"]

    again = writer(tmp_path)
    again.submit(Write("call_ended", ("a", 3.5, 16, "Normal Clearing", "engine")))
    assert again.load_spool() == 2
    assert not (tmp_path / "spool.jsonl").exists()
    assert [x.op for x in again._queue] == ["call_started", "call_answered", "call_ended"]
    assert again._queue[0].args == ("a", "ch", "inbound", "1", "", "2", 1.5)


def test_a_corrupt_spool_line_is_kept_aside_not_lost(tmp_path):
    (tmp_path / "spool.jsonl").write_text('{"op": "call_answered", "args": ["a", 1.0]}\nnot json at all\n'
                                          '{"op": "drop_tables", "args": []}\n')
    w = writer(tmp_path)
    assert w.load_spool() == 1
    rejected = (tmp_path / "rejected.jsonl").read_text().splitlines()
    assert rejected == ["not json at all", '{"op": "drop_tables", "args": []}']


def test_unknown_operations_are_refused_at_submit(tmp_path):
    with pytest.raises(ValueError, match="unknown write operation"):
        writer(tmp_path).submit(Write("DROP TABLE calls", ()))


def test_nothing_to_spill_writes_no_file(tmp_path):
    assert writer(tmp_path).spill() == 0
    assert not (tmp_path / "spool.jsonl").exists()
