"""One originated leg, from the originate to its end, as a pure machine.

Theory of operation
-------------------
Every channel the engine places lives the same life, whoever placed it: an agent's offer
(engine/runtime/acdservice.py), a callback's customer (engine/runtime/callbacks.py), an IVR or agent
transfer's target (engine/runtime/calls.py) and the dialer's customer (engine/runtime/campaignrun.py)::

    DIALLING --Ringing--> RINGING --Up--> UP --Left / Destroyed--> GONE
        |                    |
        +--Destroyed, NotPlaced--+--> FAILED

The runtime's leg watch (engine/runtime/legs.py) translates the channel's ARI events into these
(``ChannelStateChange`` to Ringing, the first ``StasisStart``, ``StasisEnd``, ``ChannelDestroyed``;
a refused ``POST /channels`` is :class:`NotPlaced`), and tells the leg's owner what the machine
says, once each: :class:`LegRinging` (the first ring only), :class:`LegAnswered`,
:class:`LegFailed` (with the Q.850 cause and whether it rang: the owner reads
engine/core/causes.py, the one cause table, in its own words) and :class:`LegEnded`. Late and
repeated events (a second 180, the ``ChannelDestroyed`` after a ``StasisEnd``) have rows that
change nothing, so an owner hears of each moment of the leg exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from engine.core.common import Command, Event, Row, Transitions, stay

__all__ = ["Destroyed", "Left", "Leg", "LegAnswered", "LegEnded", "LegFailed", "LegRinging", "LegStage",
           "NotPlaced", "Ringing", "TABLE", "Up", "handle", "start"]


class LegStage(Enum):
    DIALLING = "dialling"     # POST /channels sent (or about to be); nothing heard yet
    RINGING = "ringing"       # the far end said it rings (180/183)
    UP = "up"                 # answered: the channel entered our application
    FAILED = "failed"         # ended before the answer (busy, no answer, refused, unreachable)
    GONE = "gone"             # ended after the answer


@dataclass(frozen=True, slots=True)
class Leg:
    channel_id: str
    stage: LegStage = LegStage.DIALLING
    rang: bool = False
    answered_at: float | None = None
    ended_at: float | None = None
    cause: int | None = None


# -- events (the channel's ARI events, translated) ---------------------------------------------
@dataclass(frozen=True, slots=True)
class Ringing(Event):
    pass


@dataclass(frozen=True, slots=True)
class Up(Event):
    pass


@dataclass(frozen=True, slots=True)
class Left(Event):
    """The answered channel left our application (StasisEnd)."""


@dataclass(frozen=True, slots=True)
class Destroyed(Event):
    cause: int | None = None


@dataclass(frozen=True, slots=True)
class NotPlaced(Event):
    """Asterisk refused the originate (no contact, a bad endpoint, an ARI error)."""

    detail: str = ""
    permanent: bool = False   # the number or endpoint itself is wrong (ARI 400/404)


# -- commands (what the owner hears) -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LegRinging(Command):
    channel_id: str


@dataclass(frozen=True, slots=True)
class LegAnswered(Command):
    channel_id: str


@dataclass(frozen=True, slots=True)
class LegFailed(Command):
    channel_id: str
    cause: int | None          # Q.850, None when the originate itself was refused
    rang: bool
    detail: str = ""           # the refusal's text (NotPlaced)
    permanent: bool = False


@dataclass(frozen=True, slots=True)
class LegEnded(Command):
    channel_id: str
    cause: int | None
    seconds: float             # answered for this long


def start(channel_id: str) -> Leg:
    return Leg(channel_id)


def _ring(leg: Leg, event: Ringing, now: float) -> tuple[Leg, list[Command]]:
    return replace(leg, stage=LegStage.RINGING, rang=True), [LegRinging(leg.channel_id)]


def _up(leg: Leg, event: Up, now: float) -> tuple[Leg, list[Command]]:
    return replace(leg, stage=LegStage.UP, answered_at=now), [LegAnswered(leg.channel_id)]


def _failed(leg: Leg, event: Destroyed | NotPlaced, now: float) -> tuple[Leg, list[Command]]:
    if isinstance(event, NotPlaced):
        failed = LegFailed(leg.channel_id, None, leg.rang, event.detail, event.permanent)
    else:
        failed = LegFailed(leg.channel_id, event.cause, leg.rang)
    return replace(leg, stage=LegStage.FAILED, ended_at=now, cause=failed.cause), [failed]


def _ended(leg: Leg, event: Left | Destroyed, now: float) -> tuple[Leg, list[Command]]:
    cause = event.cause if isinstance(event, Destroyed) else None
    answered = leg.answered_at if leg.answered_at is not None else now
    return (replace(leg, stage=LegStage.GONE, ended_at=now, cause=cause),
            [LegEnded(leg.channel_id, cause, max(0.0, now - answered))])


def _same(leg: Leg, event: Event, now: float) -> tuple[Leg, list[Command]]:
    return leg, []


S = LegStage
TABLE: Transitions[Leg] = Transitions("leg", lambda leg: leg.stage, {
    (S.DIALLING, Ringing): Row((S.RINGING,), _ring),
    (S.DIALLING, Up): Row((S.UP,), _up),
    (S.DIALLING, Destroyed): Row((S.FAILED,), _failed),
    (S.DIALLING, NotPlaced): Row((S.FAILED,), _failed),
    (S.RINGING, Up): Row((S.UP,), _up),
    (S.RINGING, Destroyed): Row((S.FAILED,), _failed),
    (S.RINGING, NotPlaced): Row((S.FAILED,), _failed),
    (S.UP, Left): Row((S.GONE,), _ended),
    (S.UP, Destroyed): Row((S.GONE,), _ended),
    # Late and repeated news: a second 180, a StasisStart after the answer (back from AMD's dialplan),
    # the ChannelDestroyed that follows a StasisEnd, anything after the end.
    **stay(_same, (S.RINGING,), (Ringing,)),
    **stay(_same, (S.UP,), (Ringing, Up, NotPlaced)),
    **stay(_same, (S.FAILED, S.GONE), (Ringing, Up, Left, Destroyed, NotPlaced)),
})


def handle(leg: Leg, event: Event, now: float) -> tuple[Leg, list[Command]]:
    return TABLE.handle(leg, event, now)
