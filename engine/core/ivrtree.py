"""IVR trees as the core reads them: one frozen type per verb, a node, opening hours, a tree.

The YAML loader (:mod:`engine.config.ivr`) builds these from the files and checks them; each field's
``metadata`` (``check``, ``range``, ``max_items``) is what the loader enforces. Nothing here
reads a file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.core.hours import DAYS as _DAYS
from engine.core.hours import Week
from engine.core.schema import Mark, Range

__all__ = ["MAX_NODES", "MAX_TREES", "VERBS", "Branch", "Callback", "Condition", "Gather", "Goto", "Hangup",
           "Hours", "Http", "IvrTree", "Language", "Menu", "Node", "Play", "Question", "QueueTo", "SetVars",
           "Survey", "Transfer", "Tree", "Voicemail"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SOUND = re.compile(r"^(digits|number|characters|date):.+$|^[A-Za-z0-9_][A-Za-z0-9_./-]{0,200}$")
_KEYS = re.compile(r"^[0-9*#]$")
_SPAN = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]-(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")   # 24:00: an end only
MAX_TREES = 1_000          # files in the files.ivr folder
MAX_NODES = 5_000          # nodes in one tree
_SECONDS = {"range": Range.seconds(3600)}
_RETRIES = {"range": Range(0, 10, "retries")}


def _empty() -> Mapping[str, str]:
    return MappingProxyType({})


def _sounds(value: tuple[str, ...]) -> tuple[str, ...]:
    for item in value:
        if not _SOUND.match(item) or ".." in item:
            raise ValueError(f"expected sound names (or digits:/number:/characters:/date: items), got {item!r}")
    return value


def _pattern(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


def _variable(value: str) -> str:
    if not re.match(r"^[a-z_][a-z0-9_]*$", value):
        raise ValueError(f"expected a variable name (lower-case letters, digits, _), got {value!r}")
    return value


# -- the verbs -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Play:
    say: tuple[str, ...] = field(metadata={"check": _sounds})
    barge_in: bool = False          # a key stops the prompt and goes on to next
    next: str | None = None         # none: hang up after the prompt


@dataclass(frozen=True, slots=True, kw_only=True)
class Menu:
    prompt: tuple[str, ...] = field(metadata={"check": _sounds})
    options: Mapping[str, str]      # key -> node
    timeout_seconds: float = field(default=5.0, metadata=_SECONDS)
    retries: int = field(default=2, metadata=_RETRIES)
    invalid: tuple[str, ...] = field(default=("pbx-invalid",), metadata={"check": _sounds})
    timeout: tuple[str, ...] = field(default=(), metadata={"check": _sounds})
    after_retries: str | None = None  # node after the last retry; none: hang up

    def __post_init__(self) -> None:
        bad = [k for k in self.options if not _KEYS.match(k)]
        if bad:
            raise ValueError(f"menu options are single keys 0-9, * or #; got {', '.join(map(repr, bad))}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Gather:
    prompt: tuple[str, ...] = field(metadata={"check": _sounds})
    variable: str = field(metadata={"check": _variable})
    max_digits: int = field(default=20, metadata={"range": Range(1, 64)})
    terminator: str = "#"
    timeout_seconds: float = field(default=5.0, metadata=_SECONDS)
    pattern: str | None = field(default=None, metadata={"check": _pattern})  # the whole input must match
    retries: int = field(default=2, metadata=_RETRIES)
    invalid: tuple[str, ...] = field(default=("pbx-invalid",), metadata={"check": _sounds})
    timeout: tuple[str, ...] = field(default=(), metadata={"check": _sounds})
    next: str
    after_retries: str | None = None

    def __post_init__(self) -> None:
        if self.terminator not in ("#", "*", ""):
            raise ValueError(f"terminator: expected #, * or nothing, got {self.terminator!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    """All the tests given must hold; ``then`` is where the call goes."""

    variable: str | None = None
    equals: str | None = None
    matches: str | None = field(default=None, metadata={"check": _pattern})
    caller: str | None = field(default=None, metadata={"check": _pattern})   # a pattern on the caller number
    dialed: str | None = field(default=None, metadata={"check": _pattern})   # a pattern on the dialed number
    open: str | None = None     # the name of an hours set: true while open
    closed: str | None = None   # true while that hours set is closed
    then: str
    at: Mark | None = None

    def __post_init__(self) -> None:
        if (self.equals is not None or self.matches is not None) and self.variable is None:
            raise ValueError("equals / matches test a variable: give variable")
        if self.variable is not None and self.equals is None and self.matches is None:
            raise ValueError(f"variable {self.variable}: give equals or matches")


@dataclass(frozen=True, slots=True, kw_only=True)
class Branch:
    when: tuple[Condition, ...]
    default: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetVars:
    variables: Mapping[str, str]
    next: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Language:
    code: str
    next: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueTo:
    name: str
    priority: str = "0"                 # a number, or "{variable}"
    skills: Mapping[str, str] = field(default_factory=_empty)  # skill -> level or "{variable}"
    after: str | None = None            # where the caller goes when the agent hangs up (a survey)


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    to: str                             # a number (dialled like callbacks) or an endpoint (PJSIP/...)
    timeout_seconds: float = field(default=30.0, metadata=_SECONDS)
    on_failure: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup:
    say: tuple[str, ...] = field(default=(), metadata={"check": _sounds})


@dataclass(frozen=True, slots=True, kw_only=True)
class Voicemail:
    prompt: tuple[str, ...] = field(default=("vm-intro",), metadata={"check": _sounds})
    max_seconds: float = field(default=120.0, metadata=_SECONDS)
    beep: bool = True
    next: str | None = None             # none: thank and hang up


@dataclass(frozen=True, slots=True, kw_only=True)
class Callback:
    """Confirm the caller's number (1 yes, 2 type another), then store a callback request."""

    prompt: tuple[str, ...] = field(default=("auth-thankyou",), metadata={"check": _sounds})
    queue: str | None = None            # the queue whose agents call back
    next: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Http:
    url: str
    method: Literal["GET", "POST"] = "GET"
    body: Mapping[str, str] = field(default_factory=_empty)
    timeout_seconds: float = field(default=3.0, metadata=_SECONDS)
    assign: Mapping[str, str] = field(default_factory=_empty)  # variable -> path in the JSON answer (a.b.c)
    next: str
    on_failure: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Question:
    name: str = field(metadata={"check": _variable})
    prompt: tuple[str, ...] = field(metadata={"check": _sounds})


@dataclass(frozen=True, slots=True, kw_only=True)
class Survey:
    questions: tuple[Question, ...]
    timeout_seconds: float = field(default=6.0, metadata=_SECONDS)
    thanks: tuple[str, ...] = field(default=("auth-thankyou",), metadata={"check": _sounds})
    next: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Goto:
    node: str | None = None
    tree: str | None = None

    def __post_init__(self) -> None:
        if self.node is None and self.tree is None:
            raise ValueError("goto: give node, tree, or both")


VERBS = ("play", "menu", "gather", "branch", "set", "language", "queue", "transfer", "hangup", "voicemail",
         "record", "callback", "http", "survey", "goto")


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    play: Play | None = None
    menu: Menu | None = None
    gather: Gather | None = None
    branch: Branch | None = None
    set: SetVars | None = None
    language: Language | None = None
    queue: QueueTo | None = None
    transfer: Transfer | None = None
    hangup: Hangup | None = None
    voicemail: Voicemail | None = None
    record: Voicemail | None = None
    callback: Callback | None = None
    http: Http | None = None
    survey: Survey | None = None
    goto: Goto | None = None
    at: Mark | None = None

    def __post_init__(self) -> None:
        given = [v for v in VERBS if getattr(self, v) is not None]
        if len(given) != 1:
            raise ValueError(f"a node is one verb ({', '.join(VERBS)}); got {', '.join(given) or 'none'}")

    @property
    def verb(self) -> str:
        return next(v for v in VERBS if getattr(self, v) is not None)

    @property
    def body(self) -> object:
        return getattr(self, self.verb)


@dataclass(frozen=True, slots=True, kw_only=True)
class Hours:
    timezone: str
    weekly: Mapping[str, tuple[str, ...]]     # mon..sun -> ["09:00-12:30", "22:00-02:00" (into the next day)]
    holidays: tuple[str, ...] = ()            # YYYY-MM-DD: closed all day
    week: Week = field(init=False, repr=False, compare=False)   # the same, read once (engine.core.hours)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r} (e.g. Europe/London)") from None
        for day, spans in self.weekly.items():
            if day not in _DAYS:
                raise ValueError(f"weekly: days are {', '.join(_DAYS)}; got {day!r}")
            for span in spans:
                if not _SPAN.match(span):
                    raise ValueError(f"weekly.{day}: expected spans like 09:00-17:00 (hours 00 to 23, minutes "
                                     f"00 to 59; 24:00 only as an end), got {span!r}")
        for day in self.holidays:
            try:
                date.fromisoformat(day)
            except ValueError:
                raise ValueError(f"holidays: expected YYYY-MM-DD, got {day!r}") from None
        object.__setattr__(self, "week", Week.parse(self.weekly, self.holidays))


@dataclass(frozen=True, slots=True, kw_only=True)
class Tree:
    start: str
    nodes: Mapping[str, Node] = field(metadata={"max_items": MAX_NODES})
    hours: Mapping[str, Hours] = field(default_factory=lambda: MappingProxyType({}))
    at: Mark | None = None


@dataclass(frozen=True, slots=True)
class IvrTree:
    """A loaded tree: its name, the version calls record (a hash of the file), and the nodes."""

    name: str
    version: str
    file: str
    tree: Tree

    def node(self, name: str) -> Node:
        return self.tree.nodes[name]
