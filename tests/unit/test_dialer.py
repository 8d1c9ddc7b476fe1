"""The dialer shell's pure parts: hang-up causes, what the pacer is shown, blending."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from engine.config.acd import to_profile, to_rules
from engine.config.model import load_config
from engine.core import acd as A
from engine.core import agent as ag
from engine.core.causes import dial_result as classify
from engine.runtime.campaignrun import Campaign
from engine.core.campaign import Tally
from engine.runtime.dialer import Dialer

from .conftest import REPO

T0 = 1_800_000_000.0


@pytest.mark.parametrize("cause,outcome", [(17, "busy"), (19, "no_answer"), (18, "no_answer"), (21, "no_answer"),
                                           (1, "invalid_number"), (28, "invalid_number"), (34, "failed"),
                                           (None, "failed")])
def test_hangup_causes_before_an_answer(cause, outcome):
    assert classify(cause) == outcome


@pytest.fixture
def world(example_env):
    cfg = load_config(REPO / "examples" / "callcenter.yaml")
    acd = A.Acd({q.name: to_rules(q) for q in cfg.queues}, {a.id: to_profile(a) for a in cfg.agents})
    service = SimpleNamespace(acd=acd, listeners=[], ready=SimpleNamespace(is_set=lambda: True))
    calls = SimpleNamespace(writer=None, dialer=None)
    dialer = Dialer(calls=calls, acd=service, config=lambda: cfg, spawn=lambda coro: None)
    renewals = next(c for c in cfg.campaigns if c.name == "renewals")
    return SimpleNamespace(acd=acd, dialer=dialer, campaign=Campaign(dialer, renewals))


def log_in(acd: A.Acd, agent: str, *queues: str, at: float = T0) -> None:
    acd.handle(A.AgentRequest(agent, ag.LogIn(frozenset(queues), "")), at)


def test_the_pacer_sees_the_campaigns_agents_and_lines(world):
    log_in(world.acd, "9001", "renewals")
    log_in(world.acd, "9002", "renewals")
    log_in(world.acd, "9003", "support")          # not the campaign's
    world.acd.handle(A.AgentRequest("9002", ag.Pause("lunch")), T0 + 1)
    snap = world.campaign.snapshot(T0 + 10)
    assert (snap.available, snap.paused, snap.on_call, snap.wrapup) == (1, 1, (), ())
    assert (snap.ringing, snap.screening, snap.waiting) == ((), (), 0)


def test_blended_agents_are_kept_for_callers_waiting_inbound(world):
    # 9001 serves support and renewals; a support caller waiting holds them back from the dialer.
    log_in(world.acd, "9001", "renewals", "support")
    assert world.campaign.snapshot(T0 + 1).available == 1
    world.acd.handle(A.Enqueue("c1", "support"), T0 + 2)
    # The ACD offered the caller to 9001 at once: reserved, not available to the dialer.
    snap = world.campaign.snapshot(T0 + 3)
    assert snap.available == 0 and len(snap.on_call) == 1


def test_inbound_hold_counts_only_agents_who_could_take_the_waiting_calls(world):
    log_in(world.acd, "9001", "renewals", "support")
    log_in(world.acd, "9002", "renewals")
    world.acd.handle(A.AgentRequest("9001", ag.Pause("meeting")), T0 + 1)
    world.acd.handle(A.Enqueue("c1", "support"), T0 + 2)        # nobody free on support: it waits
    assert world.dialer.inbound_hold("renewals", T0 + 3) == 0           # 9002 cannot take support calls
    snap = world.campaign.snapshot(T0 + 3)
    assert snap.available == 1 and snap.paused == 1


def test_inbound_hold_keeps_what_the_service_level_needs(world):
    log_in(world.acd, "9001", "renewals", "support")
    log_in(world.acd, "9002", "renewals", "support")
    # Recent support traffic: 40 calls in the last hour, handled in 3 minutes each -> 2+ agents needed.
    for i in range(40):
        t = T0 - 3600 + i * 90
        world.acd.handle(A.Enqueue(f"s{i}", "support"), t)
        world.acd.handle(A.Dequeue(f"s{i}", "answered"), t + 1)
    need = world.acd.agents_needed("support", T0 + 1)
    assert need >= 1
    assert world.dialer.inbound_hold("renewals", T0 + 1) == min(2, need)
    assert world.campaign.snapshot(T0 + 1).available == 2 - min(2, need)
    # Support goes quiet: its traffic fades, and the agents go back to the campaign.
    assert world.acd.agents_needed("support", T0 + 4 * 3600) == 0
    assert world.campaign.snapshot(T0 + 4 * 3600).available == 2


def test_rule_uk_counts_estimated_amd_false_positives_as_abandons(world):
    from dataclasses import replace

    from engine.config.campaign import Abandon, Amd

    c = world.campaign
    c.tally = Tally(live_answers=200, abandoned=2, machines=50)
    assert c.counted_abandons() == (200, 2)                       # rule us: as counted
    c.cfg = replace(c.cfg, abandon=Abandon(rule="uk", amd_false_positive_percent=4), amd=Amd(enabled=True))
    assert c.counted_abandons() == (202, 4)                       # 4% of 50 machine verdicts were people
    snap = c.snapshot(T0)
    assert (snap.live_answers, snap.abandoned) == (202, 4)


def test_answered_calls_go_to_agents_not_kept_for_inbound_unless_nobody_else_is_free(world):
    log_in(world.acd, "9001", "renewals", at=T0)            # idle longest: first choice
    log_in(world.acd, "9002", "renewals", at=T0 + 1)
    cmds = world.acd.handle(A.Enqueue("o1", "renewals", 1000, avoid=frozenset({"9001"})), T0 + 5)
    assert [c.agent_id for c in cmds if isinstance(c, A.Offer)] == ["9002"]
    cmds = world.acd.handle(A.Enqueue("o2", "renewals", 1000, avoid=frozenset({"9001"})), T0 + 6)
    assert [c.agent_id for c in cmds if isinstance(c, A.Offer)] == ["9001"]   # better than an abandon


def test_the_agents_kept_for_inbound_are_the_blended_ones(world):
    log_in(world.acd, "9001", "renewals", "support", "billing")
    log_in(world.acd, "9002", "renewals", "support")
    assert world.dialer.held_agents("renewals", 1) == frozenset({"9001"})
    assert world.dialer.held_agents("renewals", 5) == frozenset({"9001", "9002"})
