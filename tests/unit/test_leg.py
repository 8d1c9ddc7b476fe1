"""The originated leg (engine/core/leg.py) and the runtime's leg watch (engine/runtime/legs.py): every
owner (offers, callbacks, transfers, the dialer) hears each moment of a leg once, whatever ARI repeats."""

from __future__ import annotations

from typing import Any

import pytest

from engine.core import leg as L
from engine.core.causes import callback_result, dial_result, offer_result
from engine.core.common import IllegalTransition
from engine.runtime.legs import LegWatch
from engine.runtime.router import Router

S = L.LegStage


def run(*steps: tuple[float, Any]) -> tuple[L.Leg, list[Any]]:
    leg, out = L.start("c1"), []
    for t, event in steps:
        leg, cmds = L.handle(leg, event, t)
        out += cmds
    return leg, out


def test_a_leg_that_rings_and_is_answered_then_hangs_up_says_so_once_each():
    leg, out = run((1.0, L.Ringing()), (1.5, L.Ringing()), (4.0, L.Up()), (4.1, L.Up()), (30.0, L.Left()),
                   (30.1, L.Destroyed(16)))
    assert out == [L.LegRinging("c1"), L.LegAnswered("c1"), L.LegEnded("c1", None, 26.0)]
    assert (leg.stage, leg.rang, leg.answered_at, leg.ended_at) == (S.GONE, True, 4.0, 30.0)


@pytest.mark.parametrize("rang", [True, False])
def test_a_leg_destroyed_before_the_answer_fails_with_its_cause_and_whether_it_rang(rang):
    steps = ((1.0, L.Ringing()),) if rang else ()
    leg, out = run(*steps, (20.0, L.Destroyed(19)), (20.1, L.Destroyed(19)))
    assert out[-1:] == [L.LegFailed("c1", 19, rang)]
    assert leg.stage is S.FAILED and leg.cause == 19
    # Each owner reads the one cause table in its own words.
    assert offer_result(19, rang) == ("no-answer" if rang else "unreachable")
    assert (dial_result(19), callback_result(19)) == ("no_answer", "no-answer")


def test_a_refused_originate_fails_the_leg_without_a_cause_and_a_late_destroy_says_nothing():
    leg, out = run((0.1, L.NotPlaced("Allocation failed", permanent=False)), (0.2, L.Destroyed(34)))
    assert out == [L.LegFailed("c1", None, False, "Allocation failed", False)]
    assert offer_result(None, False) == "unreachable"


def test_an_answered_leg_hung_up_carries_the_cause():
    _, out = run((2.0, L.Up()), (9.0, L.Destroyed(17)))
    assert out[-1] == L.LegEnded("c1", 17, 7.0)


def test_an_event_with_no_row_raises_and_changes_nothing():
    leg = L.start("c1")
    with pytest.raises(IllegalTransition):
        L.handle(leg, L.Left(), 1.0)
    assert leg == L.start("c1")


def _router() -> tuple[Router, list[str]]:
    unknown: list[str] = []
    return Router(lambda event, why: unknown.append(why)), unknown


def ari(kind: str, channel: str, **fields: Any) -> dict[str, Any]:
    state = fields.pop("state", "Up")
    return {"type": kind, "channel": {"id": channel, "state": state}, **fields}


def test_the_watch_follows_the_channel_translates_its_events_and_lets_go_at_the_end():
    router, _ = _router()
    told: list[Any] = []
    other: list[str] = []
    watch = LegWatch(router, "c1", told.append, other=lambda e: other.append(e["type"]), clock=iter(range(100)).__next__)
    assert router.follows("c1")
    for event in (ari("ChannelStateChange", "c1", state="Ringing"), ari("ChannelStateChange", "c1", state="Ringing"),
                  ari("StasisStart", "c1", args=["dial"]), ari("ChannelDtmfReceived", "c1", digit="5"),
                  ari("StasisStart", "c1", args=["amd", "HUMAN"]), ari("StasisEnd", "c1")):
        router.dispatch(event)
    assert [type(c) for c in told] == [L.LegRinging, L.LegAnswered, L.LegEnded]
    # A repeated 180 and the second StasisStart (back from AMD) go to the owner's other events.
    assert other == ["ChannelStateChange", "ChannelDtmfReceived", "StasisStart"]
    assert watch.over and not router.follows("c1")


def test_a_watch_that_does_not_end_on_stasis_end_waits_for_the_destroy():
    router, _ = _router()
    told: list[Any] = []
    LegWatch(router, "c1", told.append, leaves=False)
    for event in (ari("StasisStart", "c1"), ari("StasisEnd", "c1")):
        router.dispatch(event)
    assert [type(c) for c in told] == [L.LegAnswered] and router.follows("c1")
    router.dispatch({"type": "ChannelDestroyed", "channel": {"id": "c1"}, "cause": 16})
    assert told[-1].cause == 16 and not router.follows("c1")


def test_after_the_answer_an_owner_may_take_the_raw_events():
    router, _ = _router()
    told: list[Any] = []
    raw: list[str] = []
    LegWatch(router, "c1", told.append, after_answer=lambda e: raw.append(e["type"]))
    for event in (ari("StasisStart", "c1"), ari("ChannelHold", "c1"), ari("StasisEnd", "c1")):
        router.dispatch(event)
    assert [type(c) for c in told] == [L.LegAnswered] and raw == ["ChannelHold", "StasisEnd"]


def test_a_watch_told_the_originate_was_refused_fails_the_leg_once():
    router, _ = _router()
    told: list[Any] = []
    watch = LegWatch(router, "c1", told.append)
    watch.not_placed("404 not found", permanent=True)
    watch.not_placed("again")
    router.dispatch({"type": "ChannelDestroyed", "channel": {"id": "c1"}, "cause": 1})
    assert told == [L.LegFailed("c1", None, False, "404 not found", True)] and not router.follows("c1")
