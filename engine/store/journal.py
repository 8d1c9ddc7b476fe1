"""The write journal: every database write is on local disk before the engine goes on.

Theory of operation
-------------------
The call path never waits for PostgreSQL (:mod:`engine.store.db`), so what happened lives, for a
moment, only in the engine. That moment must survive the engine's death. Each write handed to the
queue is first appended to a journal file in ``<state_dir>/journal/`` with one ``write(2)``: from
then on a SIGKILL loses nothing (the bytes are in the kernel), and a background thread ``fdatasync``\\ s
the file within 10 ms (:data:`SYNC_WINDOW_SECONDS`, one sync for all written in that window), so that
a power cut loses at most those milliseconds. What the HTTP
API acknowledges as a record (a do-not-call entry) it writes to PostgreSQL directly and waits for.

Identity and exactly-once. Each entry carries ``(run, seq)``: the engine run that made it and
its number in that run. The writer applies entries to PostgreSQL in order and, in the same
transaction, records the highest ``seq`` applied for each run (``write_journal_checkpoints``).
At start-up the journal of earlier runs is read back and queued before anything new; entries at
or below their run's checkpoint are skipped, so an entry that landed just before a crash is not
applied a second time. (Every operation is idempotent as well: a second line of defence.)

Space. The journal is a list of segment files named so that they sort in the order written.
A segment is deleted once every entry in it is applied; the current one is emptied whenever
everything is applied, or rotated past :data:`SEGMENT_BYTES`. The total is bounded by
``database.journal_max_mb``: past it :attr:`Journal.full` is true, ``/healthz`` fails and the engine
takes no new calls (the calls in progress keep being recorded) until PostgreSQL is back and the
journal drains. Files are created 0600: they hold callers' numbers.

A line that cannot be read back (a torn last line after a power cut, or a corrupt file) is copied
to ``rejected.jsonl`` for an operator and skipped, never silently dropped.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.shared.logsetup import get_logger

__all__ = ["Entry", "Journal", "SEGMENT_BYTES"]

log = get_logger("journal")

SEGMENT_BYTES = 4 * 1024 * 1024   # rotate the current segment past this
SYNC_WINDOW_SECONDS = 0.01        # what is appended is fdatasync'd within this (a power cut loses at most this)
LEGACY_SPOOL = "spool.jsonl"      # what engines before the journal left at shutdown


@dataclass(frozen=True, slots=True)
class Entry:
    """One journalled write: ``ordinal`` orders it in this process, ``(run, seq)`` names it for good."""

    ordinal: int
    run: str
    seq: int
    op: str
    args: tuple[Any, ...]


@dataclass(slots=True)
class _Segment:
    path: Path
    last: int          # ordinal of its last entry (0: none yet)
    size: int
    fd: int | None = None


def _open_private(path: Path, flags: int) -> int:
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)  # an existing file made by an older engine
    return fd


class Journal:
    def __init__(self, directory: Path, *, max_bytes: int, rejected: Path,
                 known_op: Callable[[str], bool] = lambda op: True) -> None:
        self.dir = directory
        self.max_bytes = max_bytes
        self.rejected_path = rejected
        self.known_op = known_op
        self.run = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        self._seq = 0
        self._ordinal = 0
        self._applied = 0       # every entry up to this ordinal is in PostgreSQL (or rejected)
        self._segments: deque[_Segment] = deque()   # closed ones, oldest first
        self._current: _Segment | None = None
        self._retired: list[int] = []  # fds of rotated segments the syncer still has to sync and close
        self._dirty = threading.Event()   # appended since the last sync
        self._lock = threading.Lock()      # the fds the syncer takes against a rotation
        self._syncer: threading.Thread | None = None
        self._stopping = False
        self.error: str | None = None  # the last write error (disk full...), None when writing works
        self.recovered = 0

    # -- start ------------------------------------------------------------------------------------
    def open(self) -> list[Entry]:
        """Read what earlier runs left (oldest first) and start this run's segment."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)
        entries: list[Entry] = []
        legacy = self.dir.parent / LEGACY_SPOOL
        files = ([legacy] if legacy.exists() else []) + sorted(self.dir.glob("*.jsonl"))
        for file in files:
            before = len(entries)
            self._read(file, entries, legacy=file == legacy)
            self._segments.append(_Segment(file, last=self._ordinal, size=file.stat().st_size))
            if len(entries) == before:  # nothing to replay in it
                self._segments.pop()
                file.unlink()
        self.recovered = len(entries)
        self._new_segment()
        if entries:
            log.info("journal.recovered", writes=len(entries), files=len(self._segments))
        return entries

    def _read(self, file: Path, into: list[Entry], *, legacy: bool) -> None:
        lines = file.read_bytes().split(b"\n")
        for n, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
                op, args = data["op"], data["args"]
                if not isinstance(op, str) or not self.known_op(op) or not isinstance(args, list):
                    raise ValueError("not a journalled write")
                run, seq = ("legacy", 0) if legacy else (str(data["run"]), int(data["seq"]))
            except (ValueError, KeyError, TypeError) as exc:
                torn = n == len(lines) and not raw.endswith(b"}")
                log.error("journal.bad_line", file=str(file), line=n, torn=torn, error=str(exc)[:200])
                self.reject(raw.decode("utf-8", "replace"))
                continue
            self._ordinal += 1
            into.append(Entry(self._ordinal, run, seq, op, tuple(args)))

    def reject(self, line: str) -> None:
        """Keep a line that cannot be applied for an operator (``rejected.jsonl``, 0600)."""
        fd = _open_private(self.rejected_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, (line.rstrip("\n") + "\n").encode())
        finally:
            os.close(fd)

    def _new_segment(self) -> None:
        path = self.dir / f"{time.time_ns():020d}-{self.run[-8:]}.jsonl"
        fd = _open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        self._current = _Segment(path, last=self._ordinal, size=0, fd=fd)

    # -- append -----------------------------------------------------------------------------------
    def append(self, op: str, args: tuple[Any, ...]) -> Entry:
        """Journal one write (one ``write(2)``); the entry to queue. Never raises for a disk error:
        the entry is then kept in memory only, and :attr:`error` says so."""
        assert self._current is not None and self._current.fd is not None, "Journal.open() first"
        self._seq += 1
        self._ordinal += 1
        entry = Entry(self._ordinal, self.run, self._seq, op, args)
        line = json.dumps({"run": self.run, "seq": self._seq, "op": op, "args": list(args)},
                          separators=(",", ":")).encode() + b"\n"
        try:
            written = os.write(self._current.fd, line)
            if written != len(line):
                raise OSError(f"short write ({written} of {len(line)} bytes)")
        except OSError as exc:
            if self.error is None:
                log.error("journal.write_failed", error=str(exc), file=str(self._current.path))
            self.error = str(exc)
        else:
            self.error = None
            self._current.size += len(line)
        self._current.last = self._ordinal
        if not self._dirty.is_set():
            self._dirty.set()
        return entry

    # -- applied ----------------------------------------------------------------------------------
    def applied(self, entry: Entry) -> None:
        """``entry`` (and all before it) is in PostgreSQL or was rejected: reclaim space."""
        self._applied = max(self._applied, entry.ordinal)
        while self._segments and self._segments[0].last <= self._applied:
            done = self._segments.popleft()
            done.path.unlink(missing_ok=True)
        cur = self._current
        if cur is None or cur.fd is None:
            return
        if cur.last <= self._applied and cur.size > 0:
            os.ftruncate(cur.fd, 0)
            cur.size = 0
        elif cur.size > SEGMENT_BYTES:
            with self._lock:
                self._retired.append(cur.fd)
                cur.fd = None
                self._segments.append(cur)
                self._new_segment()
            self._dirty.set()

    # -- durability -------------------------------------------------------------------------------
    async def sync_forever(self) -> None:
        """fdatasync whatever was appended, within :data:`SYNC_WINDOW_SECONDS` of it (one sync for
        all that came in the window: under load a sync per window, not per write). The syncs run
        on a thread of their own that the event loop only signals, so a sync costs the loop no
        hand-off and no wake-up. Cancel to stop."""
        if self._syncer is None:
            self._stopping = False
            self._syncer = threading.Thread(target=self._sync_loop, name="journal-sync", daemon=True)
            self._syncer.start()
        try:
            await asyncio.get_running_loop().create_future()   # until cancelled
        finally:
            self._stop_syncer()

    def _sync_loop(self) -> None:
        while not self._stopping:   # (a stop in the window still gets its sync, then ends the loop)
            self._dirty.wait()
            if self._stopping:
                return
            time.sleep(SYNC_WINDOW_SECONDS)   # the window: what else is appended in it rides along
            self._dirty.clear()
            with self._lock:
                fds = self._open_fds()
                retired, self._retired = self._retired, []
            try:
                _sync_all(fds)
            except OSError as exc:
                log.error("journal.sync_failed", error=str(exc))
                self.error = str(exc)
            finally:
                for fd in retired:
                    os.close(fd)

    def _open_fds(self) -> list[int]:
        """What a sync must cover: the rotated segments not yet closed, and the current one."""
        current = self._current.fd if self._current is not None else None
        return [*self._retired, *([current] if current is not None else [])]

    def _stop_syncer(self) -> None:
        syncer, self._syncer = self._syncer, None
        if syncer is not None:
            self._stopping = True
            self._dirty.set()
            syncer.join(timeout=5.0)   # at most a window and one sync

    def close(self) -> int:
        """At shutdown: sync and close; returns how many entries are still to apply (they stay)."""
        self._stop_syncer()
        fds = self._open_fds()
        _sync_all(fds)
        for fd in fds:
            os.close(fd)
        self._retired = []
        left = self._ordinal - self._applied
        if self._current is not None:
            self._current.fd = None
            if self._current.last <= self._applied:
                self._current.path.unlink(missing_ok=True)
        return left

    # -- figures ----------------------------------------------------------------------------------
    @property
    def bytes(self) -> int:
        return sum(s.size for s in self._segments) + (self._current.size if self._current else 0)

    @property
    def full(self) -> bool:
        return self.bytes >= self.max_bytes


def _sync_all(fds: list[int]) -> None:
    for fd in fds:
        os.fdatasync(fd)
