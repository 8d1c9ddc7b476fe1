"""The inbound call machine (pure): transitions, timers, and that no call can get stuck."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core import call as c
from engine.core.common import CancelTimer, IllegalTransition, StartTimer, TimerFired

from .structure import dump

LIMITS = c.Limits(answer_seconds=10, playback_seconds=60, hangup_seconds=5, max_call_seconds=3600)
T0 = 1_700_000_000.0


def arrival(**kw) -> c.Arrival:
    base = dict(call_id="call-1", channel_id="chan-1", caller_number="5551234", caller_name="Ann",
                dialed_number="2000", route=c.Route(prompt="hello-world"), started_at=T0)
    base.update(kw)
    return c.Arrival(**base)


def kinds(commands) -> list[str]:
    return [type(x).__name__ for x in commands]


def test_happy_path_answer_play_hang_up():
    s, cmds = c.start(arrival(), LIMITS, T0)
    assert s.phase is c.Phase.ANSWERING
    assert cmds == [
        c.RecordStarted("call-1", "chan-1", "inbound", "5551234", "Ann", "2000", T0),
        StartTimer("max", T0 + 3600), c.Answer(), StartTimer("answer", T0 + 10)]

    s, cmds = c.handle(s, c.Answered(), T0 + 0.1)
    assert s.phase is c.Phase.PLAYING and s.answered
    assert cmds == [CancelTimer("answer"), c.RecordAnswered("call-1", T0 + 0.1),
                    c.Play(("sound:hello-world",), "call-1-p1"), StartTimer("playback", T0 + 60.1)]

    s, cmds = c.handle(s, c.PlaybackDone("call-1-p1"), T0 + 2)
    assert s.phase is c.Phase.HANGING_UP
    assert c.Hangup("normal") in cmds and StartTimer("hangup", T0 + 7) in cmds

    s, cmds = c.handle(s, c.ChannelGone(16, "Normal Clearing"), T0 + 2.1)
    assert s.phase is c.Phase.ENDED
    assert c.RecordEnded("call-1", T0 + 2.1, 16, "Normal Clearing", "engine") in cmds
    assert cmds[-1] == c.Finish()
    assert {x.key for x in cmds if isinstance(x, CancelTimer)} == {"answer", "playback", "hangup", "max", "transfer"}


def test_caller_hangs_up_during_the_prompt():
    s, _ = c.start(arrival(), LIMITS, T0)
    s, _ = c.handle(s, c.Answered(), T0)
    s, cmds = c.handle(s, c.ChannelGone(16, "Normal Clearing"), T0 + 1)
    assert s.phase is c.Phase.ENDED
    assert c.RecordEnded("call-1", T0 + 1, 16, "Normal Clearing", "caller") in cmds
    assert c.Hangup() not in cmds


def test_answer_timeout_hangs_up_and_records_why():
    s, _ = c.start(arrival(), LIMITS, T0)
    s, cmds = c.handle(s, TimerFired("answer"), T0 + 10)
    assert s.phase is c.Phase.HANGING_UP
    assert kinds(cmds)[0] == "RecordEvent" and cmds[0].kind == "timeout" and cmds[0].detail == "answer"
    assert c.Hangup() in cmds


def test_no_hangup_event_still_closes_the_record():
    s, _ = c.start(arrival(), LIMITS, T0)
    s, _ = c.handle(s, TimerFired("answer"), T0 + 10)
    s, cmds = c.handle(s, TimerFired("hangup"), T0 + 15)
    assert s.phase is c.Phase.ENDED
    assert cmds[0] == c.Hangup()  # one more try
    assert c.RecordEnded("call-1", T0 + 15, None, "no hang-up event from Asterisk", "engine") in cmds


def test_channel_gone_on_request_waits_for_the_cause():
    s, _ = c.start(arrival(), LIMITS, T0)
    s, cmds = c.handle(s, c.RequestFailed("answer", gone=True, detail="404 Channel not found"), T0 + 1)
    assert s.phase is c.Phase.HANGING_UP and c.Hangup() not in cmds
    s, cmds = c.handle(s, c.ChannelGone(16, "Normal Clearing"), T0 + 1.2)
    assert c.RecordEnded("call-1", T0 + 1.2, 16, "Normal Clearing", "caller") in cmds


def test_a_hangup_without_a_cause_is_stored_as_cause_0_with_who_hung_up():
    # a phone's BYE without a Reason header: ChannelHangupRequest carries no cause, StasisEnd none
    s, _ = c.start(arrival(), LIMITS, T0)
    s, _ = c.handle(s, c.Answered(), T0)
    s, _ = c.handle(s, c.HangupRequested(cause=None), T0 + 1)
    s, cmds = c.handle(s, c.ChannelGone(), T0 + 1.1)
    assert c.RecordEnded("call-1", T0 + 1.1, 0, "Unknown: no cause given (caller hung up)", "caller") in cmds


def test_failed_prompt_still_hangs_up():
    s, _ = c.start(arrival(), LIMITS, T0)
    s, _ = c.handle(s, c.Answered(), T0)
    s, cmds = c.handle(s, c.PlaybackDone("call-1-p1", ok=False), T0 + 0.2)
    assert s.phase is c.Phase.HANGING_UP
    assert cmds[0] == c.RecordEvent("call-1", T0 + 0.2, "prompt-failed", "hello-world")


QUEUE = c.Route(queue="billing", priority=2, music="default", callback_key="*", recording="on_demand",
                record_code="*7")


def queued() -> c.CallState:
    s, _ = c.start(arrival(route=QUEUE), LIMITS, T0)
    s, cmds = c.handle(s, c.Answered(), T0 + 0.1)
    assert s.phase is c.Phase.QUEUED
    assert c.StartMusic("default") in cmds and c.JoinQueue("call-1", "billing", 2, None) in cmds
    return s


def test_queued_caller_hears_position_then_music_again():
    s = queued()
    s, cmds = c.handle(s, c.Announcement(position=3, expected_wait=130), T0 + 45)
    assert cmds == [c.StopMusic(), c.Play(("sound:queue-thereare", "number:3", "sound:queue-callswaiting",
                                            "sound:queue-holdtime", "number:2", "sound:queue-minutes"),
                                           "call-1-p1")]
    s, cmds = c.handle(s, c.PlaybackDone("call-1-p1"), T0 + 50)
    assert cmds == [c.StartMusic("default")] and s.phase is c.Phase.QUEUED


LATER = replace(QUEUE, music_after=0.5)


def queued_later() -> c.CallState:
    s, _ = c.start(arrival(route=LATER), LIMITS, T0)
    s, cmds = c.handle(s, c.Answered(), T0 + 0.1)
    assert StartTimer("music", T0 + 0.6) in cmds and not any(isinstance(x, c.StartMusic) for x in cmds)
    return s


def test_a_caller_taken_before_the_music_is_due_hears_none_and_nothing_is_stopped():
    s, cmds = c.handle(queued_later(), c.Connected("1001", "agent-chan"), T0 + 0.2)
    assert CancelTimer("music") in cmds and c.BridgeWith("agent-chan") in cmds
    assert not any(isinstance(x, (c.StartMusic, c.StopMusic)) for x in cmds)


def test_a_caller_still_waiting_when_it_is_due_hears_the_music_then_it_stops_at_the_agent():
    s, cmds = c.handle(queued_later(), TimerFired("music"), T0 + 0.6)
    assert cmds == [c.StartMusic("default")] and s.music
    again, cmds = c.handle(s, TimerFired("music"), T0 + 0.7)   # the same timer twice: nothing more
    assert cmds == [] and again == s
    s, cmds = c.handle(s, c.Connected("1001", "agent-chan"), T0 + 3)
    assert c.StopMusic() in cmds and not s.music


def test_an_announcement_before_the_music_is_due_plays_and_the_music_follows_it():
    s, cmds = c.handle(queued_later(), c.Announcement(position=1, expected_wait=10), T0 + 0.3)
    assert CancelTimer("music") in cmds and not any(isinstance(x, c.StopMusic) for x in cmds)
    assert c.handle(s, TimerFired("music"), T0 + 0.6)[1] == []   # the prompt is being said
    s, cmds = c.handle(s, c.PlaybackDone(s.playback_id), T0 + 4)
    assert cmds == [c.StartMusic("default")] and s.music


def test_connected_bridges_and_either_side_leaving_ends_both():
    s = queued()
    s, cmds = c.handle(s, c.Connected("1001", "agent-chan"), T0 + 20)
    assert s.phase is c.Phase.CONNECTED
    assert c.StopMusic() in cmds and c.BridgeWith("agent-chan") in cmds
    s2, cmds = c.handle(s, c.AgentGone(), T0 + 80)
    assert cmds[0] == c.AgentCallOver("1001") and c.Hangup() in cmds and s2.hangup_by == "agent"
    s3, cmds = c.handle(s, c.ChannelGone(16, ""), T0 + 80)
    assert c.HangupAgent("agent-chan") in cmds and c.AgentCallOver("1001") in cmds
    assert c.RecordEnded("call-1", T0 + 80, 16, "Normal Clearing", "caller") in cmds


def test_caller_leaving_the_queue_is_told_to_the_acd():
    s = queued()
    s, cmds = c.handle(s, c.ChannelGone(16, ""), T0 + 30)
    assert cmds[0] == c.LeaveQueue("call-1")


def test_callback_key_keeps_the_place_and_says_goodbye():
    s = queued()
    s, cmds = c.handle(s, c.Dtmf("*"), T0 + 30)
    assert cmds[0] == c.RequestCallback("call-1", "5551234")
    assert s.phase is c.Phase.PLAYING
    s, cmds = c.handle(s, c.ChannelGone(16, ""), T0 + 31)
    assert c.LeaveQueue("call-1") not in cmds  # the callback keeps its place


def test_on_demand_recording_by_the_agents_keys():
    s = queued()
    s, _ = c.handle(s, c.Connected("1001", "agent-chan"), T0 + 20)
    s, cmds = c.handle(s, c.Dtmf("*", from_agent=False), T0 + 21)
    s, cmds = c.handle(s, c.Dtmf("*", from_agent=True), T0 + 22)
    assert cmds == []
    s, cmds = c.handle(s, c.Dtmf("7", from_agent=True), T0 + 23)
    assert c.StartRecording("1001", "billing") in cmds and s.recording
    s, cmds = c.handle(s, c.Dtmf("*", from_agent=True), T0 + 24)
    s, cmds = c.handle(s, c.Dtmf("7", from_agent=True), T0 + 25)
    assert cmds == []  # already recording


def test_acd_giving_up_plays_sorry_and_hangs_up():
    s = queued()
    s, cmds = c.handle(s, c.GaveUp("no-agents"), T0 + 1)
    assert s.phase is c.Phase.PLAYING and c.Play(c.SORRY, "call-1-p1") in cmds


def test_an_agent_answering_as_the_caller_leaves_is_released():
    s, _ = c.start(arrival(), LIMITS, T0)
    s, _ = c.handle(s, c.Answered(), T0)
    same, cmds = c.handle(s, c.Connected("1001", "agent-chan"), T0 + 1)
    assert cmds == [c.HangupAgent("agent-chan"), c.AgentCallOver("1001")] and same == s


def test_stale_events_are_ignored():
    s, _ = c.start(arrival(), LIMITS, T0)
    s, _ = c.handle(s, c.Answered(), T0)
    same, cmds = c.handle(s, c.PlaybackDone("call-1-p0"), T0 + 1)
    assert same == s and cmds == []
    same, cmds = c.handle(s, TimerFired("answer"), T0 + 1)
    assert same == s and cmds == []


def test_adopted_answered_channel_plays_at_once():
    s, cmds = c.start(arrival(already_answered=True, adopted=True), LIMITS, T0 + 50)
    assert s.phase is c.Phase.PLAYING
    assert "Answer" not in kinds(cmds)
    assert c.RecordEvent("call-1", T0 + 50, "adopted", "channel was in Stasis at start-up") in cmds


def ended() -> c.CallState:
    s, _ = c.start(arrival(), LIMITS, T0)
    s, _ = c.handle(s, c.ChannelGone(16, "x"), T0)
    assert s.phase is c.Phase.ENDED
    return s


@pytest.mark.parametrize("make_state,event", [
    (ended, c.Answered()), (ended, c.ChannelGone(16, "x")), (ended, TimerFired("hangup")),
    (ended, c.HoldRequest(True)), (ended, c.BlindTransfer("queue", "billing"))])   # rows the table does not have
def test_illegal_transition_raises_and_changes_nothing(make_state, event):
    s = make_state()
    before = dump(s)
    with pytest.raises(IllegalTransition, match=f"no transition from {s.phase.name} on {type(event).__name__}"):
        c.handle(s, event, T0 + 1)
    assert dump(s) == before, "a refused event changed the call's state"


EVENTS = st.one_of(
    st.just(c.Answered()),
    st.builds(c.Announcement, position=st.integers(1, 5), expected_wait=st.floats(0, 600)),
    st.builds(c.Connected, agent_id=st.just("1001"), agent_channel=st.just("agent-chan")),
    st.builds(c.GaveUp, reason=st.just("no-agents")),
    st.just(c.AgentGone()),
    st.builds(c.HoldRequest, held=st.booleans(), side=st.sampled_from(["agent", "caller"])),
    st.builds(c.BlindTransfer, kind=st.sampled_from(["queue", "number"]), target=st.just("billing")),
    st.builds(c.TransferFailed, reason=st.just("busy")),
    st.builds(c.Dtmf, digit=st.sampled_from(["*", "7", "1"]), from_agent=st.booleans()),
    st.builds(c.PlaybackDone, playback_id=st.sampled_from(["call-1-p1", "call-1-p0"]), ok=st.booleans()),
    st.builds(c.ChannelGone, cause=st.sampled_from([16, 17, None]), cause_text=st.just("x")),
    st.builds(c.RequestFailed, command=st.sampled_from(["answer", "play", "hangup"]), gone=st.booleans(),
              detail=st.just("x")),
    st.builds(TimerFired, key=st.sampled_from(["answer", "playback", "hangup", "max"])),
)


@settings(max_examples=300, deadline=None)
@given(answered=st.booleans(), queue=st.booleans(), events=st.lists(EVENTS, max_size=12))
def test_no_call_can_get_stuck(answered, queue, events):
    """Whatever Asterisk and the ACD send, a live call always has a timer pending, and with nothing
    more from them the timers alone end it, with exactly one end record; an agent taken is always
    given back."""
    now = T0
    route = QUEUE if queue else c.Route(prompt="hello-world")
    s, cmds = c.start(arrival(already_answered=answered, route=route), LIMITS, now)
    agents_taken = 0
    timers: dict[str, float] = {}
    records: list[c.RecordEnded] = []

    def apply(commands):
        for x in commands:
            if isinstance(x, StartTimer):
                timers[x.key] = x.at
            elif isinstance(x, CancelTimer):
                timers.pop(x.key, None)
            elif isinstance(x, c.RecordEnded):
                records.append(x)
            elif isinstance(x, c.AgentCallOver):
                nonlocal agents_taken
                agents_taken -= 1

    apply(cmds)
    for ev in events:
        if s.phase is c.Phase.ENDED:
            break
        now += 0.5
        before = dump(s)
        try:
            s2, cmds = c.handle(s, ev, now)
        except IllegalTransition:
            assert dump(s) == before, f"a refused {type(ev).__name__} changed the call's state"
            continue  # an event that cannot happen here: refused, and the state is as it was
        s = s2
        if isinstance(ev, c.Connected):
            agents_taken += 1
        apply(cmds)
        if s.phase is not c.Phase.ENDED:
            assert timers, f"live call in {s.phase} with no timer"
    for _ in range(10):  # only timers from here on
        if s.phase is c.Phase.ENDED:
            break
        key, at = min(timers.items(), key=lambda kv: kv[1])
        del timers[key]
        s, cmds = c.handle(s, TimerFired(key), max(now, at))
        apply(cmds)
    assert s.phase is c.Phase.ENDED
    assert len(records) == 1 and not timers
    assert agents_taken == 0, "an agent was connected and never released"


# -- an outbound call a person answered: an agent within the grace, or the safe-harbor message ----
OUTBOUND = c.Route(queue="renewals", priority=1000, connect_grace=2.0, abandon_media=("sound:custom/safe-harbor",))


def answered_outbound() -> c.CallState:
    s, cmds = c.start(arrival(route=OUTBOUND, already_answered=True, direction="outbound"), LIMITS, T0)
    assert s.phase is c.Phase.QUEUED and cmds[0].direction == "outbound"
    assert StartTimer("grace", T0 + 2.0) in cmds and c.JoinQueue("call-1", "renewals", 1000, None) in cmds
    assert c.RecordAnswered("call-1", T0) in cmds
    return s


def test_an_agent_within_the_grace_cancels_the_abandon():
    s, cmds = c.handle(answered_outbound(), c.Connected("1001", "agent-chan"), T0 + 0.4)
    assert s.phase is c.Phase.CONNECTED and CancelTimer("grace") in cmds
    s, cmds = c.handle(s, TimerFired("grace"), T0 + 2.0)   # a late timer changes nothing
    assert s.phase is c.Phase.CONNECTED and cmds == []


def test_no_agent_within_the_grace_plays_the_safe_harbor_message_then_hangs_up():
    s, cmds = c.handle(answered_outbound(), TimerFired("grace"), T0 + 2.0)
    assert cmds[0] == c.LeaveQueue("call-1")
    assert c.RecordEvent("call-1", T0 + 2.0, "abandoned", "no agent within 2 s") in cmds
    assert c.Play(("sound:custom/safe-harbor",), "call-1-p1") in cmds and s.phase is c.Phase.PLAYING
    s, cmds = c.handle(s, c.Connected("1001", "agent-chan"), T0 + 2.1)   # the agent came too late
    assert cmds == [c.HangupAgent("agent-chan"), c.AgentCallOver("1001")]
    s, cmds = c.handle(s, c.PlaybackDone("call-1-p1"), T0 + 6)
    assert s.phase is c.Phase.HANGING_UP and c.Hangup() in cmds and s.hangup_by == "engine"


def test_an_outbound_call_nobody_can_take_is_an_abandon_too():
    s, cmds = c.handle(answered_outbound(), c.GaveUp("no agent logged in"), T0 + 0.1)
    assert [x.kind for x in cmds if isinstance(x, c.RecordEvent)] == ["queue-gave-up", "abandoned"]
    assert c.Play(("sound:custom/safe-harbor",), "call-1-p1") in cmds
