"""The batch function (engine/store/batchsql.py) against the real PostgreSQL: every queued write
operation lands through it exactly as through its own statement, in one statement, all or nothing."""

from __future__ import annotations

import json

import asyncpg
import pytest

import engine.store.webhooks  # noqa: F401  (its operations join the table)
from engine.store import batchsql
from engine.store.db import CHECKPOINT, OPERATIONS

U = [f"00000000-0000-4000-8000-{i:012d}" for i in range(20)]
T0 = 1_733_000_000.25
HOSTILE = "Ann O'Neil'); DROP TABLE calls; -- $1 $f$ \\ \"é\""

# One sample of every operation, in an order a floor could produce them (each row's insert before
# its updates), with the awkward values: NULLs, empty and non-empty arrays, JSON text, quotes.
SAMPLES: list[tuple[str, tuple]] = [
    ("call_started", (U[1], "ch-1", "inbound", "+15551234567", HOSTILE, "2000", T0)),
    ("call_started", (U[2], "ch-2", "inbound", "anonymous", "", "2000", T0 + 0.5)),
    ("call_answered", (U[1], T0 + 1.5)),
    ("call_event", (U[3], U[1], T0 + 1.0, "note", HOSTILE)),
    ("agent_state", (U[4], "1001", "available", None, None, T0, ["sales", "support"], "PJSIP/1001", T0, 3, None)),
    ("agent_state", (U[5], "1001", "on_call", "x", U[1], T0 + 2, [], "PJSIP/1001", None, 4, "pause:lunch")),
    ("queue_entered", (U[6], U[1], "sales", 5, T0 + 0.5, T0 + 0.5)),
    ("offer_made", (U[7], U[1], "sales", "1001", T0 + 1, "longest_idle", json.dumps({"lang": "fr"}), 0,
                    json.dumps([["1001", 3.5], ["1002", None]]), HOSTILE)),
    ("offer_ended", (U[7], T0 + 1.25, "answered")),
    ("queue_left", (U[1], "sales", T0 + 1.3, "answered", 0.8, "1001")),
    ("queue_reopened", (U[1], "sales", "1001")),
    ("queue_left", (U[1], "sales", T0 + 1.4, "answered", 0.9, "1001")),
    ("queue_reopened_unbridged", (U[1], "sales")),
    ("queue_left_lost", (U[1], T0 + 5)),
    ("disposition", (U[8], U[1], "1001", "sale", "Sale €", T0 + 6)),
    ("callback_requested", (U[1], "sales", "+15551234567", T0 + 3)),
    ("callback_placed", (U[1], T0 + 7, "1001", "answered")),
    ("recording", (U[9], U[1], "rec-1", "wav", "/var/rec/x.wav", "inbound", "1001", "sales", T0, T0 + 2, 2.0,
                   1234, "call")),
    ("call_ivr", (U[1], "main", "v3")),
    ("ivr_step", (U[10], U[1], 1, T0 + 0.1, "main", "v3", "menu", "gather", "1", "ok")),
    ("call_variables", (U[1], ["a", "b"], ["1", HOSTILE])),
    ("survey_answer", (U[1], "q1", 5, T0 + 8)),
    ("callback_requested_ivr", (U[2], None, "+15557654321", T0 + 1)),
    ("dnc_add", ("+15551234567", "global", "agent", T0, HOSTILE)),
    ("call_ended", (U[1], T0 + 9, 16, "Normal Clearing", "caller")),
    ("webhook_queued", (U[11], "box-1", "http://127.0.0.1:9/x", "call.ended", '{"a": 1}', T0)),
    ("webhook_tried", (U[11], 1, T0 + 1, 500, HOSTILE, False, False, T0 + 3)),
]

TABLES = ("calls", "call_events", "agent_states", "agents_current", "queue_entries", "queue_offers",
          "dispositions", "callbacks", "recordings", "ivr_steps", "call_variables", "survey_answers",
          "dnc_numbers", "webhook_outbox")


async def contents(conn: asyncpg.Connection) -> dict[str, list]:
    """Every row of every table the operations write (but the recordings' created_at: now())."""
    return {t: sorted(await conn.fetchval(f"SELECT coalesce(array_agg((to_jsonb(x) - 'created_at')::text), "
                                          f"'{{}}') FROM {t} x")) for t in TABLES}


def test_every_operation_has_a_sample():
    assert {op for op, _ in SAMPLES} == set(OPERATIONS)


class RolledBack(Exception):
    pass


async def test_every_operation_lands_through_the_function_as_through_its_statement(db):
    await batchsql.install(db, OPERATIONS, CHECKPOINT)
    with pytest.raises(RolledBack):
        async with db.transaction():   # each statement alone, what it leaves, then undone
            for op, args in SAMPLES:
                await db.execute(OPERATIONS[op], *args)
            plain = await contents(db)
            raise RolledBack
    assert all(plain[t] for t in TABLES), "every table got a row: the samples reach each statement"
    assert await contents(db) == {t: [] for t in TABLES}
    await db.execute(f"SELECT {batchsql.FUNCTION}($1::jsonb)", json.dumps(
        [[op, list(args)] for op, args in SAMPLES] + [[batchsql.CHECKPOINT_OP, ["run-1", 27]]]))
    assert await contents(db) == plain
    assert await db.fetchval("SELECT seq FROM write_journal_checkpoints WHERE run = 'run-1'") == 27


async def test_a_batch_with_one_bad_entry_changes_nothing(db):
    await batchsql.install(db, OPERATIONS, CHECKPOINT)
    good = ["call_started", [U[1], "ch-1", "inbound", "555", "", "2000", T0]]
    with pytest.raises(asyncpg.PostgresError):
        await db.execute(f"SELECT {batchsql.FUNCTION}($1::jsonb)", json.dumps(
            [good, ["call_started", ["not-a-uuid", "ch-2", "inbound", "555", "", "2000", T0]],
             [batchsql.CHECKPOINT_OP, ["run-1", 2]]]))
    assert await db.fetchval("SELECT count(*) FROM calls") == 0
    assert await db.fetchval("SELECT count(*) FROM write_journal_checkpoints") == 0
    with pytest.raises(asyncpg.PostgresError, match="unknown operation"):
        await db.execute(f"SELECT {batchsql.FUNCTION}($1::jsonb)", json.dumps([good, ["no_such_op", []]]))
    assert await db.fetchval("SELECT count(*) FROM calls") == 0
