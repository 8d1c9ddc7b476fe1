"""The main configuration file: what the engine connects to and where its other files are.

The schema is the dataclasses below (see :mod:`engine.yamlconf` for how YAML becomes them).
examples/callcenter.yaml is a commented example of every key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from .yamlconf import ConfigError, Mark, Problem, load_file

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


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpConfig:
    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = field(default=8480, metadata={"check": partial(_port, any_free=True)})


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """What an inbound call gets. Until IVR trees and queues exist, a prompt and a hang-up."""

    prompt: str = field(default="hello-world", metadata={"check": _sound})


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundRoute:
    number: str = field(metadata={"check": _number})
    prompt: str = field(default="hello-world", metadata={"check": _sound})
    at: Mark | None = None


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


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    # Where the engine keeps what must survive a restart outside the database (the write spool).
    state_dir: Path
    # On SIGTERM, calls in progress get this long to finish; the rest stay up in Asterisk and are
    # adopted by the next start.
    shutdown_grace_seconds: float = field(default=10.0, metadata={"check": _positive})


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    engine: EngineConfig
    asterisk: AsteriskConfig
    database: DatabaseConfig
    http: HttpConfig = HttpConfig()
    inbound: tuple[InboundRoute, ...] = ()
    inbound_default: Target = Target()
    timeouts: Timeouts = Timeouts()
    files: FilesConfig = FilesConfig()
    logging: LoggingConfig = LoggingConfig()

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        first: dict[str, InboundRoute] = {}
        for r in self.inbound:
            if r.number in first:
                line = first[r.number].at.line if first[r.number].at else "?"
                problems.append(Problem(r.at or Mark("?", 0, 0),
                                        f"inbound: number {r.number!r} is routed twice (first on line {line})"))
            first.setdefault(r.number, r)
        if problems:
            raise ConfigError(problems)

    def route(self, dialed: str) -> Target | InboundRoute:
        for r in self.inbound:
            if r.number == dialed:
                return r
        return self.inbound_default


def load_config(path: str | Path) -> Config:
    """Load and validate the main file; raise :class:`ConfigError` listing every problem."""
    return load_file(path, Config)
