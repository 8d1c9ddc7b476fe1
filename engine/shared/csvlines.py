"""CSV records with the lines they came from, and the records that are unclosed quotes.

A quoted field may hold a line break (an address over two lines): that is CSV. An unclosed quote
looks the same to a CSV reader, which then takes in every line up to the next quote character as
part of one field, valid rows included, and says nothing. :func:`records` hands out each record
with its first line number and its lines, and marks it ``swallowed`` when a record over several
lines looks like an unclosed quote: its field count differs from the header's, or a line it took in
is a whole row by itself (a field with a line break leaves a fragment, not a row). The caller
decides what to do with it (the lead import rejects it and every line it took in, each named).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

__all__ = ["CsvLinesError", "Record", "bad_utf8_line", "records"]


class CsvLinesError(Exception):
    """The CSV reader gave up (a field over its 128 KiB limit: most likely an unclosed quote);
    ``str()`` says where."""


@dataclass(frozen=True, slots=True)
class Record:
    cells: list[str]
    first_line: int          # 1-based
    lines: list[str]         # as read, line endings included
    swallowed: bool = False  # looks like an unclosed quote that took in the lines after it

    @property
    def last_line(self) -> int:
        return self.first_line + len(self.lines) - 1


class _Lines:
    """The file's lines as ``csv.reader`` takes them (one at a time): which lines made a record."""

    def __init__(self, f: TextIO) -> None:
        self.f = f
        self.taken: list[str] = []
        self.done = 0           # lines of the records already handed out

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self.f)
        self.taken.append(line)
        return line

    def record(self) -> tuple[int, list[str]]:
        first, lines = self.done + 1, self.taken
        self.done += len(lines)
        self.taken = []
        return first, lines


def _dialect(f: TextIO) -> Any:
    sample = f.read(65536)
    f.seek(0)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def records(f: TextIO) -> Iterator[Record]:
    """The header record first, then every record (the dialect sniffed from the first 64 KiB); a
    file opened with ``newline=""``. Raises :class:`CsvLinesError` naming the lines."""
    dialect = _dialect(f)
    lines = _Lines(f)
    reader = csv.reader(lines, dialect)
    fields: int | None = None
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            first, last = lines.done + 1, lines.done + len(lines.taken)
            where = f"line {first}" if first >= last else \
                f"the record from line {first} to line {last} (an unclosed quote on line {first}?)"
            raise CsvLinesError(f"{where}: {exc}") from None
        first, taken = lines.record()
        if fields is None:
            fields = len(cells)
            yield Record(cells, first, taken)
            continue
        yield Record(cells, first, taken, len(taken) > 1 and _swallowed(cells, taken, dialect, fields))


def _swallowed(cells: list[str], lines: list[str], dialect: Any, fields: int) -> bool:
    if len(cells) != fields:
        return True
    return any(len(next(csv.reader([line], dialect), [])) == fields for line in lines[1:])


def bad_utf8_line(path: Path) -> int:
    """The line of the first byte that is not UTF-8 (for an error message: reads the whole file)."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return data.count(b"\n", 0, exc.start) + 1
    return 1
