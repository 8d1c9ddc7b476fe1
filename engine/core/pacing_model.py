"""What the dialer shell tells a pacer and asks it (engine/core/pacing.py says how it is used):
the events it observes, the campaign's snapshot, the settings, and the base every algorithm
shares. Pure: no I/O, no clock.

A pacer is a mutable machine (engine/core/txn.py) with the shape of the others:
``step(pacer, event, now) -> (pacer, commands)``. Its events are the observations and
:class:`Decide` (how many dials now, for a :class:`Snapshot`), whose command is :class:`Dial`.
Deciding is an event, not a query, because it moves the pacer: VICIdial's clocks and samples, the
predictive controller's integral and its cached curves. Each step is one transaction: an event
that raises (an unknown event, a NaN duration half-way through an estimator) leaves the pacer as
it was, and nothing changes a pacer outside a step. A negative duration (an observation's, or an
age in the snapshot) is refused before the step begins (ValueError). An algorithm overrides
:meth:`Pacer.learn` and :meth:`Pacer.decide`, which run inside the step; :meth:`Pacer.observe` and
:meth:`Pacer.dials_wanted` are the step for the shell's two questions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from engine.core.common import Command, Event
from engine.core.txn import Machine, atomic

__all__ = ["Abandoned", "Connected", "Decide", "Dial", "DialResult", "Dialed", "Handled", "OBSERVATIONS", "Pacer",
           "PacingSettings", "Snapshot", "step"]


# -- what the shell tells the pacer ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Dialed(Event):
    """A line was seized and a number dialled (one event per dial)."""


@dataclass(frozen=True, slots=True)
class DialResult(Event):
    """How a dial ended its ringing.

    ``result``: ``live`` (handed to an agent: a person, or with AMD off any answer), ``machine``
    (hung up by AMD), ``busy`` (busy or SIT tone), ``no_answer`` (rang out at the timeout).
    ``ring_seconds``: dial to answer (to the busy tone, to the timeout). ``screen_seconds``: answer
    to AMD's verdict (0 without AMD). Sent when the result is known (for live/machine: at the
    verdict)."""

    result: Literal["live", "machine", "busy", "no_answer"]
    ring_seconds: float
    screen_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Connected(Event):
    """A live answer reached an agent ``wait_seconds`` after it was handed over."""

    wait_seconds: float


@dataclass(frozen=True, slots=True)
class Abandoned(Event):
    """A live answer found no agent within the connect grace (the safe-harbour message played)."""


@dataclass(frozen=True, slots=True)
class Handled(Event):
    """An agent finished a call: ``talk_seconds`` connected, then ``wrapup_seconds`` of wrap-up."""

    talk_seconds: float
    wrapup_seconds: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The campaign now, as the shell sees it.

    ``on_call``: seconds since each on-call agent was connected. ``wrapup``: seconds of wrap-up
    left for each agent in wrap-up. ``ringing``: seconds since each unanswered dial was placed.
    ``screening``: seconds since each answered call AMD is still judging was answered.
    ``waiting``: live answers handed over and not yet connected (inside the grace).
    ``live_answers``/``abandoned``: the campaign's counters over its abandon window.
    ``inbound_waiting``/``inbound_rate``: blending: inbound callers waiting for these agents beyond
    the idle ones kept for them, and inbound arrivals per second expected for them."""

    available: int
    on_call: tuple[float, ...] = ()
    wrapup: tuple[float, ...] = ()
    ringing: tuple[float, ...] = ()
    screening: tuple[float, ...] = ()
    waiting: int = 0
    paused: int = 0
    live_answers: int = 0
    abandoned: int = 0
    inbound_waiting: int = 0
    inbound_rate: float = 0.0

    @property
    def in_flight(self) -> int:
        """Lines that may still become an offer to an agent."""
        return len(self.ringing) + len(self.screening) + self.waiting

    @property
    def logged_in(self) -> int:
        return self.available + len(self.on_call) + len(self.wrapup) + self.paused


@dataclass(frozen=True, slots=True)
class Decide(Event):
    """How many numbers to dial now, the campaign being as ``snapshot`` says."""

    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class Dial(Command):
    """Place ``count`` new dials (through the compliance gate); no command: none."""

    count: int


OBSERVATIONS = (Dialed, DialResult, Connected, Abandoned, Handled)


@dataclass(frozen=True, slots=True)
class PacingSettings:
    """The campaign's own settings (the dialer knows them; they are not traffic estimates)."""

    abandon_target: float = 0.03          # of live answers, over the campaign's window
    connect_grace_seconds: float = 2.0
    ring_timeout_seconds: float = 20.0    # the dialer's no-answer timeout
    max_lines_per_agent: float = 12.0     # a hard cap on lines in flight, whatever the algorithm says


class Pacer(Machine):
    """The interface the dialer shell calls. Subclasses override :meth:`decide` (and :meth:`learn`)."""

    name = "pacer"

    def __init__(self, settings: PacingSettings | None = None) -> None:
        self.settings = settings or PacingSettings()
        self.dials = 0

    def observe(self, event: Event, now: float) -> None:
        """Tell the pacer what happened (one of :data:`OBSERVATIONS`): ``step`` without commands."""
        step(self, event, now)

    def dials_wanted(self, snap: Snapshot, now: float) -> int:
        """How many numbers to dial now: what ``step`` with :class:`Decide` does, its :class:`Dial`
        counted (0 without one), less the two objects (the shell asks at least once a second)."""
        _no_negative(snap)
        return max(0, atomic(self, self.decide, snap, now))

    # -- what an algorithm overrides (called inside the step's transaction) -----------------------
    def learn(self, event: Event, now: float) -> None:
        if isinstance(event, Dialed):
            self.dials += 1

    def decide(self, snap: Snapshot, now: float) -> int:
        raise NotImplementedError

    def _cap(self, snap: Snapshot, make: int) -> int:
        room = int(self.settings.max_lines_per_agent * snap.logged_in) - snap.in_flight
        return max(0, min(make, room))


def step(pacer: Pacer, event: Event, now: float) -> tuple[Pacer, list[Command]]:
    """``(pacer, event, now) -> (pacer, commands)``: the same pacer, changed by ``event`` (or, if it
    raises, not at all). An observation has no command; :class:`Decide` has :class:`Dial`, or none
    for no dial."""
    if type(event) is Decide:
        _no_negative(event.snapshot)
        n = atomic(pacer, pacer.decide, event.snapshot, now)
        return pacer, [Dial(n)] if n > 0 else []
    if type(event) not in OBSERVATIONS:
        raise TypeError(f"a pacer has no handler for {type(event).__name__}")
    _no_negative(event)
    atomic(pacer, pacer.learn, event, now)
    return pacer, []


# The durations of each message, in seconds: none may be negative.
_DURATIONS = {DialResult: ("ring_seconds", "screen_seconds"), Connected: ("wait_seconds",),
              Handled: ("talk_seconds", "wrapup_seconds"), Snapshot: ("on_call", "wrapup", "ringing", "screening")}


def _no_negative(message: Event | Snapshot) -> None:
    """Refuse (ValueError) a message with a duration below zero, before the pacer takes anything
    from it: a clock read backwards, or a bug; either way nothing to learn or forecast from. (NaN
    and infinity pass, as before: an estimator that reads one raises, and the step is undone.)"""
    for name in _DURATIONS.get(type(message), ()):
        value = getattr(message, name)
        for seconds in value if isinstance(value, tuple) else (value,):
            if seconds < 0:
                raise ValueError(f"{type(message).__name__}.{name}: a duration cannot be negative, got {seconds:g} s")


def _round(x: float) -> int:
    """Round half up (not Python's round-half-even)."""
    return math.floor(x + 0.5)
