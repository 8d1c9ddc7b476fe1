"""PostgreSQL: the pool, and an ordered write queue that survives a database outage.

Theory of operation
-------------------
Calls must go on when the database is away. So the call path never waits for PostgreSQL: it
queues :class:`Write` items (a named operation and JSON-friendly arguments). One writer task applies
them in order, a batch per statement (:mod:`engine.store.batchsql`: one round trip, one
implicit transaction, the checkpoint inside). Each item is journalled on local disk when it is
submitted (:mod:`engine.store.journal`), so neither a database outage nor the engine's own death (SIGKILL
included) loses it: the next start applies what the journal still holds, before anything new, and
skips what had landed (a checkpoint per run, written in the same transaction as the writes). When
the database cannot be reached, the writer keeps the batch, says so once, and retries with
back-off. Every operation is idempotent as well (ids are made by the engine, updates keep the first
value written).

A write that PostgreSQL itself refuses (a constraint, a bad value) would be refused forever: it is
logged with its arguments, kept in ``<state_dir>/rejected.jsonl`` (0600) for an operator, and
skipped; the rest of its batch is applied one by one.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from engine.config.model import DatabaseConfig
from engine.shared.events import Hub
from engine.shared.logsetup import get_logger
from engine.store import batchsql
from engine.store.journal import Entry, Journal
from engine.store.migrate import default_dir, migrate

__all__ = ["Database", "OPERATIONS", "Write", "Writer", "apply", "ping"]

log = get_logger("db")

# Errors that mean "the database is not there right now" (retry), as opposed to "it refused".
# PostgreSQL is away (or going): wait and try again. InternalClientError is asyncpg's "another
# operation is in progress" on a connection the server dropped mid-use (seen on `pg_ctl restart`).
UNAVAILABLE = (OSError, asyncio.TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
               asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError, asyncpg.AdminShutdownError,
               asyncpg.CrashShutdownError, asyncpg.exceptions.InternalClientError)

# Each operation: SQL with positional arguments. Timestamps travel as epoch seconds (floats).
OPERATIONS: dict[str, str] = {
    "call_started": """
        INSERT INTO calls (id, channel_id, direction, caller_number, caller_name, dialed_number, started_at)
        VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7))
        ON CONFLICT (id) DO NOTHING""",
    "call_answered": """
        UPDATE calls SET answered_at = COALESCE(answered_at, to_timestamp($2)) WHERE id = $1""",
    "call_ended": """
        UPDATE calls SET ended_at = to_timestamp($2), hangup_cause = $3, hangup_cause_text = $4, ended_by = $5
        WHERE id = $1 AND ended_at IS NULL""",
    "call_event": """
        INSERT INTO call_events (id, call_id, at, kind, detail)
        VALUES ($1, $2, to_timestamp($3), $4, $5)
        ON CONFLICT (id) DO NOTHING""",
    # (id, agent, state, reason, call, at, queues[], endpoint, idle_since, calls_taken, pending)
    "agent_state": """
        WITH history AS (
            INSERT INTO agent_states (id, agent_id, state, reason, call_id, at)
            VALUES ($1, $2, $3, $4, $5, to_timestamp($6)) ON CONFLICT (id) DO NOTHING)
        INSERT INTO agents_current (agent_id, state, reason, call_id, queues, endpoint, since, idle_since,
                                    calls_taken, pending, updated_at)
        VALUES ($2, $3, $4, $5, $7, $8, to_timestamp($6), to_timestamp($9), $10, $11, to_timestamp($6))
        ON CONFLICT (agent_id) DO UPDATE SET
            state = EXCLUDED.state, reason = EXCLUDED.reason, call_id = EXCLUDED.call_id,
            queues = EXCLUDED.queues, endpoint = EXCLUDED.endpoint, since = EXCLUDED.since,
            idle_since = EXCLUDED.idle_since, calls_taken = EXCLUDED.calls_taken, pending = EXCLUDED.pending,
            updated_at = EXCLUDED.updated_at
        WHERE agents_current.updated_at <= EXCLUDED.updated_at""",
    # (id, call, queue, priority, entered_at, line_since): a restored call keeps its open entry
    "queue_entered": """
        INSERT INTO queue_entries (id, call_id, queue, priority, entered_at, line_since)
        SELECT $1, $2, $3, $4, to_timestamp($5), to_timestamp($6)
        WHERE NOT EXISTS (SELECT 1 FROM queue_entries WHERE call_id = $2 AND queue = $3 AND left_at IS NULL)
        ON CONFLICT (id) DO NOTHING""",
    # (call, queue, at, outcome, wait, agent)
    "queue_left": """
        UPDATE queue_entries SET left_at = to_timestamp($3), outcome = $4, wait_seconds = $5, agent_id = $6
        WHERE call_id = $1 AND queue = $2 AND left_at IS NULL""",
    # (call, queue, agent): the agent's leg went before the bridge: the stay is open again, its
    # entry and wait as before (queue_entered then finds it open and adds none)
    "queue_reopened": """
        UPDATE queue_entries SET left_at = NULL, outcome = NULL, wait_seconds = NULL, agent_id = NULL
        WHERE id = (SELECT id FROM queue_entries WHERE call_id = $1 AND queue = $2 AND outcome = 'answered'
                    AND agent_id = $3 ORDER BY left_at DESC LIMIT 1)
          AND NOT EXISTS (SELECT 1 FROM queue_entries WHERE call_id = $1 AND left_at IS NULL)""",
    # (call, queue): a caller adopted unbridged whose last stay says answered was never bridged (the
    # engine stopped between the agent's answer and the bridge): that stay goes on, not a second one
    "queue_reopened_unbridged": """
        UPDATE queue_entries SET left_at = NULL, outcome = NULL, wait_seconds = NULL, agent_id = NULL
        WHERE id = (SELECT id FROM queue_entries WHERE call_id = $1 AND queue = $2
                    ORDER BY entered_at DESC, left_at DESC NULLS FIRST LIMIT 1)
          AND outcome = 'answered'
          AND NOT EXISTS (SELECT 1 FROM queue_entries WHERE call_id = $1 AND left_at IS NULL)""",
    # (call, at): the call's channel went away while the engine was not running
    "queue_left_lost": """
        UPDATE queue_entries SET left_at = to_timestamp($2), outcome = 'lost',
               wait_seconds = $2 - extract(epoch FROM entered_at)
        WHERE call_id = $1 AND left_at IS NULL""",
    # (id, call, queue, agent, at, strategy, requirement json, step, candidates json, reason)
    "offer_made": """
        INSERT INTO queue_offers (id, call_id, queue, agent_id, offered_at, strategy, requirement,
                                  expansion_step, candidates, reason)
        VALUES ($1, $2, $3, $4, to_timestamp($5), $6, $7::jsonb, $8, $9::jsonb, $10)
        ON CONFLICT (id) DO NOTHING""",
    # (id, at, result)
    "offer_ended": """
        UPDATE queue_offers SET ended_at = to_timestamp($2), result = $3 WHERE id = $1 AND ended_at IS NULL""",
    # (id, call, agent, code, name, at)
    "disposition": """
        INSERT INTO dispositions (id, call_id, agent_id, code, name, at)
        VALUES ($1, $2, $3, $4, $5, to_timestamp($6)) ON CONFLICT (id) DO NOTHING""",
    # (call, queue, number, at)
    "callback_requested": """
        INSERT INTO callbacks (call_id, queue, number, requested_at) VALUES ($1, $2, $3, to_timestamp($4))
        ON CONFLICT (call_id) DO NOTHING""",
    # (call, at, agent, outcome)
    "callback_placed": """
        UPDATE callbacks SET placed_at = COALESCE(placed_at, to_timestamp($2)), agent_id = $3, outcome = $4
        WHERE call_id = $1""",
    # (id, call, name, format, path, direction, agent, queue, started_at, ended_at, duration, size, kind)
    "recording": """
        INSERT INTO recordings (id, call_id, name, format, path, direction, agent_id, queue, started_at, ended_at,
                                duration_seconds, size_bytes, kind)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, to_timestamp($9), to_timestamp($10), $11, $12, $13)
        ON CONFLICT (id) DO NOTHING""",
    # (call, tree, version)
    "call_ivr": """
        UPDATE calls SET ivr_tree = COALESCE(ivr_tree, $2), ivr_version = COALESCE(ivr_version, $3) WHERE id = $1""",
    # (id, call, seq, at, tree, version, node, verb, input, result)
    "ivr_step": """
        INSERT INTO ivr_steps (id, call_id, seq, at, tree, version, node, verb, input, result)
        VALUES ($1, $2, $3, to_timestamp($4), $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING""",
    # (call, names[], values[])
    "call_variables": """
        INSERT INTO call_variables (call_id, name, value) SELECT $1, n, v FROM unnest($2::text[], $3::text[]) AS t(n, v)
        ON CONFLICT (call_id, name) DO UPDATE SET value = EXCLUDED.value""",
    # (call, question, answer, at)
    "survey_answer": """
        INSERT INTO survey_answers (call_id, question, answer, at) VALUES ($1, $2, $3, to_timestamp($4))
        ON CONFLICT (call_id, question) DO NOTHING""",
    # (call, queue or null, number, at): a callback asked for in the IVR
    "callback_requested_ivr": """
        INSERT INTO callbacks (call_id, queue, number, requested_at, source) VALUES ($1, $2, $3, to_timestamp($4), 'ivr')
        ON CONFLICT (call_id) DO NOTHING""",
    # (number E.164, scope, source, at, reason): an agent keyed DNC; see engine/services/dnc.py add_write
    "dnc_add": """
        INSERT INTO dnc_numbers (number, scope, source, added_at, reason) VALUES ($1, $2, $3, to_timestamp($4), $5)
        ON CONFLICT (number, scope) DO NOTHING""",
}


@dataclass(frozen=True, slots=True)
class Write:
    op: str
    args: tuple[Any, ...]

    def to_json(self) -> str:
        return json.dumps({"op": self.op, "args": list(self.args)})

    @classmethod
    def from_json(cls, line: str) -> Write:
        data = json.loads(line)
        if data.get("op") not in OPERATIONS or not isinstance(data.get("args"), list):
            raise ValueError(f"not a spooled write: {line[:120]!r}")
        return cls(data["op"], tuple(data["args"]))


class Database:
    """The pool, created (and migrated) in the background so the engine starts without PostgreSQL."""

    def __init__(self, cfg: DatabaseConfig) -> None:
        self.cfg = cfg
        self.pool: asyncpg.Pool | None = None
        self.ready = asyncio.Event()
        self.last_error: str | None = None

    async def connect(self) -> None:
        """Retry until the pool exists and migrations (if configured) are applied."""
        delay = 0.2
        while True:
            try:
                pool = await asyncpg.create_pool(
                    self.cfg.dsn, min_size=self.cfg.pool.min_size, max_size=self.cfg.pool.max_size,
                    command_timeout=self.cfg.command_timeout_seconds, timeout=5.0)
                break
            except UNAVAILABLE as exc:
                self._unavailable(exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
        try:
            if self.cfg.migrate_on_start:
                async with pool.acquire() as conn:
                    applied = await migrate(conn, self.cfg.migrations_dir or default_dir())
                log.info("db.migrated", applied=[m.path.name for m in applied])
        except BaseException:
            await pool.close()
            raise
        self.pool = pool
        self.last_error = None
        self.ready.set()
        log.info("db.ready")

    def _unavailable(self, exc: BaseException, delay: float) -> None:
        text = f"{type(exc).__name__}: {exc}"
        if text != self.last_error:
            log.error("db.unavailable", error=text, retry_in=round(delay, 2))
        self.last_error = text

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None
        self.ready.clear()


async def ping(pool: asyncpg.Pool) -> None:
    """One round trip (the health probe of :mod:`engine.http.metrics`)."""
    await pool.fetchval("SELECT 1")


async def apply(conn: Any, write: Write | Entry) -> None:
    """Apply one write on ``conn`` (a pool or a connection): the writer's batches, or one write
    that must be stored before its caller goes on (not through the queue)."""
    await conn.execute(OPERATIONS[write.op], *write.args)


# (run, seq): the highest journal entry of a run applied, in the same transaction as the entry.
CHECKPOINT = """
    INSERT INTO write_journal_checkpoints (run, seq, at) VALUES ($1, $2, now())
    ON CONFLICT (run) DO UPDATE SET seq = GREATEST(write_journal_checkpoints.seq, EXCLUDED.seq), at = now()"""
BATCH = 200   # entries applied in one transaction at most
COALESCE_SECONDS = 0.03   # a batch waits this long for more entries before it is applied


class Writer:
    """The ordered write queue. ``submit`` journals the write and never blocks; ``run`` applies
    writes until cancelled (:mod:`engine.store.journal` says how nothing is lost or applied twice)."""

    def __init__(self, db: Database, state_dir: Path, *, journal_max_bytes: int = 1024 * 1024 * 1024) -> None:
        self.db = db
        self.state_dir = state_dir
        self.rejected_path = state_dir / "rejected.jsonl"
        self.journal = Journal(state_dir / "journal", max_bytes=journal_max_bytes, rejected=self.rejected_path,
                               known_op=OPERATIONS.__contains__)
        self._queue: deque[Entry] = deque()
        self._checkpoints: dict[str, int] = {}   # run -> highest seq known applied
        self._single_until = 0   # after a refused batch: one entry per transaction up to this ordinal
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._opened = False
        self.written = 0
        self.rejected = 0
        self.skipped = 0  # journal entries of an earlier run that had landed already
        self._replay_last = 0   # ordinal of the last entry an earlier run left in the journal
        self.replayed = asyncio.Event()   # every such entry is in PostgreSQL (or set aside)
        self.hub = Hub()   # the same facts, for in-process listeners (webhooks, metrics)
        self._conn: Any = None        # the writer's connection, held between batches
        self._conn_pool: Any = None   # the pool it came from
        self._plain = False           # the connection refused the batch function: plain statements

    @property
    def pending(self) -> int:
        return len(self._queue)

    def open(self) -> int:
        """Queue what earlier runs journalled but did not apply (before anything new); how many."""
        if not self._opened:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            entries = self.journal.open()
            self._queue.extendleft(reversed(entries))
            self._replay_last = entries[-1].ordinal if entries else 0
            self._note_replayed()
            self._checkpoints[self.journal.run] = 0
            self._opened = True
            if self._queue:
                self._idle.clear()
                self._wakeup.set()
            return len(entries)
        return 0

    def submit(self, write: Write) -> Entry:
        if write.op not in OPERATIONS:
            raise ValueError(f"unknown write operation {write.op!r}")
        self.open()
        entry = self.journal.append(write.op, write.args)
        self._queue.append(entry)
        self._idle.clear()
        self._wakeup.set()
        return entry

    def close(self) -> int:
        """At shutdown: the journal keeps what is still queued; the next start applies it."""
        left = self.journal.close() if self._opened else 0
        if left:
            log.warning("db.left_in_journal", writes=left, dir=str(self.journal.dir))
        self._queue.clear()
        self._idle.set()
        return left

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def caught_up(self) -> None:
        """Until PostgreSQL is up and holds every write an earlier run journalled: what is read
        from it to rebuild state at start is then what happened, not what had landed by the kill."""
        self.open()
        await self.db.ready.wait()
        await self.replayed.wait()

    def _note_replayed(self) -> None:
        if not self.replayed.is_set() and (not self._queue or self._queue[0].ordinal > self._replay_last):
            self.replayed.set()
            if self._replay_last:
                log.info("db.journal_replayed", written=self.written, skipped=self.skipped, rejected=self.rejected)

    async def run(self) -> None:
        self.open()
        try:
            await self._run()
        finally:
            await self._drop_connection(self._conn_pool)

    async def _run(self) -> None:
        delay = 0.2
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.journal.sync_forever(), name="journal-sync")
            while True:
                if not self._queue:
                    self._idle.set()
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                await self.db.ready.wait()
                if len(self._queue) < BATCH:
                    # what else comes within this window joins the same transaction: under load a
                    # call's writes cost one round trip per batch, not four per write (begin, the
                    # write, the checkpoint, commit); they are on disk already (the journal)
                    await asyncio.sleep(COALESCE_SECONDS)
                pool = self.db.pool
                if pool is None:
                    continue
                try:
                    await self._apply(pool)
                except UNAVAILABLE as exc:
                    self.db._unavailable(exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                if self.db.last_error is not None:
                    log.info("db.available_again", pending=len(self._queue))
                    self.db.last_error = None
                delay = 0.2

    async def _apply(self, pool: asyncpg.Pool) -> None:
        """Apply the next batch in one transaction with its checkpoints; a batch PostgreSQL refuses
        is taken again one entry at a time, so only the bad entry is set aside."""
        await self._skip_landed(pool)
        if not self._queue:
            return
        single = self._plain or self._queue[0].ordinal <= self._single_until
        batch = [self._queue[i] for i in range(min(1 if single else BATCH, len(self._queue)))]
        try:
            conn = await self._connection(pool)
            if not single:   # the whole batch and its checkpoints: one statement (engine/store/batchsql.py)
                await conn.execute(f"SELECT {batchsql.FUNCTION}($1::jsonb)", json.dumps(
                    [[e.op, e.args] for e in batch]
                    + [[batchsql.CHECKPOINT_OP, list(c)] for c in _last_per_run(batch).items()]))
            else:
                async with conn.transaction():
                    await conn.execute(OPERATIONS[batch[0].op], *batch[0].args)
                    await conn.executemany(CHECKPOINT, list(_last_per_run(batch).items()))
        except UNAVAILABLE:
            await self._drop_connection(pool)
            raise
        except (asyncpg.PostgresError, asyncpg.DataError, TypeError, ValueError) as exc:
            if not single:   # which entry? each again alone, with its own statement
                self._single_until = batch[-1].ordinal
                return
            e = batch[0]
            log.error("db.write_rejected", op=e.op, args=e.args, error=f"{type(exc).__name__}: {exc}")
            self.journal.reject(json.dumps({"write": {"op": e.op, "args": list(e.args)}, "error": str(exc)}))
            await pool.execute(CHECKPOINT, e.run, e.seq)   # set aside for good: not replayed
            self.rejected += 1
        else:
            self.written += len(batch)
        for e in batch:
            self._checkpoints[e.run] = max(self._checkpoints.get(e.run, 0), e.seq)
            self._queue.popleft()
        self.journal.applied(batch[-1])
        self._note_replayed()

    async def _connection(self, pool: asyncpg.Pool) -> Any:
        """The writer's own connection, held from the pool between batches (no acquire, release
        and reset per batch); taken again after the database went away."""
        if self._conn is not None and (self._conn_pool is not pool or self._conn.is_closed()):
            await self._drop_connection(self._conn_pool)
        if self._conn is None:
            conn = await pool.acquire()
            try:
                await batchsql.install(conn, OPERATIONS, CHECKPOINT)
                self._plain = False
            except (asyncpg.PostgresError, ValueError) as exc:   # refused (no PL/pgSQL, no TEMP right): one at a time
                if not self._plain:
                    log.error("db.batch_function_refused", error=f"{type(exc).__name__}: {exc}")
                self._plain = True
            except BaseException:
                await pool.release(conn)
                raise
            self._conn, self._conn_pool = conn, pool
        return self._conn

    async def _drop_connection(self, pool: Any) -> None:
        conn, self._conn, self._conn_pool = self._conn, None, None
        if conn is not None and pool is not None:
            try:
                await pool.release(conn, timeout=1.0)
            except Exception:   # the connection or the pool is broken: the pool replaces it
                conn.terminate()

    async def _skip_landed(self, pool: asyncpg.Pool) -> None:
        """Drop queued entries of earlier runs that PostgreSQL already has (their run's checkpoint)."""
        while self._queue:
            e = self._queue[0]
            if e.run not in self._checkpoints:
                seq = await pool.fetchval("SELECT seq FROM write_journal_checkpoints WHERE run = $1", e.run)
                self._checkpoints[e.run] = seq or 0
            if e.run == "legacy" or e.seq > self._checkpoints[e.run]:
                return
            self._queue.popleft()
            self.skipped += 1
            self.journal.applied(e)
            self._note_replayed()


def _last_per_run(batch: list[Entry]) -> dict[str, int]:
    last: dict[str, int] = {}
    for e in batch:
        if e.run != "legacy":
            last[e.run] = max(last.get(e.run, 0), e.seq)
    return last
