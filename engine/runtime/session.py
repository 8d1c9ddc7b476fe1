"""The shell around one pure state machine: an event queue, timers, and a command executor.

One :class:`Session` per call (and one for the ACD). Its task takes events one at a time from its
own queue, or a :class:`TimerFired` when the earliest timer is due, passes each to the machine's
``handle(state, event, now)`` and carries out the commands that come back, in order. Every
transition of a machine with phases is logged as one line ``before -> on -> after``. Nothing that
goes wrong inside a session escapes it: an event the machine turns down
(:class:`~engine.core.common.Rejected`) is logged and dropped, or handed back to whoever asked
through :meth:`Session.request`.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Awaitable, Callable, Sequence
from enum import Enum
from typing import Any, Generic, TypeVar

from engine.core.common import CancelTimer, Command, Event, Rejected, StartTimer, TimerFired

__all__ = ["Session", "Timers"]

S = TypeVar("S")

Clock = Callable[[], float]


class Timers:
    """Keyed timers: a heap with lazy deletion, so thousands of them cost O(log n) each."""

    def __init__(self) -> None:
        self._at: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._at)

    def __contains__(self, key: str) -> bool:
        return key in self._at

    def start(self, key: str, at: float) -> None:
        self._at[key] = at
        heapq.heappush(self._heap, (at, key))

    def cancel(self, key: str) -> None:
        self._at.pop(key, None)

    def next(self) -> tuple[str, float] | None:
        """The earliest live timer (without removing it)."""
        while self._heap:
            at, key = self._heap[0]
            if self._at.get(key) == at:
                return key, at
            heapq.heappop(self._heap)  # cancelled or replaced
        return None

    def pop(self, key: str) -> None:
        del self._at[key]


class Session(Generic[S]):
    def __init__(self, *, state: S, handle: Callable[[S, Event, float], tuple[S, Sequence[Command]]],
                 execute: Callable[[Session[S], Command], Awaitable[None]],
                 is_finished: Callable[[S], bool] = lambda _: False, phase_of: Callable[[S], Enum] | None = None,
                 log: Any, clock: Clock = time.time, on_transition: Callable[[], None] | None = None) -> None:
        self.state = state
        self._handle = handle
        self._execute = execute
        self._phase_of = phase_of
        self._is_finished = is_finished
        self.log = log
        self.clock = clock
        self._on_transition = on_transition
        self.queue: asyncio.Queue[tuple[Event, asyncio.Future[None] | None]] = asyncio.Queue()
        self.timers = Timers()
        self.done = asyncio.Event()
        self.unhandled: list[Event] = []   # events still queued when the machine finished

    def post(self, event: Event) -> None:
        """Hand an event to this session (from the event router or from the executor)."""
        self.queue.put_nowait((event, None))

    async def request(self, event: Event) -> None:
        """Hand an event over and wait until it is handled; raise what the machine raised
        (:class:`~engine.core.common.Rejected`) if it turned the event down."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((event, future))
        await future

    @property
    def finished(self) -> bool:
        return self._is_finished(self.state)

    async def run(self, first_commands: Sequence[Command] = ()) -> None:
        try:
            await self._carry_out(first_commands)
            while not self.finished:
                event, future = await self._next_event()
                try:
                    await self.feed(event, raise_rejected=future is not None)
                except Rejected as exc:
                    if future is not None and not future.done():
                        future.set_exception(exc)
                else:
                    if future is not None and not future.done():
                        future.set_result(None)
        finally:
            self.done.set()
            self.unhandled += self.take_pending()

    def take_pending(self) -> list[Event]:
        """Empty the queue of a session that has ended (nobody will handle what is there): requests
        are turned down (:class:`~engine.core.common.Rejected`), the other events are returned, for
        the owner to undo what they announced (an agent who answered as the call ended)."""
        events: list[Event] = []
        while not self.queue.empty():
            event, future = self.queue.get_nowait()
            if future is None:
                events.append(event)
            elif not future.done():
                future.set_exception(Rejected("the session has ended"))
        return events

    async def feed(self, event: Event, raise_rejected: bool = False) -> None:
        before = self.state
        try:
            after, commands = self._handle(before, event, self.clock())
        except Rejected as exc:
            if raise_rejected:
                raise
            self.log.error("transition.illegal", error=str(exc), on=_describe(event))
            return
        self.state = after
        if self._phase_of is not None:
            self.log.info("transition", before=self._phase_of(before).value, on=_describe(event),
                          after=self._phase_of(after).value)
        if self._on_transition is not None:
            self._on_transition()
        await self._carry_out(commands)

    async def _carry_out(self, commands: Sequence[Command]) -> None:
        for command in commands:
            if isinstance(command, StartTimer):
                self.timers.start(command.key, command.at)
            elif isinstance(command, CancelTimer):
                self.timers.cancel(command.key)
            else:
                await self._execute(self, command)

    async def _next_event(self) -> tuple[Event, asyncio.Future[None] | None]:
        due = self.timers.next()
        if not self.queue.empty() or due is None:
            return await self.queue.get()
        key, at = due
        try:
            async with asyncio.timeout(max(0.0, at - self.clock())):
                return await self.queue.get()
        except TimeoutError:
            self.timers.pop(key)
            return TimerFired(key), None


def _describe(event: Event) -> str:
    name = type(event).__name__
    if isinstance(event, TimerFired):
        return f"{name}({event.key})"
    return name
