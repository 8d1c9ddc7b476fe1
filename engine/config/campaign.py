"""Outbound campaigns: their YAML schema, the checks across them, and what the gate sees of one.

Campaigns are written in the main file (``campaigns:``) and/or in their own file named by
``files.campaigns`` (holding a ``campaigns:`` list), like queues. Example: examples/campaigns.yaml.
Every error names its file and line. Durations are written ``30s``, ``10m``, ``2h``, ``30d``.

Strict values are the defaults (shared/docs/domain.md): calling hours 08:00-21:00 in the callee's
local time (the legal window bounds a wider campaign window), abandon target 3% (more is refused),
ring at least 15 s (less is refused), automated dialling waits for a national DNC list no older than
31 days, and a number's consent decides which modes may call it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from engine.core.compliance import DAYS, CampaignRules
from engine.config.yamlconf import Mark, Problem, duration_check, parse_duration

__all__ = [
    "Abandon", "Agentless", "Amd", "CallingHours", "CampaignConfig", "CampaignsFile", "MAX_CAMPAIGNS", "NationalDnc",
    "Retry",
    "check_campaigns", "duration", "find", "to_rules",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$|^24:00$")
_SOUND = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,200}$")
_DISPOSITION = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_KEY = re.compile(r"^[0-9*#]$")

MIN_RING_SECONDS = 15.0           # US TSR and Ofcom: unanswered calls ring at least 15 s
MAX_ABANDON_PERCENT = 3.0         # both rules: at most 3% of live calls
RULE_WINDOWS = {"us": 30 * 86400.0, "uk": 86400.0}   # the period the abandon rate is measured over
MAX_DELAY = 90 * 86400.0          # the longest retry delay (and any other duration in a campaign)
MAX_CAMPAIGNS = 1_000


def duration(text: str) -> float:
    """A duration in seconds (``engine.config.yamlconf.parse_duration``)."""
    return parse_duration(text)


_duration = duration_check(MAX_DELAY)


def _opt_duration(value: str | None) -> str | None:
    return None if value is None else _duration(value)


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"expected a name of lower-case letters, digits, _ and -, got {value!r}")
    return value


def _hhmm(value: str) -> str:
    if not _HHMM.match(value):
        raise ValueError(f"expected a time of day like 08:00 or 21:30, got {value!r}")
    return value


def _e164(value: str) -> str:
    if not _E164.match(value):
        raise ValueError(f"expected an E.164 number such as +15551230000, got {value!r}")
    return value


def _e164_pool(value: tuple[str, ...]) -> tuple[str, ...]:
    for v in value:
        _e164(v)
    if len(set(value)) != len(value):
        raise ValueError("a number is listed twice")
    return value


def _sound(value: str) -> str:
    if not _SOUND.match(value) or ".." in value:
        raise ValueError(f"expected an Asterisk sound name such as custom/safe-harbor, got {value!r}")
    return value


def _sounds(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("expected at least one sound")
    for v in value:
        _sound(v)
    return value


def _dispositions(value: tuple[str, ...]) -> tuple[str, ...]:
    for v in value:
        if not _DISPOSITION.match(v):
            raise ValueError(f"expected disposition names of letters, digits, _ and -, got {v!r}")
    return value


def _region(value: str) -> str:
    if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"expected a region code such as US, GB or DE, got {value!r}")
    return value.upper()


def _timezone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (e.g. America/New_York)") from None
    return value


def _dial(value: str) -> str:
    if "{number}" not in value:
        raise ValueError(f"the dial string must contain {{number}}, got {value!r}")
    return value


def _ring(value: float) -> float:
    if value < MIN_RING_SECONDS:
        raise ValueError(f"unanswered calls must ring at least {MIN_RING_SECONDS:g} s (US TSR, Ofcom); got {value:g}")
    if value > 120:
        raise ValueError(f"expected at most 120 s, got {value:g}")
    return value


def _existing_files(value: tuple[Path, ...]) -> tuple[Path, ...]:
    for p in value:
        try:
            if not p.is_file():
                raise ValueError(f"{p} does not exist")
        except OSError as exc:   # a name too long, a folder that may not be read
            raise ValueError(f"{p}: {exc.strerror}") from None
    return value


def _pacing(value: str) -> str:
    from engine.core.pacing import make_pacer

    make_pacer(value)   # ValueError names the algorithms
    return value


def _minutes(t: str) -> int:
    h, m = t.split(":")
    return int(h) * 60 + int(m)


def _as_time(t: str) -> time:
    return time(23, 59, 59, 999999) if t == "24:00" else time(int(t[:2]), int(t[3:]))


@dataclass(frozen=True, slots=True, kw_only=True)
class Abandon:
    target_percent: float = MAX_ABANDON_PERCENT
    window: str | None = field(default=None, metadata={"check": _opt_duration})   # default: 30d (us), 24h (uk)
    rule: Literal["us", "uk"] = "us"
    # uk: Ofcom counts a reasoned estimate of AMD false positives (people taken for machines) as
    # abandons: the share of "machine" verdicts that were people, in percent.
    amd_false_positive_percent: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.target_percent <= MAX_ABANDON_PERCENT:
            raise ValueError(f"abandon.target_percent: expected above 0 and at most {MAX_ABANDON_PERCENT:g} "
                             f"(the legal limit), got {self.target_percent:g}")
        if self.window is not None and parse_duration(self.window) > RULE_WINDOWS[self.rule]:
            limit = "30d" if self.rule == "us" else "24h"
            raise ValueError(f"abandon.window: rule {self.rule} measures over at most {limit}, got {self.window}")
        p = self.amd_false_positive_percent
        if p is not None and not 0 <= p <= 100:
            raise ValueError(f"abandon.amd_false_positive_percent: expected 0 to 100, got {p:g}")

    @property
    def window_seconds(self) -> float:
        return parse_duration(self.window) if self.window is not None else RULE_WINDOWS[self.rule]


@dataclass(frozen=True, slots=True, kw_only=True)
class Amd:
    """Answering-machine detection: on a machine, hang up or leave ``message`` (a sound)."""

    enabled: bool = False
    on_machine: Literal["hangup", "message"] | None = None   # default: message when one is given, else hangup
    message: str | None = field(default=None, metadata={"check": lambda v: v if v is None else _sound(v)})

    def __post_init__(self) -> None:
        if self.on_machine == "message" and self.message is None:
            raise ValueError("amd: on_machine: message needs message: SOUND")
        if self.on_machine == "hangup" and self.message is not None:
            raise ValueError("amd: on_machine: hangup and a message contradict each other; give one")

    @property
    def action(self) -> Literal["hangup", "message"]:
        return self.on_machine or ("message" if self.message is not None else "hangup")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallingHours:
    start: str = field(default="08:00", metadata={"check": _hhmm})
    end: str = field(default="21:00", metadata={"check": _hhmm})
    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = (
        "mon", "tue", "wed", "thu", "fri", "sat")
    # The legal window in the callee's local time (US TSR/TCPA: 08:00-21:00): it bounds start/end
    # even when they say wider. Change it only for a jurisdiction whose law says otherwise.
    legal_start: str = field(default="08:00", metadata={"check": _hhmm})
    legal_end: str = field(default="21:00", metadata={"check": _hhmm})

    def __post_init__(self) -> None:
        if _minutes(self.start) >= _minutes(self.end):
            raise ValueError(f"calling_hours: start {self.start} must come before end {self.end}")
        if _minutes(self.legal_start) >= _minutes(self.legal_end):
            raise ValueError(f"calling_hours: legal_start {self.legal_start} must come before legal_end {self.legal_end}")
        if max(_minutes(self.start), _minutes(self.legal_start)) >= min(_minutes(self.end), _minutes(self.legal_end)):
            raise ValueError(f"calling_hours: {self.start}-{self.end} lies outside the legal window "
                             f"{self.legal_start}-{self.legal_end}: no call could ever be placed")
        if not self.days:
            raise ValueError("calling_hours.days: give at least one day")
        if len(set(self.days)) != len(self.days):
            raise ValueError("calling_hours.days: a day is listed twice")


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry:
    busy: str = field(default="10m", metadata={"check": _duration})
    no_answer: str = field(default="2h", metadata={"check": _duration})
    machine: str = field(default="4h", metadata={"check": _duration})
    failed: str = field(default="30m", metadata={"check": _duration})          # network / carrier failure
    abandoned: str | None = field(default=None, metadata={"check": _opt_duration})  # default: no_answer's
    max_attempts: int = 6
    max_attempts_per_day: int | None = None
    # A person answered and the agent keyed one of these: try again after the delay (other
    # dispositions that are not success end the lead; DNC ends it and lists the number).
    dispositions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= 100:
            raise ValueError(f"retry.max_attempts: expected 1 to 100, got {self.max_attempts}")
        if self.max_attempts_per_day is not None and not 1 <= self.max_attempts_per_day <= self.max_attempts:
            raise ValueError(f"retry.max_attempts_per_day: expected 1 to max_attempts, got {self.max_attempts_per_day}")
        for name, text in self.dispositions.items():
            if not _DISPOSITION.match(name):
                raise ValueError(f"retry.dispositions: expected disposition names, got {name!r}")
            try:
                _duration(text)
            except ValueError as exc:
                raise ValueError(f"retry.dispositions.{name}: {exc}") from None

    def delay(self, outcome: str) -> float | None:
        """Seconds until the next try after ``outcome`` (busy, no_answer, machine, failed, abandoned)."""
        text = {"busy": self.busy, "no_answer": self.no_answer, "machine": self.machine, "failed": self.failed,
                "abandoned": self.abandoned or self.no_answer}.get(outcome)
        return None if text is None else parse_duration(text)


@dataclass(frozen=True, slots=True, kw_only=True)
class Agentless:
    message: tuple[str, ...] = field(metadata={"check": _sounds})
    keys: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))   # "1": CONFIRMED

    def __post_init__(self) -> None:
        for key, name in self.keys.items():
            if not _KEY.match(key):
                raise ValueError(f"agentless.keys: expected single keys 0-9, * or #, got {key!r}")
            if not _DISPOSITION.match(name):
                raise ValueError(f"agentless.keys.{key}: expected a disposition name, got {name!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class NationalDnc:
    """Automated dialling needs the national list, re-checked at least every 31 days (TSR)."""

    required: bool = True
    max_age: str = field(default="31d", metadata={"check": _duration})

    def __post_init__(self) -> None:
        if parse_duration(self.max_age) > 31 * 86400:
            raise ValueError(f"national_dnc.max_age: the list must be re-checked at least every 31 days, "
                             f"got {self.max_age}")


Mode = Literal["preview", "progressive", "predictive", "agentless"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignConfig:
    name: str = field(metadata={"check": _name})
    mode: Mode
    queue: str | None = field(default=None, metadata={"check": lambda v: v if v is None else _name(v)})
    dial: str = field(default="PJSIP/{number}@carrier", metadata={"check": _dial})
    caller_id: str | None = field(default=None, metadata={"check": lambda v: v if v is None else _e164(v)})
    caller_id_pool: tuple[str, ...] = field(default=(), metadata={"check": _e164_pool})
    ring_timeout_seconds: float = field(default=20.0, metadata={"check": _ring})
    abandon: Abandon = Abandon()
    safe_harbor_sound: str | None = field(default=None, metadata={"check": lambda v: v if v is None else _sound(v)})
    amd: Amd = Amd()
    calling_hours: CallingHours = CallingHours()
    retry: Retry = Retry()
    success_dispositions: tuple[str, ...] = field(default=(), metadata={"check": _dispositions})
    default_region: str = field(default="US", metadata={"check": _region})
    time_zone: str | None = field(default=None, metadata={"check": _timezone})   # when a number's zone is unknown
    dnc_lists: tuple[Path, ...] = field(default=(), metadata={"check": _existing_files})
    national_dnc: NationalDnc = NationalDnc()
    agentless: Agentless | None = None
    # false: the dialer leaves the campaign alone (leads can still be imported and checked).
    active: bool = True
    # The pacing algorithm: progressive, ratio:X, vicidial-adapt, predictive (default: the mode's).
    pacing: str | None = field(default=None, metadata={"check": lambda v: v if v is None else _pacing(v)})
    # What the campaign's agents key after the disposition code (*16) in wrap-up: digits -> name.
    # Codes not listed here fall back to the main file's dispositions.
    dispositions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    at: Mark | None = None

    def __post_init__(self) -> None:
        if self.mode != "agentless" and self.queue is None:
            raise ValueError(f"campaign {self.name}: mode {self.mode} needs queue: (whose agents take the calls)")
        if self.mode == "agentless" and self.agentless is None:
            raise ValueError(f"campaign {self.name}: mode agentless needs agentless: {{message: [...], keys: {{...}}}}")
        if self.mode != "agentless" and self.agentless is not None:
            raise ValueError(f"campaign {self.name}: agentless: is only for mode agentless")
        if self.caller_id is None and not self.caller_id_pool:
            raise ValueError(f"campaign {self.name}: give caller_id or caller_id_pool (the law requires a "
                             "caller id that can be called back)")
        if self.mode in ("predictive", "progressive") and self.safe_harbor_sound is None:
            raise ValueError(f"campaign {self.name}: mode {self.mode} may abandon calls: give safe_harbor_sound "
                             "(the message that identifies the seller)")
        for code, name in self.dispositions.items():
            if not code.isdigit() or not _DISPOSITION.match(name):
                raise ValueError(f"campaign {self.name}: dispositions: expected digits -> a name of letters, digits, "
                                 f"_ and -, got {code!r}: {name!r}")
        if self.abandon.rule == "uk" and self.amd.enabled and self.abandon.amd_false_positive_percent is None:
            raise ValueError(f"campaign {self.name}: rule uk counts AMD false positives as abandons: give "
                             "abandon.amd_false_positive_percent (a reasoned estimate)")

    @property
    def algorithm(self) -> str:
        return self.pacing or ("predictive" if self.mode == "predictive" else "progressive")

    def caller_id_for(self, number: str) -> str:
        """The pool number sharing the callee's country and area code, else the same country, else
        ``caller_id``, else the pool's first number (deterministic: no random choice)."""
        if not self.caller_id_pool:
            assert self.caller_id is not None
            return self.caller_id
        callee = _area(number)
        if callee is not None:
            for cid in self.caller_id_pool:
                if _area(cid) == callee:
                    return cid
            for cid in self.caller_id_pool:
                a = _area(cid)
                if a is not None and a[0] == callee[0]:
                    return cid
        return self.caller_id or self.caller_id_pool[0]


def _area(number: str) -> tuple[int, str] | None:
    """(country code, area code) of an E.164 number; area code '' where the plan has none."""
    try:
        n = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    national = phonenumbers.national_significant_number(n)
    length = phonenumbers.length_of_geographical_area_code(n) or phonenumbers.length_of_national_destination_code(n)
    return n.country_code, national[:length]


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignsFile:
    campaigns: tuple[CampaignConfig, ...] = field(metadata={"max_items": MAX_CAMPAIGNS})


def to_rules(c: CampaignConfig) -> CampaignRules:
    h = c.calling_hours
    return CampaignRules(
        campaign=c.name, rule=c.abandon.rule, hours_start=_as_time(h.start), hours_end=_as_time(h.end),
        days=frozenset(DAYS.index(d) for d in h.days), legal_start=_as_time(h.legal_start),
        legal_end=_as_time(h.legal_end), max_attempts=c.retry.max_attempts,
        max_attempts_per_day=c.retry.max_attempts_per_day, national_required=c.national_dnc.required,
        national_max_age=parse_duration(c.national_dnc.max_age), fallback_timezone=c.time_zone)


def check_campaigns(campaigns: tuple[CampaignConfig, ...], queues: set[str]) -> list[Problem]:
    """Rules across campaigns: names unique, queues exist."""
    problems: list[Problem] = []
    first: dict[str, CampaignConfig] = {}
    for c in campaigns:
        at = c.at or Mark("?", 1, 1)
        if c.name in first:
            problems.append(Problem(at, f"campaigns: {c.name!r} is defined twice (first at {first[c.name].at})"))
        first.setdefault(c.name, c)
        if c.queue is not None and c.queue not in queues:
            problems.append(Problem(at, f"campaign {c.name}: unknown queue {c.queue!r}"))
    return problems


def find(campaigns: tuple[CampaignConfig, ...], name: str) -> CampaignConfig:
    """The campaign called ``name``; KeyError naming the known ones if there is none."""
    for c in campaigns:
        if c.name == name:
            return c
    known = ", ".join(c.name for c in campaigns) or "none"
    raise KeyError(f"no campaign {name!r}; the campaigns are: {known}")

