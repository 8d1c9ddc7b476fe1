"""What the face (the HTTP API, /metrics, the wallboard, the live status) may read of a running
engine, and the few things it may ask of it.

The face holds an :class:`EngineView` and nothing else of the engine. What it reads are
snapshots: frozen values copied when asked for, never a live object of the runtime (no ACD, call
manager, dialer, phones or gate, no container they keep changing). What it asks for are the
actions below, named as methods. :class:`engine.runtime.face.LiveView` implements it over the
services and engine/app.py builds one; tests/unit/test_face.py runs the face against a stub that
has only these members.

This module imports nothing of the runtime: the face that imports it loads no runtime class
(tests/unit/test_layers.py checks both).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from engine.core.agent import AgentPhase

if TYPE_CHECKING:
    from engine.config.acd import ServiceLevel
    from engine.config.model import Config
    from engine.core.common import Event as AgentEvent
    from engine.shared.events import Listener

__all__ = ["AgentSnapshot", "CampaignSnapshot", "EngineView", "QueueSnapshot", "WaitingCaller"]


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    """One agent as the ACD holds them now, with what the face shows of their call."""

    id: str
    phase: AgentPhase
    queues: frozenset[str]       # logged in to (empty when logged out)
    pause_reason: str | None
    since: float                 # when the current phase began (epoch seconds)
    call_id: str | None          # the call they are offered, on or wrapping up
    call_queue: str | None       # that call's queue (None without one, or for a call taken before a restart)
    caller: str | None           # that call's caller number (None without a call or a number)
    campaign: str | None         # the campaign that placed that call (None: not a dialer's call)


@dataclass(frozen=True, slots=True)
class WaitingCaller:
    call_id: str
    queue: str
    queued_at: float             # entered this queue (epoch seconds)
    outbound: bool               # a campaign's answered call waiting for an agent, not an inbound caller


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """A configured queue now."""

    name: str
    service_level: ServiceLevel  # the configured target (seconds, percent)
    waiting: tuple[WaitingCaller, ...]


@dataclass(frozen=True, slots=True)
class CampaignSnapshot:
    """A campaign the dialer runs now (one removed by a reload stays until the engine restarts)."""

    name: str
    active: bool                 # dialling: the YAML's ``active``, or the API's start / pause / stop once applied
    dial_rate_per_minute: float  # dials over the last minute
    lines_in_flight: int         # dials ringing, screened or waiting for an agent
    leads_in_flight: tuple[int, ...]   # leads behind an attempt not yet ended
    live_answers: int            # over the abandon window, as the campaign's rule counts them
    abandoned: int


class EngineView(Protocol):
    """A running engine, as the face sees it."""

    @property
    def config(self) -> Config:
        """The configuration now (frozen; a reload swaps in another)."""
        ...

    def health(self) -> dict[str, Any]:
        """Whether the engine is fit to serve (Asterisk, the database, the journal): /healthz's body."""
        ...

    # -- the database, for engine/store's functions ------------------------------------------------
    def pool(self) -> Any:
        """The database's pool while it is connected, else None."""
        ...

    async def database_ready(self) -> None:
        """Until the database has been connected (once)."""
        ...

    # -- the domain events of engine/shared/events.py ----------------------------------------------
    def subscribe(self, listener: Listener) -> None: ...

    def unsubscribe(self, listener: Listener) -> None: ...

    # -- live state: snapshots ---------------------------------------------------------------------
    def agents(self) -> Mapping[str, AgentSnapshot]:
        """Every agent the ACD knows, by id."""
        ...

    def queues(self) -> Mapping[str, QueueSnapshot]:
        """Every configured queue, in the configuration's order, with its callers waiting now."""
        ...

    def campaigns(self, now: float) -> Mapping[str, CampaignSnapshot]:
        """Every campaign the dialer runs, by name (``now``: the end of the dial-rate window)."""
        ...

    def campaign_controls(self) -> Mapping[str, str]:
        """Campaign name -> the start / pause / stop stored through the API (running, paused,
        stopped); a campaign missing is as its YAML says."""
        ...

    def disposition_codes(self, call_id: str) -> Mapping[str, str]:
        """Code -> name of the dispositions an agent may give for ``call_id``."""
        ...

    # -- actions -----------------------------------------------------------------------------------
    async def agent_request(self, agent_id: str, event: AgentEvent) -> None:
        """Log in, pause, resume, log out, as the keypad does; raises Refused or IllegalTransition
        (:class:`engine.core.common.Rejected`) when the agent's state does not allow it."""
        ...

    async def disposition(self, agent_id: str, code: str) -> tuple[bool, str]:
        """The disposition of the call the agent wraps up (it ends the wrap-up): (done, why not)."""
        ...

    async def hold(self, call_id: str, held: bool) -> None:
        """Put the caller of a connected call on hold (``held``) or take them back, as the agent's
        hold key does; raises :class:`~engine.core.common.Rejected` unless the call is connected."""
        ...

    async def transfer(self, call_id: str, kind: str, target: str) -> None:
        """Send the caller of a connected call on (``kind`` ``queue``: a queue's name; ``number``:
        dialled through the carrier), as the agent's transfer key does; raises
        :class:`~engine.core.common.Rejected` unless the call is connected."""
        ...

    async def add_dnc(self, number: str, *, now: float, source: str, reason: str, scope: str, region: str,
                      store_in: Any) -> str:
        """List ``number`` on a do-not-call list: refused by the gate at once, and stored in
        ``store_in`` (a pool) before this returns. The E.164 form."""
        ...

    def set_campaign_control(self, name: str, state: str) -> None:
        """Apply a start / pause / stop already stored in campaign_control."""
        ...

    def wake_campaign(self, name: str) -> None:
        """Let the campaign's loop look at its hopper now (a lead was added), not at its next tick."""
        ...
