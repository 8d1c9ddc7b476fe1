"""The pacers as machines: ``step(pacer, event, now) -> (pacer, commands)``, one transaction each.

1. Under any sequence of observations and decisions, some of them malformed (a NaN or infinite
   duration, a snapshot with a hole in it), a step that raises leaves the whole pacer as it was
   (structure.dump: every estimator, histogram, cache, clock and counter), and a well-formed one
   never raises; a decision is ``[Dial(n)]`` with n > 0 within the line cap, or nothing.
2. The malformed observations that used to teach a pacer half of themselves, on their own.
3. Nothing changes a pacer but a step; the shell's two calls are steps.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core import pacing as P
from engine.core.common import TimerFired
from engine.core.txn import OutsideTransaction

from .structure import dump

ALGORITHMS = ["progressive", "ratio:2", "vicidial-adapt", "predictive"]
BAD = (float("nan"), float("inf"))

seconds = st.floats(0.0, 400.0)
durations = st.tuples(st.just(False), seconds) | st.tuples(st.just(True), st.sampled_from(BAD))


@st.composite
def events(draw):
    """(event, malformed?)"""
    kind = draw(st.sampled_from(["dialed", "result", "connected", "abandoned", "handled", "decide", "decide"]))
    if kind == "dialed":
        return P.Dialed(), False
    if kind == "abandoned":
        return P.Abandoned(), False
    if kind == "connected":
        return P.Connected(draw(st.floats(0.0, 2.0))), False
    if kind == "result":
        (bad1, ring), (bad2, screen) = draw(durations), draw(durations)
        result = draw(st.sampled_from(["live", "machine", "busy", "no_answer"]))
        return P.DialResult(result, min(ring, 30.0), screen), bad1 or bad2
    if kind == "handled":
        (bad1, talk), (bad2, wrap) = draw(durations), draw(durations)
        return P.Handled(talk, wrap), bad1 or bad2
    ages = st.lists(st.floats(0.0, 30.0), max_size=6).map(tuple)
    on_call = draw(st.lists(seconds, max_size=8))
    holed = draw(st.sampled_from(["none", "none", "none", "on_call", "available"]))
    if holed == "on_call":
        on_call.append(math.nan)
    snap = P.Snapshot(available=None if holed == "available" else draw(st.integers(0, 8)),  # type: ignore[arg-type]
                      on_call=tuple(on_call), wrapup=draw(ages), ringing=draw(ages), screening=draw(ages),
                      waiting=draw(st.integers(0, 2)), paused=draw(st.integers(0, 2)),
                      live_answers=draw(st.integers(100, 300)), abandoned=draw(st.integers(0, 12)))
    return P.Decide(snap), holed != "none"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@settings(max_examples=40, deadline=None)
@given(script=st.lists(st.tuples(events(), st.floats(0.1, 4.0)), max_size=25))
def test_a_step_that_raises_changes_nothing(algorithm, script):
    pacer = P.make_pacer(algorithm)
    now = 0.0
    for (event, malformed), gap in script:
        now += gap
        before = dump(pacer) if malformed else None   # (a dump of a predictive pacer is ~20 ms)
        try:
            same, commands = P.step(pacer, event, now)
        except (ValueError, TypeError, OverflowError):
            assert malformed, f"a well-formed {event} raised"
            assert dump(pacer) == before, f"a refused {event} changed the {algorithm} pacer"
            continue
        assert same is pacer
        if isinstance(event, P.Decide):   # (a malformed snapshot the decision did not need to read passes)
            s = event.snapshot
            assert commands == [] or (len(commands) == 1 and commands[0].count > 0)
            if not malformed:
                assert sum(c.count for c in commands) + s.in_flight <= max(s.in_flight, 12 * s.logged_in)
        else:
            assert commands == []


def test_a_dial_result_that_fails_half_way_teaches_the_predictive_pacer_nothing():
    # learn() adds the ring time to the answer histogram, then the AMD time to the screening one,
    # which raises on NaN: before each step was a transaction, the answer stayed counted
    p = P.make_pacer("predictive")
    before = dump(p)
    with pytest.raises(ValueError):
        p.observe(P.DialResult("live", 5.0, math.nan), 1.0)
    assert dump(p) == before


def test_a_handled_call_that_fails_half_way_teaches_the_predictive_pacer_nothing():
    # _Handling.add counts the talk time, then spreads talk + wrap-up over its rows, which raises
    # on an infinite wrap-up
    p = P.make_pacer("predictive")
    before = dump(p)
    with pytest.raises(OverflowError):
        p.observe(P.Handled(100.0, math.inf), 1.0)
    assert dump(p) == before


def test_a_decision_that_fails_half_way_leaves_vicidials_clocks_alone():
    # the first decision starts VICIdial's clocks, then samples the snapshot, which has no count
    p = P.VicidialAdapt()
    before = dump(p)
    with pytest.raises(TypeError):
        p.dials_wanted(P.Snapshot(available=None), 0.0)  # type: ignore[arg-type]
    assert dump(p) == before
    assert p.dials_wanted(P.Snapshot(available=3), 0.0) == 3   # its clocks start with this one


def test_nothing_changes_a_pacer_but_a_step():
    p = P.make_pacer("predictive")
    v = P.VicidialAdapt()
    p.observe(P.Handled(90.0, 10.0), 0.0)
    p.dials_wanted(P.Snapshot(available=2, on_call=(30.0,)), 0.0)
    before, before_v = dump(p), dump(v)
    for change in (lambda: setattr(p, "z", 0.0), lambda: p.ring.ends.__setitem__(0, 5.0),
                   lambda: p.ring.add(3.0, True), lambda: p.handling.rows.clear(), lambda: p.handling.cache.pop(0, None),
                   lambda: setattr(v, "level", 3.0), lambda: v._minute.append((0.0, True)), lambda: setattr(v, "_samples", ())):
        with pytest.raises(OutsideTransaction):
            change()
    assert dump(p) == before and dump(v) == before_v
    with pytest.raises(TypeError, match="a pacer has no handler for TimerFired"):
        P.step(p, TimerFired("tick"), 1.0)
    assert dump(p) == before


def test_the_shells_calls_are_steps():
    a, b = P.make_pacer("predictive"), P.make_pacer("predictive")
    a.observe(P.DialResult("live", 6.0), 0.0)
    assert P.step(b, P.DialResult("live", 6.0), 0.0) == (b, [])
    assert dump(a) == dump(b)
    snap = P.Snapshot(available=4, ringing=(1.0,))
    n = a.dials_wanted(snap, 1.0)
    assert n > 0 and P.step(b, P.Decide(snap), 1.0) == (b, [P.Dial(n)])
    assert dump(a) == dump(b)
    assert P.step(b, P.Decide(P.Snapshot(available=0)), 2.0) == (b, [])   # no dial: no command


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("event", [
    P.DialResult("live", -2.0), P.DialResult("machine", 6.0, -0.5), P.DialResult("busy", -0.1), P.Connected(-1.0),
    P.Handled(-30.0, 10.0), P.Handled(90.0, -5.0),
    P.Decide(P.Snapshot(available=2, on_call=(40.0, -3.0))), P.Decide(P.Snapshot(available=2, wrapup=(-1.0,))),
    P.Decide(P.Snapshot(available=2, ringing=(-0.5,))), P.Decide(P.Snapshot(available=2, screening=(-2.0,))),
], ids=repr)
def test_a_negative_duration_is_refused_and_changes_nothing(algorithm, event):
    # a duration below zero (a clock read backwards, or a bug) used to be taken: a ring time binned
    # as 0 s, a talk time of -30 s counted at the far end of its histogram (among hour-long talks),
    # a ringing age of -0.5 s forecast from the last age bin (a call about to ring out)
    p = P.make_pacer(algorithm)
    P.step(p, P.Dialed(), 0.0)
    P.step(p, P.Decide(P.Snapshot(available=1, on_call=(30.0,))), 0.5)
    before = dump(p)
    with pytest.raises(ValueError, match="negative"):
        P.step(p, event, 1.0)
    if isinstance(event, P.Decide):
        with pytest.raises(ValueError, match="negative"):
            p.dials_wanted(event.snapshot, 1.0)
    else:
        with pytest.raises(ValueError, match="negative"):
            p.observe(event, 1.0)
    assert dump(p) == before
    P.step(p, P.Handled(0.0, 0.0), 2.0)   # zero is a duration (a call over as it connected)
