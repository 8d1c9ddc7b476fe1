"""Local windows: is a weekly window open now in a time zone, and when does it open next. Pure.

Theory of operation
-------------------
One check serves the IVR's opening hours (the ``hours`` of a tree, read by ``branch``) and the
compliance gate's calling window (in the callee's local time). A :class:`Week` gives, for each
weekday (Monday first, as ``date.weekday()``), the spans it is open, in seconds of local
wall-clock time after midnight, and the dates closed all day (holidays):

- a span ``(start, end)`` is open from ``start`` (included) to ``end`` (excluded): 08:00-21:00 is
  open at 08:00:00 and at 20:59:59, closed at 21:00:00;
- an ``end`` past 24:00 runs into the next day: 22:00-02:00 is ``(79200, 93600)``, and that night
  belongs to the day it began (its weekday opens it, its date closes it);
- a closed date opens nothing, not even the night a span of the day before runs into.

Time is the wall clock of the zone, as a clock on the wall there reads it. On the day the clocks
go forward, a span that starts in the hour they skip opens when they jump; on the day they go
back, the hour that comes twice is open (or closed) both times. :func:`openings` gives the
instants spans open, so a caller can look for the first moment several zones are all open.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache

__all__ = ["DAY", "DAYS", "Week", "open_at", "openings"]

DAY = 86_400.0
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Span = tuple[float, float]


def _seconds(t: time) -> float:
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def _clock(text: str) -> float:
    """``HH:MM`` (00:00 to 24:00) -> seconds after midnight; ValueError for any other time."""
    hours, minutes = (int(part) for part in text.split(":"))
    if not (0 <= hours < 24 and 0 <= minutes < 60 or (hours, minutes) == (24, 0)):
        raise ValueError(f"expected a time of day 00:00 to 24:00, got {text!r}")
    return hours * 3600.0 + minutes * 60.0


@dataclass(frozen=True, slots=True)
class Week:
    spans: tuple[tuple[Span, ...], ...]     # 7 days, Monday first
    closed: frozenset[date] = frozenset()   # closed all day

    def __post_init__(self) -> None:
        if len(self.spans) != 7:
            raise ValueError(f"a week has 7 days, not {len(self.spans)}")
        for day, spans in zip(DAYS, self.spans):
            for start, end in spans:
                if not (0 <= start < DAY and start < end <= start + DAY):
                    raise ValueError(f"{day}: a span is 00:00 <= start < end, at most a day long; "
                                     f"got {start:g}-{end:g} s")

    @classmethod
    def daily(cls, start: time, end: time, days: Iterable[int]) -> Week:
        """The same span on ``days`` (0 = Monday); never open when ``end`` is not after ``start``."""
        span = ((_seconds(start), _seconds(end)),) if start < end else ()
        on = set(days)
        return cls(tuple(span if d in on else () for d in range(7)))

    @classmethod
    def parse(cls, weekly: Mapping[str, Iterable[str]], closed: Iterable[str] = ()) -> Week:
        """The IVR's form: ``{"mon": ["09:00-12:30", "22:00-02:00"], ...}`` and ``YYYY-MM-DD`` dates.
        An end before the start runs past midnight; an end equal to the start is never open."""
        days: list[tuple[Span, ...]] = []
        for day in DAYS:
            spans = []
            for text in weekly.get(day, ()):
                start, end = (_clock(part) for part in text.split("-"))
                if end < start:
                    end += DAY
                if start < end and start < DAY:
                    spans.append((start, end))
            days.append(tuple(spans))
        return cls(tuple(days), frozenset(date.fromisoformat(d) for d in closed))


def open_at(week: Week, tz: tzinfo, now: float) -> bool:
    """Is ``week`` open at ``now`` (epoch seconds) on the wall clocks of ``tz``?"""
    local = datetime.fromtimestamp(now, tz)
    today = local.date()
    if today in week.closed:
        return False
    clock = _seconds(local.time())
    if any(start <= clock < end for start, end in week.spans[today.weekday()]):
        return True
    yesterday = today - timedelta(days=1)
    return yesterday not in week.closed and any(clock + DAY < end for _, end in week.spans[yesterday.weekday()])


def openings(week: Week, tz: tzinfo, since: float, days: int) -> Iterator[float]:
    """The instants at or after ``since`` when a span opens, over ``days`` local days from since's."""
    first = datetime.fromtimestamp(since, tz).date()
    for k in range(days):
        day = first + timedelta(days=k)
        if day in week.closed:
            continue
        for start, _ in week.spans[day.weekday()]:
            at = _instant(day, start, tz)
            if at >= since:
                yield at


@lru_cache(maxsize=4096)   # the same few days and spans, asked again and again: worth keeping
def _instant(day: date, seconds: float, tz: tzinfo) -> float:
    """The first instant the wall clock of ``tz`` reads ``seconds`` after ``day``'s midnight, or
    the jump past it when the clocks skip that time."""
    wall = datetime.combine(day, time()) + timedelta(seconds=seconds)
    first, second = (wall.replace(tzinfo=tz, fold=f).timestamp() for f in (0, 1))
    if first <= second:   # an ordinary time, or the first of the two a fall back gives
        return first
    # Skipped: fold 0 read it with the offset from before the jump (a moment after it), fold 1
    # with the offset from after (a moment before). The jump lies between: find its second.
    before, after = int(second), int(first)
    offset = datetime.fromtimestamp(after, tz).utcoffset()
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == offset:
            after = middle
        else:
            before = middle
    return float(after)
