"""What the runtime's services ask of each other, as interfaces, so that none holds another's class.

The ACD service (engine/runtime/acdservice.py) hands answered agent legs and its news to the calls
through a :class:`CallDesk`; the calls, their callbacks and the agents' phones ask the dialer about
preview calls and dispositions through :class:`Outbound` (:class:`NoOutbound` when no dialer
runs). engine/app.py, which alone wires, attaches each service to the ones it calls on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from engine.core.common import Command, Event

__all__ = ["AgentLeg", "CallDesk", "NoOutbound", "Outbound"]


@dataclass(slots=True)
class AgentLeg:
    """An agent leg: a channel ringing (then talking to) an agent for a call."""

    channel_id: str
    call_id: str
    agent_id: str
    offer_id: str
    callback_number: str | None = None


class CallDesk(Protocol):
    """What the ACD asks of the calls."""

    def caller_of(self, call_id: str) -> str: ...

    def is_outbound(self, call_id: str) -> bool: ...

    def connect(self, leg: AgentLeg, queue: str, *, alive: bool) -> None: ...

    def post(self, call_id: str, event: Event) -> None: ...

    async def hang_up(self, channel_id: str, why: str, reason: str = "normal") -> None: ...


class Outbound(Protocol):
    """What the calls, callbacks and phones ask of the dialer."""

    def preview_dial(self, call_id: str) -> tuple[str, str, float] | None: ...

    async def preview_recheck(self, call_id: str) -> str | None: ...

    def preview_caller(self, call_id: str) -> str | None: ...

    def preview_observe(self, call_id: str, command: Command) -> None: ...

    def dispositions(self, call_id: str) -> Mapping[str, str]: ...

    def on_disposition(self, call_id: str, agent_id: str, name: str) -> None: ...


class NoOutbound:
    """No dialer: no call is a preview, no campaign has codes of its own."""

    def preview_dial(self, call_id: str) -> tuple[str, str, float] | None:
        return None

    async def preview_recheck(self, call_id: str) -> str | None:
        return None

    def preview_caller(self, call_id: str) -> str | None:
        return None

    def preview_observe(self, call_id: str, command: Command) -> None:
        return None

    def dispositions(self, call_id: str) -> Mapping[str, str]:
        return {}

    def on_disposition(self, call_id: str, agent_id: str, name: str) -> None:
        return None
