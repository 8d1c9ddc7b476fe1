"""The main configuration file: what the engine connects to and where its other files are.

The schema is the dataclasses below (see :mod:`engine.config.yamlconf` for how YAML becomes them).
examples/callcenter.yaml is a commented example of every key. Every number has its bounds
(``metadata["range"]``: a shutdown grace of 1e400 seconds is an error, not a wait forever), and what
a file may hold is bounded too (:data:`MAX_INBOUND` numbers, ``MAX_AGENTS``, ``MAX_QUEUES``,
``MAX_CAMPAIGNS``; the file size and nesting in :mod:`engine.config.yamlread`).
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

from engine.config.acd import (
    MAX_AGENTS, MAX_QUEUES, AgentCodes, AgentConfig, AgentsFile, QueueConfig, QueuesFile, RecordingConfig,
)
from engine.config.campaign import MAX_CAMPAIGNS, CampaignConfig, CampaignsFile, check_campaigns
from engine.config.ivr import IvrTree, check_trees, load_trees
from engine.config.yamlconf import ConfigError, Mark, Problem, Range, duration_check, load_file, parse_duration

__all__ = ["Config", "ConfigError", "MAX_INBOUND", "load_config"]

MAX_INBOUND = 50_000   # inbound numbers in one file; more: route on the dialed number in an IVR branch


def _port(value: int, *, any_free: bool = False) -> int:
    if not (0 if any_free else 1) <= value <= 65535:
        raise ValueError(f"expected a port number 1..65535{' (or 0 for any free port)' if any_free else ''}, "
                         f"got {value}")
    return value


def _existing(value: Path | None) -> Path | None:
    try:
        if value is not None and not value.exists():
            raise ValueError(f"{value} does not exist")
    except OSError as exc:   # a name too long, a folder that may not be read
        raise ValueError(f"{value}: {exc.strerror}") from None
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
    request_timeout_seconds: float = field(default=10.0, metadata={"range": Range.seconds(300)})
    reconnect_max_seconds: float = field(default=30.0, metadata={"range": Range.seconds(3600)})
    # aiohttp's connection pool must stay under http.conf's session_limit (Asterisk default 100)
    max_connections: int = field(default=50, metadata={"range": Range(1, 1000)})
    # REST requests over the events websocket when Asterisk has it (20.14, 21.9, 22.4 and later):
    # no HTTP request, connection and headers per request; false: always HTTP
    rest_over_websocket: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class AmiConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = field(default=5038, metadata={"check": _port})
    username: str
    password: str
    reconnect_seconds: int = field(default=2, metadata={"range": Range(1, 3600, "seconds")})


@dataclass(frozen=True, slots=True, kw_only=True)
class AsteriskConfig:
    ari: AriConfig
    ami: AmiConfig
    # Asterisk's sounds folder for the default language, as this machine sees it: check-config
    # looks there for every sound an IVR tree names. Unset: sounds are not checked.
    # A folder that is not there (a machine without Asterisk) is a warning: sounds are not checked.
    sounds_dir: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolConfig:
    min_size: int = field(default=1, metadata={"range": Range(0, 1000)})
    max_size: int = field(default=10, metadata={"range": Range(1, 1000)})

    def __post_init__(self) -> None:
        if not 0 <= self.min_size <= self.max_size or self.max_size < 1:
            raise ValueError(f"need 0 <= min_size <= max_size and max_size >= 1, "
                             f"got min_size={self.min_size} max_size={self.max_size}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseConfig:
    dsn: str
    migrate_on_start: bool = True
    pool: PoolConfig = PoolConfig()
    command_timeout_seconds: float = field(default=10.0, metadata={"range": Range.seconds(3600)})
    migrations_dir: Path | None = None
    # The write journal's bound (engine/store/journal.py): past it, no new calls until the database drains it.
    journal_max_mb: int = field(default=1024, metadata={"range": Range(1, 100 * 1024, "MB")})


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
    # Bearer tokens for /api/v1 (see engine/http/api/); none: the API refuses every request (403).
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
    """One CRM endpoint (engine/adapters/webhooks.py): the events it gets, signed with ``secret``."""

    url: str = field(metadata={"check": _http_url})
    secret: str = field(metadata={"check": _secret})
    events: tuple[str, ...] = field(metadata={"check": _event_kinds})
    timeout_seconds: float = field(default=10.0, metadata={"range": Range.seconds(300)})
    max_attempts: int = field(default=10, metadata={"range": Range(1, 1000)})
    # the first retry; the wait doubles up to the longest, retry_max_seconds
    retry_seconds: float = field(default=5.0, metadata={"range": Range.seconds(86400)})
    retry_max_seconds: float = field(default=3600.0, metadata={"range": Range.seconds(7 * 86400)})


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Where a call goes: a prompt (then hang-up), a queue, or an IVR tree."""

    prompt: str | None = field(default=None, metadata={"check": lambda v: v if v is None else _sound(v)})
    queue: str | None = None
    ivr: str | None = None
    # queue callers of this number go ahead of lower priorities
    priority: int = field(default=0, metadata={"range": Range(-1000, 1000)})

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

    answer_seconds: float = field(default=10.0, metadata={"range": Range.seconds(600)})
    playback_seconds: float = field(default=600.0, metadata={"range": Range.seconds(86400)})
    hangup_seconds: float = field(default=10.0, metadata={"range": Range.seconds(600)})
    max_call_seconds: float = field(default=4 * 3600.0, metadata={"range": Range.seconds(86400)})


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


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportsConfig:
    """`callcenter report`: callers who hang up within short_abandon_seconds are short abandons,
    counted apart and left out of service level and abandon rate; a handled call is resolved at
    first contact (FCR) when the same number does not call again within fcr_window."""

    short_abandon_seconds: float = field(default=5.0, metadata={"range": Range(0, 3600, "seconds")})
    fcr_window: str = field(default="24h", metadata={"check": duration_check(30 * 86400)})

    @property
    def fcr_window_seconds(self) -> float:
        return parse_duration(self.fcr_window)


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    # Where the engine keeps what must survive a restart outside the database (the write spool).
    state_dir: Path
    # On SIGTERM, calls in progress get this long to finish; the rest stay up in Asterisk and are
    # adopted by the next start.
    shutdown_grace_seconds: float = field(default=10.0, metadata={"range": Range.seconds(3600)})
    # This engine's name among several sharing a database (leases on leads, attempts): the host
    # name unless given. Two engines running at once must not share one.
    instance: str = field(default_factory=socket.gethostname)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    engine: EngineConfig
    asterisk: AsteriskConfig
    database: DatabaseConfig
    http: HttpConfig = HttpConfig()
    inbound: tuple[InboundRoute, ...] = field(default=(), metadata={"max_items": MAX_INBOUND})
    inbound_default: Target = Target(prompt="hello-world")
    timeouts: Timeouts = Timeouts()
    files: FilesConfig = FilesConfig()
    logging: LoggingConfig = LoggingConfig()
    webhooks: tuple[WebhookConfig, ...] = ()   # CRM endpoints told of call events (engine/adapters/webhooks.py)
    reports: ReportsConfig = ReportsConfig()
    agents: tuple[AgentConfig, ...] = field(default=(), metadata={"max_items": MAX_AGENTS})
    queues: tuple[QueueConfig, ...] = field(default=(), metadata={"max_items": MAX_QUEUES})
    agent_codes: AgentCodes = AgentCodes()
    # What agents key after the pause and disposition codes: digits -> a name stored in the database.
    pause_reasons: Mapping[str, str] = field(default_factory=lambda: MappingProxyType(
        {"1": "break", "2": "lunch", "3": "meeting", "4": "training", "9": "other"}),
        metadata={"check": _keyed_codes})
    dispositions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType(
        {"1": "resolved", "2": "follow-up", "3": "escalated", "9": "other"}), metadata={"check": _keyed_codes})
    recording: RecordingConfig = RecordingConfig()
    outbound: OutboundConfig = OutboundConfig()
    # outbound campaigns (also from files.campaigns)
    campaigns: tuple[CampaignConfig, ...] = field(default=(), metadata={"max_items": MAX_CAMPAIGNS})
    trees: Mapping[str, IvrTree] = field(default_factory=lambda: MappingProxyType({}),
                                         metadata={"internal": True})  # loaded from files.ivr
    at: Mark | None = field(default=None, compare=False)   # where the file starts
    # inbound by number, for route(): one dict look-up per call, whatever the number of routes
    _routes: Mapping[str, InboundRoute] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_routes", MappingProxyType({r.number: r for r in reversed(self.inbound)}))

    def problems(self) -> list[Problem]:
        """Rules across the whole configuration (after the agent and queue files are merged)."""
        problems = _unique(self.inbound, "number", "inbound: number {!r} is routed twice")
        problems += _unique(self.queues, "name", "queues: {!r} is defined twice")
        problems += _unique(self.agents, "id", "agents: agent id {!r} is used twice")
        problems += _too_many(self.agents, MAX_AGENTS, "agents")
        problems += _too_many(self.queues, MAX_QUEUES, "queues")
        problems += _too_many(self.campaigns, MAX_CAMPAIGNS, "campaigns")
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

    def warnings(self) -> list[Problem]:
        """What is allowed but most likely a mistake: ``check-config`` prints it and still exits 0;
        ``run`` logs it."""
        found: list[Problem] = []
        sounds = self.asterisk.sounds_dir
        if sounds is not None and not sounds.is_dir():
            found.append(Problem(self.at or Mark("?", 1, 1), f"asterisk.sounds_dir: {sounds} is not a folder on "
                                 f"this machine; the sounds the IVR trees name are not checked"))
        routes = (*self.inbound, self.inbound_default)
        if any(r.queue is not None or r.ivr is not None for r in routes):
            return found
        return found + [Problem(self.at or Mark("?", 1, 1),
                        f"no number is routed anywhere: none of the {len(self.inbound)} inbound numbers nor "
                        f"inbound_default goes to a queue or an IVR tree, so every call hears a prompt "
                        f"({self.inbound_default.prompt}) and is hung up (is the file complete?)")]

    def route(self, dialed: str) -> Target:
        return self._routes.get(dialed, self.inbound_default)


def _at(item: object, message: str) -> Problem:
    return Problem(getattr(item, "at", None) or Mark("?", 1, 1), message)


def _too_many(items: tuple[object, ...], limit: int, what: str) -> list[Problem]:
    """The main file's and ``files.<what>``'s entries together (each file is bounded on its own)."""
    if len(items) <= limit:
        return []
    return [_at(items[limit], f"{what}: {len(items):,} in all (this file and files.{what} together); "
                              f"at most {limit:,} are allowed")]


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


def load_config(path: str | Path, *, warnings: list[Problem] | None = None) -> Config:
    """Load and validate the main file and the agent, queue, campaign and IVR files it names; raise
    :class:`ConfigError` listing every problem. With a ``warnings`` list (``check-config``), unset
    environment variables are warnings, not errors, and :meth:`Config.warnings` is added to it."""
    cfg = load_file(path, Config, warnings=warnings)
    extra: dict[str, tuple[object, ...]] = {}
    problems: list[Problem] = []
    for name, schema in (("agents", AgentsFile), ("queues", QueuesFile), ("campaigns", CampaignsFile)):
        file = getattr(cfg.files, name)
        if file is None:
            continue
        try:
            extra[name] = getattr(cfg, name) + getattr(load_file(file, schema, warnings=warnings), name)
        except ConfigError as exc:
            problems += exc.problems
    if cfg.files.ivr is not None:
        try:
            extra["trees"] = MappingProxyType(load_trees(cfg.files.ivr, warnings=warnings))
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    cfg = replace(cfg, **extra) if extra else cfg
    problems = cfg.problems()
    if problems:
        raise ConfigError(problems)
    if warnings is not None:
        warnings += cfg.warnings()
    return cfg
