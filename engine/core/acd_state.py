"""What the ACD keeps about each waiting caller, queue and talk (engine/core/acd.py's own state).

Immutable records: the ACD changes one by storing its successor (``_replace``) in a tracked
container (engine/core/txn.py), which logs the record it replaced. The caller and the queue figures
are named tuples, the cheapest immutable records to make (one per arrival, offer and call handled)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["_QueueStats", "_Talk", "_Waiting"]


# -- internal records ----------------------------------------------------------------------------
class _Waiting(NamedTuple):
    call_id: str
    queue: str
    priority: int
    entered_at: float   # place in line
    queued_at: float    # entered this queue (waits are reported per queue)
    seq: int
    skills: Mapping[str, int] | None
    step: int = 0
    offer: tuple[str, str] | None = None  # (offer_id, agent_id) while an agent's phone rings
    callback: str | None = None           # number to call back, once the caller chose a callback
    avoid: frozenset[str] = frozenset()   # agents offered this call only when nobody else is free

    @property
    def key(self) -> tuple[int, float, int]:
        return (-self.priority, self.entered_at, self.seq)

    def offered(self, offer: tuple[str, str] | None) -> _Waiting:
        """This caller with another offer (or none): ``_replace(offer=offer)``, at a third of its cost
        (routing makes one per offer)."""
        return _Waiting(self.call_id, self.queue, self.priority, self.entered_at, self.queued_at, self.seq,
                        self.skills, self.step, offer, self.callback, self.avoid)


class _QueueStats(NamedTuple):
    """Recent arrivals and handle times, for expected waits and agents needed (EWMA)."""

    handle_time: float = 180.0
    rate: float = 0.0          # arrivals per second
    last_arrival: float | None = None

    def arrival(self, now: float, horizon: float = 900.0) -> _QueueStats:
        """These figures after an arrival at ``now``."""
        rate = self.rate
        if self.last_arrival is not None:
            gap = max(now - self.last_arrival, 1e-3)
            weight = 1 - math.exp(-gap / horizon)
            rate = (1 - weight) * rate + weight / gap
        return _QueueStats(self.handle_time, rate, now)

    def rate_at(self, now: float, horizon: float = 900.0) -> float:
        """The arrival rate as of ``now``: a queue that has been quiet since its last arrival
        fades (the estimate is otherwise only updated by arrivals), down to none at all."""
        if self.last_arrival is None:
            return 0.0
        rate = self.rate * math.exp(-max(0.0, now - self.last_arrival) / horizon)
        return rate if rate * horizon >= 0.5 else 0.0   # under half a call expected: quiet

    def handled(self, seconds: float, alpha: float = 0.1) -> _QueueStats:
        """These figures after a call handled in ``seconds``."""
        return _QueueStats((1 - alpha) * self.handle_time + alpha * seconds, self.rate, self.last_arrival)


@dataclass(frozen=True, slots=True)
class _Talk:
    call_id: str
    queue: str
    answered_at: float
    waiting: _Waiting | None = None   # where the call was in line, until it is connected
