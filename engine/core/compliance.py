"""The compliance gate: may this number be dialled now, in this mode, for this campaign?

Theory of operation
-------------------
Every way the engine dials a number (predictive, progressive, preview, callback, agentless,
manual, API) asks :func:`check` first. It is pure: the shell looks the *facts* up (DNC scopes the
number is on, attempts so far, the last abandoned call to it, how old the national DNC list is)
and passes ``now``; :func:`check` reads no clock and does no I/O, so the same answer comes out in
the engine, in a test and in the simulator.

The rules are a table, :data:`RULES`, walked in order; the first rule that refuses decides, and
a number every rule lets through is ``allowed``. The order is deliberate:

1. ``invalid_number``          the number is not E.164 (the shell normalises; this is a last guard)
2. ``dnc_global``              on the internal do-not-call list
3. ``dnc_national``            on the national list (US National DNC Registry, UK TPS)
4. ``dnc_campaign``            on this campaign's own list
5. ``national_list_missing``   autodial modes: the campaign needs a national list and none was imported
6. ``national_list_stale``     autodial modes: the national list is older than ``national_max_age`` (31 days)
7. ``no_consent``              autodial modes: the lead gave no consent to automated calls
8. ``max_attempts``            the lead has been tried ``max_attempts`` times (not for callbacks)
9. ``no_timezone``             the callee's local time cannot be known
10. ``outside_hours``          not inside the calling window in *every* time zone the callee may be in
11. ``max_attempts_today``     the per-day attempt limit, counted on the callee's local day
12. ``uk_72h``                 rule ``uk``: an abandoned call to this number less than 72 h ago, and
                               the mode does not guarantee a live agent (only preview and manual do)

Permanent refusals come first (a DNC'd number ends there, whatever the hour), then what the
campaign lacks, then what the lead lacks, then what time will cure. Each refusal says what it
concerns (:class:`Scope`): ``NUMBER`` (this number may never be dialled: try the lead's next one),
``LEAD`` (this lead may not be dialled in this mode) or ``WAIT`` (try again at ``retry_at``, when
known), so the hopper knows what to do with the lead without reading reason codes.

Calling hours are strict by default (shared/docs/domain.md): the legal window, 08:00-21:00 in the
callee's local time, bounds the campaign's own window even when the campaign writes a wider one.
A number whose time zone is uncertain (an area code spanning two zones) is called only when the
window is open in every zone it may be in. The window is checked by :mod:`engine.core.hours`, the
same check as the IVR's opening hours (wall-clock time, days of the week, the days clocks change).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import Enum
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.core.hours import DAYS, Week, open_at, openings

__all__ = [
    "AUTODIAL_MODES", "CampaignRules", "Decision", "Facts", "LIVE_AGENT_MODES", "MODES", "Mode", "REASONS",
    "Request", "RULES", "Rule", "Scope", "check", "local_day_start", "next_opening",
]

Mode = Literal["predictive", "progressive", "preview", "callback", "agentless", "manual", "api"]
MODES: tuple[Mode, ...] = ("predictive", "progressive", "preview", "callback", "agentless", "manual", "api")
# Modes where the machine places the call without a person choosing to dial this number now.
# Strict: a scheduled callback and an API request count as automated.
AUTODIAL_MODES: frozenset[Mode] = frozenset({"predictive", "progressive", "callback", "agentless", "api"})
# Modes where a live agent is on the line before the callee answers (Ofcom's "guaranteed").
LIVE_AGENT_MODES: frozenset[Mode] = frozenset({"preview", "manual"})
ALL_MODES: frozenset[Mode] = frozenset(MODES)

UK_REPEAT_AFTER_ABANDON = 72 * 3600.0


class Scope(Enum):
    """What a refusal concerns, so the caller knows what to do with the lead."""

    NUMBER = "number"   # this number may not be dialled (DNC, invalid): try the lead's next number
    LEAD = "lead"       # this lead may not be dialled in this mode (no consent, attempts used up)
    WAIT = "wait"       # not now: try again at retry_at (None: no time is known to cure it)


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignRules:
    """What the gate needs of a campaign (built from the YAML by ``engine.config.campaign.to_rules``)."""

    campaign: str
    rule: Literal["us", "uk"] = "us"
    hours_start: time = time(8, 0)
    hours_end: time = time(21, 0)                    # exclusive: 21:00:00 is outside
    days: frozenset[int] = frozenset(range(6))       # 0 = Monday .. 6 = Sunday (date.weekday())
    legal_start: time = time(8, 0)                   # the outer bound (US TSR/TCPA), whatever the campaign says
    legal_end: time = time(21, 0)
    max_attempts: int = 6
    max_attempts_per_day: int | None = None
    national_required: bool = True                   # autodial needs a national DNC list imported ...
    national_max_age: float = 31 * 86400.0           # ... no older than this (seconds)
    fallback_timezone: str | None = None             # when the number's zone is unknown

    @property
    def window(self) -> tuple[time, time]:
        """The campaign's window clipped to the legal one."""
        return max(self.hours_start, self.legal_start), min(self.hours_end, self.legal_end)

    def values(self) -> dict[str, Any]:
        start, end = self.window
        return {"campaign": self.campaign, "rule": self.rule,
                "window": f"{_hm(start)}-{_hm(end)}", "campaign_window": f"{_hm(self.hours_start)}-{_hm(self.hours_end)}",
                "legal_window": f"{_hm(self.legal_start)}-{_hm(self.legal_end)}",
                "days": [DAYS[d] for d in sorted(self.days)], "max_attempts": self.max_attempts,
                "max_attempts_per_day": self.max_attempts_per_day, "national_required": self.national_required,
                "national_max_age_days": round(self.national_max_age / 86400, 3)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One dial the shell wants to make."""

    rules: CampaignRules
    mode: Mode
    number: str                          # E.164
    time_zones: tuple[str, ...] = ()     # where the callee may be (IANA); empty: unknown
    consent: bool = False                # consent to automated calls (the lead's, or a callback request)


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What the shell looked up for this number and lead. Times are epoch seconds."""

    dnc_scopes: frozenset[str] = frozenset()     # "global", "national", "campaign:<name>" the number is on
    attempts_total: int = 0                      # the lead's attempts so far
    recent_attempts: tuple[float, ...] = ()      # when the lead was dialled in the last 48 hours
    last_abandon_at: float | None = None         # the last abandoned call to this number, any campaign
    national_list_at: float | None = None        # when the national list was last imported; None: never

    def values(self) -> dict[str, Any]:
        return {"dnc_scopes": sorted(self.dnc_scopes), "attempts_total": self.attempts_total,
                "recent_attempts": len(self.recent_attempts), "last_abandon_at": self.last_abandon_at,
                "national_list_at": self.national_list_at}


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str                      # a stable code: allowed, dnc_global, outside_hours, ... (REASONS)
    detail: str                      # one readable line
    scope: Scope | None = None       # what a refusal concerns; None when allowed
    retry_at: float | None = None    # WAIT refusals: when it may be tried again (epoch seconds), if known
    values: Mapping[str, Any] = field(default_factory=dict)   # the rule values and facts the gate looked at


@dataclass(frozen=True, slots=True)
class _Refusal:
    detail: str
    retry_at: float | None = None


Check = Callable[[Request, Facts, float], "_Refusal | None"]


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    scope: Scope
    modes: frozenset[Mode]           # the modes the rule applies to
    check: Check
    doc: str


# -- the rules, each a small function: None lets the dial through ---------------------------------

def _valid_number(req: Request, facts: Facts, now: float) -> _Refusal | None:
    n = req.number
    if len(n) < 8 or len(n) > 16 or not n.startswith("+") or not n[1:].isdigit() or n[1] == "0":
        return _Refusal(f"{n!r} is not an E.164 number")
    return None


def _dnc(scope_of: Callable[[Request], str], name: str) -> Check:
    def rule(req: Request, facts: Facts, now: float) -> _Refusal | None:
        if scope_of(req) in facts.dnc_scopes:
            return _Refusal(f"{req.number} is on the {name} do-not-call list")
        return None
    return rule


def _national_missing(req: Request, facts: Facts, now: float) -> _Refusal | None:
    if req.rules.national_required and facts.national_list_at is None:
        return _Refusal("no national do-not-call list has been imported (callcenter dnc import FILE --scope "
                        "national); automated dialling waits for one")
    return None


def _national_stale(req: Request, facts: Facts, now: float) -> _Refusal | None:
    at, limit = facts.national_list_at, req.rules.national_max_age
    if req.rules.national_required and at is not None and now - at > limit:
        return _Refusal(f"the national do-not-call list was imported {(now - at) / 86400:.1f} days ago; "
                        f"it must be re-checked at least every {limit / 86400:g} days")
    return None


def _consent(req: Request, facts: Facts, now: float) -> _Refusal | None:
    if not req.consent:
        return _Refusal(f"no consent to automated calls: only preview or manual dialling may call "
                        f"{req.number} ({req.mode} refused)")
    return None


def _max_attempts(req: Request, facts: Facts, now: float) -> _Refusal | None:
    if facts.attempts_total >= req.rules.max_attempts:
        return _Refusal(f"{facts.attempts_total} attempts made, the campaign allows {req.rules.max_attempts}")
    return None


def _zones(req: Request) -> tuple[str, ...]:
    zones = tuple(z for z in req.time_zones if _zone(z) is not None)
    if not zones and req.rules.fallback_timezone and _zone(req.rules.fallback_timezone) is not None:
        zones = (req.rules.fallback_timezone,)
    return zones


def _timezone(req: Request, facts: Facts, now: float) -> _Refusal | None:
    if not _zones(req):
        given = ", ".join(req.time_zones) or "none"
        return _Refusal(f"the local time of {req.number} is unknown (time zones: {given}; "
                        "set a timezone column in the leads, or the campaign's time_zone)")
    return None


def _hours(req: Request, facts: Facts, now: float) -> _Refusal | None:
    zones = _zones(req)
    closed = [z for z in zones if not _open_in(req.rules, z, now)]
    if not closed:
        return None
    start, end = req.rules.window
    clipped = (" (the campaign's " + f"{_hm(req.rules.hours_start)}-{_hm(req.rules.hours_end)} clipped to the legal "
               + f"{_hm(req.rules.legal_start)}-{_hm(req.rules.legal_end)})") if req.rules.window != (
        req.rules.hours_start, req.rules.hours_end) else ""
    local = ", ".join(f"{datetime.fromtimestamp(now, _zone(z)):%a %H:%M} {z}" for z in closed)  # type: ignore[arg-type]
    days = ",".join(DAYS[d] for d in sorted(req.rules.days))
    return _Refusal(f"outside calling hours: {local}; the window is {_hm(start)}-{_hm(end)} on {days}{clipped}",
                    next_opening(req.rules, zones, now))


def _per_day(req: Request, facts: Facts, now: float) -> _Refusal | None:
    limit = req.rules.max_attempts_per_day
    if limit is None:
        return None
    zones = _zones(req)
    zone = zones[0] if zones else "UTC"
    day_start = local_day_start(zone, now)
    today = sum(1 for t in facts.recent_attempts if day_start <= t <= now)
    if today >= limit:
        tomorrow = local_day_start(zone, day_start + 36 * 3600)
        return _Refusal(f"{today} attempts today ({zone}), the campaign allows {limit} a day",
                        next_opening(req.rules, zones, tomorrow) if zones else tomorrow)
    return None


def _uk_72h(req: Request, facts: Facts, now: float) -> _Refusal | None:
    at = facts.last_abandon_at
    if req.rules.rule == "uk" and at is not None and now - at < UK_REPEAT_AFTER_ABANDON:
        return _Refusal(f"a call to {req.number} was abandoned {(now - at) / 3600:.1f} h ago; Ofcom allows a "
                        "repeat call within 72 h only with a live agent guaranteed (preview or manual)",
                        at + UK_REPEAT_AFTER_ABANDON)
    return None


_AUTODIAL_NO_AGENT = ALL_MODES - LIVE_AGENT_MODES

RULES: tuple[Rule, ...] = (
    Rule("invalid_number", Scope.NUMBER, ALL_MODES, _valid_number, "the number is not E.164"),
    Rule("dnc_global", Scope.NUMBER, ALL_MODES, _dnc(lambda r: "global", "internal"), "internal DNC list"),
    Rule("dnc_national", Scope.NUMBER, ALL_MODES, _dnc(lambda r: "national", "national"), "national DNC list"),
    Rule("dnc_campaign", Scope.NUMBER, ALL_MODES,
         _dnc(lambda r: f"campaign:{r.rules.campaign}", "campaign's"), "the campaign's DNC list"),
    Rule("national_list_missing", Scope.WAIT, AUTODIAL_MODES, _national_missing, "no national list imported"),
    Rule("national_list_stale", Scope.WAIT, AUTODIAL_MODES, _national_stale, "national list older than 31 days"),
    Rule("no_consent", Scope.LEAD, AUTODIAL_MODES, _consent, "autodial needs consent"),
    Rule("max_attempts", Scope.LEAD, ALL_MODES - {"callback"}, _max_attempts, "attempts used up"),
    Rule("no_timezone", Scope.NUMBER, ALL_MODES, _timezone, "local time unknown"),
    Rule("outside_hours", Scope.WAIT, ALL_MODES, _hours, "calling window in the callee's local time"),
    Rule("max_attempts_today", Scope.WAIT, ALL_MODES - {"callback"}, _per_day, "per-day attempt limit"),
    Rule("uk_72h", Scope.WAIT, _AUTODIAL_NO_AGENT, _uk_72h, "Ofcom: no repeat within 72 h of an abandon"),
)
REASONS: tuple[str, ...] = ("allowed", *(r.code for r in RULES))


def check(request: Request, facts: Facts, now: float) -> Decision:
    """Walk :data:`RULES` in order; the first refusal decides."""
    values: dict[str, Any] = {"mode": request.mode, "number": request.number, "time_zones": list(request.time_zones),
                              "consent": request.consent, **request.rules.values(), **facts.values()}
    zones = _zones(request)
    if zones:
        values["local_times"] = {z: datetime.fromtimestamp(now, _zone(z)).isoformat(timespec="minutes")  # type: ignore[arg-type]
                                 for z in zones}
    if request.mode not in ALL_MODES:
        return Decision(False, "unknown_mode", f"unknown dial mode {request.mode!r}", Scope.LEAD, None, values)
    for rule in RULES:
        if request.mode not in rule.modes:
            continue
        refusal = rule.check(request, facts, now)
        if refusal is not None:
            return Decision(False, rule.code, refusal.detail, rule.scope, refusal.retry_at, values)
    return Decision(True, "allowed", f"{request.mode} call to {request.number} allowed", None, None, values)


# -- time ------------------------------------------------------------------------------------------

@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _hm(t: time) -> str:
    return t.strftime("%H:%M")


@lru_cache(maxsize=64)
def _week(rules: CampaignRules) -> Week:
    start, end = rules.window
    return Week.daily(start, end, rules.days)


def _open_in(rules: CampaignRules, zone: str, now: float) -> bool:
    tz = _zone(zone)
    assert tz is not None
    return open_at(_week(rules), tz, now)


def local_day_start(zone: str, now: float) -> float:
    """Midnight (the day's first instant) of ``now``'s local day in ``zone``, as epoch seconds."""
    tz = _zone(zone) or ZoneInfo("UTC")
    d = datetime.fromtimestamp(now, tz).date()
    return datetime.combine(d, time(0, 0), tz).timestamp()


def next_opening(rules: CampaignRules, zones: tuple[str, ...], now: float) -> float | None:
    """The first instant at or after ``now`` when the window is open in every zone (within 8 days)."""
    if not zones:
        return None
    candidates: set[float] = {now}
    for z in zones:
        tz = _zone(z)
        if tz is None:
            return None
        candidates.update(openings(_week(rules), tz, now, days=9))
    for t in sorted(candidates):
        if all(_open_in(rules, z, t) for z in zones):
            return t
    return None
