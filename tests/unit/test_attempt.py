"""The outbound attempt machine (engine/core/attempt.py): every way a dial can go, as the dialer
and the simulator run it."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from engine.core import acd as A
from engine.core import attempt as AT
from engine.core import campaign as CP
from engine.core import pacing as P
from engine.core import pacing_model as PM
from engine.core.common import CancelTimer, IllegalTransition, StartTimer, TimerFired

from .structure import dump

S = AT.Stage


def run(plan: AT.Plan, *steps: tuple[float, object]) -> tuple[AT.Attempt, list[object]]:
    """Dial at t=0, then each (time, event); returns the state and every command in order."""
    a, out = AT.dial("a1", plan, 0.0)
    out = list(out)
    for t, event in steps:
        a, cmds = AT.handle(a, event, t)
        out += cmds
    return a, out


def of(kind: type, commands: list[object]) -> list[object]:
    return [c for c in commands if isinstance(c, kind)]


@pytest.mark.parametrize("cause,outcome,told", [(17, "busy", True), (19, "no_answer", True),
                                                (1, "invalid_number", False), (34, "failed", False)])
def test_a_dial_that_is_not_answered_ends_by_its_cause_and_the_pacer_hears_busy_and_no_answer(cause, outcome, told):
    a, out = run(AT.Plan(), (1.0, AT.Rang()), (20.0, AT.Hungup(cause)))
    assert (a.stage, a.outcome, a.cause, a.rang) == (S.ENDED, outcome, cause, True)
    assert of(AT.Closed, out) == [AT.Closed(outcome)]
    results = [c.event for c in of(AT.Tell, out) if isinstance(c.event, PM.DialResult)]
    assert results == ([PM.DialResult(outcome, 20.0)] if told else [])
    assert isinstance(of(AT.Tell, out)[0].event, PM.Dialed) and of(AT.Originate, out) == [AT.Originate()]


def test_a_wall_clock_set_back_gives_the_pacer_zero_seconds_not_a_negative_duration():
    # the pacer refuses a negative duration; what the attempt and the campaign's snapshot measure
    # between two readings of the wall clock is never below 0, so a clock set back (or an answer
    # heard after the shell read the clock for its snapshot) cannot trip it
    a, out = run(AT.Plan(), (-2.0, AT.Answered()), (-3.0, AT.CallConnected("9001")), (-4.0, AT.CallOver()),
                 (-4.0, AT.AgentWrapup(-4.0)), (-5.0, AT.AgentFree(-5.0)))
    told = [c.event for c in of(AT.Tell, out)]
    assert told[1:] == [PM.DialResult("live", 0.0, 0.0), PM.Connected(0.0), PM.Handled(0.0, 0.0)]
    pacer = P.make_pacer("predictive")
    for event in told:
        P.step(pacer, event, 0.0)
    _, busy = run(AT.Plan(), (-1.0, AT.Hungup(17)))
    assert [c.event for c in of(AT.Tell, busy)][1:] == [PM.DialResult("busy", 0.0)]
    ringing, _ = AT.dial("a2", AT.Plan(), 10.0)
    screening, _ = AT.handle(AT.dial("a3", AT.Plan(amd=True), 0.0)[0], AT.Answered(), 12.0)
    snap, _ = CP.snapshot(A.Acd({}, {}), None, [ringing, screening], (0, 0), 9.0)
    assert (snap.ringing, snap.screening) == ((0.0,), (0.0,))
    assert P.step(pacer, P.Decide(snap), 9.0)[0] is pacer


def test_an_originate_asterisk_refuses_ends_the_attempt():
    a, out = run(AT.Plan(), (0.1, AT.OriginateFailed(invalid_number=True)))
    assert (a.stage, a.outcome) == (S.ENDED, "invalid_number")


def test_a_live_answer_without_amd_is_handed_over_and_ends_answered_after_the_wrap_up():
    a, out = run(AT.Plan(), (2.0, AT.Rang()), (6.0, AT.Answered()))
    assert a.stage is S.GRACE and of(AT.HandOver, out) == [AT.HandOver()]
    assert of(AT.Tell, out)[-1].event == PM.DialResult("live", 6.0, 0.0)
    a, out = run(AT.Plan(), (6.0, AT.Answered()), (7.5, AT.CallConnected("9001")), (60.0, AT.CallCause(16)),
                 (60.0, AT.CallOver()), (60.0, AT.AgentWrapup(60.0)), (75.0, AT.AgentFree(75.0)))
    assert (a.stage, a.outcome, a.agent_id, a.connected_at, a.ended_at, a.cause) == (
        S.ENDED, "answered", "9001", 7.5, 60.0, 16)
    assert of(AT.Count, out) == [AT.Count("live")]
    told = [c.event for c in of(AT.Tell, out)]
    assert PM.Connected(1.5) in told and told[-1] == PM.Handled(52.5, 15.0)
    assert of(AT.Closed, out) == [AT.Closed("answered", 15.0)]


def test_an_agent_free_before_the_call_is_heard_over_ends_it_when_it_is():
    a, out = run(AT.Plan(), (6.0, AT.Answered()), (7.0, AT.CallConnected("9001")), (50.0, AT.AgentFree(50.0)))
    assert a.stage is S.CONNECTED and not of(AT.Closed, out)
    a, cmds = AT.handle(a, AT.CallOver(), 50.1)
    assert (a.stage, cmds[-1]) == (S.ENDED, AT.Closed("answered", 0.0))


def test_no_agent_within_the_grace_is_an_abandon_counted_once():
    a, out = run(AT.Plan(), (6.0, AT.Answered()), (8.0, AT.CallAbandoned()), (15.0, AT.CallOver()))
    assert (a.stage, a.outcome) == (S.ENDED, "abandoned")
    assert of(AT.Count, out) == [AT.Count("live"), AT.Count("abandoned")]
    assert PM.Abandoned() in [c.event for c in of(AT.Tell, out)]
    with pytest.raises(IllegalTransition):     # the end heard twice: refused, nothing counted again
        AT.handle(a, AT.CallOver(), 16.0)


def test_a_customer_who_leaves_in_the_grace_is_a_failed_attempt_not_an_abandon():
    a, out = run(AT.Plan(), (6.0, AT.Answered()), (7.0, AT.CallOver()))
    assert (a.outcome, of(AT.Count, out)) == ("failed", [])


def test_amd_screens_then_a_person_goes_to_an_agent_and_a_machine_hears_the_message():
    plan = AT.Plan(amd=True, machine_media=("sound:vm-msg",))
    a, out = run(plan, (5.0, AT.Answered()))
    assert a.stage is S.SCREENING and of(AT.ScreenWithAmd, out) and StartTimer("amd", 5.0 + AT.SCREEN_LIMIT) in out
    person, cmds = AT.handle(a, AT.AmdVerdict("HUMAN"), 8.0)
    assert person.stage is S.GRACE and CancelTimer("amd") in cmds and AT.HandOver() in cmds
    assert AT.Tell(PM.DialResult("live", 5.0, 3.0)) in cmds
    machine, cmds = AT.handle(a, AT.AmdVerdict("MACHINE"), 8.0)
    assert (machine.stage, machine.amd_status) == (S.MACHINE, "MACHINE")
    assert AT.Count("machine") in cmds and AT.PlayTo("a1-vm", ("sound:vm-msg",)) in cmds
    played, cmds = AT.handle(machine, AT.PlaybackFinished("a1-vm"), 20.0)
    assert cmds == [AT.HangUpCustomer("machine message played")]
    ended, cmds = AT.handle(played, AT.Hungup(16), 20.1)
    assert (ended.stage, ended.outcome) == (S.ENDED, "machine")


def test_a_machine_without_a_message_is_hung_up_at_once():
    a, out = run(AT.Plan(amd=True), (5.0, AT.Answered()), (7.0, AT.AmdVerdict("MACHINE")))
    assert of(AT.HangUpCustomer, out) == [AT.HangUpCustomer("answering machine")]


def test_the_amd_watchdog_hangs_up_and_looks_for_the_channel():
    a, out = run(AT.Plan(amd=True), (5.0, AT.Answered()))
    a, cmds = AT.handle(a, TimerFired("amd"), 20.0)
    assert (a.stage, cmds) == (S.SCREENING, [AT.HangUpCustomer("no AMD verdict"), AT.Probe()])
    gone, cmds = AT.handle(a, AT.Gone(), 20.2)
    assert (gone.outcome, gone.amd_status) == ("failed", "HANGUP")
    hungup, _ = AT.handle(a, AT.Hungup(16), 20.2)       # or its end is heard
    assert (hungup.outcome, hungup.amd_status) == ("failed", "HANGUP")


def test_agentless_plays_the_message_takes_one_key_and_says_goodbye():
    plan = AT.Plan(agentless_media=("sound:offer",), keys=MappingProxyType({"1": "interested", "9": "DNC"}))
    a, out = run(plan, (5.0, AT.Answered()))
    assert a.stage is S.MESSAGE and of(AT.PlayTo, out) == [AT.PlayTo("a1-msg", ("sound:offer",))]
    assert not of(AT.HandOver, out) and not of(AT.Count, out)
    a, cmds = AT.handle(a, AT.PlaybackFinished("a1-msg"), 15.0)
    assert cmds == [StartTimer("key", 15.0 + AT.KEY_SECONDS)]
    same, cmds = AT.handle(a, AT.Key("5"), 16.0)             # not a key of the campaign
    assert (same, cmds) == (a, [])
    a, cmds = AT.handle(a, AT.Key("1"), 16.0)
    assert a.disposition == "interested" and CancelTimer("key") in cmds and of(AT.PlayTo, cmds)
    a, cmds = AT.handle(a, AT.PlaybackFinished("a1-bye"), 18.0)
    assert cmds == [AT.HangUpCustomer("agentless call done")]
    a, cmds = AT.handle(a, AT.Hungup(16), 18.1)
    assert (a.outcome, a.disposition) == ("answered", "interested")


def test_agentless_without_a_key_hangs_up_after_the_wait():
    plan = AT.Plan(agentless_media=("sound:offer",), keys=MappingProxyType({"1": "interested"}))
    a, _ = run(plan, (5.0, AT.Answered()), (15.0, AT.PlaybackFinished("a1-msg")))
    a, cmds = AT.handle(a, TimerFired("key"), 25.0)
    assert cmds == [AT.HangUpCustomer("no key pressed")]


def test_a_preview_is_dialled_when_the_agent_takes_it():
    a = AT.preview("p1", AT.Plan(), 0.0)
    a, _ = AT.handle(a, AT.AgentKnown("9001"), 3.0)
    a, _ = AT.handle(a, AT.CustomerDialled(), 4.0)
    assert (a.stage, a.placed_at, a.agent_id) == (S.RINGING, 4.0, "9001")
    talking, _ = AT.handle(a, AT.CustomerAnswered("9001"), 9.0)
    assert (talking.stage, talking.connected_at) == (S.CONNECTED, 9.0)
    over, _ = AT.handle(talking, AT.AgentWrapup(60.0), 60.0)     # the agent's call is the customer's
    assert (over.stage, over.ended_at) == (S.WRAPUP, 60.0)
    done, cmds = AT.handle(over, AT.AgentFree(70.0), 70.0)
    assert cmds[-1] == AT.Closed("answered", 10.0)
    busy, cmds = AT.handle(a, AT.CustomerFailed("busy"), 9.0)
    assert busy.outcome == "busy" and AT.Tell(PM.DialResult("busy", 5.0)) in cmds


def test_an_adopted_attempt_ends_answered_when_its_agent_is_free():
    a = AT.adopt("x", AT.Plan(), placed_at=0.0, answered_at=5.0, connected_at=7.0, agent_id="9001",
                 call_over=False, now=100.0)
    assert a.stage is S.CONNECTED
    a, _ = AT.handle(a, AT.CallOver(), 120.0)
    a, cmds = AT.handle(a, AT.AgentFree(130.0), 130.0)
    assert (a.outcome, cmds[-1]) == ("answered", AT.Closed("answered", 0.0))


EVENTS = [AT.Rang(), AT.Answered(), AT.OriginateFailed(), AT.Hungup(17), AT.AmdVerdict("HUMAN"),
          AT.AmdUnavailable(), AT.Gone(), AT.PlaybackFinished("x"), AT.PlaybackFailed(), AT.Key("1"),
          AT.CallConnected("9001"), AT.CallAbandoned(), AT.CallCause(16), AT.CallOver(), AT.AgentWrapup(1.0),
          AT.AgentFree(2.0), AT.AgentKnown("9001"), AT.CustomerDialled(), AT.CustomerAnswered("9001"),
          AT.CustomerFailed("busy"), AT.Disposition("sale"), TimerFired("amd")]


@pytest.mark.parametrize("stage", list(S))
def test_every_event_a_stage_has_no_row_for_raises_and_changes_nothing(stage):
    a = AT.Attempt("a1", AT.Plan(amd=True), stage, 0.0)
    before = dump(a)
    for event in EVENTS:
        if AT.TABLE.allows(stage, type(event)):
            new, _ = AT.handle(a, event, 5.0)
            assert new.stage in AT.TABLE.rows[stage, type(event)].to
        else:
            with pytest.raises(IllegalTransition):
                AT.handle(a, event, 5.0)
        assert dump(a) == before
    assert (stage is S.ENDED) == (not any(AT.TABLE.allows(stage, type(e)) for e in EVENTS))
