"""What happens on one channel, as the core's machines see it: events from Asterisk and the
commands that act on the channel. Shared by the call, IVR, feature-code and callback machines."""

from __future__ import annotations

from dataclasses import dataclass

from engine.core.common import Command, Event

__all__ = ["Answer", "Answered", "ChannelGone", "Dtmf", "Hangup", "HangupRequested", "Play", "PlaybackDone",
           "RequestFailed", "StopPlayback"]


@dataclass(frozen=True, slots=True)
class Answered(Event):
    pass


@dataclass(frozen=True, slots=True)
class PlaybackDone(Event):
    playback_id: str
    ok: bool = True


@dataclass(frozen=True, slots=True)
class HangupRequested(Event):
    """Someone asked for the channel to hang up (ARI ChannelHangupRequest): the cause is known now
    (None for a soft hang-up, whose event carries flags, not a cause), the channel leaves the
    application next."""

    cause: int | None


@dataclass(frozen=True, slots=True)
class ChannelGone(Event):
    """The channel left the application (StasisEnd) or was destroyed. ``cause`` None: use the one
    the hang-up request carried."""

    cause: int | None = None
    cause_text: str = ""


@dataclass(frozen=True, slots=True)
class RequestFailed(Event):
    """A command could not be carried out; ``gone`` when the channel no longer exists."""

    command: str
    gone: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Dtmf(Event):
    digit: str
    from_agent: bool = False


@dataclass(frozen=True, slots=True)
class Answer(Command):
    pass


@dataclass(frozen=True, slots=True)
class Play(Command):
    media: tuple[str, ...]  # ARI media URIs: sound:NAME, number:N, digits:N
    playback_id: str


@dataclass(frozen=True, slots=True)
class StopPlayback(Command):
    playback_id: str


@dataclass(frozen=True, slots=True)
class Hangup(Command):
    reason: str = "normal"
