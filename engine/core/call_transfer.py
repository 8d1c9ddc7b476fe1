"""Blind transfer of a connected call: the call machine's handlers (engine/core/call.py holds the table).

The agent sends the caller on, from the phone's transfer key (a REFER, which Asterisk hands to
ARI as ``ChannelTransfer``: the runtime resolves what was dialled) or from the API:

- to an **agent**: as to a queue (one the agent is logged in to), offered to that agent alone
  (skills or not) when they are free; if they do not answer, to any agent of that queue;
- to a **queue**: the caller leaves the agent's bridge (its recording ends with it: a recording
  per segment, all with the call's id), the agent's call is over for the ACD (wrap-up, their talk
  theirs alone), and the caller joins the queue as a new stay (its own ``queue_entries`` row, its
  wait counted from now: the first stay's figures do not change). Their place: their own priority,
  and in line by the time they called, ahead of callers who called after them;
- to an **IVR** tree or node (``main`` or ``main/survey``): the caller is in the tree again, with
  the variables the call has;
- to a **number**, dialled through the carrier: the caller hears music while it rings; answered,
  it is bridged as an IVR transfer is; not answered (busy, refused, no answer), the caller goes
  back to the queue they came from (or hears sorry when they came from none).

A phone without a transfer key keys the transfer code, the target and ``#`` (``##3200#``); the
shell resolves what was keyed as it does a REFER's destination.

A phone's REFER is answered first (``TransferProgress``: the phone hangs up its leg), then the
engine hangs up the agent's leg itself, so the transfer does not wait on the phone.
"""

from __future__ import annotations

from dataclasses import replace

from engine.core.call_hold import release_hold
from engine.core.call_messages import (SORRY, BlindTransfer, CloseBridge, DialOut, JoinQueue, Phase, RecordTransfer,
                                       Route, TransferProgress)
from engine.core.call_state import CallState, _play, _release_agent, enter_tree, start_music, wait_music
from engine.core.common import Command, StartTimer

__all__ = ["AGENT_KEYS_KEPT", "TRANSFER_RING_SECONDS", "back_to_queue", "blind", "keyed_transfer"]

TRANSFER_RING_SECONDS = 30.0   # a blind transfer's number rings this long before the caller goes back
AGENT_KEYS_KEPT = 24           # the agent's last keys the call keeps (feature codes, a keyed target)


def keyed_transfer(code: str, keys: str) -> str | None:
    """What the agent keyed after the transfer code, once they end it with ``#`` (``##3200#`` ->
    ``3200``); None until then, or when nothing was keyed between."""
    if not code or not keys.endswith("#"):
        return None
    at = keys.rfind(code, 0, len(keys) - 1)
    dialled = keys[at + len(code):-1] if at >= 0 else ""
    return dialled if dialled.lstrip("+").isdigit() else None


def blind(state: CallState, event: BlindTransfer, now: float) -> tuple[CallState, list[Command]]:
    assert state.agent_channel is not None
    answer = [TransferProgress(state.agent_channel, "channel_answered")] if event.by == "phone" else []
    state, unhold = release_hold(state, now, "transfer")
    note = RecordTransfer(state.call_id, now, event.kind, event.target, event.by, state.agent_id or state.agent_channel)
    cmds: list[Command] = [*answer, *unhold, note, CloseBridge(), *_release_agent(state)]
    came_from = state.route.queue
    state = replace(state, agent_id=None, agent_channel=None, recording=False, agent_keys="")
    if event.kind == "queue":
        state, more = back_to_queue(state, event.target, now)
        return state, cmds + more
    if event.kind == "agent":   # in line in the agent's queue, for that agent alone
        state, more = back_to_queue(state, event.queue or came_from or "", now, only=event.target)
        return state, cmds + more
    if event.kind == "ivr":
        state, more = _to_tree(state, event.target, now)
        return state, cmds + more
    state, music = start_music(replace(state, phase=Phase.TRANSFERRING, back_queue=came_from, on_failure=None))
    return state, [*cmds, *music, DialOut(event.target, TRANSFER_RING_SECONDS),
                   StartTimer("transfer", now + TRANSFER_RING_SECONDS + 5.0)]


def _to_tree(state: CallState, target: str, now: float) -> tuple[CallState, list[Command]]:
    """Into an IVR tree (``tree`` or ``tree/node``), with the variables the call has (a queue call
    that never had an IVR: the caller's number and the call's id)."""
    tree, _, node = target.partition("/")
    if tree not in state.library or (node and node not in state.library[tree].tree.nodes):
        return _play(state, now, SORRY)   # gone with a reload since the transfer was asked
    variables = (state.ivr.variables if state.ivr is not None else
                 {"caller": state.caller_number, "call_id": state.call_id})
    return enter_tree(replace(state, post_call=None), tree, node or None, variables, now)


def back_to_queue(state: CallState, queue: str, now: float, only: str | None = None) -> tuple[CallState, list[Command]]:
    """Join ``queue`` as a new stay, keeping the caller's priority and their place by call time
    (``only``: for that agent alone, until they fail to answer)."""
    base = state.queue_routes.get(queue, Route(queue=queue))
    route = replace(base, priority=state.route.priority)
    state = replace(state, phase=Phase.QUEUED, route=route, back_queue=None)
    state, music = (state, []) if state.music else wait_music(state, now)   # music already on: it goes on
    return state, [*music, JoinQueue(state.call_id, queue, route.priority, state.started_at, only=only)]
