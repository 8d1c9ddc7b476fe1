"""Agents, queues and the agents' phone codes: their YAML schema and how the core sees them.

They may be written in the main file (``agents:``, ``queues:``) or in their own files named by
``files.agents`` / ``files.queues`` (each holding an ``agents:`` or ``queues:`` list). Every error
names its own file and line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from engine.core.acd import AgentProfile, Expand, QueueRules
from engine.config.yamlconf import Mark, Range

__all__ = [
    "AgentCodes", "AgentConfig", "AgentsFile", "MAX_AGENTS", "MAX_QUEUES", "QueueConfig", "QueuesFile",
    "RecordingConfig", "to_profile", "to_rules",
]

MAX_AGENTS = 10_000
MAX_QUEUES = 1_000

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_DIGITS = re.compile(r"^[0-9]{1,12}$")
_CODE = re.compile(r"^[*#0-9]{1,8}$")
_ENDPOINT = re.compile(r"^(PJSIP|SIP|IAX2|Local)/[A-Za-z0-9_.@+-]{1,80}$")


def _empty() -> Mapping[str, int]:
    return MappingProxyType({})


def _queue_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"expected a queue name (lower-case letters, digits, _ and -), got {value!r}")
    return value


def check_skills(value: Mapping[str, int]) -> Mapping[str, int]:
    for skill, level in value.items():
        if not _NAME.match(skill):
            raise ValueError(f"expected skill names of lower-case letters, digits, _ and -, got {skill!r}")
        if not 1 <= level <= 10:
            raise ValueError(f"skill {skill!r}: expected a level from 1 to 10, got {level}")
    return value


def _digits(value: str) -> str:
    if not _DIGITS.match(value):
        raise ValueError(f"expected digits only (it is typed on a phone keypad), got {value!r}")
    return value


def _code(value: str) -> str:
    if not _CODE.match(value):
        raise ValueError(f"expected a feature code of *, # and digits such as *11, got {value!r}")
    return value


def _endpoint(value: str) -> str:
    if not _ENDPOINT.match(value):
        raise ValueError(f"expected an Asterisk endpoint such as PJSIP/agent1001, got {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceLevel:
    seconds: float = field(default=20.0, metadata={"range": Range(1, 3600, "seconds")})
    percent: float = 80.0

    def __post_init__(self) -> None:
        if not 0 < self.percent <= 100:
            raise ValueError(f"service_level.percent: expected 0 < percent <= 100, got {self.percent:g}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpandStep:
    after_seconds: float = field(metadata={"range": Range(1, 86400, "seconds")})
    skills: Mapping[str, int] = field(default_factory=_empty, metadata={"check": check_skills})


@dataclass(frozen=True, slots=True, kw_only=True)
class Overflow:
    queue: str = field(metadata={"check": _queue_name})


@dataclass(frozen=True, slots=True, kw_only=True)
class AnnounceConfig:
    position_every_seconds: float | None = field(default=None, metadata={"range": Range(5, 3600, "seconds")})
    music: str = "default"  # the musiconhold.conf class callers hear while they wait
    # ... from this long after they join the queue: a caller an agent takes sooner hears none
    # (app_queue starts it at once; 0 does the same)
    music_after_seconds: float = field(default=0.5, metadata={"range": Range(0, 60, "seconds")})


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackOption:
    """A waiting caller may press ``key`` to be called back at their number, keeping their place."""

    key: str = field(default="*", metadata={"check": _code})
    dial: str = "PJSIP/{number}@carrier"  # how to reach the caller's number; {number} is replaced


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueConfig:
    name: str = field(metadata={"check": _queue_name})
    skills: Mapping[str, int] = field(default_factory=_empty, metadata={"check": check_skills})
    strategy: Literal["longest_idle", "least_calls", "most_skilled", "round_robin"] = "longest_idle"
    ring_timeout_seconds: float = field(default=15.0, metadata={"range": Range(5, 600, "seconds")})
    wrapup_seconds: float = field(default=10.0, metadata={"range": Range(0, 3600, "seconds")})
    service_level: ServiceLevel = ServiceLevel()
    expand: tuple[ExpandStep, ...] = ()
    max_wait_seconds: float | None = field(default=None, metadata={"range": Range(1, 86400, "seconds")})
    overflow: Overflow | None = None
    announce: AnnounceConfig = AnnounceConfig()
    recording: Literal["all", "none", "on_demand"] = "none"
    callback: CallbackOption | None = None
    at: Mark | None = None

    def __post_init__(self) -> None:
        times = [s.after_seconds for s in self.expand]
        if times != sorted(set(times)):
            raise ValueError(f"queue {self.name}: expand steps must come in increasing after_seconds")


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    id: str = field(metadata={"check": _digits})
    name: str = ""
    endpoint: str = field(default="", metadata={"check": lambda v: v and _endpoint(v)})
    pin: str = field(metadata={"check": _digits})
    skills: Mapping[str, int] = field(default_factory=_empty, metadata={"check": check_skills})
    queues: tuple[str, ...] = ()  # logged in to these; empty: every queue whose skills the agent has
    at: Mark | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentCodes:
    """What agents dial from their phone (dialplan [from-agents] sends it to the engine)."""

    login: str = field(default="*11", metadata={"check": _code})         # then agent id #, PIN #
    logout: str = field(default="*12", metadata={"check": _code})
    pause: str = field(default="*13", metadata={"check": _code})         # then a reason code (pause_reasons) #
    unpause: str = field(default="*14", metadata={"check": _code})
    end_wrapup: str = field(default="*15", metadata={"check": _code})
    disposition: str = field(default="*16", metadata={"check": _code})   # then a code (dispositions) #
    record: str = field(default="*7", metadata={"check": _code})         # keyed during a call: start recording
    transfer: str = field(default="##", metadata={"check": _code})       # keyed during a call, a target, #

    def __post_init__(self) -> None:
        codes = [self.login, self.logout, self.pause, self.unpause, self.end_wrapup, self.disposition]
        for a in codes:
            for b in codes:
                if a is not b and b.startswith(a):
                    raise ValueError(f"agent_codes: {a!r} is a prefix of {b!r}; the phone could not tell them apart")


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingConfig:
    format: Literal["wav", "gsm"] = "wav"
    # Where Asterisk writes recordings, as this machine sees it (for size and duration); unset:
    # metadata without them.
    dir: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentsFile:
    agents: tuple[AgentConfig, ...] = field(metadata={"max_items": MAX_AGENTS})


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuesFile:
    queues: tuple[QueueConfig, ...] = field(metadata={"max_items": MAX_QUEUES})


def to_rules(q: QueueConfig) -> QueueRules:
    return QueueRules(
        name=q.name, skills=q.skills, strategy=q.strategy, ring_timeout=q.ring_timeout_seconds,
        wrapup=q.wrapup_seconds, sl_seconds=q.service_level.seconds, sl_fraction=q.service_level.percent / 100,
        expand=tuple(Expand(s.after_seconds, s.skills) for s in q.expand), max_wait=q.max_wait_seconds,
        overflow=q.overflow.queue if q.overflow else None, announce_every=q.announce.position_every_seconds)


def to_profile(a: AgentConfig) -> AgentProfile:
    return AgentProfile(id=a.id, skills=a.skills, endpoint=a.endpoint)


def login_queues(a: AgentConfig, queues: tuple[QueueConfig, ...]) -> frozenset[str]:
    """The queues an agent logs in to from the phone: their list, or every queue they qualify for."""
    if a.queues:
        return frozenset(a.queues)
    return frozenset(q.name for q in queues if all(a.skills.get(s, 0) >= lvl for s, lvl in q.skills.items()))
