"""A discrete-event scheduler on a virtual clock: no asyncio, no I/O, no wall clock.

Theory of operation
-------------------
Pending actions live in one heap of ``(time, seq, key, token, action, argument)``. ``run`` takes
every entry due at the earliest time as one *batch*, shuffles the batch with its own seeded
``random.Random`` (as trio shuffles each batch of runnable tasks, so nothing can come to depend
on an accidental order of simultaneous events), then runs them. Anything scheduled for the same
instant while a batch runs goes into the next batch at that instant.

Cancelling. An action scheduled with a ``key`` can be cancelled, or replaced by scheduling
another action under the same key (the ACD core's ``StartTimer`` semantics). Each scheduling gets
a fresh token from one counter and ``live[key]`` holds the token of the entry that still counts;
a stale entry stays in the heap and is skipped when it comes up. Tokens are never reused, so a
cancel-then-restart of the same key can never revive an old entry.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable
from typing import Any

__all__ = ["Scheduler"]


class Scheduler:
    def __init__(self, rng: random.Random, start: float = 0.0) -> None:
        self.now = start
        self._rng = rng
        self._heap: list[tuple[float, int, str | None, int, Callable[[Any], None], Any]] = []
        self._seq = itertools.count()
        self._live: dict[str, int] = {}
        self.actions_run = 0

    def at(self, when: float, action: Callable[[Any], None], argument: Any = None, key: str | None = None) -> None:
        """Run ``action(argument)`` at ``when`` (never before now). A ``key`` replaces its last entry."""
        if math.isnan(when):
            raise ValueError("cannot schedule at NaN")
        if math.isinf(when):
            if key is not None:
                self._live.pop(key, None)
            return  # never: nothing to keep
        seq = next(self._seq)
        if key is not None:
            self._live[key] = seq
        heapq.heappush(self._heap, (max(when, self.now), seq, key, seq, action, argument))

    def cancel(self, key: str) -> None:
        self._live.pop(key, None)

    def pending(self, key: str) -> bool:
        return key in self._live

    def next_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def run(self, stop: Callable[[float], bool]) -> None:
        """Run batches in time order until the heap is empty or ``stop(time of the next batch)``."""
        heap, live, pop = self._heap, self._live, heapq.heappop
        while heap:
            t = heap[0][0]
            if stop(t):
                return
            self.now = t
            batch = [pop(heap)]
            while heap and heap[0][0] == t:
                batch.append(pop(heap))
            if len(batch) > 1:
                self._rng.shuffle(batch)
            for _, _, key, token, action, argument in batch:
                if key is not None:
                    if live.get(key) != token:
                        continue  # cancelled or replaced
                    del live[key]
                self.actions_run += 1
                action(argument)
