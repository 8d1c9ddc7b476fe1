"""Recording retention and what is held on one phone number: purge, export, erase.

- ``purge_recordings``: recordings older than the retention (from when they ended) lose their file;
  the row stays with ``purged_at`` set. A file already gone is reported and the row marked all the
  same; a file that cannot be deleted (permissions) is reported and its row left as it was, so the
  next run tries again. Running it twice changes nothing the second time.
- ``find_number`` / ``export_number``: every row that holds the number, or a call of it: calls (as
  caller inbound, as callee outbound, or called back), their events, IVR path and variables, survey
  answers, queue stays, offers, dispositions, callbacks, recordings' metadata; the leads with that
  number (and their other numbers), dial attempts and gate decisions, DNC entries.
- ``erase_number``: in one transaction, deletes the leads (with their numbers), the call variables
  and the recordings' rows, and blanks the number wherever it is kept (calls, callbacks, attempts,
  decisions, event details, IVR input), so counts and reports of past periods stay right while
  nothing leads back to the person; then deletes the recording files. The number stays on the
  do-not-call lists it is on: erasing it there would let a campaign call it again.

Numbers are matched by their digits in every form they are stored in: E.164 (leads, DNC, attempts,
normalised like :func:`engine.services.dnc.normalize`), and as Asterisk gave them for calls (``+1212...``,
``1212...``, ``212...``, national ``0...``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import phonenumbers

from engine.services.dnc import normalize
from engine.store import gdpr as gdpr_store

__all__ = ["NumberForms", "PurgeReport", "erase_number", "export_number", "find_number", "number_forms",
           "purge_recordings", "write_json"]

# -- retention ----------------------------------------------------------------------------------------

@dataclass(slots=True)
class PurgeReport:
    dry_run: bool
    deleted: list[str] = field(default_factory=list)      # files deleted (or that would be)
    missing: list[str] = field(default_factory=list)      # files already gone: rows marked all the same
    failed: list[tuple[str, str]] = field(default_factory=list)   # (file, why): rows left unmarked
    freed_bytes: int = 0

    def text(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        lines = [f"{verb} {len(self.deleted)} recording file(s), {self.freed_bytes / 1e6:.1f} MB"]
        lines += [f"missing (row {'would be ' if self.dry_run else ''}marked purged): {f}" for f in self.missing]
        lines += [f"could not delete (row left as it was): {f}: {why}" for f, why in self.failed]
        return "\n".join(lines)


def _file(row: Any, directory: Path | None) -> Path | None:
    if row["path"]:
        return Path(row["path"])
    return directory / f"{row['name']}.{row['format']}" if directory else None


async def purge_recordings(conn: Any, older_than: timedelta, *, directory: Path | None, dry_run: bool = False,
                           now: datetime | None = None) -> PurgeReport:
    now = now or datetime.now(timezone.utc)
    rows = await gdpr_store.expired_recordings(conn, now - older_than)
    report = PurgeReport(dry_run)
    done = []
    for r in rows:
        file = _file(r, directory)
        if file is None:
            report.failed.append((r["name"], "no path stored and recording.dir is not set"))
            continue
        try:
            size = file.stat().st_size
            if not dry_run:
                file.unlink()
        except FileNotFoundError:
            report.missing.append(str(file))
        except OSError as exc:
            report.failed.append((str(file), exc.strerror or str(exc)))
            continue
        else:
            report.deleted.append(str(file))
            report.freed_bytes += size
        done.append(r["id"])
    if done and not dry_run:
        await gdpr_store.mark_purged(conn, done, now)
    return report


# -- one number ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class NumberForms:
    given: str
    e164: str | None
    digits: tuple[str, ...]      # every digit string the number may be stored as


def number_forms(text: str, region: str = "US") -> NumberForms:
    e164 = normalize(text, region.upper())
    digits = {re.sub(r"\D", "", text)} - {""}
    if e164 is not None:
        digits.add(e164[1:])
        try:
            n = phonenumbers.parse(e164)
        except phonenumbers.NumberParseException:  # pragma: no cover - normalize gave a parseable number
            n = None
        if n is not None:
            national = phonenumbers.national_significant_number(n)
            digits.add(national)
            if n.country_code != 1:
                digits.add("0" + national)    # with the trunk prefix, as a national caller id shows it
    if not digits:
        raise ValueError(f"{text!r} is not a phone number")
    return NumberForms(text, e164, tuple(sorted(digits, key=lambda d: (-len(d), d))))


async def find_number(conn: Any, forms: NumberForms) -> tuple[list[Any], list[int], list[str]]:
    """(call ids, lead ids, every number of the person in E.164) held on the number."""
    calls, leads, numbers = await gdpr_store.number_holders(conn, forms.digits)
    return calls, leads, sorted({*numbers, *([forms.e164] if forms.e164 else [])})


async def export_number(conn: Any, forms: NumberForms, now: datetime | None = None) -> dict[str, Any]:
    """Everything held on the number, table by table (JSON-ready)."""
    calls, leads, numbers = await find_number(conn, forms)
    out: dict[str, Any] = {"number": forms.given, "e164": forms.e164, "matched_digits": list(forms.digits),
                           "numbers_of_the_same_leads": numbers,
                           "exported_at": (now or datetime.now(timezone.utc)).isoformat()}
    for table, rows in (await gdpr_store.export_rows(conn, forms.digits, calls, leads)).items():
        out[table] = [_row(r) for r in rows]
    return out


def _row(record: Any) -> dict[str, Any]:
    row = {}
    for k, v in dict(record).items():
        if isinstance(v, datetime):
            v = v.isoformat()
        elif k in ("fields", "rules", "requirement", "candidates") and isinstance(v, str):
            v = json.loads(v)
        elif v is not None and not isinstance(v, (str, int, float, bool, list)):
            v = str(v)
        row[k] = v
    return row


async def erase_number(conn: Any, forms: NumberForms, *, directory: Path | None) -> dict[str, Any]:
    """Erase what is held on the number in one transaction, then delete its recording files.
    Returns what was done: rows touched per table, files deleted, files that could not be."""
    async with conn.transaction():
        calls, leads, numbers = await find_number(conn, forms)
        person = sorted({*forms.digits, *(n.lstrip("+") for n in numbers)}, key=len, reverse=True)
        texts = sorted({*person, *numbers}, key=len, reverse=True)   # longest first: +1212... before 212...
        done, recordings = await gdpr_store.erase_rows(conn, calls, leads, person, lambda text: _blank(text, texts))
    files, failed = [], []
    for r in recordings:
        file = _file(r, directory)
        if file is None or r["purged_at"] is not None:
            continue
        try:
            file.unlink()
            files.append(str(file))
        except FileNotFoundError:
            pass
        except OSError as exc:
            failed.append(f"{file}: {exc.strerror or exc}")
    done["files_deleted"], done["files_failed"] = files, failed
    return done


def _blank(text: str, numbers: list[str]) -> str:
    for n in numbers:
        text = text.replace(n, "[erased]")
    return text


def write_json(data: dict[str, Any], out: str | None) -> None:
    text = json.dumps(data, indent=1, default=str)
    if out is None:
        print(text)
        return
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)   # personal data: owner only
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
