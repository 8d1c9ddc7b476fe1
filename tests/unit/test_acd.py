"""The ACD core: routing, strategies, ring-no-answer, expansion, overflow, invariants."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType as M

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core import acd as A
from engine.core import agent as ag
from engine.core.common import CancelTimer, IllegalTransition, StartTimer, TimerFired
from engine.core.txn import OutsideTransaction, transaction

from .structure import dump

T0 = 1_000_000.0


def make(queues=None, agents=None) -> A.Acd:
    queues = queues or {"billing": A.QueueRules("billing", M({"billing": 5}), ring_timeout=15, wrapup=10)}
    agents = agents or {
        "1001": A.AgentProfile("1001", M({"billing": 8}), "PJSIP/a1"),
        "1002": A.AgentProfile("1002", M({"billing": 5}), "PJSIP/a2"),
        "1003": A.AgentProfile("1003", M({"billing": 3}), "PJSIP/a3"),
    }
    return A.Acd(queues, agents)


def login(acd: A.Acd, agent_id: str, queues=("billing",), at=T0) -> list:
    return acd.handle(A.AgentRequest(agent_id, ag.LogIn(frozenset(queues), "")), at)


def offers(cmds) -> list[A.Offer]:
    return [c for c in cmds if isinstance(c, A.Offer)]


def of(cmds, kind):
    return [c for c in cmds if isinstance(c, kind)]


def test_longest_idle_agent_gets_the_call_and_the_reason_says_why():
    acd = make()
    login(acd, "1002", at=T0)
    login(acd, "1001", at=T0 + 5)
    cmds = acd.handle(A.Enqueue("c1", "billing"), T0 + 65)
    [offer] = offers(cmds)
    assert offer.agent_id == "1002" and offer.endpoint == "PJSIP/a2" and offer.ring_timeout == 15
    assert offer.decision.candidates == (("1002", 65.0), ("1001", 60.0))
    assert offer.decision.explain() == (
        "longest_idle: 1002 chosen of 2 eligible [billing>=5]: 1002 idle s 65; 1001 idle s 60")
    assert acd.agents["1002"].phase is ag.AgentPhase.RESERVED
    assert StartTimer("ring:c1", T0 + 65 + 15 + A.RING_GRACE_SECONDS) in cmds
    [made] = of(cmds, A.OfferMade)
    assert made.decision == offer.decision


def test_answer_connects_and_records_the_wait():
    acd = make()
    login(acd, "1001")
    acd.handle(A.Enqueue("c1", "billing"), T0 + 10)
    cmds = acd.handle(A.OfferAnswered("c1", "1001"), T0 + 14)
    assert A.Connect("c1", "1001", "billing") in cmds
    assert A.QueueLeft("c1", "billing", T0 + 14, "answered", 4.0, "1001") in cmds
    assert acd.agents["1001"].phase is ag.AgentPhase.ON_CALL and "c1" not in acd.waiting


def test_skills_gate_and_expansion_widens_the_pool_keeping_the_place():
    rules = A.QueueRules("billing", M({"billing": 5}), expand=(A.Expand(30, M({"billing": 1})),))
    acd = make({"billing": rules})
    login(acd, "1003")  # billing 3: not enough at first
    cmds = acd.handle(A.Enqueue("c1", "billing"), T0)
    assert offers(cmds) == [] and StartTimer("expand:c1", T0 + 30) in cmds
    cmds = acd.handle(TimerFired("expand:c1"), T0 + 30)
    [offer] = offers(cmds)
    assert offer.agent_id == "1003" and offer.decision.step == 1
    assert "expanded, step 1" in offer.decision.explain()


def test_ring_no_answer_pauses_the_agent_and_the_call_goes_to_the_next_keeping_its_place():
    acd = make()
    login(acd, "1001", at=T0)
    login(acd, "1002", at=T0 + 1)
    acd.handle(A.Enqueue("c1", "billing"), T0 + 10)   # offered to 1001
    acd.handle(A.Enqueue("c2", "billing"), T0 + 11)   # offered to 1002
    cmds = acd.handle(A.OfferFailed("c1", "1001", "no-answer"), T0 + 25)
    assert acd.agents["1001"].phase is ag.AgentPhase.PAUSED and acd.agents["1001"].pause_reason == "no-answer"
    assert of(cmds, A.OfferEnded)[0].result == "no-answer"
    assert offers(cmds) == []  # nobody free now; c1 waits, still ahead of c2
    acd.handle(A.OfferFailed("c2", "1002", "busy"), T0 + 26)
    acd.handle(A.AgentRequest("1002", ag.Unpause()), T0 + 30)
    # 1002 is free again: c1 (older) is offered first, not c2
    assert acd.agents["1002"].call_id == "c1"


def test_ring_timer_is_the_backstop_when_the_phone_says_nothing():
    acd = make()
    login(acd, "1001")
    acd.handle(A.Enqueue("c1", "billing"), T0)
    cmds = acd.handle(TimerFired("ring:c1"), T0 + 18)
    assert A.Withdraw("c1", "1001") in cmds
    assert acd.agents["1001"].phase is ag.AgentPhase.PAUSED


def test_caller_hangs_up_while_ringing_frees_the_agent_without_blame():
    acd = make()
    login(acd, "1001")
    acd.handle(A.Enqueue("c1", "billing"), T0 + 5)
    cmds = acd.handle(A.Dequeue("c1"), T0 + 8)
    assert A.Withdraw("c1", "1001") in cmds
    assert A.QueueLeft("c1", "billing", T0 + 8, "abandoned", 3.0) in cmds
    a = acd.agents["1001"]
    assert a.phase is ag.AgentPhase.AVAILABLE and a.idle_since == T0  # keeps their place


def test_answer_racing_a_hangup_is_withdrawn():
    acd = make()
    login(acd, "1001")
    acd.handle(A.Enqueue("c1", "billing"), T0)
    acd.handle(A.Dequeue("c1"), T0 + 3)
    cmds = acd.handle(A.OfferAnswered("c1", "1001"), T0 + 3.1)
    assert cmds == [A.Withdraw("c1", "1001")]
    assert acd.agents["1001"].phase is ag.AgentPhase.AVAILABLE


def test_max_wait_overflows_keeping_the_place_or_gives_up():
    queues = {
        "billing": A.QueueRules("billing", M({"billing": 9}), max_wait=60, overflow="general"),
        "general": A.QueueRules("general", max_wait=30),
    }
    acd = make(queues)
    login(acd, "1001", queues=("billing", "general"))
    acd.handle(A.Enqueue("busy", "general"), T0)  # 1001 takes it
    acd.handle(A.OfferAnswered("busy", "1001"), T0)
    acd.handle(A.Enqueue("c1", "billing"), T0 + 1)  # needs billing 9: nobody qualifies
    cmds = acd.handle(TimerFired("maxwait:c1"), T0 + 61)
    assert A.QueueLeft("c1", "billing", T0 + 61, "overflow", 60.0) in cmds
    assert A.QueueEntered("c1", "general", T0 + 61, 0, T0 + 1) in cmds
    cmds = acd.handle(TimerFired("maxwait:c1"), T0 + 91)
    assert A.Unroutable("c1", "general", "max-wait") in cmds


def test_no_agent_logged_in_means_unroutable_at_once():
    acd = make()
    cmds = acd.handle(A.Enqueue("c1", "billing"), T0)
    assert A.Unroutable("c1", "billing", "no-agents") in cmds and "c1" not in acd.waiting


def test_last_agent_logging_out_sends_the_waiting_calls_on():
    acd = make()
    login(acd, "1001")
    acd.handle(A.AgentRequest("1001", ag.Pause("break")), T0 + 1)
    acd.handle(A.Enqueue("c1", "billing"), T0 + 2)
    assert "c1" in acd.waiting  # paused agents still staff the queue
    cmds = acd.handle(A.AgentRequest("1001", ag.LogOut()), T0 + 3)
    assert A.Unroutable("c1", "billing", "no-agents") in cmds


def test_priority_goes_first_then_the_longest_wait():
    acd = make()
    login(acd, "1001")
    acd.handle(A.AgentRequest("1001", ag.Pause("break")), T0)
    acd.handle(A.Enqueue("old", "billing"), T0 + 1)
    acd.handle(A.Enqueue("vip", "billing", priority=5), T0 + 2)
    acd.handle(A.Enqueue("new", "billing"), T0 + 3)
    assert [acd.position(c) for c in ("vip", "old", "new")] == [1, 2, 3]
    cmds = acd.handle(A.AgentRequest("1001", ag.Unpause()), T0 + 4)
    assert offers(cmds)[0].call_id == "vip"


def test_wrap_up_then_available_and_pause_requested_on_a_call_waits_for_the_end():
    acd = make()
    login(acd, "1001")
    acd.handle(A.Enqueue("c1", "billing"), T0)
    acd.handle(A.OfferAnswered("c1", "1001"), T0 + 2)
    acd.handle(A.AgentRequest("1001", ag.Pause("lunch")), T0 + 10)
    assert acd.agents["1001"].phase is ag.AgentPhase.ON_CALL  # nobody is cut off
    cmds = acd.handle(A.CallFinished("1001"), T0 + 100)
    assert acd.agents["1001"].phase is ag.AgentPhase.WRAP_UP
    assert StartTimer("wrapup:1001", T0 + 110) in cmds
    acd.handle(TimerFired("wrapup:1001"), T0 + 110)
    assert acd.agents["1001"].phase is ag.AgentPhase.PAUSED and acd.agents["1001"].pause_reason == "lunch"


def test_an_agent_restored_on_a_call_gets_the_queues_wrap_up_when_it_ends():
    # after a restart: the call was adopted (or lost); its end brings wrap-up as if we had never stopped
    acd = make()
    on_call = ag.Agent("1001", phase=ag.AgentPhase.ON_CALL, queues=frozenset({"billing"}), endpoint="PJSIP/a1",
                       call_id="c1", since=T0, idle_since=T0)
    assert acd.restore_agent(on_call, T0 + 5, queue="billing") == []
    cmds = acd.handle(A.CallFinished("1001"), T0 + 30)
    assert acd.agents["1001"].phase is ag.AgentPhase.WRAP_UP
    assert StartTimer("wrapup:1001", T0 + 40) in cmds
    # the queue unknown (no record of the call's queue): the agent's queue with the longest wrap-up
    acd = make()
    acd.restore_agent(on_call, T0 + 5, queue=None)
    assert StartTimer("wrapup:1001", T0 + 40) in acd.handle(A.CallFinished("1001"), T0 + 30)


def test_an_agent_leg_gone_before_the_bridge_puts_the_caller_back_at_the_front():
    # issue 11 item 7: the caller was left on music with nobody, the call recorded as answered
    acd = make()
    login(acd, "1001")
    login(acd, "1002", at=T0 + 1)
    acd.handle(A.Enqueue("c1", "billing"), T0 + 2)
    cmds = acd.handle(A.OfferAnswered("c1", "1001"), T0 + 5)
    assert of(cmds, A.Connect) == [A.Connect("c1", "1001", "billing")]
    cmds = acd.handle(A.ConnectFailed("c1", "1001"), T0 + 5.1)
    assert of(cmds, A.QueueReopened) == [A.QueueReopened("c1", "billing", "1001", T0 + 5.1)]
    assert acd.agents["1001"].phase is not ag.AgentPhase.ON_CALL
    # c1 is offered to the other agent, not to the one whose leg went
    [offer] = offers(cmds)
    assert (offer.call_id, offer.agent_id) == ("c1", "1002")
    # its wait in the queue goes on from when it entered, not from the failure
    left = of(acd.handle(A.OfferAnswered("c1", "1002"), T0 + 8), A.QueueLeft)
    assert left[0].wait == 8 - 2
    # a second ConnectFailed (a duplicate) changes nothing
    assert acd.handle(A.ConnectFailed("c1", "1001"), T0 + 9) == []


def test_a_connect_failed_after_the_call_finished_is_refused_and_changes_nothing():
    # the agent's leg went as it answered: CallFinished came first (wrap-up), then the late
    # ConnectFailed; it used to drop the agent's talk (the wrap-up lost its queue and the call's
    # handle time) and touch the caller's record before the agent's machine refused it
    acd = make()
    login(acd, "1001")
    acd.handle(A.Enqueue("c1", "billing"), T0)
    acd.handle(A.OfferAnswered("c1", "1001"), T0 + 1)
    acd.handle(A.CallFinished("1001"), T0 + 5)
    assert acd.agents["1001"].phase is ag.AgentPhase.WRAP_UP
    before = dump(acd)
    with pytest.raises(IllegalTransition, match="no transition from WRAP_UP on CallEnded"):
        acd.handle(A.ConnectFailed("c1", "1001"), T0 + 6)
    assert dump(acd) == before
    assert acd.call_queue("1001") == "billing"


def test_no_offer_while_the_agents_phone_has_its_own_call_up():
    acd = make()
    login(acd, "1001")
    acd.handle(A.PhoneInUse("PJSIP/a1", True), T0 + 1)   # the agent dials *14 (or any code)
    assert offers(acd.handle(A.Enqueue("c1", "billing"), T0 + 2)) == []
    assert offers(acd.handle(A.PhoneInUse("PJSIP/a1", True), T0 + 3)) == []   # a second call of its own
    assert offers(acd.handle(A.PhoneInUse("PJSIP/a1", False), T0 + 4)) == []
    # both over, but Asterisk tells of the end as it sends the BYE: the offer waits for the phone to
    # have it (baresip, call waiting off, answered an INVITE that overtook the BYE with 486)
    cmds = acd.handle(A.PhoneInUse("PJSIP/a1", False), T0 + 5)
    assert offers(cmds) == [] and StartTimer("phone:PJSIP/a1", T0 + 5 + A.PHONE_SETTLE_SECONDS) in cmds
    [offer] = offers(acd.handle(TimerFired("phone:PJSIP/a1"), T0 + 5 + A.PHONE_SETTLE_SECONDS))
    assert (offer.call_id, offer.agent_id) == ("c1", "1001")


def test_a_phone_that_dials_again_while_settling_stays_busy_until_that_call_ends_too():
    acd = make()
    login(acd, "1001")
    acd.handle(A.PhoneInUse("PJSIP/a1", True), T0 + 1)
    assert offers(acd.handle(A.Enqueue("c1", "billing"), T0 + 2)) == []
    acd.handle(A.PhoneInUse("PJSIP/a1", False), T0 + 3)
    acd.handle(A.PhoneInUse("PJSIP/a1", True), T0 + 3.2)   # *15 then at once *16, say
    assert offers(acd.handle(TimerFired("phone:PJSIP/a1"), T0 + 4)) == []   # the second call is up
    acd.handle(A.PhoneInUse("PJSIP/a1", False), T0 + 5)
    [offer] = offers(acd.handle(TimerFired("phone:PJSIP/a1"), T0 + 6))
    assert offer.agent_id == "1001"


def test_agent_ends_wrap_up_early():
    acd = make()
    login(acd, "1001")
    acd.handle(A.Enqueue("c1", "billing"), T0)
    acd.handle(A.OfferAnswered("c1", "1001"), T0)
    acd.handle(A.CallFinished("1001"), T0 + 60)
    cmds = acd.handle(A.AgentRequest("1001", ag.EndWrapup()), T0 + 62)
    assert CancelTimer("wrapup:1001") in cmds and acd.agents["1001"].phase is ag.AgentPhase.AVAILABLE


def test_illegal_and_refused_requests_change_nothing():
    acd = make()
    login(acd, "1001")
    before = dump(acd)
    with pytest.raises(IllegalTransition):
        acd.handle(A.AgentRequest("1001", ag.Unpause()), T0)
    with pytest.raises(A.Refused, match="unknown agent"):
        acd.handle(A.AgentRequest("9999", ag.LogOut()), T0)
    with pytest.raises(A.Refused, match="unknown queue"):
        login(acd, "1002", queues=("nope",))
    with pytest.raises(A.Refused, match="unknown queue"):
        acd.handle(A.Enqueue("c1", "nope"), T0)
    assert dump(acd) == before and not acd.waiting


def _reload_dropping_the_overflow_target():
    """billing overflows to general; a reload keeps neither: billing stays (retired) for c1, who
    waits there, and general, waited in by nobody, is gone."""
    queues = {"billing": A.QueueRules("billing", max_wait=60, overflow="general"), "general": A.QueueRules("general")}
    acd = make(queues)
    login(acd, "1001")
    acd.handle(A.AgentRequest("1001", ag.Pause("x")), T0)
    acd.handle(A.Enqueue("c1", "billing"), T0)
    acd.handle(A.Reconfigure({"sales": A.QueueRules("sales")}, dict(acd.profiles)), T0 + 1)
    assert "billing" in acd.rules and "general" not in acd.rules and "c1" in acd.waiting
    return acd


def test_a_give_up_whose_overflow_queue_a_reload_dropped_is_unroutable():
    # the overflow walk read the dropped queue's rules: KeyError, and the caller stayed in line
    acd = _reload_dropping_the_overflow_target()
    cmds = acd.handle(TimerFired("maxwait:c1"), T0 + 60)
    assert A.QueueLeft("c1", "billing", T0 + 60, "unroutable", 60.0) in cmds
    assert A.Unroutable("c1", "billing", "max-wait") in cmds and not of(cmds, A.QueueEntered)
    assert "c1" not in acd.waiting
    # the same when the queue's last agent leaves
    acd = _reload_dropping_the_overflow_target()
    cmds = acd.handle(A.AgentRequest("1001", ag.LogOut()), T0 + 2)
    assert A.Unroutable("c1", "billing", "no-agents") in cmds and "c1" not in acd.waiting


def test_an_event_naming_an_agent_the_acd_does_not_know_is_refused_and_changes_nothing():
    # CallFinished read the agent's state with acd._agents[agent_id]: KeyError, not a refusal
    acd = make()
    login(acd, "1001")
    acd.handle(A.Enqueue("c1", "billing"), T0)
    before = dump(acd)
    with pytest.raises(A.Refused, match="unknown agent '9999'"):
        acd.handle(A.CallFinished("9999"), T0 + 1)
    assert dump(acd) == before
    # an agent a reload removed (logged out: forgotten at once) is unknown from then on
    acd.handle(A.Reconfigure(dict(acd.rules), {k: v for k, v in acd.profiles.items() if k != "1003"}), T0 + 2)
    assert "1003" not in acd.agents
    before = dump(acd)
    with pytest.raises(A.Refused, match="unknown agent '1003'"):
        acd.handle(A.CallFinished("1003"), T0 + 3)
    with pytest.raises(A.Refused, match="unknown agent '1003'"):
        acd.handle(A.AgentRequest("1003", ag.LogIn(frozenset({"billing"}), "PJSIP/a3")), T0 + 3)
    assert dump(acd) == before


def test_an_enqueue_that_fails_half_way_changes_nothing():
    # _enqueue takes the caller's place number and counts the arrival, _place puts the caller in the
    # ACD, and only then does the line's sort key (-priority) raise on a priority that is not a
    # number: before each event ran in a transaction, the caller stayed half queued (in
    # acd.waiting, in no line: "already queued" for good), its number and the arrival rate spent
    acd = make()
    login(acd, "1001")
    acd.handle(A.AgentRequest("1001", ag.Pause("x")), T0)
    before = dump(acd)
    with pytest.raises(TypeError, match="unary -"):
        acd.handle(A.Enqueue("c1", "billing", priority="high"), T0 + 1)  # type: ignore[arg-type]
    assert dump(acd) == before and "c1" not in acd.waiting
    cmds = acd.handle(A.Enqueue("c1", "billing"), T0 + 2)
    assert of(cmds, A.QueueEntered) and acd.position("c1") == 1


def test_a_reload_that_fails_half_way_changes_nothing():
    # _configure puts the new rules in place, then reads the agents: a malformed reload used to
    # leave the new queues with the old agents
    acd = make()
    login(acd, "1001")
    before = dump(acd)
    with pytest.raises(TypeError):
        acd.handle(A.Reconfigure({"sales": A.QueueRules("sales")}, None), T0)  # type: ignore[arg-type]
    assert dump(acd) == before and set(acd.rules) == {"billing"}


def test_nothing_changes_the_acd_but_an_event():
    acd = make()
    login(acd, "1001")
    acd.handle(A.AgentRequest("1001", ag.Pause("x")), T0)
    acd.handle(A.Enqueue("c1", "billing"), T0)
    before = dump(acd)
    for change in (lambda: acd._free.add("1002"), lambda: acd._lines["billing"].pop(),
                   lambda: acd._stats.clear(), lambda: setattr(acd, "_seq", 0),
                   lambda: setattr(acd, "rules", M({}))):
        with pytest.raises(OutsideTransaction, match="the Acd changes only inside a transaction"):
            change()
    with pytest.raises(TypeError):
        acd.agents["1001"] = ag.Agent("1001")   # type: ignore[index]   # the reads are read-only views
    with pytest.raises(AttributeError):
        acd.waiting.pop("c1")                    # type: ignore[attr-defined]
    with pytest.raises(AttributeError):          # and what they hold is frozen
        acd.waiting["c1"].offer = None           # type: ignore[misc]
    assert acd.agents_needed("billing") >= 0 and acd.expected_wait("c1") > 0   # reading changes nothing
    assert dump(acd) == before
    same, cmds = A.step(acd, A.Dequeue("c1"), T0 + 1)   # an event does
    assert same is acd and "c1" not in acd.waiting and of(cmds, A.QueueLeft)


@pytest.mark.parametrize("strategy,expected", [
    ("least_calls", "1002"), ("most_skilled", "1001"), ("round_robin", "1002"), ("longest_idle", "1002")])
def test_strategies(strategy, expected):
    rules = A.QueueRules("billing", M({"billing": 1}), strategy=strategy, wrapup=0)
    acd = make({"billing": rules})
    login(acd, "1001", at=T0)
    login(acd, "1002", at=T0 + 1)
    acd.handle(A.Enqueue("warm", "billing"), T0 + 2)  # 1001 (idle longest / first) takes one call
    first = acd.agents["1001"].call_id and "1001" or "1002"
    acd.handle(A.OfferAnswered("warm", first), T0 + 3)
    acd.handle(A.CallFinished(first), T0 + 4)
    cmds = acd.handle(A.Enqueue("c", "billing"), T0 + 10)
    assert offers(cmds)[0].agent_id == expected


def test_callback_keeps_the_place_when_the_caller_hangs_up():
    acd = make()
    login(acd, "1001")
    acd.handle(A.AgentRequest("1001", ag.Pause("break")), T0)
    acd.handle(A.Enqueue("c1", "billing"), T0 + 1)
    cmds = acd.handle(A.ToCallback("c1", "5551234"), T0 + 20)
    assert A.CallbackRequested("c1", "billing", "5551234", T0 + 20) in cmds
    assert acd.handle(A.Dequeue("c1"), T0 + 21) == []  # the caller's channel went away: still queued
    cmds = acd.handle(A.AgentRequest("1001", ag.Unpause()), T0 + 30)
    assert offers(cmds)[0].callback_number == "5551234"


def test_reload_keeps_agents_and_callers_and_applies_new_skills():
    acd = make()
    login(acd, "1001")
    login(acd, "1002")
    acd.handle(A.AgentRequest("1001", ag.Pause("break")), T0)
    acd.handle(A.AgentRequest("1002", ag.Pause("break")), T0)
    acd.handle(A.Enqueue("c1", "billing"), T0 + 1)
    new_agents = {"1001": A.AgentProfile("1001", M({"billing": 2}), "PJSIP/a1"),
                  "1002": A.AgentProfile("1002", M({"billing": 9}), "PJSIP/a2")}
    acd.handle(A.Reconfigure({"billing": A.QueueRules("billing", M({"billing": 5}))}, new_agents), T0 + 2)
    assert acd.agents["1001"].phase is ag.AgentPhase.PAUSED and "c1" in acd.waiting
    assert "1003" not in acd.agents  # removed, and was logged out
    acd.handle(A.AgentRequest("1001", ag.Unpause()), T0 + 3)
    assert "c1" in acd.waiting and acd.waiting["c1"].offer is None  # 1001 no longer qualifies
    cmds = acd.handle(A.AgentRequest("1002", ag.Unpause()), T0 + 4)
    assert offers(cmds)[0].agent_id == "1002"


def test_agents_needed_follows_erlang_c():
    acd = make()
    login(acd, "1001")
    t = T0
    for i in range(400):  # 200 calls an hour: one every 18 s
        t += 18
        acd.handle(A.Enqueue(f"c{i}", "billing"), t)
        acd.handle(A.Dequeue(f"c{i}"), t)
    with transaction(acd):   # the ACD changes only in a transaction: this one sets the handle time
        acd._stats["billing"] = acd._stat("billing")._replace(handle_time=180.0)
    assert acd.agents_needed("billing") == 14  # A = 10 Erlangs, 80/20: the domain table's answer


# -- invariants under any sequence of events --------------------------------------------------
AGENTS = ["1001", "1002", "1003"]
CALLS = ["c1", "c2", "c3", "c4"]
ACTIONS = st.one_of(
    st.tuples(st.just("enqueue"), st.sampled_from(CALLS), st.integers(0, 2)),
    st.tuples(st.just("dequeue"), st.sampled_from(CALLS)),
    st.tuples(st.just("answer"), st.sampled_from(CALLS), st.sampled_from(AGENTS)),
    st.tuples(st.just("fail"), st.sampled_from(CALLS), st.sampled_from(AGENTS)),
    st.tuples(st.just("finish"), st.sampled_from(AGENTS)),
    st.tuples(st.just("request"), st.sampled_from(AGENTS),
              st.sampled_from(["login", "logout", "pause", "unpause", "endwrap"])),
    st.tuples(st.just("timer"), st.sampled_from(["ring", "maxwait", "expand", "announce", "wrapup"]),
              st.sampled_from(CALLS + AGENTS)),
    st.tuples(st.just("connect_failed"), st.sampled_from(CALLS), st.sampled_from(AGENTS)),
    st.tuples(st.just("callback"), st.sampled_from(CALLS)),
    st.tuples(st.just("reconfigure"), st.sampled_from(["same", "reskill", "unknown-strategy", "lose-overflow",
                                                       "drop-overflow", "drop-agent"])),
    # malformed events, which raise (TypeError, ValueError) half-way through their handler: after
    # the caller's place number is taken, or with the caller in the ACD but not yet in its line, or
    # with the new rules in place but not the agents
    st.tuples(st.just("malformed"), st.sampled_from(["priority", "skills", "agents", "timer"]), st.sampled_from(CALLS)),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(ACTIONS, max_size=40))
def test_no_agent_gets_two_calls_and_no_call_rings_two_agents(actions):
    rules = A.QueueRules("billing", M({"billing": 5}), max_wait=100, overflow="general",
                         expand=(A.Expand(10, M({"billing": 1})),), announce_every=30)
    queues = {"billing": rules, "general": A.QueueRules("general", max_wait=50)}
    acd = make(queues)
    profiles = dict(acd.profiles)
    requests = {"login": ag.LogIn(frozenset({"billing", "general"}), ""), "logout": ag.LogOut(),
                "pause": ag.Pause("x"), "unpause": ag.Unpause(), "endwrap": ag.EndWrapup()}
    reconfigure = {
        "same": A.Reconfigure(queues, profiles),
        "reskill": A.Reconfigure(queues, {a: replace(p, skills=M({"billing": 9 - 3 * i}))
                                          for i, (a, p) in enumerate(profiles.items())}),
        "unknown-strategy": A.Reconfigure({**queues, "general": A.QueueRules("general", strategy="random")}, profiles),
        "lose-overflow": A.Reconfigure({"billing": rules}, profiles),
        "drop-overflow": A.Reconfigure({"sales": A.QueueRules("sales")}, profiles),   # billing kept while in use
        "drop-agent": A.Reconfigure(queues, {a: p for a, p in profiles.items() if a != "1003"}),
    }
    malformed = {
        "priority": lambda c: A.Enqueue(c, "billing", priority="high"),   # type: ignore[arg-type]
        "skills": lambda c: A.Enqueue(c, "billing", skills=["billing"]),  # type: ignore[arg-type]
        "agents": lambda c: A.Reconfigure(queues, None),                   # type: ignore[arg-type]
        "timer": lambda c: TimerFired(f"bogus:{c}"),
    }
    now = T0
    for action in actions:
        now += 1
        kind = action[0]
        event = {
            "enqueue": lambda: A.Enqueue(action[1], "billing", action[2]),
            "dequeue": lambda: A.Dequeue(action[1]),
            "answer": lambda: A.OfferAnswered(action[1], action[2]),
            "fail": lambda: A.OfferFailed(action[1], action[2]),
            "finish": lambda: A.CallFinished(action[1]),
            "request": lambda: A.AgentRequest(action[1], requests[action[2]]),
            "timer": lambda: TimerFired(f"{action[1]}:{action[2]}"),
            "connect_failed": lambda: A.ConnectFailed(action[1], action[2]),
            "callback": lambda: A.ToCallback(action[1], "5551234"),
            "reconfigure": lambda: reconfigure[action[1]],
            "malformed": lambda: malformed[action[1]](action[2]),
        }[kind]()
        before = dump(acd)   # all of it: agents, callers, offers, talks, indexes, counters, rules...
        refusals = (A.Refused, IllegalTransition) + ((TypeError, ValueError) if kind == "malformed" else ())
        try:
            acd.handle(event, now)
        except refusals:
            assert dump(acd) == before, f"a refused {event} changed the ACD"
            continue
        ringing = [w.offer[1] for w in acd.waiting.values() if w.offer]
        assert len(ringing) == len(set(ringing)), "an agent rings for two calls"
        for agent_id, a in acd.agents.items():
            reserved_for = [c for c, w in acd.waiting.items() if w.offer and w.offer[1] == agent_id]
            if a.phase is ag.AgentPhase.RESERVED:
                assert reserved_for == [a.call_id], "a reserved agent's call is not ringing them"
            else:
                assert reserved_for == [], "a call rings an agent who is not reserved"
            assert (agent_id in acd._free) == (a.phase is ag.AgentPhase.AVAILABLE)
            for q, free in acd._free_in.items():
                assert (agent_id in free) == (a.phase is ag.AgentPhase.AVAILABLE and q in a.queues)
        for q, line in acd._lines.items():
            assert sorted(line) == line and all(acd.waiting[c].queue == q for _, c in line)
        assert sorted(c for line in acd._lines.values() for _, c in line) == sorted(acd.waiting)


def test_a_ringing_call_given_up_when_its_queue_loses_its_staff_frees_the_agent():
    """x's phone rings for c1 (queue a); x logs in again to queue b only; y, the last other agent
    of a, logs out: a is unstaffed and c1 is given up, and the offer to x must end with it (found
    by the simulator: x used to stay RESERVED for good)."""
    acd = A.Acd({n: A.QueueRules(n) for n in ("a", "b")},
                {x: A.AgentProfile(x, endpoint=f"PJSIP/{x}") for x in ("x", "y")})
    acd.handle(A.AgentRequest("x", ag.LogIn(frozenset({"a"}), "")), 0)
    acd.handle(A.AgentRequest("y", ag.LogIn(frozenset({"a"}), "")), 0)
    acd.handle(A.AgentRequest("y", ag.Pause("lunch")), 0)
    assert any(isinstance(c, A.Offer) and c.agent_id == "x" for c in acd.handle(A.Enqueue("c1", "a"), 1))
    acd.handle(A.AgentRequest("x", ag.LogIn(frozenset({"b"}), "")), 2)
    cmds = acd.handle(A.AgentRequest("y", ag.LogOut()), 3)
    assert A.Withdraw("c1", "x") in cmds and A.Unroutable("c1", "a", "no-agents") in cmds
    assert acd.agents["x"].phase is ag.AgentPhase.AVAILABLE
