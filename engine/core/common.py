"""What every pure state machine of the core shares: timers, errors, the transition-table runner.

The core never reads a clock and never does I/O. Time arrives as ``now`` (seconds since the epoch,
a float) with every event; a machine that needs to wake up later returns :class:`StartTimer`, and
the shell (or the simulator) sends :class:`TimerFired` back when that moment comes. A timer with
the same key replaces the previous one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

__all__ = [
    "CancelTimer", "Command", "Event", "IllegalTransition", "Rejected", "StartTimer", "TimerFired", "Transitions",
]


class Event:
    """Base of every event that goes into a machine (frozen dataclasses, do not subclass them)."""


class Command:
    """Base of every command a machine returns for the shell to carry out."""


@dataclass(frozen=True, slots=True)
class TimerFired(Event):
    key: str


@dataclass(frozen=True, slots=True)
class StartTimer(Command):
    key: str
    at: float


@dataclass(frozen=True, slots=True)
class CancelTimer(Command):
    key: str


class Rejected(Exception):
    """The machine turned the event down; nothing was changed."""


class IllegalTransition(Rejected):
    """An event arrived that the machine's table has no row for. Nothing was changed."""

    def __init__(self, machine: str, state: Enum, event: Event) -> None:
        self.machine, self.state, self.event = machine, state, event
        super().__init__(f"{machine}: no transition from {state.name} on {type(event).__name__}")


S = TypeVar("S")
Handler = Callable[[Any, Any, float], tuple[Any, Sequence[Command]]]


class Transitions(Generic[S]):
    """A table ``(state enum, event type) -> handler``; the only way a machine moves.

    A handler takes ``(state, event, now)`` and returns ``(new state, commands)``. States are frozen,
    so a handler that raises leaves the caller's state untouched, and a missing row raises
    :class:`IllegalTransition` before anything runs.
    """

    def __init__(self, machine: str, phase_of: Callable[[S], Enum],
                 rows: Mapping[tuple[Enum, type[Event]], Handler]) -> None:
        self.machine = machine
        self.phase_of = phase_of
        self.rows = dict(rows)

    def handle(self, state: S, event: Event, now: float) -> tuple[S, list[Command]]:
        handler = self.rows.get((self.phase_of(state), type(event)))
        if handler is None:
            raise IllegalTransition(self.machine, self.phase_of(state), event)
        new_state, commands = handler(state, event, now)
        return new_state, list(commands)

    def allows(self, phase: Enum, event_type: type[Event]) -> bool:
        return (phase, event_type) in self.rows
