"""Text from outside (a caller's name is whatever their phone sent) made safe to print.

A name holding a bell, an ANSI escape (``\\x1b[2J`` clears the operator's screen, ``\\x1b]0;...``
retitles it) or a right-to-left override must not reach a terminal, a table or a CSV file as it
is. :func:`printable` is the one place that decides how such characters are shown: as Python
escapes (``\\x07``, ``\\x1b``, ``\\n``, ``\\u202e``), so nothing is lost and nothing acts. Every
table and CSV writer and the console log renderer go through it; JSON output needs nothing (its
encoder escapes control characters itself).
"""

from __future__ import annotations

from typing import Any

__all__ = ["printable", "text_table"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(value: object) -> str:
    """``str(value)`` with every character that is not printable (``str.isprintable``: controls,
    format characters such as bidi overrides, separators other than the space) escaped."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch in _NAMED:
        return _NAMED[ch]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def text_table(header: list[str], rows: list[list[Any]]) -> str:
    """Aligned columns; every cell through :func:`printable` (a caller's name is what their phone sent)."""
    cells = [[printable(c) for c in r] for r in (header, *rows)]
    widths = [max(len(c) for c in col) for col in zip(*cells)]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *(line(r) for r in cells[1:])])
