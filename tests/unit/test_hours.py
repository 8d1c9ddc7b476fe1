"""The one local-window check (engine/core/hours.py) at its edges: the second a window opens and
closes, nights past midnight, days of the week, closed dates, and the days the clocks change in
America/New_York and Europe/London."""

from __future__ import annotations

from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from engine.core.hours import DAY, Week, open_at, openings

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
EVERY_DAY = range(7)


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=timezone.utc).timestamp()


def local(tz: ZoneInfo, *args: int, fold: int = 0) -> float:
    return datetime(*args, tzinfo=tz, fold=fold).timestamp()


def test_a_window_opens_on_its_first_second_and_closes_on_its_last():
    week = Week.daily(time(8, 0), time(21, 0), EVERY_DAY)
    assert not open_at(week, NY, local(NY, 2026, 6, 10, 7, 59, 59))
    assert open_at(week, NY, local(NY, 2026, 6, 10, 8, 0))
    assert open_at(week, NY, local(NY, 2026, 6, 10, 20, 59, 59) + 0.999)
    assert not open_at(week, NY, local(NY, 2026, 6, 10, 21, 0))
    # The same instant is another wall-clock time elsewhere: 21:00 in New York is 18:00 in Los Angeles.
    assert open_at(week, ZoneInfo("America/Los_Angeles"), local(NY, 2026, 6, 10, 21, 0))


def test_days_of_the_week_are_the_local_days():
    weekdays = Week.daily(time(8, 0), time(21, 0), range(5))
    assert open_at(weekdays, NY, local(NY, 2026, 6, 12, 20, 0))        # Friday evening (Saturday in UTC)
    assert not open_at(weekdays, NY, local(NY, 2026, 6, 13, 12, 0))    # Saturday noon
    assert not open_at(Week.daily(time(9, 0), time(9, 0), EVERY_DAY), NY, local(NY, 2026, 6, 10, 9, 0))


def test_a_window_to_the_end_of_the_day_and_one_to_2400():
    whole = Week.parse({"wed": ["00:00-24:00"]})
    assert open_at(whole, LONDON, local(LONDON, 2026, 6, 10, 0, 0))
    assert open_at(whole, LONDON, local(LONDON, 2026, 6, 10, 23, 59, 59))
    assert not open_at(whole, LONDON, local(LONDON, 2026, 6, 11, 0, 0))
    # The gate's "24:00" is 23:59:59.999999 (a datetime.time cannot say 24:00): the same day.
    almost = Week.daily(time(0, 0), time(23, 59, 59, 999999), EVERY_DAY)
    assert open_at(almost, LONDON, local(LONDON, 2026, 6, 10, 23, 59, 59) + 0.5)


@pytest.mark.parametrize("span", ["09:00-24:59", "09:00-24:01", "09:60-17:00", "22:00-01:75", "25:00-02:00"])
def test_a_time_past_2400_or_with_60_minutes_is_refused(span):
    # the parser took any HH:MM: 24:59 ended a span at 00:59 the next day, 01:75 at 02:15
    with pytest.raises(ValueError, match="expected a time of day 00:00 to 24:00"):
        Week.parse({"mon": [span]})


def test_a_night_past_midnight_belongs_to_the_day_it_began():
    fridays = Week.parse({"fri": ["22:00-02:00"]})
    assert fridays.spans[4] == ((22 * 3600.0, 26 * 3600.0),)
    assert not open_at(fridays, LONDON, local(LONDON, 2026, 6, 12, 21, 59))
    assert open_at(fridays, LONDON, local(LONDON, 2026, 6, 12, 22, 0))
    assert open_at(fridays, LONDON, local(LONDON, 2026, 6, 13, 1, 59, 59))    # Saturday, Friday's night
    assert not open_at(fridays, LONDON, local(LONDON, 2026, 6, 13, 2, 0))
    assert not open_at(fridays, LONDON, local(LONDON, 2026, 6, 13, 23, 0))    # Saturday's own night: none
    assert not open_at(fridays, LONDON, local(LONDON, 2026, 6, 12, 1, 0))     # Thursday had no night


def test_a_closed_date_opens_nothing_not_even_the_night_before_it():
    nights = Week.parse({d: ["22:00-02:00"] for d in ("thu", "fri")}, ["2026-12-25"])   # a Friday
    assert open_at(nights, LONDON, local(LONDON, 2026, 12, 24, 23, 0))
    assert not open_at(nights, LONDON, local(LONDON, 2026, 12, 25, 1, 0))    # Thursday's night, on the 25th
    assert not open_at(nights, LONDON, local(LONDON, 2026, 12, 25, 23, 0))   # the 25th's own night
    assert not open_at(nights, LONDON, local(LONDON, 2026, 12, 26, 1, 0))    # ... in the small hours too
    assert list(openings(nights, LONDON, local(LONDON, 2026, 12, 24, 12, 0), days=3)) == [
        local(LONDON, 2026, 12, 24, 22, 0)]


def test_openings_start_at_since_and_skip_what_is_over():
    week = Week.daily(time(8, 0), time(21, 0), range(5))
    since = local(NY, 2026, 6, 12, 8, 0)   # a Friday, the moment it opens: included
    assert list(openings(week, NY, since, days=4)) == [since, local(NY, 2026, 6, 15, 8, 0)]
    assert list(openings(week, NY, since + 1, days=3)) == []


def test_new_york_springs_forward():
    # 2026-03-08: 02:00 EST becomes 03:00 EDT (07:00 UTC).
    week = Week.daily(time(8, 0), time(21, 0), EVERY_DAY)
    assert not open_at(week, NY, utc(2026, 3, 8, 11, 59))                 # 07:59 EDT
    assert open_at(week, NY, utc(2026, 3, 8, 12, 0))                      # 08:00 EDT
    assert not open_at(week, NY, utc(2026, 3, 7, 12, 0))                  # 07:00 EST the day before
    assert list(openings(week, NY, utc(2026, 3, 7, 6, 0), days=2)) == [utc(2026, 3, 7, 13, 0), utc(2026, 3, 8, 12, 0)]
    # A window across the jump is open before and after it, and one hour shorter.
    night = Week.daily(time(1, 30), time(3, 30), EVERY_DAY)
    assert open_at(night, NY, utc(2026, 3, 8, 6, 59, 59))                 # 01:59:59 EST
    assert open_at(night, NY, utc(2026, 3, 8, 7, 0))                      # 03:00 EDT
    assert not open_at(night, NY, utc(2026, 3, 8, 7, 30))                 # 03:30 EDT
    # A window starting in the skipped hour opens when the clocks jump.
    skipped = Week.daily(time(2, 30), time(4, 0), EVERY_DAY)
    assert not open_at(skipped, NY, utc(2026, 3, 8, 6, 59, 59))
    assert open_at(skipped, NY, utc(2026, 3, 8, 7, 0))
    assert list(openings(skipped, NY, utc(2026, 3, 8, 0, 0), days=2)) == [utc(2026, 3, 8, 7, 0)]   # from 19:00 EST


def test_new_york_falls_back():
    # 2026-11-01: 02:00 EDT becomes 01:00 EST (06:00 UTC); 01:00-02:00 comes twice.
    week = Week.daily(time(8, 0), time(21, 0), EVERY_DAY)
    assert open_at(week, NY, utc(2026, 11, 2, 1, 59))                     # 20:59 EST
    assert not open_at(week, NY, utc(2026, 11, 2, 2, 0))                  # 21:00 EST
    assert list(openings(week, NY, utc(2026, 11, 1, 2, 0), days=2)) == [utc(2026, 11, 1, 13, 0)]   # from 22:00 EDT
    twice = Week.daily(time(1, 0), time(2, 0), EVERY_DAY)
    assert open_at(twice, NY, utc(2026, 11, 1, 5, 0))                     # 01:00 EDT
    assert open_at(twice, NY, utc(2026, 11, 1, 6, 30))                    # 01:30 EST, the second time
    assert not open_at(twice, NY, utc(2026, 11, 1, 7, 0))                 # 02:00 EST
    assert list(openings(twice, NY, utc(2026, 11, 1, 0, 0), days=2)) == [utc(2026, 11, 1, 5, 0)]   # the first


def test_london_springs_forward_and_falls_back():
    # 2026-03-29: 01:00 GMT becomes 02:00 BST; 2026-10-25: 02:00 BST becomes 01:00 GMT.
    office = Week.parse({"sun": ["09:00-17:00"]})
    assert list(openings(office, LONDON, utc(2026, 3, 28, 0, 0), days=2)) == [utc(2026, 3, 29, 8, 0)]
    assert list(openings(office, LONDON, utc(2026, 10, 24, 0, 0), days=2)) == [utc(2026, 10, 25, 9, 0)]
    assert open_at(office, LONDON, utc(2026, 3, 29, 15, 59)) and not open_at(office, LONDON, utc(2026, 3, 29, 16, 0))
    assert open_at(office, LONDON, utc(2026, 10, 25, 16, 59)) and not open_at(office, LONDON, utc(2026, 10, 25, 17, 0))
    early = Week.parse({"sun": ["01:30-03:00"]})                          # starts in the skipped hour
    assert list(openings(early, LONDON, utc(2026, 3, 29, 0, 0), days=1)) == [utc(2026, 3, 29, 1, 0)]
    assert not open_at(early, LONDON, utc(2026, 3, 29, 0, 59, 59)) and open_at(early, LONDON, utc(2026, 3, 29, 1, 0))
    twice = Week.parse({"sun": ["01:00-02:00"]})
    assert open_at(twice, LONDON, utc(2026, 10, 25, 0, 0))                # 01:00 BST
    assert open_at(twice, LONDON, utc(2026, 10, 25, 1, 59))               # 01:59 GMT
    assert not open_at(twice, LONDON, utc(2026, 10, 25, 2, 0))            # 02:00 GMT


@pytest.mark.parametrize("spans,message", [
    (((),) * 6, "a week has 7 days, not 6"),
    ((((0.0, DAY + 1),),) + ((),) * 6, "mon: a span is"),
    ((((3600.0, 3600.0),),) + ((),) * 6, "mon: a span is"),
])
def test_a_week_that_cannot_be_is_refused(spans, message):
    with pytest.raises(ValueError, match=message):
        Week(spans)
