"""Importing a lead file into a campaign, in ONE transaction (``callcenter import-leads``).

:mod:`engine.services.leads` reads and checks the whole file first (columns, numbers, time zones, the
merging of rows within the file, the reject report); this writes it with COPY: either every good
row is in, or (on any database failure) nothing is. Rows that meet a lead already stored (the same
external id, or a number already in the campaign) are merged into it: its values win, the row adds
the numbers and fields it lacked. The statements are :mod:`engine.store.leads`'.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import phonenumbers

from engine.services.leads import ImportFileError, LeadRow, Note, combine, lead_zone, parse_file, write_report
from engine.store import leads as lead_store
from engine.shared.textsafe import printable

if TYPE_CHECKING:
    from engine.config.campaign import CampaignConfig

__all__ = ["ImportReport", "Progress", "import_leads"]


@dataclass(frozen=True, slots=True)
class ImportReport:
    import_id: str
    campaign: str
    rows: int
    leads: int                    # new leads
    merged: int                   # rows merged into another lead (in the file or already in the database)
    rejected: int
    numbers_dropped: int
    rejects_file: Path | None
    seconds: float
    columns: str

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")

    def text(self) -> str:
        lines = [f"{self.rows} rows: {self.leads} new leads, {self.merged} merged into others, "
                 f"{self.rejected} rejected, {self.numbers_dropped} invalid numbers dropped "
                 f"({self.seconds:.2f} s, {self.rows_per_second:,.0f} rows/s)",
                 f"columns: {printable(self.columns)}"]   # the file's own header names
        if self.rejects_file is not None:
            lines.append(f"report: {self.rejects_file}")
        return "\n".join(lines)


class Progress:
    """A one-line progress bar on stderr, only when it is a terminal."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() and total > 0
        self.label, self.total, self._last = label, total, -1.0

    def __call__(self, done: int, phase: str = "reading") -> None:
        if not self.enabled:
            return
        share = min(done / self.total, 1.0)
        if share - self._last < 0.01 and share < 1.0:
            return
        self._last = share
        bar = "#" * int(share * 30)
        self.stream.write(f"\r{self.label} {phase:8} [{bar:<30}] {share:4.0%} {done:,}/{self.total:,}")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


async def import_leads(conn: Any, campaign: CampaignConfig, path: Path, *, region: str | None = None,
                       overrides: Mapping[str, Sequence[str]] | None = None, rejects: Path | None = None,
                       progress: bool = True, now: float | None = None) -> ImportReport:
    """Import ``path`` into ``campaign`` (a :class:`~engine.config.campaign.CampaignConfig`) over the
    asyncpg connection ``conn``, in one transaction. Raises :class:`ImportFileError` when the file
    cannot be read at all, and asyncpg's errors when the database fails (nothing is then imported)."""
    started = time.perf_counter()
    now = time.time() if now is None else now
    region = (region or campaign.default_region).upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ImportFileError(f"unknown region {region!r} (e.g. US, GB, DE)")
    bar = Progress(path.name, max(_count_lines(path) - 1, 0)) if progress else None
    parsed = parse_file(path, region, overrides, bar)
    import_id = str(uuid.uuid4())
    leads = parsed.leads
    notes = list(parsed.notes)
    fallback_zone = campaign.time_zone
    async with conn.transaction():
        # The database's leads this file meets again (same external id or number): merge into them.
        ext_ids = [r.external_id for r in leads if r.external_id is not None]
        numbers = [n.e164 for r in leads for n in r.numbers]
        by_ext = await lead_store.leads_by_external_id(conn, campaign.name, ext_ids)
        by_number = await lead_store.leads_by_number(conn, campaign.name, numbers)
        new: list[LeadRow] = []
        into_existing: dict[int, list[LeadRow]] = {}
        for r in leads:
            targets = {by_ext[r.external_id]} if r.external_id in by_ext else set()
            targets |= {by_number[n.e164] for n in r.numbers if n.e164 in by_number}
            if targets:
                into_existing.setdefault(min(targets), []).append(r)
            else:
                new.append(r)
        ids = await lead_store.new_lead_ids(conn, len(new))
        lead_records: list[tuple[Any, ...]] = []
        number_records: list[tuple[Any, ...]] = []
        created = datetime.fromtimestamp(now, timezone.utc)
        for lead_id, r in zip(ids, new):
            zone, source = lead_zone(r, fallback_zone)
            lead_records.append((
                lead_id, campaign.name, r.external_id, r.first_name, r.last_name,
                r.name or " ".join(x for x in (r.first_name, r.last_name) if x), json.dumps(r.fields), zone, source,
                bool(r.consent), r.consent_text, r.priority or 0, "new", created, uuid.UUID(import_id), r.row,
                created, created))
            for pos, n in enumerate(r.numbers):
                number_records.append((lead_id, pos, campaign.name, n.e164, n.kind, n.line_type, list(n.time_zones),
                                       n.raw))
        if bar is not None:
            bar(parsed.rows, "writing")
        if lead_records:
            await lead_store.copy_leads(conn, lead_records)
        merged_existing = await _merge_into_existing(conn, campaign.name, into_existing, by_number, number_records,
                                                     notes, created)
        if number_records:
            await lead_store.copy_lead_numbers(conn, number_records)
        notes.sort(key=lambda n: (n.row, n.outcome))
        rejected = sum(1 for n in notes if n.outcome == "rejected")
        dropped = sum(1 for n in notes if n.outcome == "number_dropped")
        report_path = (rejects or path.with_name(path.stem + ".rejects.csv")) if notes else None
        await lead_store.record_import(
            conn, uuid.UUID(import_id), campaign.name, str(path), created, parsed.rows, len(new),
            parsed.merged + merged_existing, rejected, dropped, None if report_path is None else str(report_path))
    if report_path is not None:
        write_report(report_path, notes)
    if bar is not None:
        bar(parsed.rows, "done")
        bar.done()
    return ImportReport(import_id, campaign.name, parsed.rows, len(new), parsed.merged + merged_existing, rejected,
                        dropped, report_path, time.perf_counter() - started, parsed.columns.describe())


async def _merge_into_existing(conn: Any, campaign: str, into: Mapping[int, list[LeadRow]],
                               by_number: Mapping[str, int], number_records: list[tuple[Any, ...]],
                               notes: list[Note], now: datetime) -> int:
    """Rows that meet a lead already in the database: add their numbers and missing fields to it
    (its values win). Returns how many rows were merged."""
    if not into:
        return 0
    positions = await lead_store.next_positions(conn, list(into))
    updates: list[tuple[Any, ...]] = []
    count = 0
    for lead_id, rows in into.items():
        base = rows[0]
        for other in rows[1:]:
            base, _ = combine(base, other)
        pos = positions.get(lead_id, 0)
        for n in base.numbers:
            owner = by_number.get(n.e164)
            if owner == lead_id:
                continue
            if owner is not None:
                notes.append(Note(base.row, "number_kept_elsewhere", n.kind, n.raw,
                                  f"{n.e164} already belongs to lead {owner}; left there"))
                continue
            number_records.append((lead_id, pos, campaign, n.e164, n.kind, n.line_type, list(n.time_zones), n.raw))
            pos += 1
        updates.append((lead_id, json.dumps(base.fields), base.external_id, base.first_name, base.last_name,
                        base.name, base.timezone, base.consent_text))
        for r in rows:
            count += 1
            notes.append(Note(r.row, "merged", "", "", f"merged into lead {lead_id}, already in the database"))
    await lead_store.merge_into_leads(conn, updates, now)
    return count
