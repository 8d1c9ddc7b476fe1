"""The leg watch: one originated channel, followed through the router, run through the core's leg machine.

Whoever places a channel (an agent's offer, a callback's customer, a transfer's target, the dialer's
customer) makes a :class:`LegWatch` for it. The watch follows the channel in the router, translates
its ARI events into :mod:`engine.core.leg` events, and hands the machine's commands (``LegRinging``,
``LegAnswered``, ``LegFailed``, ``LegEnded``) to the owner's ``tell``: once each, whatever ARI
repeats. Events the machine has no use for (a playback, a key, the StasisStart back from AMD's
dialplan) go to the owner's ``other``. Once the leg has failed or ended, the watch stops following.

``leaves``: whether a ``StasisEnd`` ends the answered leg (not for the dialer, whose answered
customer leaves the application for AMD and comes back). ``after_answer``: an owner that takes the
answered channel's raw events itself (a transfer's target joins the call).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from engine.core import leg as L
from engine.core.common import Command, Event, Rejected
from engine.runtime.router import Owner, Router

__all__ = ["LegWatch"]


class LegWatch:
    def __init__(self, router: Router, channel_id: str, tell: Callable[[Command], None], *,
                 other: Owner | None = None, leaves: bool = True, after_answer: Owner | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.router = router
        self.channel_id = channel_id
        self.state = L.start(channel_id)
        self.channel: dict[str, Any] = {}     # the channel as its last event showed it
        self._tell = tell
        self._other = other
        self._leaves = leaves
        self._after_answer = after_answer
        self._clock = clock
        router.follow(channel_id, self.event)

    @property
    def answered(self) -> bool:
        return self.state.answered_at is not None

    @property
    def over(self) -> bool:
        return self.state.stage in (L.LegStage.FAILED, L.LegStage.GONE)

    def event(self, event: dict[str, Any]) -> None:
        """An ARI event of the channel (the router calls this)."""
        channel = event.get("channel")
        if isinstance(channel, dict):
            self.channel = channel
        if self._after_answer is not None and self.state.stage is L.LegStage.UP:
            self._after_answer(event)
            return
        translated = self._translate(event)
        if translated is None or not self._feed(translated):
            if self._other is not None:
                self._other(event)

    def not_placed(self, detail: str, permanent: bool = False) -> None:
        """The originate was refused: the leg fails (its owner hears LegFailed with no cause)."""
        self._feed(L.NotPlaced(detail, permanent))

    def forget(self) -> None:
        """Stop following the channel (its owner hands it on, or gives it up)."""
        self.router.forget(self.channel_id)

    def _translate(self, event: dict[str, Any]) -> Event | None:
        kind = event.get("type")
        if kind == "ChannelStateChange":
            return L.Ringing() if self.channel.get("state") == "Ringing" else None
        if kind == "StasisStart":
            return L.Up()
        if kind == "ChannelDestroyed":
            return L.Destroyed(event.get("cause"))
        if kind == "StasisEnd" and self._leaves:
            return L.Left()
        return None

    def _feed(self, event: Event) -> bool:
        """Run the machine; whether it said anything (a late or repeated event says nothing)."""
        try:
            self.state, commands = L.handle(self.state, event, self._clock())
        except Rejected:
            return False
        if self.over:
            self.forget()
        for command in commands:
            self._tell(command)
        return bool(commands)
