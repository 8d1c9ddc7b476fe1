"""A call's state (engine/core/call.py is the machine: its phases and how each event moves it)
and the moves its handlers share: route the call (a prompt, the IVR, a queue), take the IVR's
outcomes (a queue, a transfer, a hang-up), play a prompt, hang up, end the call, release the
agent's leg. Pure: each takes the frozen state and returns the next one with its commands."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING

from engine.core import ivr as ivr_core
from engine.core import ivr_messages
from engine.core.call_messages import (AgentCallOver, DialOut, Finish, HangupAgent, JoinQueue, LeaveQueue, Limits,
                                       Phase, RecordEnded, RecordIvr, RecordVariables, Route, SORRY, StartMusic,
                                       StopMusic)
from engine.core.causes import REASON_CAUSES
from engine.core.channel import Hangup, Play
from engine.core.common import CancelTimer, Command, StartTimer
from engine.core.ivr import Ivr

if TYPE_CHECKING:
    from engine.core.ivrtree import IvrTree

__all__ = ["CallState", "_end", "_from_ivr", "_hang_up", "_play", "_release_agent", "_route", "enter_tree"]


@dataclass(frozen=True, slots=True)
class CallState:
    call_id: str
    channel_id: str
    phase: Phase
    route: Route
    limits: Limits
    caller_number: str = ""
    started_at: float = 0.0        # when the call came in (a transferred caller's place in line)
    answered: bool = False
    hangup_by: str | None = None  # who asked for the hang-up, once someone has
    cause: int | None = None      # from the hang-up request, until the channel is gone
    playback_seq: int = 0
    playing: bool = False          # a playback of ours is on the channel now
    music: bool = False            # the caller's music on hold was started (and not stopped since)
    agent_id: str | None = None
    agent_channel: str | None = None
    recording: bool = False
    caller_held: bool = False      # the agent holds the caller (engine/core/call_hold.py)
    agent_held: bool = False       # the caller's phone holds the agent
    agent_keys: str = ""           # the agent's last keys, to spot the record code
    ivr: Ivr | None = None         # while in the IVR (and after, for the post-call part)
    library: Mapping[str, IvrTree] = field(default_factory=lambda: MappingProxyType({}))
    queue_routes: Mapping[str, Route] = field(default_factory=lambda: MappingProxyType({}))
    post_call: tuple[str, str] | None = None  # (tree, node) for the caller once the agent hangs up
    on_failure: tuple[str, str] | None = None  # where a failed transfer goes back to in the IVR
    back_queue: str | None = None  # where a caller whose agent's transfer to a number failed goes back to

    @property
    def playback_id(self) -> str:
        return f"{self.call_id}-p{self.playback_seq}"


def _route(state: CallState, now: float, queued_since: float | None = None,
           queued_at: float | None = None) -> tuple[CallState, list[Command]]:
    r = state.route
    if r.ivr is not None:
        if state.ivr is None:  # the tree disappeared between routing and now: say sorry
            return _play(state, now, SORRY)
        ivr, cmds = ivr_core.start(state.library, r.ivr, state.ivr.variables, now)
        state = replace(state, phase=Phase.IVR)
        tree = state.library[r.ivr]
        return _from_ivr(state, ivr, [RecordIvr(state.call_id, tree.name, tree.version), *cmds], now)
    if r.queue is None:
        return _play(state, now, (f"sound:{r.prompt}",))
    state, cmds = wait_music(replace(state, phase=Phase.QUEUED), now)
    cmds.append(JoinQueue(state.call_id, r.queue, r.priority, queued_since, avoid=r.avoid_agents,
                          queued_at=queued_at))
    if r.connect_grace is not None and queued_since is None:
        cmds.append(StartTimer("grace", now + r.connect_grace))
    return state, cmds


def wait_music(state: CallState, now: float) -> tuple[CallState, list[Command]]:
    """A caller starts waiting: music at once, or a timer for it (``Route.music_after``)."""
    if state.route.music_after <= 0:
        return start_music(state)
    return state, [StartTimer("music", now + state.route.music_after)]


def start_music(state: CallState) -> tuple[CallState, list[Command]]:
    return replace(state, music=True), [StartMusic(state.route.music)]


def stop_music(state: CallState) -> tuple[CallState, list[Command]]:
    """The waiting is over (or a prompt comes): stop the music if it was started, else its timer."""
    if state.music:
        return replace(state, music=False), [StopMusic()]
    return state, [CancelTimer("music")]


def _from_ivr(state: CallState, ivr: Ivr, cmds: list[Command], now: float) -> tuple[CallState, list[Command]]:
    """Take the interpreter's new state and commands; its outcomes move the call on."""
    state = replace(state, ivr=ivr)
    out: list[Command] = []
    for c in cmds:
        if isinstance(c, ivr_messages.ToQueue):
            base = state.queue_routes.get(c.queue, Route(queue=c.queue))
            route = replace(base, priority=c.priority)
            state, music = wait_music(replace(state, phase=Phase.QUEUED, route=route, post_call=c.after), now)
            out += [RecordVariables(state.call_id, _routing_variables(ivr)), *music,
                    JoinQueue(state.call_id, c.queue, c.priority, None, c.skills)]
        elif isinstance(c, ivr_messages.TransferTo):
            state = replace(state, phase=Phase.TRANSFERRING, on_failure=c.on_failure)
            out += [RecordVariables(state.call_id, _routing_variables(ivr)), DialOut(c.target, c.timeout),
                    StartTimer("transfer", now + c.timeout + 5.0)]
        elif isinstance(c, ivr_messages.IvrHangup):
            state, more = _hang_up(state, now, "engine")
            out += more
        else:
            out.append(c)
    return state, out


def enter_tree(state: CallState, tree: str, node: str | None, variables: Mapping[str, str],
               now: float) -> tuple[CallState, list[Command]]:
    """The caller into ``tree`` at ``node`` (None: its start), with ``variables``: after the call
    (a survey), back from a failed transfer, or sent there by the agent."""
    ivr, cmds = ivr_core.start(state.library, tree, variables, now, node=node)
    return _from_ivr(replace(state, phase=Phase.IVR), ivr, cmds, now)


def _routing_variables(ivr: Ivr) -> Mapping[str, str]:
    return MappingProxyType({k: v for k, v in ivr.variables.items() if k != "call_id"})


def _play(state: CallState, now: float, media: tuple[str, ...]) -> tuple[CallState, list[Command]]:
    state = replace(state, phase=Phase.PLAYING, playback_seq=state.playback_seq + 1, playing=True)
    return state, [Play(media, state.playback_id), StartTimer("playback", now + state.limits.playback_seconds)]


def _hang_up(state: CallState, now: float, by: str, reason: str = "normal") -> tuple[CallState, list[Command]]:
    cause = state.cause if state.cause is not None else REASON_CAUSES[reason]
    state = replace(state, phase=Phase.HANGING_UP, hangup_by=state.hangup_by or by, cause=cause)
    return state, [CancelTimer("answer"), CancelTimer("playback"), Hangup(reason),
                   StartTimer("hangup", now + state.limits.hangup_seconds)]


def _end(state: CallState, now: float, cause: int | None, text: str, by: str) -> tuple[CallState, list[Command]]:
    cmds: list[Command] = []
    if state.phase is Phase.QUEUED:
        cmds.append(LeaveQueue(state.call_id))
    if state.agent_channel is not None and state.phase is Phase.CONNECTED:
        cmds += _release_agent(state)
    state = replace(state, phase=Phase.ENDED)
    return state, [*cmds, CancelTimer("answer"), CancelTimer("playback"), CancelTimer("hangup"),
                   CancelTimer("max"), CancelTimer("transfer"), RecordEnded(state.call_id, now, cause, text, by),
                   Finish()]


def _release_agent(state: CallState) -> list[Command]:
    """Hang up the other leg; an agent's (not a transfer's) call is over for the ACD."""
    assert state.agent_channel is not None
    cmds: list[Command] = [HangupAgent(state.agent_channel)]
    if state.agent_id is not None:
        cmds.append(AgentCallOver(state.agent_id))
    return cmds
