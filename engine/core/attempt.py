"""One outbound attempt, from the originate to the end of the agent's wrap-up, as a pure machine.

Theory of operation
-------------------
The dialer (engine/runtime/dialer.py) and the simulator (engine/sim/dialer.py) both run this machine; they
differ only in what carries out its commands (Asterisk there, a virtual clock here)::

    DIALLED --Rang--> RINGING --Answered--> SCREENING --AmdVerdict--> MACHINE --Hungup--> ENDED
       |                 |    (AMD on)          |   (MACHINE)
       |                 |                      +--(HUMAN, NOTSURE)--+
       |                 +--Answered (AMD off)-----------------------+--> GRACE --CallConnected--> CONNECTED
       |                                                             |      |                         |
       +--Hungup (busy, no answer, ...) --> ENDED                    |      +--CallAbandoned--> ABANDONED
                                                                     |                        --CallOver--> ENDED
       agentless: a person hears the message, keys a disposition --> MESSAGE --Hungup--> ENDED
       CONNECTED --CallOver--> WRAPUP --AgentFree--> ENDED  (the lead moves on after the wrap-up)
       PREVIEW --CustomerDialled--> RINGING --CustomerAnswered--> CONNECTED (the agent saw the lead first)

A live answer is handed over (:class:`HandOver`) to an ordinary call in the campaign's queue
(engine/core/call.py), which gives it the connect grace: an agent within 2 s, else the safe-harbor
message and an abandon. That call tells the attempt what became of it (``Call*`` events). AMD's
watchdog and the agentless key wait are timers (:class:`StartTimer`), not sleeps. The machine
tells the pacer what it saw (:class:`Tell`), counts for the campaign's abandon rate
(:class:`Count`), and ends with :class:`Closed` (the outcome and the wrap-up): record it, move the
lead on. One table (``TABLE``) moves it; an event with no row raises and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from types import MappingProxyType

from engine.core import pacing_model as PM
from engine.core.attempt_messages import (AgentFree, AgentKnown, AgentWrapup, AmdUnavailable, AmdVerdict, Answered,
                                          CallAbandoned, CallCause, CallConnected, CallOver, Closed, Count,
                                          CustomerAnswered, CustomerDialled, CustomerFailed, Disposition, Gone,
                                          HandOver, HangUpCustomer, Hungup, Key, Originate, OriginateFailed, PlayTo,
                                          PlaybackFailed, PlaybackFinished, Probe, Rang, ScreenWithAmd, Tell)
from engine.core.causes import dial_result
from engine.core.common import CancelTimer, Command, Event, Row, StartTimer, TimerFired, Transitions

__all__ = [
    "AgentFree", "AgentKnown", "AgentWrapup", "AmdUnavailable", "AmdVerdict", "Answered", "Attempt",
    "CallAbandoned", "CallCause", "CallConnected", "CallOver", "Closed", "Count", "CustomerAnswered",
    "CustomerDialled", "CustomerFailed", "Disposition", "Gone", "HandOver", "HangUpCustomer", "Hungup", "Key",
    "Originate", "OriginateFailed", "Plan", "PlayTo", "PlaybackFailed", "PlaybackFinished", "Probe", "Rang",
    "SCREEN_LIMIT", "KEY_SECONDS", "ScreenWithAmd", "Stage", "TABLE", "adopt", "dial", "handle", "preview",
]

SCREEN_LIMIT = 15.0   # AMD answers in 2-5 s: no verdict by then, the call is hung up and looked for
KEY_SECONDS = 10.0    # agentless: the callee's time to press a key after the message


class Stage(Enum):
    DIALLED = "dialled"       # originated, no ring heard yet
    RINGING = "ringing"
    SCREENING = "screening"   # answered; AMD is listening
    GRACE = "grace"           # a live answer waiting for an agent (the call's connect grace)
    CONNECTED = "connected"   # with an agent
    ABANDONED = "abandoned"   # no agent in time: the safe-harbor message, then the end
    MACHINE = "machine"       # AMD heard a machine: its message, or the hang-up
    MESSAGE = "message"       # agentless: a person hears the message and may key a disposition
    PREVIEW = "preview"       # shown to an agent; dialled once the agent takes it
    WRAPUP = "wrapup"         # the call is over, the agent's wrap-up runs on
    ENDED = "ended"


LINES = (Stage.DIALLED, Stage.RINGING, Stage.SCREENING)   # placed, not yet a person or a machine


@dataclass(frozen=True, slots=True)
class Plan:
    """What the campaign does with each call (the attempt's fixed settings)."""

    amd: bool = False
    machine_media: tuple[str, ...] = ()            # played to a machine first (none: hang up at once)
    agentless_media: tuple[str, ...] | None = None  # agentless: the message a person hears
    keys: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))   # agentless key -> disposition
    preview: bool = False
    screen_limit: float = SCREEN_LIMIT
    key_seconds: float = KEY_SECONDS


@dataclass(frozen=True, slots=True)
class Attempt:
    id: str
    plan: Plan
    stage: Stage
    placed_at: float
    rang: bool = False
    answered_at: float | None = None
    verdict_at: float | None = None
    amd_status: str | None = None
    connected_at: float | None = None
    agent_id: str | None = None
    ended_at: float | None = None        # the call's end (the wrap-up may run on)
    cause: int | None = None
    outcome: str | None = None
    disposition: str | None = None
    agent_free_at: float | None = None
    wrapup_started: float | None = None
    playback: str | None = None          # the playback whose end the attempt waits for
    plays: int = 0


# -- starting ----------------------------------------------------------------------------------------
def dial(attempt_id: str, plan: Plan, now: float) -> tuple[Attempt, list[Command]]:
    return Attempt(attempt_id, plan, Stage.DIALLED, now), [Originate(), Tell(PM.Dialed())]


def preview(attempt_id: str, plan: Plan, now: float) -> Attempt:
    return Attempt(attempt_id, replace(plan, preview=True), Stage.PREVIEW, now)


def adopt(attempt_id: str, plan: Plan, *, placed_at: float, answered_at: float | None, connected_at: float,
          agent_id: str | None, call_over: bool, now: float) -> Attempt:
    """An attempt an earlier run left with an agent (engine/runtime/dialrecover.py)."""
    return Attempt(attempt_id, plan, Stage.WRAPUP if call_over else Stage.CONNECTED, placed_at, rang=True,
                   answered_at=answered_at, verdict_at=answered_at, connected_at=connected_at, agent_id=agent_id,
                   ended_at=now if call_over else None)


# -- handlers ----------------------------------------------------------------------------------------
def _elapsed(since: float, until: float) -> float:
    """Seconds from ``since`` to ``until``, two readings of the wall clock: 0 if it was set back
    between them (the pacer refuses a negative duration)."""
    return max(0.0, until - since)


def _end(a: Attempt, now: float, outcome: str, *, wrapup: float | None = None,
         **changes: object) -> tuple[Attempt, list[Command]]:
    cmds: list[Command] = []
    if a.stage in LINES and outcome in ("busy", "no_answer"):
        cmds.append(Tell(PM.DialResult(outcome, _elapsed(a.placed_at, now))))  # type: ignore[arg-type]
    a = replace(a, stage=Stage.ENDED, outcome=outcome, ended_at=a.ended_at or now, playback=None, **changes)
    return a, [*cmds, CancelTimer("amd"), CancelTimer("key"), Closed(outcome, wrapup)]


def _rang(a: Attempt, e: Rang, now: float):
    return replace(a, stage=Stage.RINGING, rang=True), []


def _originate_failed(a: Attempt, e: OriginateFailed, now: float):
    return _end(a, now, "invalid_number" if e.invalid_number else "failed")


def _answered(a: Attempt, e: Answered, now: float):
    a = replace(a, answered_at=now)
    if a.plan.amd:
        return replace(a, stage=Stage.SCREENING), [ScreenWithAmd(), StartTimer("amd", now + a.plan.screen_limit)]
    return _live(replace(a, verdict_at=now), now)


def _play(a: Attempt, stage: Stage, name: str, media: tuple[str, ...]) -> tuple[Attempt, list[Command]]:
    a = replace(a, stage=stage, playback=f"{a.id}-{name}", plays=a.plays + 1)
    return a, [PlayTo(a.playback, media)]


def _live(a: Attempt, now: float) -> tuple[Attempt, list[Command]]:
    """A person (or AMD could not tell): the agentless message, or an agent."""
    if a.plan.agentless_media is not None:
        return _play(a, Stage.MESSAGE, "msg", a.plan.agentless_media)
    ring = _elapsed(a.placed_at, a.answered_at or now)
    return replace(a, stage=Stage.GRACE), [Tell(PM.DialResult("live", ring, _elapsed(a.answered_at or now, now))),
                                           HandOver()]


def _hungup_ringing(a: Attempt, e: Hungup, now: float):
    return _end(a, now, dial_result(e.cause), cause=e.cause)


def _verdict(a: Attempt, e: AmdVerdict, now: float):
    a = replace(a, verdict_at=now, amd_status=e.status)
    cmds: list[Command] = [CancelTimer("amd")]
    if e.status != "MACHINE":
        a, more = _live(a, now)
        return a, cmds + more
    ring, screen = _elapsed(a.placed_at, a.answered_at or now), _elapsed(a.answered_at or now, now)
    cmds += [Count("machine"), Tell(PM.DialResult("machine", ring, screen))]
    if a.plan.machine_media:
        a, more = _play(a, Stage.MACHINE, "vm", a.plan.machine_media)
        return a, cmds + more
    return replace(a, stage=Stage.MACHINE), cmds + [HangUpCustomer("answering machine")]


def _amd_unavailable(a: Attempt, e: AmdUnavailable, now: float):
    return a, [HangUpCustomer("AMD hand-off failed")]


def _screen_timer(a: Attempt, e: TimerFired, now: float):
    if e.key != "amd":
        return a, []
    return a, [HangUpCustomer("no AMD verdict"), Probe()]


def _gone_screening(a: Attempt, e: Gone, now: float):
    return _end(a, now, "failed", amd_status=a.amd_status or "HANGUP")


def _hungup_screening(a: Attempt, e: Hungup, now: float):
    return _end(a, now, "failed", cause=e.cause, amd_status=a.amd_status or "HANGUP")   # before the verdict


def _machine_played(a: Attempt, e: PlaybackFinished, now: float):
    if e.playback != a.playback:
        return a, []
    return replace(a, playback=None), [HangUpCustomer("machine message played")]


def _play_failed(a: Attempt, e: PlaybackFailed, now: float):
    return replace(a, playback=None), [HangUpCustomer("playback failed")]


def _hungup_machine(a: Attempt, e: Hungup, now: float):
    return _end(a, now, "machine", cause=e.cause)


def _message_played(a: Attempt, e: PlaybackFinished, now: float):
    if e.playback != a.playback:
        return a, []
    a = replace(a, playback=None)
    if a.disposition is not None:
        return a, [HangUpCustomer("agentless call done")]
    return a, [StartTimer("key", now + a.plan.key_seconds)]


def _key(a: Attempt, e: Key, now: float):
    name = a.plan.keys.get(e.digit)
    if name is None or a.disposition is not None:
        return a, []
    a = replace(a, disposition=name)
    a, cmds = _play(a, Stage.MESSAGE, "bye", ("sound:auth-thankyou", "sound:goodbye"))
    return a, [CancelTimer("key"), *cmds]


def _key_timer(a: Attempt, e: TimerFired, now: float):
    if e.key != "key" or a.disposition is not None:
        return a, []
    return a, [HangUpCustomer("no key pressed")]


def _hungup_message(a: Attempt, e: Hungup, now: float):
    return _end(a, now, "answered", cause=e.cause)


def _ignore(a: Attempt, e: Event, now: float):
    return a, []


def _connected(a: Attempt, e: CallConnected, now: float):
    a = replace(a, stage=Stage.CONNECTED, connected_at=now, agent_id=e.agent_id)
    return a, [Count("live"), Tell(PM.Connected(_elapsed(a.verdict_at or now, now)))]


def _abandoned(a: Attempt, e: CallAbandoned, now: float):
    return replace(a, stage=Stage.ABANDONED), [Count("live"), Count("abandoned"), Tell(PM.Abandoned())]


def _cause(a: Attempt, e: CallCause, now: float):
    return replace(a, cause=e.cause), []


def _over_waiting(a: Attempt, e: CallOver, now: float):
    return _end(a, now, "failed")    # the customer left before an agent took the call


def _over_abandoned(a: Attempt, e: CallOver, now: float):
    return _end(a, now, "abandoned")


def _done_if_free(a: Attempt, now: float) -> tuple[Attempt, list[Command]]:
    """After the call and the agent's wrap-up: the attempt is answered, and the pacer learns how
    long the agent was busy."""
    if a.stage is not Stage.WRAPUP or a.agent_free_at is None:
        return a, []
    talk = _elapsed(a.connected_at or now, a.ended_at or now)
    wrap = _elapsed(a.wrapup_started or a.agent_free_at, a.agent_free_at)
    a, cmds = _end(a, now, "answered", wrapup=wrap)
    return a, [Tell(PM.Handled(talk, wrap)), *cmds]


def _over_connected(a: Attempt, e: CallOver, now: float):
    return _done_if_free(replace(a, stage=Stage.WRAPUP, ended_at=now), now)


def _agent_wrapup(a: Attempt, e: AgentWrapup, now: float):
    a = replace(a, wrapup_started=e.at)
    if a.plan.preview and a.stage is Stage.CONNECTED:   # the agent's call with the customer is over
        a = replace(a, stage=Stage.WRAPUP, ended_at=e.at)
    return a, []


def _agent_free(a: Attempt, e: AgentFree, now: float):
    return _done_if_free(replace(a, agent_free_at=e.at), e.at)


def _agent_known(a: Attempt, e: AgentKnown, now: float):
    return (a, []) if a.agent_id is not None else (replace(a, agent_id=e.agent_id), [])


def _customer_dialled(a: Attempt, e: CustomerDialled, now: float):
    return replace(a, stage=Stage.RINGING, placed_at=now), []


def _customer_answered(a: Attempt, e: CustomerAnswered, now: float):
    return replace(a, stage=Stage.CONNECTED, agent_id=e.agent_id, answered_at=now, verdict_at=now,
                   connected_at=now), []


def _customer_failed(a: Attempt, e: CustomerFailed, now: float):
    return _end(a, now, e.outcome)


def _disposition(a: Attempt, e: Disposition, now: float):
    return replace(a, disposition=e.name), []


S = Stage
_OPEN = tuple(s for s in Stage if s is not S.ENDED)

TABLE: Transitions[Attempt] = Transitions("attempt", lambda a: a.stage, {
    (S.DIALLED, Rang): Row((S.RINGING,), _rang),
    (S.RINGING, Rang): Row((S.RINGING,), _rang),
    (S.DIALLED, OriginateFailed): Row((S.ENDED,), _originate_failed),
    **{(s, Answered): Row((S.SCREENING, S.GRACE, S.MESSAGE), _answered) for s in (S.DIALLED, S.RINGING)},
    **{(s, Hungup): Row((S.ENDED,), _hungup_ringing) for s in (S.DIALLED, S.RINGING)},
    (S.SCREENING, AmdVerdict): Row((S.MACHINE, S.GRACE, S.MESSAGE), _verdict),
    (S.SCREENING, AmdUnavailable): Row((S.SCREENING,), _amd_unavailable),
    (S.SCREENING, TimerFired): Row((S.SCREENING,), _screen_timer),
    (S.SCREENING, Gone): Row((S.ENDED,), _gone_screening),
    (S.SCREENING, Hungup): Row((S.ENDED,), _hungup_screening),
    (S.MACHINE, PlaybackFinished): Row((S.MACHINE,), _machine_played),
    (S.MACHINE, Hungup): Row((S.ENDED,), _hungup_machine),
    (S.MESSAGE, PlaybackFinished): Row((S.MESSAGE,), _message_played),
    (S.MESSAGE, Key): Row((S.MESSAGE,), _key),
    (S.MESSAGE, TimerFired): Row((S.MESSAGE,), _key_timer),
    (S.MESSAGE, Hungup): Row((S.ENDED,), _hungup_message),
    **{(s, PlaybackFailed): Row((s,), _play_failed) for s in (S.MACHINE, S.MESSAGE)},
    **{(s, Key): Row((s,), _ignore) for s in (S.RINGING, S.SCREENING, S.MACHINE)},   # keys nobody asked for
    (S.GRACE, CallConnected): Row((S.CONNECTED,), _connected),
    (S.GRACE, CallAbandoned): Row((S.ABANDONED,), _abandoned),
    (S.GRACE, CallOver): Row((S.ENDED,), _over_waiting),
    (S.ABANDONED, CallOver): Row((S.ENDED,), _over_abandoned),
    **{(s, CallCause): Row((s,), _cause) for s in (S.GRACE, S.ABANDONED, S.CONNECTED, S.WRAPUP)},
    (S.CONNECTED, CallOver): Row((S.WRAPUP, S.ENDED), _over_connected),
    (S.CONNECTED, AgentWrapup): Row((S.CONNECTED, S.WRAPUP), _agent_wrapup),   # a preview's call is the agent's
    (S.WRAPUP, AgentWrapup): Row((S.WRAPUP,), _agent_wrapup),
    (S.CONNECTED, AgentFree): Row((S.CONNECTED,), _agent_free),
    (S.WRAPUP, AgentFree): Row((S.ENDED,), _agent_free),
    **{(s, AgentKnown): Row((s,), _agent_known) for s in (S.PREVIEW, S.RINGING)},
    (S.PREVIEW, CustomerDialled): Row((S.RINGING,), _customer_dialled),
    (S.RINGING, CustomerAnswered): Row((S.CONNECTED,), _customer_answered),
    **{(s, CustomerFailed): Row((S.ENDED,), _customer_failed) for s in (S.PREVIEW, S.RINGING)},
    **{(s, Disposition): Row((s,), _disposition) for s in _OPEN},
}, initial=(S.DIALLED, S.PREVIEW))


def handle(a: Attempt, event: Event, now: float) -> tuple[Attempt, list[Command]]:
    return TABLE.handle(a, event, now)
