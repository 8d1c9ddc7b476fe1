"""Do-not-call lists: the internal one (``global``), each campaign's (``campaign:<name>``), the national one.

All live in ``dnc_numbers`` (number, scope) as E.164. The gate (:mod:`engine.runtime.gate`) refuses a
number on any scope that applies to the campaign.

- :func:`import_file`: a list file, one number per line (extra columns and ``#`` comments are
  ignored; ``201,5550123`` area-code/number pairs as the US registry ships them are joined). The
  file streams through COPY into a temporary table, then one ``INSERT ... ON CONFLICT DO
  NOTHING``: millions of numbers in seconds, in one transaction. ``replace=True`` also removes the
  scope's numbers from the same source that the new file no longer holds (a full national
  download). Every import is recorded in ``dnc_imports``; the national list's last import date is
  what the gate checks against the 31-day limit.
- :func:`add`: one number now (``callcenter dnc add``).
- :func:`add_write`: the same as a :class:`~engine.store.db.Write` for the call path (an agent keyed the
  ``DNC`` disposition): it goes through the ordered write queue and survives a database outage.
  :class:`engine.runtime.gate.Gate.add_dnc` also refuses the number at once in this engine, before the
  write lands.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import phonenumbers

from engine.store import dnc as dnc_store

__all__ = ["DncImport", "add", "add_write", "check_scope", "import_file", "normalize", "scopes_of", "sync_campaigns"]

_SCOPE = re.compile(r"^(global|national|campaign:[a-z0-9][a-z0-9_-]{0,62})$")
_SIMPLE = re.compile(r"^[\d\s+().,\-]+$")
_NOT_DIGIT = re.compile(r"\D")
_NANP = frozenset(r for r in phonenumbers.SUPPORTED_REGIONS if phonenumbers.country_code_for_region(r) == 1)


def check_scope(scope: str) -> str:
    if not _SCOPE.match(scope):
        raise ValueError(f"a DNC scope is global, national or campaign:NAME; got {scope!r}")
    return scope


def normalize(text: str, region: str) -> str | None:
    """One list line to E.164, or None when it holds no number. Fast for the common shapes (plain
    digits, ``+`` numbers, US 10/11 digits); anything else goes through libphonenumber. A DNC entry
    needs only to be a *possible* number: a list may hold numbers our metadata calls unassigned."""
    t = text.strip()
    if not t or t.startswith("#"):
        return None
    if not _SIMPLE.match(t):
        t = re.split(r"[,;\t|]", t, maxsplit=1)[0].strip()
    if _SIMPLE.match(t):
        digits = _NOT_DIGIT.sub("", t)
        if t.startswith("+"):
            return "+" + digits if 7 <= len(digits) <= 15 and digits[0] != "0" else None
        if region in _NANP:
            if len(digits) == 10 and digits[0] in "23456789":
                return "+1" + digits
            if len(digits) == 11 and digits[0] == "1" and digits[1] in "23456789":
                return "+" + digits
    try:
        n = phonenumbers.parse(t, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(n):
        return None
    return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True, slots=True)
class DncImport:
    scope: str
    source: str
    lines: int          # numbers read
    rejected: int       # lines that held something that is not a number
    added: int          # new in the scope
    removed: int        # replace: gone from the list
    seconds: float

    def text(self) -> str:
        return (f"{self.scope}: {self.lines:,} numbers read, {self.added:,} added, {self.removed:,} removed, "
                f"{self.rejected:,} lines not a number ({self.seconds:.2f} s, "
                f"{self.lines / self.seconds if self.seconds else 0:,.0f} numbers/s)")


async def import_file(conn: Any, path: Path, scope: str, *, region: str = "US", source: str | None = None,
                      replace: bool = False, reason: str = "", now: float | None = None) -> DncImport:
    """Load a list file into ``scope`` in one transaction (see the module's notes)."""
    check_scope(scope)
    started = time.perf_counter()
    at = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    source = source or ("national" if scope == "national" else f"file:{path.name}")
    counts = {"lines": 0, "rejected": 0}

    async def numbers() -> AsyncIterator[tuple[str]]:
        with path.open(encoding="utf-8-sig", errors="replace") as f:
            for line in f:
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                n = normalize(line, region)
                if n is None:
                    counts["rejected"] += 1
                    continue
                counts["lines"] += 1
                yield (n,)

    async with conn.transaction():
        added, removed = await dnc_store.load_numbers(conn, numbers(), scope, source, at, reason, replace=replace)
        await dnc_store.record_import(conn, uuid.uuid4(), scope, source, str(path), at, counts["lines"], added,
                                      removed, counts["rejected"])
    return DncImport(scope, source, counts["lines"], counts["rejected"], added, removed, time.perf_counter() - started)


async def add(conn: Any, number: str, scope: str = "global", *, source: str = "cli", reason: str = "",
              now: float | None = None) -> bool:
    """Put one E.164 number on a list now; False if it was already there."""
    check_scope(scope)
    at = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    return await dnc_store.add_number(conn, number, scope, source, at, reason)


def add_write(number: str, *, scope: str = "global", source: str, reason: str = "", now: float) -> Any:
    """The write-queue form of :func:`add` (operation ``dnc_add`` in engine/store/db.py)."""
    from engine.store.db import Write

    return Write("dnc_add", (number, check_scope(scope), source, now, reason))


async def scopes_of(conn: Any, number: str) -> list[dict[str, Any]]:
    """Every list the number is on, with where and when it came from."""
    return [dict(r) for r in await dnc_store.scopes_of(conn, number)]


async def sync_campaigns(conn: Any, campaigns: Iterable[Any], *, now: float | None = None) -> list[DncImport]:
    """Load every campaign's ``dnc_lists`` files into ``campaign:<name>``, replacing what each file
    brought last time (numbers added by hand or by agents stay)."""
    done: list[DncImport] = []
    for c in campaigns:
        for path in c.dnc_lists:
            done.append(await import_file(conn, path, f"campaign:{c.name}", region=c.default_region,
                                          source=f"file:{path}", replace=True, now=now))
    return done
