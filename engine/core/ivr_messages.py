"""The IVR's messages (engine/core/ivr.py is the interpreter): the events the shell posts to it
(the CRM's answer, the recording's end) and the commands it answers with, for the shell (say,
record, ask the CRM, persist the path) and, once it ends, for the call machine (queue, transfer,
hang up). Plain frozen data. The channel's own events (keys, a prompt's end) are
engine/core/channel.py's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from engine.core.common import Command, Event

__all__ = ["CallbackWanted", "HttpCall", "HttpDone", "IvrHangup", "RecordMessage", "RecordingDone", "SetLanguage",
           "Step", "SurveyAnswer", "ToQueue", "TransferTo"]


# -- events ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HttpDone(Event):
    ok: bool
    data: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RecordingDone(Event):
    ok: bool
    seconds: float | None = None


# -- commands --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HttpCall(Command):
    method: str
    url: str
    body: Mapping[str, str]
    timeout: float


@dataclass(frozen=True, slots=True)
class RecordMessage(Command):
    max_seconds: float
    beep: bool


@dataclass(frozen=True, slots=True)
class SetLanguage(Command):
    code: str


@dataclass(frozen=True, slots=True)
class Step(Command):
    """One line of the call's IVR path."""

    tree: str
    version: str
    node: str
    verb: str
    at: float
    input: str = ""
    result: str = ""


@dataclass(frozen=True, slots=True)
class SurveyAnswer(Command):
    question: str
    answer: int | None  # None: no answer
    at: float


@dataclass(frozen=True, slots=True)
class CallbackWanted(Command):
    number: str
    queue: str | None
    at: float


@dataclass(frozen=True, slots=True)
class ToQueue(Command):
    queue: str
    priority: int
    skills: Mapping[str, int] | None
    after: tuple[str, str] | None  # (tree, node) the caller goes to when the agent hangs up


@dataclass(frozen=True, slots=True)
class TransferTo(Command):
    target: str
    timeout: float
    on_failure: tuple[str, str] | None


@dataclass(frozen=True, slots=True)
class IvrHangup(Command):
    pass
