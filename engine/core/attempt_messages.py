"""What goes into an outbound attempt (events) and what comes out of it (commands): the
vocabulary of :mod:`engine.core.attempt`, shared by the dialer's shell and the simulator."""

from __future__ import annotations

from dataclasses import dataclass

from engine.core.common import Command, Event

__all__ = ["AgentFree", "AgentKnown", "AgentWrapup", "AmdUnavailable", "AmdVerdict", "Answered", "CallAbandoned", "CallCause", "CallConnected", "CallOver", "Closed", "Count", "CustomerAnswered", "CustomerDialled", "CustomerFailed", "Disposition", "Gone", "HandOver", "HangUpCustomer", "Hungup", "Key", "Originate", "OriginateFailed", "PlayTo", "PlaybackFailed", "PlaybackFinished", "Probe", "Rang", "ScreenWithAmd", "Tell"]


# -- events ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Rang(Event):
    pass


@dataclass(frozen=True, slots=True)
class Answered(Event):
    pass


@dataclass(frozen=True, slots=True)
class OriginateFailed(Event):
    invalid_number: bool = False


@dataclass(frozen=True, slots=True)
class Hungup(Event):
    """The customer's channel is gone (before the hand-over, or an agentless call)."""

    cause: int | None = None


@dataclass(frozen=True, slots=True)
class AmdVerdict(Event):
    status: str = "NOTSURE"     # HUMAN, MACHINE, NOTSURE, HANGUP


@dataclass(frozen=True, slots=True)
class AmdUnavailable(Event):
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Gone(Event):
    """The channel the watchdog looked for no longer exists (its end was never heard)."""


@dataclass(frozen=True, slots=True)
class PlaybackFinished(Event):
    playback: str


@dataclass(frozen=True, slots=True)
class PlaybackFailed(Event):
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Key(Event):
    digit: str


@dataclass(frozen=True, slots=True)
class CallConnected(Event):
    agent_id: str


@dataclass(frozen=True, slots=True)
class CallAbandoned(Event):
    pass


@dataclass(frozen=True, slots=True)
class CallCause(Event):
    cause: int | None


@dataclass(frozen=True, slots=True)
class CallOver(Event):
    pass


@dataclass(frozen=True, slots=True)
class AgentWrapup(Event):
    at: float


@dataclass(frozen=True, slots=True)
class AgentFree(Event):
    at: float


@dataclass(frozen=True, slots=True)
class AgentKnown(Event):
    agent_id: str


@dataclass(frozen=True, slots=True)
class CustomerDialled(Event):
    pass


@dataclass(frozen=True, slots=True)
class CustomerAnswered(Event):
    agent_id: str


@dataclass(frozen=True, slots=True)
class CustomerFailed(Event):
    outcome: str    # busy, no_answer, failed


@dataclass(frozen=True, slots=True)
class Disposition(Event):
    name: str


# -- commands ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Originate(Command):
    pass


@dataclass(frozen=True, slots=True)
class ScreenWithAmd(Command):
    pass


@dataclass(frozen=True, slots=True)
class PlayTo(Command):
    playback: str
    media: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HangUpCustomer(Command):
    reason: str


@dataclass(frozen=True, slots=True)
class Probe(Command):
    """Ask whether the channel still exists; answer :class:`Gone` if it does not."""


@dataclass(frozen=True, slots=True)
class HandOver(Command):
    """A live answer: make it a call in the campaign's queue (with the connect grace)."""


@dataclass(frozen=True, slots=True)
class Tell(Command):
    """For the pacer (engine/core/pacing_model.py)."""

    event: Event


@dataclass(frozen=True, slots=True)
class Count(Command):
    """For the campaign's abandon rate over its window: ``live``, ``abandoned`` or ``machine``."""

    kind: str


@dataclass(frozen=True, slots=True)
class Closed(Command):
    outcome: str                     # answered, abandoned, machine, busy, no_answer, invalid_number, failed
    wrapup: float | None = None
