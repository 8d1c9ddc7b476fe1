"""Hold during a connected call: the call machine's hold handlers (engine/core/call.py holds the table).

Either side may hold the other: the agent (the desk phone's hold key, which Asterisk raises as
``ChannelHold`` on the agent's leg, or the API) holds the caller; a caller's phone may hold the
agent. The held party hears music on hold and what it says is muted for the other side
(:class:`HoldParty`). Only the agent's hold of the caller changes the agent's state (``on_hold``,
:class:`AgentHoldChanged`), so hold time is counted apart from talk time.

Each side's hold is a flag of the state, so a hold key pressed twice, or the end of a hold the
phone repeats, changes nothing and writes nothing twice. The end of a hold this engine never saw
begin (it was adopted after a restart, the hold began in the run before) still takes the music
off and unmutes, tells the ACD (whose agent, restored from PostgreSQL, may be on hold) and, when
the phone said it, is recorded: the caller is never left on music, and the call's history has
the hold's end.
"""

from __future__ import annotations

from dataclasses import replace

from engine.core.call_messages import AgentHoldChanged, HoldParty, HoldRequest, RecordHold
from engine.core.call_state import CallState
from engine.core.common import Command

__all__ = ["hold", "release_hold"]


def hold(state: CallState, event: HoldRequest, now: float) -> tuple[CallState, list[Command]]:
    caller_is_held = event.side == "agent"
    channel = state.channel_id if caller_is_held else state.agent_channel
    was = state.caller_held if caller_is_held else state.agent_held
    if channel is None:
        return state, []
    tell_acd: list[Command] = ([AgentHoldChanged(state.agent_id, event.held)]
                               if caller_is_held and state.agent_id is not None else [])
    media = HoldParty(channel, state.route.music, event.held)
    record = RecordHold(state.call_id, now, event.held, "caller" if caller_is_held else "agent", event.by,
                        state.agent_id)
    if event.held == was:
        if event.held:
            return state, []   # the hold key again
        # The end of a hold begun before a restart: the audio comes back all the same, and the
        # phone's word is recorded (Asterisk raises ChannelUnhold only when a hold ends); the API's
        # "unhold" of a call nobody held is nothing to record.
        return state, [media, *tell_acd, *([record] if event.by == "phone" else [])]
    state = replace(state, caller_held=event.held) if caller_is_held else replace(state, agent_held=event.held)
    return state, [media, *tell_acd, record]


def release_hold(state: CallState, now: float, by: str = "agent-left") -> tuple[CallState, list[Command]]:
    """The agent's leg is gone (or the agent sent the caller on, ``by`` ``transfer``): a caller it
    held is held no longer (the call goes on without it)."""
    if not state.caller_held:
        return replace(state, agent_held=False), []
    state = replace(state, caller_held=False, agent_held=False)
    return state, [HoldParty(state.channel_id, state.route.music, False),
                   RecordHold(state.call_id, now, False, "caller", by, state.agent_id)]
