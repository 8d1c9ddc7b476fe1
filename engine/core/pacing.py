"""Outbound pacing: how many numbers to dial *now*. Pure: no I/O, no clock, no asyncio.

Theory of operation
-------------------
The dialer shell owns the lines and the agents. It tells a :class:`Pacer` what happened
(:meth:`Pacer.observe`: a dial was placed, a dial's result, a live answer connected or abandoned,
an agent finished a call) and, whenever something changed and at least once a second, asks
:meth:`Pacer.dials_wanted` with a :class:`Snapshot` of the campaign: agents available, on a call
(for how long), in wrap-up (for how long still), calls ringing (for how long), answered calls that
answering-machine detection (AMD) is still judging, live answers waiting for an agent, and the
campaign's abandon counters over its window. The answer is a number of new dials, 0 or more. The
shell places them (through its compliance gate) and reports each with :class:`Dialed`.

A *live answer* is a call handed to an agent: a person (or, with AMD off, any answer: the dialer
cannot tell a machine). It is *abandoned* when no agent takes it within the connect grace (2 s);
the campaign's abandon rate (abandoned / live answers over its window) must stay at or under the
target (3%). Every algorithm trades that against agents' idle time.

Algorithms (:func:`make_pacer` by name)
---------------------------------------
``progressive``
    One line per available agent not already covered by a call in flight:
    ``dials = available - (ringing + screening + waiting)``. Never abandons (each answer has its
    agent), idles agents through every ring-out.

``ratio:X``
    A fixed over-dial: keep ``round(X * available)`` lines in flight. X >= 1; X = 1 is progressive.

``vicidial-adapt``
    VICIdial's ADAPT_HARD_LIMIT (astguiclient 2.14, AST_VDadapt.pl / AST_VDauto_dial.pl) as
    shared/docs/domain.md describes it. Every 2.5 s: ``make = round(L * (ready + talking)) -
    (ringing + waiting + talking)``. Once a second it samples ready agents, waiting answers and
    logged-in agents; every 15 s ``L *= 1 + (mean ready - mean waiting) / mean logged-in``,
    capped at 3.0, floored at 1.0 (start 1.0). Every 60 s: the day's drop rate (drops / live
    answers); once more than 50 calls were placed and it is over the limit, every update resets
    L to 1.0 (HARD_LIMIT); and L is halved when over half of the last minute's 20+ live answers
    dropped.

``predictive``
    Ours, state-aware; see :class:`Predictive` for the math. In short: forecast, over the next
    few seconds, how many agents will be free (available now, wrap-ups ending, calls ending,
    from the talk and wrap-up times observed so far given how long each call has lasted) and how
    many offers will arrive (from each call in flight, given its age, and from each new dial);
    dial the most lines that keep expected offers plus a safety margin under expected free agents
    at *every* horizon; an abandon controller sets the margin from the campaign's own counters so
    the window's abandon rate settles just under the target.

Estimates come only from what the pacer observes (plus weak priors from the literature), never
from a simulator's parameters.

How the shell calls it (one pacer per campaign)
-----------------------------------------------
::

    pacer = make_pacer("predictive", PacingSettings(abandon_target=0.03, connect_grace_seconds=2,
                                                    ring_timeout_seconds=20))
    pacer.observe(Dialed(), now)                              # each dial placed
    pacer.observe(DialResult("live", ring_s, screen_s), now)  # or machine / busy / no_answer
    pacer.observe(Connected(wait_s), now)                     # a live answer reached an agent
    pacer.observe(Abandoned(), now)                           # ... or did not, within the grace
    pacer.observe(Handled(talk_s, wrapup_s), now)             # an agent is free again
    n = pacer.dials_wanted(Snapshot(...), now)                # >= once a second, and when an agent
                                                              # frees or a line comes back

or, in the shape of every machine of the core (the same calls, see engine/core/pacing_model.py)::

    pacer, commands = step(pacer, Dialed(), now)                # commands: [] (an observation)
    pacer, commands = step(pacer, Decide(Snapshot(...)), now)   # [Dial(n)], or [] for none

Each step is one transaction (engine/core/txn.py): an event that raises changes nothing, and
nothing changes a pacer but a step.

The pacer keeps its estimates in memory; after a restart they are re-learnt within minutes (the
priors are cautious), while the abandon window itself comes from the shell's counters in each
snapshot, so a restart never forgets abandons already spent.
"""

from __future__ import annotations

import math

from engine.core.common import Event
from engine.core.pacing_model import (OBSERVATIONS, Abandoned, Connected, Decide, Dial, Dialed, DialResult, Handled, Pacer,
                           PacingSettings, Snapshot, _round, step)
from engine.core.pacing_predictive import Predictive
from engine.core.txn import TDeque, TDict

__all__ = [
    "Abandoned", "Connected", "Decide", "Dial", "DialResult", "Dialed", "Handled", "OBSERVATIONS", "Pacer",
    "PacingSettings", "Predictive", "Progressive", "Ratio", "Snapshot", "VicidialAdapt", "ALGORITHMS", "make_pacer",
    "step",
]

ALGORITHMS = ("progressive", "ratio:X", "vicidial-adapt", "predictive")


# -- baselines -----------------------------------------------------------------------------------
class Progressive(Pacer):
    name = "progressive"

    def decide(self, snap: Snapshot, now: float) -> int:
        return self._cap(snap, snap.available - snap.in_flight)


class Ratio(Pacer):
    def __init__(self, ratio: float, settings: PacingSettings | None = None) -> None:
        if not (ratio >= 1.0 and math.isfinite(ratio)):
            raise ValueError(f"ratio: expected a number of 1 or more, got {ratio:g}")
        super().__init__(settings)
        self.ratio = ratio
        self.name = f"ratio:{ratio:g}"

    def decide(self, snap: Snapshot, now: float) -> int:
        return self._cap(snap, _round(self.ratio * snap.available) - snap.in_flight)


class VicidialAdapt(Pacer):
    """ADAPT_HARD_LIMIT. Its own 1 s / 2.5 s / 15 s / 60 s clocks run on the ``now`` it is given
    (the shell calls at least once a second; missed ticks are caught up with the snapshot at hand)."""

    name = "vicidial-adapt"
    MAX_LEVEL = 3.0
    DIAL_EVERY, SAMPLE_EVERY, ADAPT_EVERY, DROP_CHECK_EVERY = 2.5, 1.0, 15.0, 60.0
    MIN_CALLS = 50         # the day's dials before the drop-rate limit applies
    MINUTE_MIN_CALLS = 20  # the last minute's live answers before the half-dropped rule applies

    def __init__(self, settings: PacingSettings | None = None) -> None:
        super().__init__(settings)
        self.level = 1.0
        self.over_limit = False
        self._next: TDict[str, float] | None = None
        self._samples = (0.0, 0.0, 0.0, 0)  # sum ready, sum waiting, sum logged in, count
        self._minute: TDeque[tuple[float, bool]] = TDeque()  # (time, dropped) of recent live answers

    def learn(self, event: Event, now: float) -> None:
        super().learn(event, now)
        if isinstance(event, Connected):
            self._minute.append((now, False))
        elif isinstance(event, Abandoned):
            self._minute.append((now, True))

    def decide(self, snap: Snapshot, now: float) -> int:
        nxt = self._next
        if nxt is None:
            nxt = self._next = TDict(sample=now, adapt=now + self.ADAPT_EVERY, check=now + self.DROP_CHECK_EVERY,
                                     dial=now)
        while nxt["sample"] <= now:
            ready, waiting, logged, n = self._samples   # (one tracked change a sample, not four)
            self._samples = (ready + snap.available, waiting + snap.waiting, logged + snap.logged_in, n + 1)
            nxt["sample"] += self.SAMPLE_EVERY
        while nxt["check"] <= now:
            self._drop_check(snap, nxt["check"])
            nxt["check"] += self.DROP_CHECK_EVERY
        while nxt["adapt"] <= now:
            self._adapt()
            nxt["adapt"] += self.ADAPT_EVERY
        if nxt["dial"] > now:
            return 0
        while nxt["dial"] <= now:
            nxt["dial"] += self.DIAL_EVERY
        talking = len(snap.on_call)
        make = _round(self.level * (snap.available + talking)) - (snap.in_flight + talking)
        return self._cap(snap, make)

    def _drop_check(self, snap: Snapshot, at: float) -> None:
        rate = snap.abandoned / snap.live_answers if snap.live_answers else 0.0
        self.over_limit = self.dials > self.MIN_CALLS and rate > self.settings.abandon_target
        minute = self._minute
        while minute and minute[0][0] <= at - 60.0:
            minute.popleft()
        if len(minute) >= self.MINUTE_MIN_CALLS and 2 * sum(d for _, d in minute) > len(minute):
            self.level = max(1.0, self.level / 2)

    def _adapt(self) -> None:
        ready, waiting, logged, n = self._samples
        self._samples = (0.0, 0.0, 0.0, 0)
        if n and logged > 0:
            self.level *= 1.0 + (ready / n - waiting / n) / (logged / n)
            self.level = min(self.MAX_LEVEL, max(1.0, self.level))
        if self.over_limit:
            self.level = 1.0


def make_pacer(name: str, settings: PacingSettings | None = None) -> Pacer:
    """``progressive``, ``ratio:X`` (X >= 1), ``vicidial-adapt`` or ``predictive``."""
    if name == "progressive":
        return Progressive(settings)
    if name == "vicidial-adapt":
        return VicidialAdapt(settings)
    if name == "predictive":
        return Predictive(settings)
    if name.startswith("ratio:"):
        try:
            ratio = float(name[len("ratio:"):])
        except ValueError:
            raise ValueError(f"ratio: expected ratio:X with X a number, got {name!r}") from None
        return Ratio(ratio, settings)
    raise ValueError(f"unknown pacing algorithm {name!r}; expected one of {', '.join(ALGORITHMS)}")
