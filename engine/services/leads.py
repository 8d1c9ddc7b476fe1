"""Reading leads from CSV: columns, phone numbers, time zones, duplicates, the reject report.

Theory of operation
-------------------
``callcenter import-leads CAMPAIGN FILE.csv --config PATH`` reads the whole file first (pure
functions, here: :func:`detect_columns`, :func:`parse_row`, :func:`normalize_number`,
:func:`merge`), then writes it in ONE transaction with COPY (:mod:`engine.services.leadimport`): either
every good row is in, or (on any database failure) nothing is. A broken row is not a failure: it
goes to the reject report with its row number and reason, and the rest is imported.

- **Columns** are found by their header (case, spaces and dashes do not matter), or named with
  ``--column ROLE=HEADER[,HEADER...]``: phone columns (``phone``, ``phone2``, ``mobile``, ``cell``,
  ``home_phone``, ``telephone``... in header order: the order numbers are tried), ``first_name``,
  ``last_name``, ``name``, ``timezone``, ``consent``, ``consent_text``, ``external_id``,
  ``priority``. Every other column is kept in ``leads.fields`` (jsonb).
- **Numbers** are normalised with Google's libphonenumber (``phonenumbers``) to E.164, numbers
  without a country code read in the campaign's ``default_region`` (or ``--region``). An invalid
  number is dropped (and reported); a row left with no valid number is rejected.
- **Time zone**: the ``timezone`` column (an IANA name) when given; else the first number's, from
  its country and area code (``phonenumbers.timezone``). A number that may be in several zones
  records them all in ``lead_numbers.time_zones`` (the gate then calls only when every one is in
  its window); the lead's own ``timezone`` is then the easternmost of them (the largest UTC offset
  on 1 January, ties by name): where the evening window closes first. Neither: the campaign's
  ``time_zone``.
- **Consent**: yes/y/true/1/x/opt-in give consent to automated calls; no/n/false/0/empty do not;
  anything else rejects the row (a consent nobody can read is no consent to rely on).
- **Duplicates** (the same external id, or a number already seen in this campaign, in the file or
  in the database) are merged into the earliest lead: its values win, the later row adds the
  numbers and fields it lacked. Each merge is listed in the report.
- **Row numbers** count the header as row 1, as a spreadsheet shows them.
- **Line breaks inside a field** (a quoted address over two lines) are CSV; an **unclosed quote**
  looks the same to a CSV reader, which then swallows every line up to the next quote, valid rows
  included (:mod:`engine.shared.csvlines` tells them apart): the record and every line it swallowed are
  rejected, each listed in the report with its line number and text, and nothing of that region
  is imported (the operator closes the quote and imports the file again: the rows already in are
  merged, not doubled). The rest of the file imports as usual.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers import timezone as pn_timezone

from engine.shared.csvlines import CsvLinesError, Record, bad_utf8_line, records
from engine.shared.textsafe import printable

__all__ = [
    "ColumnMap", "LeadRow", "Normalized", "Note", "ROLES", "ImportFileError", "detect_columns", "lead_zone", "merge",
    "normalize_number", "parse_file", "parse_row", "pick_timezone", "write_report",
]

ROLES = ("phone", "first_name", "last_name", "name", "timezone", "consent", "consent_text", "external_id", "priority")

_PHONE = re.compile(r"^((home|work|office|alt|alternate|other|main|primary|second|secondary|business|direct)_)?"
                    r"(phone|mobile|cell|cellphone|cell_phone|mobile_phone|tel|telephone|landline|phone_number|"
                    r"mobile_number|number)(_?\d+)?$")
_ALIASES: dict[str, frozenset[str]] = {
    "first_name": frozenset({"first_name", "firstname", "first", "given_name", "forename"}),
    "last_name": frozenset({"last_name", "lastname", "last", "surname", "family_name"}),
    "name": frozenset({"name", "full_name", "fullname", "contact_name", "contact"}),
    "timezone": frozenset({"timezone", "time_zone", "tz"}),
    "consent": frozenset({"consent", "autodial_consent", "consent_autodial", "tcpa_consent", "autodial", "opt_in"}),
    "consent_text": frozenset({"consent_text", "consent_source", "consent_date", "consent_evidence"}),
    "external_id": frozenset({"external_id", "externalid", "ext_id", "lead_id", "customer_id", "crm_id",
                              "account_id", "id"}),
    "priority": frozenset({"priority"}),
}
_YES = frozenset({"yes", "y", "true", "t", "1", "x", "opt-in", "opt_in", "optin", "opted-in", "granted"})
_NO = frozenset({"", "no", "n", "false", "f", "0", "opt-out", "opt_out", "optout", "none", "denied", "revoked"})
_LINE_TYPES = {
    PhoneNumberType.FIXED_LINE: "fixed_line", PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile", PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate", PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip", PhoneNumberType.PERSONAL_NUMBER: "personal", PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan", PhoneNumberType.VOICEMAIL: "voicemail",
}


class ImportFileError(Exception):
    """The file cannot be imported at all (no header, a column named twice, an unknown column)."""


def _norm(header: str) -> str:
    return re.sub(r"[\s.\-/]+", "_", header.strip().lower()).strip("_")


# -- columns -----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Which header (by index) plays which role; the rest are custom fields."""

    header: tuple[str, ...]
    phones: tuple[int, ...]
    roles: Mapping[str, int]              # role -> column index (one column each)
    fields: tuple[int, ...]

    def describe(self) -> str:
        parts = [f"phones: {', '.join(self.header[i] for i in self.phones)}"]
        parts += [f"{role}: {self.header[i]}" for role, i in self.roles.items()]
        if self.fields:
            parts.append(f"custom fields: {', '.join(self.header[i] for i in self.fields)}")
        return "; ".join(parts)


def detect_columns(header: Sequence[str], overrides: Mapping[str, Sequence[str]] | None = None) -> ColumnMap:
    """Roles by header name; ``overrides`` (role -> headers) take precedence and switch off the
    guess for that role."""
    header = tuple(h.strip() for h in header)
    if not any(header):
        raise ImportFileError("the file has no header row")
    seen: dict[str, int] = {}
    for i, h in enumerate(header):
        if not h:
            raise ImportFileError(f"column {i + 1} has no name in the header")
        if _norm(h) in seen:
            raise ImportFileError(f"column {h!r} appears twice in the header (columns {seen[_norm(h)] + 1} and {i + 1})")
        seen[_norm(h)] = i
    overrides = dict(overrides or {})
    for role in overrides:
        if role not in ROLES:
            raise ImportFileError(f"unknown column role {role!r}; the roles are: {', '.join(ROLES)}")

    def lookup(name: str) -> int:
        i = seen.get(_norm(name))
        if i is None:
            raise ImportFileError(f"no column {name!r} in the header ({', '.join(header)})")
        return i

    used: set[int] = set()
    if "phone" in overrides:
        phones = tuple(lookup(n) for n in overrides["phone"])
    else:
        phones = tuple(i for i, h in enumerate(header) if _PHONE.match(_norm(h)))
    used |= set(phones)
    roles: dict[str, int] = {}
    for role in ROLES[1:]:
        if role in overrides:
            names = list(overrides[role])
            if len(names) != 1:
                raise ImportFileError(f"--column {role}= takes one column, got {', '.join(names)}")
            roles[role] = lookup(names[0])
        else:
            for i, h in enumerate(header):
                if i not in used and i not in roles.values() and _norm(h) in _ALIASES[role]:
                    roles[role] = i
                    break
        if role in roles:
            used.add(roles[role])
    if not phones:
        raise ImportFileError(f"no phone column found in the header ({', '.join(header)}); name one with "
                              "--column phone=HEADER")
    return ColumnMap(header, phones, roles, tuple(i for i in range(len(header)) if i not in used))


# -- numbers -----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Normalized:
    e164: str
    line_type: str
    time_zones: tuple[str, ...]


def normalize_number(raw: str, region: str) -> Normalized | str:
    """E.164 and what is known of the number, or the reason it is not a valid number."""
    text = raw.strip()
    if not text:
        return "empty"
    try:
        n = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        return f"not a phone number ({_parse_error(exc)})"
    # number_type() is UNKNOWN exactly when is_valid_number() is False (both match the region's
    # patterns): one pattern scan instead of three, the cost of an import.
    kind = phonenumbers.number_type(n)
    if kind == PhoneNumberType.UNKNOWN:
        where = phonenumbers.region_code_for_number(n) or f"+{n.country_code}"
        return f"not a valid number in {where}" if phonenumbers.is_possible_number(n) else \
            f"not a possible number in {where} (wrong length)"
    if phonenumbers.is_number_type_geographical(kind, n.country_code):
        zones = pn_timezone.time_zones_for_geographical_number(n)
    else:
        zones = pn_timezone.time_zones_for_number(n)    # country-level zones (mobiles in some countries)
    return Normalized(phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164),
                      _LINE_TYPES.get(kind, "unknown"), tuple(sorted(z for z in zones if z != "Etc/Unknown")))


def _parse_error(exc: phonenumbers.NumberParseException) -> str:
    return {0: "unknown country code", 1: "no digits", 2: "too short", 3: "too short", 4: "too long"}.get(
        exc.error_type, str(exc))


@lru_cache(maxsize=1024)
def _january_offset(zone: str) -> float:
    return datetime(2000, 1, 1, 12, tzinfo=timezone.utc).astimezone(ZoneInfo(zone)).utcoffset().total_seconds()  # type: ignore[union-attr]


def pick_timezone(zones: Iterable[str]) -> str | None:
    """One zone for a number that may be in several: the easternmost (largest UTC offset on
    1 January), ties by name. Deterministic whatever order the zones come in."""
    zones = sorted(set(zones))
    if not zones:
        return None
    return min(zones, key=lambda z: (-_january_offset(z), z))


@lru_cache(maxsize=1024)
def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


# -- rows --------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Number:
    e164: str
    kind: str
    line_type: str
    time_zones: tuple[str, ...]
    raw: str


@dataclass(frozen=True, slots=True)
class LeadRow:
    row: int
    numbers: tuple[Number, ...]
    external_id: str | None = None
    first_name: str = ""
    last_name: str = ""
    name: str = ""
    timezone: str | None = None          # from the column only; derived later
    consent: bool | None = None          # None: the file said nothing
    consent_text: str = ""
    priority: int | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    merged_rows: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Note:
    """A line of the reject report."""

    row: int
    outcome: str           # rejected | number_dropped | merged | number_kept_elsewhere
    column: str
    value: str
    reason: str


def parse_row(row_no: int, cells: Sequence[str], cols: ColumnMap, region: str) -> tuple[LeadRow | None, list[Note]]:
    """One CSV record into a lead, or ``None`` and the reason it was rejected."""
    notes: list[Note] = []
    if len(cells) != len(cols.header):
        return None, [Note(row_no, "rejected", "", "", f"has {len(cells)} fields, the header has {len(cols.header)}")]
    cells = [c.strip() for c in cells]

    def get(role: str) -> str:
        i = cols.roles.get(role)
        return cells[i] if i is not None else ""

    def reject(role: str, reason: str) -> tuple[None, list[Note]]:
        i = cols.roles[role]
        return None, [Note(row_no, "rejected", cols.header[i], cells[i], reason)]

    consent: bool | None = None
    text = get("consent").lower()
    if "consent" in cols.roles and text:
        if text in _YES:
            consent = True
        elif text in _NO:
            consent = False
        else:
            return reject("consent", "consent must read yes or no (yes, y, true, 1, x, opt-in / no, n, false, 0)")
    zone = get("timezone") or None
    if zone is not None and not _valid_zone(zone):
        return reject("timezone", "not an IANA time zone (e.g. America/New_York)")
    priority: int | None = None
    if get("priority"):
        try:
            priority = int(get("priority"))
        except ValueError:
            return reject("priority", "priority must be a whole number")
        if not -1000 <= priority <= 1000:
            return reject("priority", "priority must be between -1000 and 1000")
    numbers: list[Number] = []
    for i in cols.phones:
        raw = cells[i]
        if not raw:
            continue
        n = normalize_number(raw, region)
        if isinstance(n, str):
            notes.append(Note(row_no, "number_dropped", cols.header[i], raw, n))
            continue
        if any(x.e164 == n.e164 for x in numbers):
            continue
        numbers.append(Number(n.e164, _norm(cols.header[i]), n.line_type, n.time_zones, raw))
    if not numbers:
        reason = "no valid phone number" if notes else "no phone number"
        return None, [*notes, Note(row_no, "rejected", "", "", reason)]
    fields = {cols.header[i]: cells[i] for i in cols.fields if cells[i]}
    return LeadRow(row_no, tuple(numbers), get("external_id") or None, get("first_name"), get("last_name"),
                   get("name"), zone, consent, get("consent_text"), priority, fields), notes


def merge(rows: Sequence[LeadRow]) -> tuple[list[LeadRow], list[Note]]:
    """Rows sharing an external id or a number become one lead: the earliest row's values win,
    later rows add the numbers and fields it lacks."""
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, r in enumerate(rows):
        keys = [f"n:{n.e164}" for n in r.numbers]
        if r.external_id is not None:
            keys.append(f"x:{r.external_id}")
        for k in keys:
            j = owner.setdefault(k, i)
            if j != i:
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(len(rows)):
        groups.setdefault(find(i), []).append(i)
    merged: list[LeadRow] = []
    notes: list[Note] = []
    for members in groups.values():
        base = rows[members[0]]
        for j in members[1:]:
            other = rows[j]
            base, lost = combine(base, other)
            why = "same external id" if other.external_id is not None and other.external_id == base.external_id \
                else "same phone number"
            notes.append(Note(other.row, "merged", "", "", f"merged into the lead of row {base.row} ({why})" + lost))
        merged.append(base)
    merged.sort(key=lambda r: r.row)
    return merged, notes


def combine(base: LeadRow, other: LeadRow) -> tuple[LeadRow, str]:
    """``base`` with what ``other`` adds (base wins); and a note of what was dropped."""
    numbers = list(base.numbers)
    for n in other.numbers:
        if all(x.e164 != n.e164 for x in numbers):
            numbers.append(n)
    fields = dict(other.fields)
    fields.update(base.fields)
    lost = ""
    if other.external_id is not None and base.external_id is not None and other.external_id != base.external_id:
        lost = f"; its external id {other.external_id!r} is not kept"
    return replace(
        base, numbers=tuple(numbers), fields=fields,
        external_id=base.external_id if base.external_id is not None else other.external_id,
        first_name=base.first_name or other.first_name, last_name=base.last_name or other.last_name,
        name=base.name or other.name, timezone=base.timezone or other.timezone,
        consent=base.consent if base.consent is not None else other.consent,
        consent_text=base.consent_text or other.consent_text,
        priority=base.priority if base.priority is not None else other.priority,
        merged_rows=(*base.merged_rows, other.row, *other.merged_rows)), lost


# -- the file ----------------------------------------------------------------------------------------

@dataclass
class Parsed:
    columns: ColumnMap
    rows: int                       # data records read
    leads: list[LeadRow]            # after merging within the file
    notes: list[Note]
    merged: int                     # rows merged into an earlier row of the file


def _swallow_notes(row_no: int, rec: Record, cols: ColumnMap) -> list[Note]:
    """An unclosed quote: the record and each line it took in, rejected, with its line and text."""
    first, last = rec.first_line, rec.last_line
    i = next((i for i, c in enumerate(rec.cells) if "\n" in c or "\r" in c), None)
    column = cols.header[i] if i is not None and i < len(cols.header) else ""
    notes = [Note(row_no, "rejected", column, rec.lines[0].rstrip("\r\n"),
                  f"unclosed quote? line {first} opens a quoted field that runs to line {last}, taking in "
                  f"{len(rec.lines) - 1} more lines (each listed here); none of lines {first}-{last} is imported: "
                  "close the quote and import the file again")]
    notes += [Note(row_no, "rejected", "", line.rstrip("\r\n"),
                   f"line {first + k}: inside the quoted field opened on line {first}; not imported")
              for k, line in enumerate(rec.lines[1:], start=1)]
    return notes


def parse_file(path: Path, region: str, overrides: Mapping[str, Sequence[str]] | None = None,
               progress: Callable[[int], None] | None = None) -> Parsed:
    """Read and check the whole file (no database): leads merged within the file, and the notes."""
    try:
        f = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc}") from None
    with f:
        try:
            rows = records(f)
            header = next(rows, None)
            if header is None:
                raise ImportFileError(f"{path} is empty")
            cols = detect_columns(header.cells, overrides)
            good: list[LeadRow] = []
            notes: list[Note] = []
            count = 0
            for row_no, rec in enumerate(rows, start=2):
                cells = rec.cells
                if not cells or (len(cells) == 1 and not cells[0].strip()):
                    continue
                if rec.swallowed:
                    count += len(rec.lines)   # each line it took in would have been a row
                    notes += _swallow_notes(row_no, rec, cols)
                    continue
                count += 1
                lead, row_notes = parse_row(row_no, cells, cols, region)
                notes += row_notes
                if lead is not None:
                    good.append(lead)
                if progress is not None and count % 1000 == 0:
                    progress(count)
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"{path} is not UTF-8 text (line {bad_utf8_line(path)}): {exc}") from None
        except CsvLinesError as exc:
            raise ImportFileError(f"{path}: not readable as CSV at {exc}") from None
    leads, merge_notes = merge(good)
    return Parsed(cols, count, leads, sorted(notes + merge_notes, key=lambda n: (n.row, n.outcome)),
                  len(good) - len(leads))


def lead_zone(r: LeadRow, fallback: str | None) -> tuple[str | None, str | None]:
    """The lead's time zone and where it came from: its ``timezone`` column, else its first
    number's, else ``fallback`` (the campaign's); (None, None) when none says."""
    if r.timezone is not None:
        return r.timezone, "column"
    zone = pick_timezone(r.numbers[0].time_zones)
    if zone is not None:
        return zone, "number"
    return (fallback, "campaign") if fallback else (None, None)


# -- the reject report -------------------------------------------------------------------------------

def write_report(path: Path, notes: Sequence[Note]) -> None:
    """The reject report: one CSV line per rejected row, dropped number or merge."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["row", "outcome", "column", "value", "reason"])
    for n in notes:   # values as the file had them, but nothing that acts on a terminal
        w.writerow([n.row, n.outcome, printable(n.column), printable(n.value), printable(n.reason)])
    path.write_text(buf.getvalue(), encoding="utf-8")
