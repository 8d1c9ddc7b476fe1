"""The call machine's messages (engine/core/call.py is the machine): its phases, limits and route,
the events the shell posts and the commands the machine answers with. Plain frozen data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING

from engine.core.common import Command, Event

if TYPE_CHECKING:
    from engine.core.ivrtree import IvrTree

__all__ = ['AgentCallOver', 'AgentGone', 'Announcement', 'Arrival', 'BlindTransfer', 'BridgeWith', 'CALLBACK_CONFIRMED',
           'CloseBridge', 'Connected', 'ResolveTransfer', 'TransferProgress',
           'DialOut', 'Finish', 'GaveUp', 'HangupAgent', 'HoldParty', 'HoldRequest', 'AgentHoldChanged', 'JoinQueue',
           'LeaveBridge', 'LeaveQueue', 'Limits', 'Phase', 'RecordAnswered', 'RecordEnded', 'RecordEvent', 'RecordHold',
           'RecordIvr', 'RecordStarted', 'RecordTransfer', 'RecordVariables',
           'RequestCallback', 'Route', 'SORRY', 'StartMusic', 'StartRecording', 'StopMusic', 'TransferAnswered',
           'TransferFailed']


class Phase(Enum):
    ANSWERING = "answering"
    PLAYING = "playing"
    IVR = "ivr"
    TRANSFERRING = "transferring"
    QUEUED = "queued"
    CONNECTED = "connected"
    HANGING_UP = "hanging_up"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Limits:
    answer_seconds: float
    playback_seconds: float
    hangup_seconds: float
    max_call_seconds: float


@dataclass(frozen=True, slots=True)
class Route:
    """Where the call goes: ``prompt`` (played, then hang-up), ``queue``, or an ``ivr`` tree."""

    prompt: str | None = None
    queue: str | None = None
    ivr: str | None = None
    priority: int = 0
    music: str = "default"
    # A waiting caller's music starts this many seconds after they join the queue (0: at once):
    # one an agent takes sooner hears none, and costs Asterisk no music and the engine no requests.
    music_after: float = 0.0
    callback_key: str | None = None   # a waiting caller presses it to be called back
    recording: str = "none"           # all | none | on_demand
    record_code: str = "*7"           # on_demand: the agent keys it during the call
    transfer_code: str = "##"         # the agent keys it, a target and #: a blind transfer
    # An outbound call a person answered: an agent must take it within this many seconds, or the
    # call is abandoned: ``abandon_media`` (the safe-harbor message) is played and it hangs up.
    connect_grace: float | None = None
    abandon_media: tuple[str, ...] = ()
    avoid_agents: frozenset[str] = frozenset()   # blended agents kept for inbound: others first


# Q.850 release causes as Asterisk names them (main/causes.h), for the ones calls meet.
SORRY = ("sound:all-circuits-busy-now", "sound:please-try-call-later")
CALLBACK_CONFIRMED = ("sound:auth-thankyou", "sound:goodbye")


# -- events ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Arrival(Event):
    """A channel entered the application (``adopted``: it was already there when we started)."""

    call_id: str
    channel_id: str
    caller_number: str
    caller_name: str
    dialed_number: str
    route: Route
    started_at: float
    already_answered: bool = False
    adopted: bool = False
    queued_since: float | None = None      # adopted while waiting: its place in line
    queued_at: float | None = None         # adopted while waiting: when it entered its queue (its wait)
    agent: tuple[str, str] | None = None   # adopted while connected: (agent id, agent channel)
    post_call: tuple[str, str] | None = None  # adopted while connected: (tree, node) once the agent hangs up
    library: Mapping[str, IvrTree] = field(default_factory=lambda: MappingProxyType({}))  # the IVR trees now
    queue_routes: Mapping[str, Route] = field(default_factory=lambda: MappingProxyType({}))  # for IVR queues
    direction: str = "inbound"             # outbound: the dialer placed it and the callee answered


@dataclass(frozen=True, slots=True)
class Announcement(Event):
    """From the ACD: tell the caller their place."""

    position: int
    expected_wait: float


@dataclass(frozen=True, slots=True)
class Connected(Event):
    """From the ACD: this agent answered, on this channel; bridge them."""

    agent_id: str
    agent_channel: str


@dataclass(frozen=True, slots=True)
class GaveUp(Event):
    """From the ACD: no agent will take this call (no agents, waited too long, no overflow)."""

    reason: str


@dataclass(frozen=True, slots=True)
class AgentGone(Event):
    """The agent's leg left (the agent hung up)."""


@dataclass(frozen=True, slots=True)
class HoldRequest(Event):
    """A hold begins (``held``) or ends on one side of a connected call. ``side``: whose phone
    (or whose API request) it is: ``"agent"`` holds the caller, ``"caller"`` holds the agent.
    ``by``: ``"phone"`` (its hold key: Asterisk's ChannelHold / ChannelUnhold) or ``"api"``."""

    held: bool
    side: str = "agent"
    by: str = "phone"


@dataclass(frozen=True, slots=True)
class BlindTransfer(Event):
    """The agent sends the caller on (the phone's transfer key: a REFER; or the API): ``kind``
    ``"queue"`` (``target`` a queue's name), ``"agent"`` (``target`` an agent's id, reached through
    ``queue``, one they are logged in to), ``"ivr"`` (``tree`` or ``tree/node``) or ``"number"``
    (dialled through the carrier)."""

    kind: str
    target: str
    by: str = "phone"
    queue: str | None = None


@dataclass(frozen=True, slots=True)
class TransferAnswered(Event):
    channel: str


@dataclass(frozen=True, slots=True)
class TransferFailed(Event):
    reason: str


# -- commands ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StartMusic(Command):
    music_class: str


@dataclass(frozen=True, slots=True)
class StopMusic(Command):
    pass


@dataclass(frozen=True, slots=True)
class JoinQueue(Command):
    call_id: str
    queue: str
    priority: int
    entered_at: float | None = None  # set when an adopted call takes its old place back
    skills: Mapping[str, int] | None = None  # the IVR's override of the queue's requirement
    avoid: frozenset[str] = frozenset()      # agents offered this call only when nobody else is free
    queued_at: float | None = None   # set when an adopted call keeps its wait in this queue
    only: str | None = None          # an agent's transfer to another agent: offered to them alone


@dataclass(frozen=True, slots=True)
class DialOut(Command):
    """Originate a leg to ``target`` (a number or an endpoint) for a transfer."""

    target: str
    timeout: float


@dataclass(frozen=True, slots=True)
class LeaveBridge(Command):
    """Take the caller out of the call's bridge (the agent left; the IVR takes over again)."""


@dataclass(frozen=True, slots=True)
class RecordIvr(Command):
    call_id: str
    tree: str
    version: str


@dataclass(frozen=True, slots=True)
class RecordVariables(Command):
    call_id: str
    variables: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class LeaveQueue(Command):
    call_id: str


@dataclass(frozen=True, slots=True)
class RequestCallback(Command):
    call_id: str
    number: str


@dataclass(frozen=True, slots=True)
class BridgeWith(Command):
    """Put the caller and the agent's leg in the call's bridge."""

    agent_channel: str


@dataclass(frozen=True, slots=True)
class StartRecording(Command):
    agent_id: str
    queue: str


@dataclass(frozen=True, slots=True)
class HangupAgent(Command):
    agent_channel: str


@dataclass(frozen=True, slots=True)
class AgentCallOver(Command):
    """Tell the ACD the agent's call ended (wrap-up begins)."""

    agent_id: str


@dataclass(frozen=True, slots=True)
class HoldParty(Command):
    """Put the party on ``channel`` on hold (``held``: music on hold to it, and what it says muted
    for the other side) or take it off."""

    channel: str
    music_class: str
    held: bool


@dataclass(frozen=True, slots=True)
class AgentHoldChanged(Command):
    """Tell the ACD the agent put their caller on hold (``held``) or took them back."""

    agent_id: str
    held: bool


@dataclass(frozen=True, slots=True)
class TransferProgress(Command):
    """Tell the phone that sent a REFER on ``channel`` how its transfer went (ARI's
    ``transfer_progress``: ``channel_answered`` done, ``channel_declined`` refused)."""

    channel: str
    state: str


@dataclass(frozen=True, slots=True)
class ResolveTransfer(Command):
    """The agent keyed a transfer (``##3200#``): the shell says what ``dialled`` names (a queue, a
    number) as a :class:`BlindTransfer`, or records that it names nothing."""

    dialled: str


@dataclass(frozen=True, slots=True)
class CloseBridge(Command):
    """The conversation's bridge is over (its recording ends with it); the caller stays with us."""


@dataclass(frozen=True, slots=True)
class Finish(Command):
    """The call is over for the engine: the session may end."""


@dataclass(frozen=True, slots=True)
class RecordStarted(Command):
    call_id: str
    channel_id: str
    direction: str
    caller_number: str
    caller_name: str
    dialed_number: str
    started_at: float


@dataclass(frozen=True, slots=True)
class RecordAnswered(Command):
    call_id: str
    at: float


@dataclass(frozen=True, slots=True)
class RecordEnded(Command):
    call_id: str
    at: float
    cause: int | None
    cause_text: str
    ended_by: str  # caller | agent | engine | system


@dataclass(frozen=True, slots=True)
class RecordEvent(Command):
    """A line of the call's own history (``call_events``)."""

    call_id: str
    at: float
    kind: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RecordHold(Command):
    """A hold began or ended: a line of the call's history and its webhook (``call.held``,
    ``call.resumed``). ``held_party``: ``"caller"`` or ``"agent"``."""

    call_id: str
    at: float
    held: bool
    held_party: str
    by: str
    agent_id: str | None


@dataclass(frozen=True, slots=True)
class RecordTransfer(Command):
    """A blind transfer: a line of the call's history (``blind-transfer``) and its webhook
    (``call.transferred``)."""

    call_id: str
    at: float
    kind: str
    target: str
    by: str
    from_agent: str | None
