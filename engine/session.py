"""The shell around one pure state machine: an event queue, timers, and a command executor.

One :class:`Session` per call (later: per agent). Its task takes events one at a time from its own
queue, or a :class:`TimerFired` when the earliest timer is due, passes each to the machine's
``handle(state, event, now)`` and carries out the commands that come back, in order. Every
transition is logged as one line ``from -> event -> to``. Nothing that goes wrong inside a session
escapes it: a bug in the machine (:class:`IllegalTransition`) is logged and the event dropped,
an executor failure is logged and turned into an event the machine understands.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from enum import Enum
from typing import Any, Generic, TypeVar

from .core.common import CancelTimer, Command, Event, IllegalTransition, StartTimer, TimerFired

__all__ = ["Session"]

S = TypeVar("S")

Clock = Callable[[], float]


class Session(Generic[S]):
    def __init__(self, *, state: S, handle: Callable[[S, Event, float], tuple[S, Sequence[Command]]],
                 execute: Callable[[Session[S], Command], Awaitable[None]],
                 phase_of: Callable[[S], Enum], is_finished: Callable[[S], bool],
                 log: Any, clock: Clock = time.time, on_transition: Callable[[], None] | None = None) -> None:
        self.state = state
        self._handle = handle
        self._execute = execute
        self._phase_of = phase_of
        self._is_finished = is_finished
        self.log = log
        self.clock = clock
        self._on_transition = on_transition
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.timers: dict[str, float] = {}
        self.done = asyncio.Event()

    def post(self, event: Event) -> None:
        """Hand an event to this session (from the event router or from the executor)."""
        self.queue.put_nowait(event)

    @property
    def finished(self) -> bool:
        return self._is_finished(self.state)

    async def run(self, first_commands: Sequence[Command] = ()) -> None:
        try:
            await self._carry_out(first_commands)
            while not self.finished:
                await self.feed(await self._next_event())
        finally:
            self.done.set()

    async def feed(self, event: Event) -> None:
        before = self.state
        try:
            after, commands = self._handle(before, event, self.clock())
        except IllegalTransition as exc:
            self.log.error("transition.illegal", error=str(exc), on=_describe(event))
            return
        self.state = after
        self.log.info("transition", before=self._phase_of(before).value, on=_describe(event),
                      after=self._phase_of(after).value)
        if self._on_transition is not None:
            self._on_transition()
        await self._carry_out(commands)

    async def _carry_out(self, commands: Sequence[Command]) -> None:
        for command in commands:
            if isinstance(command, StartTimer):
                self.timers[command.key] = command.at
            elif isinstance(command, CancelTimer):
                self.timers.pop(command.key, None)
            else:
                await self._execute(self, command)

    async def _next_event(self) -> Event:
        if not self.queue.empty() or not self.timers:
            return await self.queue.get()
        key, at = min(self.timers.items(), key=lambda kv: kv[1])
        try:
            async with asyncio.timeout(max(0.0, at - self.clock())):
                return await self.queue.get()
        except TimeoutError:
            del self.timers[key]
            return TimerFired(key)


def _describe(event: Event) -> str:
    name = type(event).__name__
    if isinstance(event, TimerFired):
        return f"{name}({event.key})"
    return name

