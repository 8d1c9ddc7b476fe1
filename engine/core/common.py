"""What every pure state machine of the core shares: timers, errors, the transition-table runner.

The core never reads a clock and never does I/O. Time arrives as ``now`` (seconds since the epoch,
a float) with every event; a machine that needs to wake up later returns :class:`StartTimer`, and
the shell (or the simulator) sends :class:`TimerFired` back when that moment comes. A timer with
the same key replaces the previous one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

__all__ = [
    "CancelTimer", "Command", "Event", "IllegalTransition", "Rejected", "Row", "StartTimer", "TimerFired",
    "Transitions", "UndeclaredTarget", "stay",
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


class UndeclaredTarget(Exception):
    """A handler moved to a state its row does not name: a bug in the machine. Nothing was changed
    (states are frozen: the caller still holds the state it passed in)."""

    def __init__(self, machine: str, state: Enum, event: Event, target: Enum) -> None:
        self.machine, self.state, self.event, self.target = machine, state, event, target
        super().__init__(f"{machine}: {state.name} on {type(event).__name__} went to {target.name}, "
                         "which its row does not name")


S = TypeVar("S")
Handler = Callable[[Any, Any, float], tuple[Any, Sequence[Command]]]


@dataclass(frozen=True, slots=True)
class Row:
    """One transition: the states it may lead to (``to``) and the handler that picks one."""

    to: tuple[Enum, ...]
    handler: Handler


def stay(handler: Handler, states: Iterable[Enum],
         events: Iterable[type[Event]]) -> dict[tuple[Enum, type[Event]], Row]:
    """Rows for events that leave each of ``states`` where it is (late or crossing events, a request
    kept for later): every ``(state, event)`` pair, each row naming only its own state."""
    return {(s, e): Row((s,), handler) for s in states for e in tuple(events)}


class Transitions(Generic[S]):
    """A table ``(state enum, event type) -> Row(targets, handler)``; the only way a machine moves.

    A handler takes ``(state, event, now)`` and returns ``(new state, commands)``. States are frozen,
    so a handler that raises leaves the caller's state untouched; a missing row raises
    :class:`IllegalTransition` before anything runs, and a handler that lands on a state its row
    does not name raises :class:`UndeclaredTarget` (the new state is dropped). :meth:`edges` lists
    the table as ``(from, event, to)`` for the diagrams in docs/architecture.md, which begin at
    ``initial``: the state (or states) a machine's life starts in (the enum's first member unless given).
    """

    def __init__(self, machine: str, phase_of: Callable[[S], Enum],
                 rows: Mapping[tuple[Enum, type[Event]], Row],
                 initial: Enum | tuple[Enum, ...] | None = None) -> None:
        if not rows:
            raise TypeError(f"{machine}: a table with no rows")
        self.machine = machine
        self.phase_of = phase_of
        self.states: type[Enum] = type(next(iter(rows))[0])
        self.rows: dict[tuple[Enum, type[Event]], Row] = {}
        for (phase, event), row in rows.items():
            if not (isinstance(row, Row) and isinstance(row.to, tuple) and row.to):
                raise TypeError(f"{machine}: the row {phase.name} on {event.__name__} names no target states; "
                                f"write Row(to=(the states it may lead to, ...), handler), not {row!r}")
            strangers = [s for s in (phase, *row.to) if type(s) is not self.states]
            if strangers:
                raise TypeError(f"{machine}: the row {phase.name} on {event.__name__} names {strangers!r}, "
                                f"which are not states of {self.states.__name__}")
            self.rows[phase, event] = row
        firsts = (next(iter(self.states)),) if initial is None else initial if isinstance(initial, tuple) else (initial,)
        for first in firsts:
            if type(first) is not self.states:
                raise TypeError(f"{machine}: the initial state {first!r} is not one of {self.states.__name__}")
        self.initials: tuple[Enum, ...] = firsts   # a machine may start in more than one state
        self.initial: Enum = firsts[0]

    def handle(self, state: S, event: Event, now: float) -> tuple[S, list[Command]]:
        phase = self.phase_of(state)
        row = self.rows.get((phase, type(event)))
        if row is None:
            raise IllegalTransition(self.machine, phase, event)
        new_state, commands = row.handler(state, event, now)
        target = self.phase_of(new_state)
        if target not in row.to:
            raise UndeclaredTarget(self.machine, phase, event, target)
        return new_state, list(commands)

    def allows(self, phase: Enum, event_type: type[Event]) -> bool:
        return (phase, event_type) in self.rows

    def edges(self) -> list[tuple[Enum, str, Enum]]:
        """Every declared move: (from state, event name, to state), in table order."""
        return [(phase, event.__name__, to) for (phase, event), row in self.rows.items() for to in row.to]
