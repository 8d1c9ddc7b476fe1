"""The main configuration file: what the engine connects to and where its other files are.

The schema is the dataclasses below (see :mod:`engine.yamlconf` for how YAML becomes them).
examples/callcenter.yaml is a commented example of every key.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from types import MappingProxyType

from .acdconf import AgentCodes, AgentConfig, AgentsFile, QueueConfig, QueuesFile, RecordingConfig, _non_negative
from .campaignconf import CampaignConfig, CampaignsFile, check_campaigns
from .ivrconf import IvrTree, check_trees, load_trees
from .yamlconf import ConfigError, Mark, Problem, load_file, parse_duration

__all__ = ["Config", "ConfigError", "load_config"]


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError(f"expected a number above 0, got {value}")
    return value


def _port(value: int, *, any_free: bool = False) -> int:
    if not (0 if any_free else 1) <= value <= 65535:
        raise ValueError(f"expected a port number 1..65535{' (or 0 for any free port)' if any_free else ''}, "
                         f"got {value}")
    return value


def _existing(value: Path | None) -> Path | None:
    if value is not None and not value.exists():
        raise ValueError(f"{value} does not exist")
    return value


def _keyed_codes(value: Mapping[str, str]) -> Mapping[str, str]:
    for code, name in value.items():
        if not code.isdigit():
            raise ValueError(f"codes are keyed on a phone, so digits only; got {code!r}")
        if not re.match(r"^[A-Za-z0-9_-]{1,40}$", name):
            raise ValueError(f"code {code}: expected a name of letters, digits, _ and -, got {name!r}")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL such as http://127.0.0.1:8088/ari, got {value!r}")
    return value.rstrip("/")


_APP_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SOUND_RE = re.compile(r"^[A-Za-z0-9_./-]{1,200}$")


def _app_name(value: str) -> str:
    if not _APP_RE.match(value):
        raise ValueError(f"expected a Stasis application name (letters, digits, _ and -), got {value!r}")
    return value


def _sound(value: str) -> str:
    if not _SOUND_RE.match(value) or ".." in value or value.startswith("/"):
        raise ValueError(f"expected an Asterisk sound name such as hello-world or custom/welcome, got {value!r}")
    return value


def _number(value: str) -> str:
    if not re.match(r"^[+0-9A-Za-z*#]{1,40}$", value):
        raise ValueError(f"expected a dialed number (digits, +, * and #), got {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class AriConfig:
    url: str = field(metadata={"check": _http_url})
    username: str
    password: str
    app: str = field(default="callcenter", metadata={"check": _app_name})
    request_timeout_seconds: float = field(default=10.0, metadata={"check": _positive})
    reconnect_max_seconds: float = field(default=30.0, metadata={"check": _positive})
    # aiohttp's connection pool must stay under http.conf's session_limit (Asterisk default 100)
    max_connections: int = field(default=50, metadata={"check": _positive})


@dataclass(frozen=True, slots=True, kw_only=True)
class AmiConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = field(default=5038, metadata={"check": _port})
    username: str
    password: str
    reconnect_seconds: int = field(default=2, metadata={"check": _positive})


@dataclass(frozen=True, slots=True, kw_only=True)
class AsteriskConfig:
    ari: AriConfig
    ami: AmiConfig
    # Asterisk's sounds folder for the default language, as this machine sees it: check-config
    # looks there for every sound an IVR tree names. Unset: sounds are not checked.
    sounds_dir: Path | None = field(default=None, metadata={"check": _existing})


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolConfig:
    min_size: int = 1
    max_size: int = 10

    def __post_init__(self) -> None:
        if not 0 <= self.min_size <= self.max_size or self.max_size < 1:
            raise ValueError(f"need 0 <= min_size <= max_size and max_size >= 1, "
                             f"got min_size={self.min_size} max_size={self.max_size}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseConfig:
    dsn: str
    migrate_on_start: bool = True
    pool: PoolConfig = PoolConfig()
    command_timeout_seconds: float = field(default=10.0, metadata={"check": _positive})
    migrations_dir: Path | None = None


def _tokens(value: tuple[str, ...]) -> tuple[str, ...]:
    for token in value:
        if len(token) < 16 or not token.isprintable() or " " in token:
            raise ValueError("each API token must be at least 16 printable characters without spaces "
                             "(e.g. from `openssl rand -hex 24`)")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpConfig:
    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = field(default=8480, metadata={"check": partial(_port, any_free=True)})
    # Bearer tokens for /api/v1 (see engine/api/); none: the API refuses every request (403).
    tokens: tuple[str, ...] = field(default=(), metadata={"check": _tokens})


_EVENT_RE = re.compile(r"^(\*|[a-z][a-z_]*\.[a-z][a-z_]*)$")


def _event_kinds(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("name at least one event kind (e.g. call.offered), or \"*\" for every kind")
    for kind in value:
        if not _EVENT_RE.match(kind):
            raise ValueError(f"expected event kinds such as call.offered or call.ended (or \"*\"), got {kind!r}")
    return value


def _secret(value: str) -> str:
    if len(value) < 16:
        raise ValueError("the webhook secret must be at least 16 characters (e.g. from `openssl rand -hex 24`)")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookConfig:
    """One CRM endpoint (engine/webhooks.py): the events it gets, signed with ``secret``."""

    url: str = field(metadata={"check": _http_url})
    secret: str = field(metadata={"check": _secret})
    events: tuple[str, ...] = field(metadata={"check": _event_kinds})
    timeout_seconds: float = field(default=10.0, metadata={"check": _positive})
    max_attempts: int = field(default=10, metadata={"check": _positive})
    retry_seconds: float = field(default=5.0, metadata={"check": _positive})        # first retry; doubles
    retry_max_seconds: float = field(default=3600.0, metadata={"check": _positive})  # the longest wait


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Where a call goes: a prompt (then hang-up), a queue, or an IVR tree."""

    prompt: str | None = field(default=None, metadata={"check": lambda v: v if v is None else _sound(v)})
    queue: str | None = None
    ivr: str | None = None
    priority: int = 0  # queue callers of this number go ahead of lower priorities

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.prompt, self.queue, self.ivr)) != 1:
            raise ValueError("give exactly one of prompt, queue or ivr")


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundRoute(Target):
    number: str = field(metadata={"check": _number})
    at: Mark | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundConfig:
    """How the engine reaches a phone number (IVR transfers): {number} is replaced."""

    dial: str = "PJSIP/{number}@carrier"
    caller_id: str = ""  # what the called party sees; empty: the caller's number


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Every call state has a way out: these bound how long the engine waits for Asterisk."""

    answer_seconds: float = field(default=10.0, metadata={"check": _positive})
    playback_seconds: float = field(default=600.0, metadata={"check": _positive})
    hangup_seconds: float = field(default=10.0, metadata={"check": _positive})
    max_call_seconds: float = field(default=4 * 3600.0, metadata={"check": _positive})


@dataclass(frozen=True, slots=True, kw_only=True)
class FilesConfig:
    """The files later capabilities read; relative paths are from this file's folder."""

    ivr: Path | None = field(default=None, metadata={"check": _existing})
    queues: Path | None = field(default=None, metadata={"check": _existing})
    agents: Path | None = field(default=None, metadata={"check": _existing})
    campaigns: Path | None = field(default=None, metadata={"check": _existing})


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggingConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


def _duration_text(value: str) -> str:
    if parse_duration(value) <= 0:
        raise ValueError(f"expected a duration above 0 such as 24h or 3d, got {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportsConfig:
    """`callcenter report`: callers who hang up within short_abandon_seconds are short abandons,
    counted apart and left out of service level and abandon rate; a handled call is resolved at
    first contact (FCR) when the same number does not call again within fcr_window."""

    short_abandon_seconds: float = field(default=5.0, metadata={"check": _non_negative})
    fcr_window: str = field(default="24h", metadata={"check": _duration_text})

    @property
    def fcr_window_seconds(self) -> float:
        return parse_duration(self.fcr_window)


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    # Where the engine keeps what must survive a restart outside the database (the write spool).
    state_dir: Path
    # On SIGTERM, calls in progress get this long to finish; the rest stay up in Asterisk and are
    # adopted by the next start.
    shutdown_grace_seconds: float = field(default=10.0, metadata={"check": _positive})
    # This engine's name among several sharing a database (leases on leads, attempts): the host
    # name unless given. Two engines running at once must not share one.
    instance: str = field(default_factory=socket.gethostname)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    engine: EngineConfig
    asterisk: AsteriskConfig
    database: DatabaseConfig
    http: HttpConfig = HttpConfig()
    inbound: tuple[InboundRoute, ...] = ()
    inbound_default: Target = Target(prompt="hello-world")
    timeouts: Timeouts = Timeouts()
    files: FilesConfig = FilesConfig()
    logging: LoggingConfig = LoggingConfig()
    webhooks: tuple[WebhookConfig, ...] = ()   # CRM endpoints told of call events (engine/webhooks.py)
    reports: ReportsConfig = ReportsConfig()
    agents: tuple[AgentConfig, ...] = ()
    queues: tuple[QueueConfig, ...] = ()
    agent_codes: AgentCodes = AgentCodes()
    # What agents key after the pause and disposition codes: digits -> a name stored in the database.
    pause_reasons: Mapping[str, str] = field(default_factory=lambda: MappingProxyType(
        {"1": "break", "2": "lunch", "3": "meeting", "4": "training", "9": "other"}),
        metadata={"check": _keyed_codes})
    dispositions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType(
        {"1": "resolved", "2": "follow-up", "3": "escalated", "9": "other"}), metadata={"check": _keyed_codes})
    recording: RecordingConfig = RecordingConfig()
    outbound: OutboundConfig = OutboundConfig()
    campaigns: tuple[CampaignConfig, ...] = ()   # outbound campaigns (also from files.campaigns)
    trees: Mapping[str, IvrTree] = field(default_factory=lambda: MappingProxyType({}),
                                         metadata={"internal": True})  # loaded from files.ivr

    def problems(self) -> list[Problem]:
        """Rules across the whole configuration (after the agent and queue files are merged)."""
        problems = _unique(self.inbound, "number", "inbound: number {!r} is routed twice")
        problems += _unique(self.queues, "name", "queues: {!r} is defined twice")
        problems += _unique(self.agents, "id", "agents: agent id {!r} is used twice")
        queues = {q.name for q in self.queues}
        for q in self.queues:
            if q.overflow and q.overflow.queue not in queues:
                problems.append(_at(q, f"queue {q.name}: overflow to unknown queue {q.overflow.queue!r}"))
        for a in self.agents:
            for name in a.queues:
                if name not in queues:
                    problems.append(_at(a, f"agent {a.id}: unknown queue {name!r}"))
        for r in (*self.inbound, self.inbound_default):
            where = f"inbound number {r.number}" if isinstance(r, InboundRoute) else "inbound_default"
            if r.queue is not None and r.queue not in queues:
                problems.append(_at(r, f"{where}: unknown queue {r.queue!r}"))
            if r.ivr is not None and r.ivr not in self.trees:
                problems.append(_at(r, f"{where}: unknown IVR tree {r.ivr!r}"
                                       + ("" if self.files.ivr else " (files.ivr is not set)")))
        problems += check_trees(self.trees, queues, self.asterisk.sounds_dir)
        problems += check_campaigns(self.campaigns, queues)
        return problems

    def queue(self, name: str) -> QueueConfig:
        return next(q for q in self.queues if q.name == name)

    def route(self, dialed: str) -> Target:
        for r in self.inbound:
            if r.number == dialed:
                return r
        return self.inbound_default


def _at(item: object, message: str) -> Problem:
    return Problem(getattr(item, "at", None) or Mark("?", 1, 1), message)


def _unique(items: tuple[object, ...], key: str, message: str) -> list[Problem]:
    problems: list[Problem] = []
    first: dict[str, object] = {}
    for item in items:
        value = getattr(item, key)
        if value in first:
            mark = getattr(first[value], "at", None)
            problems.append(_at(item, message.format(value) + f" (first at {mark})"))
        first.setdefault(value, item)
    return problems


def load_config(path: str | Path) -> Config:
    """Load and validate the main file and the agent, queue and campaign files it names; raise
    :class:`ConfigError` listing every problem."""
    cfg = load_file(path, Config)
    extra: dict[str, tuple[object, ...]] = {}
    problems: list[Problem] = []
    for name, schema in (("agents", AgentsFile), ("queues", QueuesFile), ("campaigns", CampaignsFile)):
        file = getattr(cfg.files, name)
        if file is None:
            continue
        try:
            extra[name] = getattr(cfg, name) + getattr(load_file(file, schema), name)
        except ConfigError as exc:
            problems += exc.problems
    if cfg.files.ivr is not None:
        try:
            extra["trees"] = MappingProxyType(load_trees(cfg.files.ivr))
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    cfg = replace(cfg, **extra) if extra else cfg
    problems = cfg.problems()
    if problems:
        raise ConfigError(problems)
    return cfg
