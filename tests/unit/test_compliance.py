"""The pure compliance gate: every rule, its reason code, the order, local time across DST, the UK rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from engine.core.compliance import (
    AUTODIAL_MODES, MODES, REASONS, RULES, CampaignRules, Facts, Request, Scope, check, next_opening,
)

NY = ZoneInfo("America/New_York")
EVERY_DAY = frozenset(range(7))
RULES_US = CampaignRules(campaign="renewals", days=EVERY_DAY)


def at(zone: str, *args: int) -> float:
    """Epoch seconds of a wall-clock time in ``zone``."""
    return datetime(*args, tzinfo=ZoneInfo(zone)).timestamp()


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=timezone.utc).timestamp()


# Wednesday 2026-06-10, 14:00 in New York: inside every window below.
NOW = at("America/New_York", 2026, 6, 10, 14, 0)


def request(**changes: object) -> Request:
    base = Request(rules=RULES_US, mode="predictive", number="+12125550123", time_zones=("America/New_York",),
                   consent=True)
    return replace(base, **changes)  # type: ignore[arg-type]


def decide(now: float = NOW, **changes: object):
    """The gate's answer for the default request and facts (a national list imported a day before
    ``now``), with ``changes`` to either."""
    fact_changes = {k: changes.pop(k) for k in list(changes) if k in Facts.__dataclass_fields__}
    facts = replace(Facts(national_list_at=now - 86400), **fact_changes)  # type: ignore[arg-type]
    return check(request(**changes), facts, now)


def test_a_clean_dial_is_allowed_with_the_values_it_was_checked_against():
    d = decide()
    assert (d.allowed, d.reason, d.scope, d.retry_at) == (True, "allowed", None, None)
    assert d.detail == "predictive call to +12125550123 allowed"
    assert d.values["window"] == "08:00-21:00" and d.values["local_times"] == {"America/New_York": "2026-06-10T14:00-04:00"}
    assert d.values["mode"] == "predictive" and d.values["attempts_total"] == 0


def test_the_documented_order():
    assert REASONS == ("allowed", "invalid_number", "dnc_global", "dnc_national", "dnc_campaign",
                       "national_list_missing", "national_list_stale", "no_consent", "max_attempts", "no_timezone",
                       "outside_hours", "max_attempts_today", "uk_72h")
    assert all(r.modes for r in RULES)


@pytest.mark.parametrize("scope,reason", [("global", "dnc_global"), ("national", "dnc_national"),
                                          ("campaign:renewals", "dnc_campaign")])
def test_dnc_refuses_in_every_mode(scope, reason):
    for mode in MODES:
        d = decide(mode=mode, dnc_scopes=frozenset({scope}))
        assert (d.allowed, d.reason, d.scope) == (False, reason, Scope.NUMBER), mode
        assert "+12125550123 is on the" in d.detail


def test_another_campaigns_list_does_not_apply():
    assert decide(dnc_scopes=frozenset({"campaign:other"})).allowed


def test_an_invalid_number_is_refused_first():
    d = decide(number="2125550123", dnc_scopes=frozenset({"global"}))
    assert (d.reason, d.scope) == ("invalid_number", Scope.NUMBER)


def test_dnc_comes_before_hours_and_consent():
    night = at("America/New_York", 2026, 6, 10, 23, 0)
    d = decide(now=night, consent=False, dnc_scopes=frozenset({"national"}))
    assert d.reason == "dnc_national"


def test_no_consent_allows_only_preview_and_manual():
    for mode in MODES:
        d = decide(mode=mode, consent=False)
        if mode in AUTODIAL_MODES:
            assert (d.reason, d.scope) == ("no_consent", Scope.LEAD), mode
            assert f"({mode} refused)" in d.detail
        else:
            assert d.allowed, mode
    assert {m for m in MODES if m not in AUTODIAL_MODES} == {"preview", "manual"}


def test_national_list_missing_or_stale_stops_autodial_only():
    d = decide(national_list_at=None)
    assert (d.reason, d.scope) == ("national_list_missing", Scope.WAIT)
    d = decide(national_list_at=NOW - 32 * 86400)
    assert d.reason == "national_list_stale"
    assert d.detail.startswith("the national do-not-call list was imported 32.0 days ago; it must be re-checked at "
                               "least every 31 days")
    assert decide(national_list_at=NOW - 30 * 86400).allowed
    assert decide(mode="preview", national_list_at=None).allowed
    assert decide(mode="manual", national_list_at=NOW - 90 * 86400).allowed
    relaxed = replace(RULES_US, national_required=False)
    assert decide(rules=relaxed, national_list_at=None).allowed


def test_max_attempts_but_not_for_a_callback():
    d = decide(attempts_total=6)
    assert (d.reason, d.scope, d.detail) == ("max_attempts", Scope.LEAD, "6 attempts made, the campaign allows 6")
    assert decide(attempts_total=5).allowed
    assert decide(mode="callback", attempts_total=9).allowed
    assert decide(mode="manual", attempts_total=6).reason == "max_attempts"


def test_calling_hours_in_the_callee_time_with_exclusive_end():
    ny = "America/New_York"
    assert decide(now=at(ny, 2026, 6, 10, 8, 0)).allowed
    assert decide(now=at(ny, 2026, 6, 10, 20, 59)).allowed
    late = decide(now=at(ny, 2026, 6, 10, 21, 0))
    assert (late.reason, late.scope) == ("outside_hours", Scope.WAIT)
    assert late.detail == "outside calling hours: Wed 21:00 America/New_York; the window is 08:00-21:00 on " \
                          "mon,tue,wed,thu,fri,sat,sun"
    assert late.retry_at == at(ny, 2026, 6, 11, 8, 0)
    early = decide(now=at(ny, 2026, 6, 10, 7, 59))
    assert early.reason == "outside_hours" and early.retry_at == at(ny, 2026, 6, 10, 8, 0)
    # The same instant is fine for a callee in Los Angeles? No: 05:00 there.
    la = decide(now=at(ny, 2026, 6, 10, 10, 0), time_zones=("America/Los_Angeles",))
    assert la.reason == "outside_hours" and la.retry_at == at("America/Los_Angeles", 2026, 6, 10, 8, 0)


def test_hours_apply_to_every_mode_even_manual():
    night = at("America/New_York", 2026, 6, 10, 22, 30)
    for mode in MODES:
        assert decide(now=night, mode=mode).reason == "outside_hours", mode


def test_a_wider_campaign_window_is_clipped_to_the_legal_one():
    wide = replace(RULES_US, hours_start=time(7, 0), hours_end=time(23, 0))
    d = decide(rules=wide, now=at("America/New_York", 2026, 6, 10, 7, 30))
    assert d.reason == "outside_hours"
    assert d.detail.endswith("the window is 08:00-21:00 on mon,tue,wed,thu,fri,sat,sun (the campaign's 07:00-23:00 "
                             "clipped to the legal 08:00-21:00)")
    narrow = replace(RULES_US, hours_start=time(9, 0), hours_end=time(17, 0))
    assert decide(rules=narrow, now=at("America/New_York", 2026, 6, 10, 8, 30)).reason == "outside_hours"
    assert decide(rules=narrow, now=at("America/New_York", 2026, 6, 10, 16, 59)).allowed


def test_days_are_the_callee_local_days():
    weekdays = replace(RULES_US, days=frozenset(range(5)))
    saturday = at("America/New_York", 2026, 6, 13, 12, 0)
    d = decide(rules=weekdays, now=saturday)
    assert d.reason == "outside_hours" and "Sat 12:00 America/New_York" in d.detail
    assert d.retry_at == at("America/New_York", 2026, 6, 15, 8, 0)  # Monday morning
    friday_evening_la = at("America/Los_Angeles", 2026, 6, 12, 18, 0)  # Saturday 01:00 UTC: Friday for the callee
    assert decide(rules=weekdays, now=friday_evening_la, time_zones=("America/Los_Angeles",)).allowed


def test_spring_forward():
    # 2026-03-08 02:00 EST -> 03:00 EDT. 12:00 UTC is 08:00 EDT that day (allowed), but 07:00 EST the day before.
    assert decide(now=utc(2026, 3, 8, 12, 0)).allowed
    before = decide(now=utc(2026, 3, 7, 12, 0))
    assert before.reason == "outside_hours" and before.retry_at == utc(2026, 3, 7, 13, 0)  # 08:00 EST
    assert decide(now=utc(2026, 3, 8, 11, 59)).reason == "outside_hours"                   # 07:59 EDT
    # Asked at 01:00 EST on the night of the change: the window opens at 08:00 EDT, i.e. 12:00 UTC.
    assert decide(now=utc(2026, 3, 8, 6, 0)).retry_at == utc(2026, 3, 8, 12, 0)


def test_fall_back():
    # 2026-11-01 02:00 EDT -> 01:00 EST. 21:00 EST is 02:00 UTC on Nov 2; 20:59 EST is allowed.
    assert decide(now=utc(2026, 11, 2, 1, 59)).allowed
    assert decide(now=utc(2026, 11, 2, 2, 0)).reason == "outside_hours"
    # The same UTC time a day earlier (EDT) is 22:00 local: refused, and it reopens at 08:00 EST.
    d = decide(now=utc(2026, 11, 1, 2, 0))
    assert d.reason == "outside_hours" and d.retry_at == utc(2026, 11, 1, 13, 0)


def test_uncertain_zone_needs_every_zone_open():
    zones = ("America/Boise", "America/Los_Angeles")     # area code 208 spans both
    boise_8 = at("America/Boise", 2026, 6, 10, 8, 0)       # 07:00 in Los Angeles
    d = decide(now=boise_8, time_zones=zones)
    assert d.reason == "outside_hours" and "America/Los_Angeles" in d.detail and "America/Boise" not in d.detail
    assert d.retry_at == at("America/Los_Angeles", 2026, 6, 10, 8, 0)
    la_2030 = at("America/Los_Angeles", 2026, 6, 10, 20, 30)   # 21:30 in Boise
    assert decide(now=la_2030, time_zones=zones).reason == "outside_hours"
    assert decide(now=at("America/Boise", 2026, 6, 10, 12, 0), time_zones=zones).allowed


def test_unknown_zone_uses_the_campaign_fallback_else_refuses():
    d = decide(time_zones=())
    assert (d.reason, d.scope) == ("no_timezone", Scope.NUMBER)
    assert decide(time_zones=("Not/AZone",)).reason == "no_timezone"
    with_fallback = replace(RULES_US, fallback_timezone="America/New_York")
    assert decide(rules=with_fallback, time_zones=()).allowed
    assert decide(rules=with_fallback, time_zones=(), now=at("America/New_York", 2026, 6, 10, 6, 0)).reason == \
        "outside_hours"


def test_per_day_limit_counts_the_callee_local_day():
    rules = replace(RULES_US, max_attempts_per_day=2)
    ny = "America/New_York"
    now = at(ny, 2026, 6, 10, 9, 0)
    yesterday_late = at(ny, 2026, 6, 9, 23, 30)         # already "today" in UTC, not in New York
    assert decide(rules=rules, now=now, recent_attempts=(yesterday_late, at(ny, 2026, 6, 10, 8, 10))).allowed
    d = decide(rules=rules, now=now, recent_attempts=(at(ny, 2026, 6, 10, 8, 10), at(ny, 2026, 6, 10, 8, 40)))
    assert (d.reason, d.scope) == ("max_attempts_today", Scope.WAIT)
    assert d.retry_at == at(ny, 2026, 6, 11, 8, 0)
    assert decide(rules=rules, now=now, mode="callback", recent_attempts=(now - 60, now - 30)).allowed


def test_uk_72_hours_after_an_abandon():
    uk = replace(RULES_US, rule="uk")
    london = ("Europe/London",)
    now = at("Europe/London", 2026, 6, 10, 14, 0)
    abandoned = now - 10 * 3600
    d = decide(rules=uk, now=now, number="+442079460958", time_zones=london, last_abandon_at=abandoned)
    assert (d.reason, d.scope, d.retry_at) == ("uk_72h", Scope.WAIT, abandoned + 72 * 3600)
    assert "abandoned 10.0 h ago" in d.detail
    for mode in ("preview", "manual"):   # a live agent is guaranteed
        assert decide(rules=uk, now=now, mode=mode, time_zones=london, last_abandon_at=abandoned).allowed
    for mode in ("progressive", "agentless", "callback", "api"):
        assert decide(rules=uk, now=now, mode=mode, time_zones=london, last_abandon_at=abandoned).reason == "uk_72h"
    assert decide(rules=uk, now=now, time_zones=london, last_abandon_at=now - 72 * 3600).allowed
    assert decide(now=now, time_zones=london, last_abandon_at=abandoned).allowed   # rule us: no such rule


def test_an_unknown_mode_is_refused():
    d = decide(mode="telepathy")
    assert (d.allowed, d.reason) == (False, "unknown_mode")


def test_next_opening_when_zones_never_overlap():
    never = replace(RULES_US, hours_start=time(8, 0), hours_end=time(9, 0))
    assert next_opening(never, ("Pacific/Kiritimati", "Pacific/Pago_Pago"), NOW) is None
    assert next_opening(never, (), NOW) is None


def test_the_gate_is_deterministic_and_reads_no_clock():
    a = decide(now=utc(2030, 1, 1, 3, 0))
    b = decide(now=utc(2030, 1, 1, 3, 0))
    assert a == b and a.reason == "outside_hours"
