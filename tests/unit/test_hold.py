"""Hold (pure): the call machine's hold handlers, the agent's on_hold state, and the ACD between them."""

from __future__ import annotations

from types import MappingProxyType as M

from engine.core import acd as A
from engine.core import agent as ag
from engine.core import call as c
from engine.core.call_messages import AgentHoldChanged, HoldParty, RecordHold
from engine.core.common import StartTimer

from .test_call_core import LIMITS, QUEUE, T0, arrival

AGENT_CHAN = "agent-chan"


def connected(route: c.Route = QUEUE, **kw) -> c.CallState:
    s, _ = c.start(arrival(route=route, **kw), LIMITS, T0)
    s, _ = c.handle(s, c.Answered(), T0 + 0.1)
    s, _ = c.handle(s, c.Connected("1001", AGENT_CHAN), T0 + 5)
    assert s.phase is c.Phase.CONNECTED
    return s


def test_the_agents_hold_key_puts_the_caller_on_music_and_the_agent_on_hold_once():
    s, cmds = c.handle(connected(), c.HoldRequest(True), T0 + 10)
    assert cmds == [HoldParty("chan-1", "default", True), AgentHoldChanged("1001", True),
                    RecordHold("call-1", T0 + 10, True, "caller", "phone", "1001")]
    assert s.caller_held and s.phase is c.Phase.CONNECTED
    again, cmds = c.handle(s, c.HoldRequest(True), T0 + 11)   # the phone says it twice
    assert again == s and cmds == []
    s, cmds = c.handle(s, c.HoldRequest(False), T0 + 40)
    assert cmds == [HoldParty("chan-1", "default", False), AgentHoldChanged("1001", False),
                    RecordHold("call-1", T0 + 40, False, "caller", "phone", "1001")]
    assert not s.caller_held


def test_the_end_of_a_hold_begun_before_a_restart_still_gives_the_caller_back_their_agent():
    s, cmds = c.handle(connected(), c.HoldRequest(False), T0 + 10)   # the phone's: Asterisk saw a hold end
    assert cmds == [HoldParty("chan-1", "default", False), AgentHoldChanged("1001", False),
                    RecordHold("call-1", T0 + 10, False, "caller", "phone", "1001")]
    assert not s.caller_held
    s, cmds = c.handle(connected(), c.HoldRequest(False, by="api"), T0 + 10)   # unhold of nobody held
    assert cmds == [HoldParty("chan-1", "default", False), AgentHoldChanged("1001", False)]


def test_a_callers_hold_key_puts_the_agent_on_music_and_leaves_the_agents_state_alone():
    s, cmds = c.handle(connected(), c.HoldRequest(True, "caller"), T0 + 10)
    assert cmds == [HoldParty(AGENT_CHAN, "default", True),
                    RecordHold("call-1", T0 + 10, True, "agent", "phone", "1001")]
    assert s.agent_held and not s.caller_held


def test_hold_before_an_agent_changes_nothing():
    s, _ = c.start(arrival(route=QUEUE), LIMITS, T0)
    s, _ = c.handle(s, c.Answered(), T0 + 0.1)
    same, cmds = c.handle(s, c.HoldRequest(True, "caller"), T0 + 1)
    assert same == s and cmds == []


def test_the_agent_hanging_up_on_a_held_caller_ends_the_hold_and_the_call():
    s, _ = c.handle(connected(), c.HoldRequest(True), T0 + 10)
    s, cmds = c.handle(s, c.AgentGone(), T0 + 30)
    assert cmds[:3] == [HoldParty("chan-1", "default", False),
                        RecordHold("call-1", T0 + 30, False, "caller", "agent-left", "1001"), c.AgentCallOver("1001")]
    assert c.Hangup() in cmds and not s.caller_held and s.hangup_by == "agent"


def test_a_failed_hold_request_leaves_the_conversation_up():
    s, _ = c.handle(connected(), c.HoldRequest(True), T0 + 10)
    s, cmds = c.handle(s, c.RequestFailed("hold", False, "409"), T0 + 10.1)
    assert s.phase is c.Phase.CONNECTED and c.Hangup() not in cmds


def test_a_held_agent_is_on_hold_then_on_call_and_the_call_still_counts_once():
    a = ag.Agent("1001")
    a, _ = ag.handle(a, ag.LogIn(frozenset({"billing"}), "PJSIP/a1"), T0)
    a, _ = ag.handle(a, ag.Reserve("c1"), T0 + 1)
    a, _ = ag.handle(a, ag.Answer(), T0 + 2)
    a, cmds = ag.handle(a, ag.Hold(), T0 + 10)
    assert a.phase is ag.AgentPhase.ON_HOLD and cmds == [ag.AgentChanged("1001", ag.AgentPhase.ON_HOLD, T0 + 10,
                                                                         None, "c1")]
    assert ag.handle(a, ag.Hold(), T0 + 11) == (a, [])
    a, _ = ag.handle(a, ag.Pause("lunch"), T0 + 12)          # asked on hold: applies after the call
    a, cmds = ag.handle(a, ag.Resume(), T0 + 20)
    assert a.phase is ag.AgentPhase.ON_CALL and a.calls_taken == 1 and a.since == T0 + 20
    assert ag.handle(a, ag.Resume(), T0 + 21) == (a, [])
    a, _ = ag.handle(a, ag.Hold(), T0 + 30)
    a, cmds = ag.handle(a, ag.CallEnded(0.0), T0 + 40)       # the caller hung up while held
    assert a.phase is ag.AgentPhase.PAUSED and a.pause_reason == "lunch"


def test_the_acd_moves_the_agent_to_hold_and_back_and_wrap_up_follows_a_held_call():
    acd = A.Acd({"billing": A.QueueRules("billing", M({}), ring_timeout=15, wrapup=10)},
                {"1001": A.AgentProfile("1001", M({}), "PJSIP/a1")})
    acd.handle(A.AgentRequest("1001", ag.LogIn(frozenset({"billing"}), "")), T0)
    acd.handle(A.Enqueue("c1", "billing"), T0 + 1)
    acd.handle(A.OfferAnswered("c1", "1001"), T0 + 2)
    cmds = acd.handle(A.HoldChanged("1001", True), T0 + 5)
    assert acd.agents["1001"].phase is ag.AgentPhase.ON_HOLD
    assert [x.phase for x in cmds if isinstance(x, ag.AgentChanged)] == [ag.AgentPhase.ON_HOLD]
    cmds = acd.handle(A.CallFinished("1001"), T0 + 30)
    assert acd.agents["1001"].phase is ag.AgentPhase.WRAP_UP and StartTimer("wrapup:1001", T0 + 40) in cmds


def test_an_agent_restored_on_hold_gets_the_wrap_up_of_the_calls_queue():
    acd = A.Acd({"billing": A.QueueRules("billing", M({}), ring_timeout=15, wrapup=10)},
                {"1001": A.AgentProfile("1001", M({}), "PJSIP/a1")})
    held = ag.Agent("1001", phase=ag.AgentPhase.ON_HOLD, queues=frozenset({"billing"}), endpoint="PJSIP/a1",
                    call_id="c1", since=T0, idle_since=T0)
    assert acd.restore_agent(held, T0 + 5, queue="billing") == []
    acd.handle(A.HoldChanged("1001", False), T0 + 6)   # the phone's resume after the restart
    assert acd.agents["1001"].phase is ag.AgentPhase.ON_CALL
    assert StartTimer("wrapup:1001", T0 + 40) in acd.handle(A.CallFinished("1001"), T0 + 30)


# -- blind transfer ---------------------------------------------------------------------------
from engine.core.call_messages import CloseBridge, DialOut, RecordTransfer, TransferProgress  # noqa: E402
from engine.core.call_transfer import TRANSFER_RING_SECONDS  # noqa: E402

QUEUES = M({"billing": c.Route(queue="billing", music="jazz", music_after=0.0)})


def test_a_phones_blind_transfer_to_a_queue_ends_the_agents_part_and_queues_the_caller_anew():
    s = connected(queue_routes=QUEUES)
    s, _ = c.handle(s, c.HoldRequest(True), T0 + 8)   # the phone holds first, as phones do
    s, cmds = c.handle(s, c.BlindTransfer("queue", "billing"), T0 + 10)
    assert cmds[:4] == [TransferProgress(AGENT_CHAN, "channel_answered"), HoldParty("chan-1", "default", False),
                        RecordHold("call-1", T0 + 10, False, "caller", "transfer", "1001"),
                        RecordTransfer("call-1", T0 + 10, "queue", "billing", "phone", "1001")]
    assert cmds[4:7] == [CloseBridge(), c.HangupAgent(AGENT_CHAN), c.AgentCallOver("1001")]
    # a new stay: the caller's own priority, in line by the time they called; the queue's music
    assert cmds[7:] == [c.StartMusic("jazz"), c.JoinQueue("call-1", "billing", 2, T0)]
    assert s.phase is c.Phase.QUEUED and s.agent_id is None and not s.caller_held and not s.recording
    assert s.route.queue == "billing"
    same, cmds = c.handle(s, c.AgentGone(), T0 + 10.2)   # the phone's BYE after the NOTIFY
    assert same == s and cmds == []
    s, cmds = c.handle(s, c.Connected("1002", "agent2-chan"), T0 + 20)
    assert c.BridgeWith("agent2-chan") in cmds and s.agent_id == "1002"


def test_a_blind_transfer_to_a_number_rings_it_with_music_and_a_failure_goes_back_to_the_queue():
    s, cmds = c.handle(connected(), c.BlindTransfer("number", "5550199", "api"), T0 + 10)
    assert TransferProgress(AGENT_CHAN, "channel_answered") not in cmds   # no REFER to answer
    assert cmds[-3:] == [c.StartMusic("default"), DialOut("5550199", TRANSFER_RING_SECONDS),
                         StartTimer("transfer", T0 + 10 + TRANSFER_RING_SECONDS + 5)]
    assert s.phase is c.Phase.TRANSFERRING and s.back_queue == "billing"
    answered, cmds = c.handle(s, c.TransferAnswered("xfer-1"), T0 + 15)
    assert answered.phase is c.Phase.CONNECTED and c.StopMusic() in cmds and c.BridgeWith("xfer-1") in cmds
    back, cmds = c.handle(s, c.TransferFailed("busy"), T0 + 12)
    assert back.phase is c.Phase.QUEUED and back.route.queue == "billing" and back.music
    assert c.JoinQueue("call-1", "billing", 2, T0) in cmds and c.StartMusic("default") not in cmds


def test_a_phone_without_a_transfer_key_keys_the_code_a_target_and_hash():
    s = connected()
    for digit in "##320":
        s, cmds = c.handle(s, c.Dtmf(digit, from_agent=True), T0 + 10)
        assert cmds == []
    s, cmds = c.handle(s, c.Dtmf("0", from_agent=False), T0 + 10)   # the caller's keys are theirs
    s, cmds = c.handle(s, c.Dtmf("0", from_agent=True), T0 + 11)
    s, cmds = c.handle(s, c.Dtmf("#", from_agent=True), T0 + 12)
    assert cmds == [c.ResolveTransfer("3200")] and s.agent_keys == "" and s.phase is c.Phase.CONNECTED
    s, cmds = c.handle(s, c.Dtmf("#", from_agent=True), T0 + 13)   # "##" + "#": nothing keyed between
    s, cmds = c.handle(s, c.Dtmf("#", from_agent=True), T0 + 13)
    s, cmds = c.handle(s, c.Dtmf("#", from_agent=True), T0 + 13)
    assert cmds == []


def test_the_record_code_still_works_among_other_keys():
    s = connected()   # QUEUE records on demand with *7
    for digit in "12*":
        s, cmds = c.handle(s, c.Dtmf(digit, from_agent=True), T0 + 10)
    s, cmds = c.handle(s, c.Dtmf("7", from_agent=True), T0 + 11)
    assert c.StartRecording("1001", "billing") in cmds


def test_a_transfer_to_an_agent_waits_in_their_queue_for_them_alone():
    s, cmds = c.handle(connected(queue_routes=QUEUES), c.BlindTransfer("agent", "1003", "api", "billing"), T0 + 10)
    assert s.phase is c.Phase.QUEUED and c.JoinQueue("call-1", "billing", 2, T0, only="1003") in cmds


def test_a_transfer_to_an_ivr_node_starts_the_tree_there():
    from pathlib import Path

    from engine.config.ivr import load_trees

    library = M(load_trees(Path(__file__).parents[2] / "examples" / "ivr"))
    tree = next(iter(library))
    s, cmds = c.handle(connected(library=library), c.BlindTransfer("ivr", tree), T0 + 10)
    assert s.phase in (c.Phase.IVR, c.Phase.QUEUED, c.Phase.HANGING_UP) and s.agent_id is None
    assert s.ivr is not None and s.ivr.tree == tree and s.ivr.variables["caller"] == "5551234"
    gone, cmds = c.handle(connected(), c.BlindTransfer("ivr", "nowhere"), T0 + 10)   # gone with a reload
    assert gone.phase is c.Phase.PLAYING
    gone, cmds = c.handle(connected(library=library), c.BlindTransfer("ivr", f"{tree}/no-such-node"), T0 + 10)
    assert gone.phase is c.Phase.PLAYING


def test_the_acd_offers_a_caller_transferred_to_an_agent_to_them_alone_then_to_anyone_if_they_do_not_answer():
    acd = A.Acd({"billing": A.QueueRules("billing", M({"billing": 5}), ring_timeout=15, wrapup=0)},
                {"1001": A.AgentProfile("1001", M({"billing": 8}), "PJSIP/a1"),
                 "1002": A.AgentProfile("1002", M({}), "PJSIP/a2")})
    for agent in ("1001", "1002"):
        acd.handle(A.AgentRequest(agent, ag.LogIn(frozenset({"billing"}), "")), T0)
    [offer] = [x for x in acd.handle(A.Enqueue("c1", "billing", only="1002"), T0 + 5) if isinstance(x, A.Offer)]
    assert offer.agent_id == "1002"   # not 1001, the longer idle and the only one with the skill
    cmds = acd.handle(A.OfferFailed("c1", "1002", "no-answer"), T0 + 20)
    assert [x.agent_id for x in cmds if isinstance(x, A.Offer)] == ["1001"]


def test_the_routing_log_says_a_transfer_named_the_agent():
    acd = A.Acd({"billing": A.QueueRules("billing", M({}), ring_timeout=15)},
                {"1002": A.AgentProfile("1002", M({}), "PJSIP/a2")})
    acd.handle(A.AgentRequest("1002", ag.LogIn(frozenset({"billing"}), "")), T0)
    [offer] = [x for x in acd.handle(A.Enqueue("c1", "billing", only="1002"), T0 + 5) if isinstance(x, A.Offer)]
    assert offer.decision.explain().startswith("transferred to this agent: 1002 chosen of 1 eligible")
