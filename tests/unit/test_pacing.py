"""Outbound pacing (engine.core.pacing) and the dialer simulator (engine.sim.dialer).

1. Each algorithm's decisions on hand-made snapshots: progressive, ratio:X, VICIdial's ADAPT
   (L climbs while agents idle, the hard limit resets it, the half-dropped rule halves it),
   predictive (its floor, its controller, its forecast).
2. The estimators, on data whose answer is known.
3. The simulator's bookkeeping: same seed same report, counts that add up, an abandon exactly when
   no agent is free within the grace, agent time to the second; the scenario file and the CLI.
4. The targets, on reduced runs (the full sweep is tools/bench_pacing.py): on the standard scenario
   predictive stays at or under 3% and reaches 85% occupancy with 10 agents; on a spread of the
   sweep it beats progressive and vicidial-adapt without passing the target; vicidial-adapt bursts
   early and then lands near progressive. Every figure comes from a run; none is written in.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cli.main import main as cli
from engine.core import pacing as P
from engine.core import pacing_predictive as PP
from engine.core.txn import TDict, transaction
from engine.sim.dialer import DialerSimulation, run, settings_for, sweep_scenario
from engine.sim.dialer_scenario import Delay, load_dialer_scenario, load_dialer_scenario_text
from engine.sim.scenario import Distribution
from engine.config.yamlconf import ConfigError

REPO = Path(__file__).resolve().parents[2]
STANDARD_FILE = REPO / "examples" / "sim" / "dialer-standard.yaml"
STANDARD = load_dialer_scenario(STANDARD_FILE)
TARGET = 0.03


def snap(**kw) -> P.Snapshot:
    return P.Snapshot(**kw)


# -- 1. decisions ----------------------------------------------------------------------------------
def test_progressive_dials_one_line_per_free_agent_not_already_covered():
    p = P.make_pacer("progressive")
    assert p.dials_wanted(snap(available=4), 0) == 4
    assert p.dials_wanted(snap(available=4, ringing=(3.0, 1.0)), 0) == 2
    assert p.dials_wanted(snap(available=4, ringing=(3.0,), screening=(1.0,), waiting=1), 0) == 1
    assert p.dials_wanted(snap(available=1, ringing=(3.0, 1.0)), 0) == 0
    assert p.dials_wanted(snap(available=0, on_call=(30.0,) * 9, wrapup=(5.0,)), 0) == 0


@settings(max_examples=200, deadline=None)
@given(available=st.integers(0, 30), ringing=st.integers(0, 40), screening=st.integers(0, 5),
       waiting=st.integers(0, 5), busy=st.integers(0, 30))
def test_progressive_never_has_more_lines_than_free_agents(available, ringing, screening, waiting, busy):
    s = snap(available=available, ringing=(2.0,) * ringing, screening=(1.0,) * screening, waiting=waiting,
             on_call=(60.0,) * busy)
    n = P.make_pacer("progressive").dials_wanted(s, 0)
    assert n >= 0 and n + s.in_flight <= max(available, s.in_flight)
    assert n == max(0, available - s.in_flight)


def test_ratio_keeps_x_lines_per_free_agent_in_flight():
    p = P.make_pacer("ratio:2.5")
    assert p.name == "ratio:2.5"
    assert p.dials_wanted(snap(available=4), 0) == 10
    assert p.dials_wanted(snap(available=4, ringing=(1.0,) * 7), 0) == 3
    assert p.dials_wanted(snap(available=1), 0) == 3           # 2.5 rounds half up
    assert p.dials_wanted(snap(available=0, ringing=(1.0,)), 0) == 0
    one = P.make_pacer("ratio:1")
    for s in (snap(available=3, ringing=(1.0,)), snap(available=5), snap(available=0)):
        assert one.dials_wanted(s, 0) == P.make_pacer("progressive").dials_wanted(s, 0)


@pytest.mark.parametrize("name,message", [
    ("ratio:0.5", "1 or more"), ("ratio:x", "ratio:X"), ("ratio:nan", "1 or more"), ("random", "unknown pacing"),
])
def test_bad_algorithm_names_are_refused(name, message):
    with pytest.raises(ValueError, match=message):
        P.make_pacer(name)


def test_every_algorithm_respects_the_line_cap():
    s = snap(available=2, ringing=(1.0,) * 23)  # 2 agents x 12 lines already = 24 in flight
    for name in ("progressive", "ratio:20", "vicidial-adapt", "predictive"):
        assert P.make_pacer(name).dials_wanted(s, 0) <= 1


def drive_vicidial(p: P.VicidialAdapt, seconds: int, start: int = 0, **kw) -> list[int]:
    """Call it once a second with the same snapshot; return what it asked for each time."""
    return [p.dials_wanted(snap(**kw), float(t)) for t in range(start, start + seconds)]


def test_vicidial_dials_every_2_5_s_with_its_level():
    p = P.VicidialAdapt()
    made = drive_vicidial(p, 5, available=4, on_call=(10.0, 20.0), ringing=(1.0,))
    # at L = 1: round(1 x (4 ready + 2 talking)) - (1 ringing + 2 talking) = 3, at t = 0 and t = 3 (2.5 passed)
    assert made == [3, 0, 0, 3, 0]
    with transaction(p):   # a pacer changes only in a transaction: this one sets its level
        p.level = 2.0
    assert p.dials_wanted(snap(available=4, on_call=(10.0, 20.0), ringing=(1.0,)), 5.0) == 12 - 3


def test_vicidial_level_climbs_while_agents_idle_and_is_capped():
    p = P.VicidialAdapt()
    drive_vicidial(p, 15, available=10)
    assert p.level == 1.0                        # nothing adapts before the first 15 s
    drive_vicidial(p, 1, start=15, available=10)
    assert p.level == pytest.approx(2.0)         # 1 x (1 + (10 ready - 0 waiting) / 10 logged in)
    drive_vicidial(p, 15, start=16, available=10)
    assert p.level == 3.0                        # capped
    drive_vicidial(p, 120, start=31, available=0, waiting=2, on_call=(5.0,) * 10)
    assert p.level == 1.0                        # more waiting than ready: x 0.8 a step, to the floor, not below


def test_vicidial_hard_limit_resets_the_level_once_over_after_50_calls():
    p = P.VicidialAdapt()
    for _ in range(60):
        p.observe(P.Dialed(), 0.0)
    drive_vicidial(p, 59, available=10, live_answers=100, abandoned=2)  # 2%: under the limit
    assert p.level == 3.0 and not p.over_limit
    drive_vicidial(p, 1, start=59, available=10, live_answers=100, abandoned=2)
    drive_vicidial(p, 1, start=60, available=10, live_answers=100, abandoned=4)  # the 60 s check: 4% > 3%
    assert p.over_limit
    drive_vicidial(p, 15, start=61, available=10, live_answers=100, abandoned=4)
    assert p.level == 1.0                        # reset at the next 15 s update, though agents idle
    fresh = P.VicidialAdapt()                    # the same drop rate before 50 dials: no limit
    drive_vicidial(fresh, 76, available=10, live_answers=100, abandoned=4)
    assert not fresh.over_limit and fresh.level == 3.0


def test_vicidial_halves_the_level_when_most_of_the_last_minute_dropped():
    p = P.VicidialAdapt()
    with transaction(p):
        p.level = 3.0
    for t in range(25):
        p.observe(P.Abandoned() if t % 3 else P.Connected(0.5), 30.0 + t)  # 16 of 25 dropped
    p.dials_wanted(snap(available=0, on_call=(1.0,) * 5), 1.0)
    for t in range(2, 61):
        p.dials_wanted(snap(available=0, on_call=(1.0,) * 5), float(t))
    assert p.level == 3.0                        # the minute is checked at 61 s
    p.dials_wanted(snap(available=0, on_call=(1.0,) * 5), 61.0)
    assert p.level == pytest.approx(1.5)


def test_predictive_never_dials_less_than_progressive_would():
    p = P.make_pacer("predictive")
    for s in (snap(available=5), snap(available=5, ringing=(1.0,) * 3), snap(available=1, abandoned=50,
                                                                             live_answers=100)):
        assert p.dials_wanted(s, 0) >= P.make_pacer("progressive").dials_wanted(s, 0)


def test_predictive_overdials_when_answers_are_rare_and_not_when_agents_are_busy():
    p = P.Predictive()
    feed(p, dials=2000, answered=0.2, live=1.0)
    assert p.dials_wanted(snap(available=10, live_answers=1000, abandoned=20), 0) > 25  # about 10 / 0.2
    assert p.dials_wanted(snap(available=0, on_call=(5.0,) * 10, waiting=1, live_answers=1000, abandoned=20), 0) == 0


def test_predictive_spends_budget_and_holds_back_once_it_is_spent():
    s = dict(available=3, on_call=(40.0,) * 7, wrapup=(4.0, 12.0), ringing=(2.0, 5.0, 9.0))

    def wanted(abandoned: int) -> tuple[int, float]:
        p = P.Predictive()
        feed(p, dials=3000, answered=0.4, live=1.0)
        n = p.dials_wanted(snap(live_answers=2000, abandoned=abandoned, **s), 0)
        return n, p.z

    rich, z_rich = wanted(0)
    poor, z_poor = wanted(120)  # 6% spent: over the target
    assert z_rich < z_poor and rich > poor >= 3 - 3  # the floor: 3 free agents, 3 lines ringing


def test_predictive_forecast_counts_agents_and_calls():
    p = P.Predictive()
    feed(p, dials=4000, answered=0.5, live=1.0)
    supply, demand, var = p.forecast(snap(available=2, wrapup=(3.0, 30.0), ringing=(0.5,) * 10, waiting=1))
    taus = p.taus
    j5, last = taus.index(5), len(taus) - 1
    assert supply[j5] == 3          # 2 available + the wrap-up ending in 3 s (<= 5 + 2 s grace)
    assert supply[last] == 3        # the 30 s wrap-up is past every horizon
    assert demand[0] == pytest.approx(1.0, abs=0.05)          # the waiting call; fresh dials not yet
    assert demand[last] == pytest.approx(1 + 10 * 0.5, abs=0.3)  # each ringing call half the time
    assert 0 < var[last] <= 10 * 0.25 + 1e-9


def feed(p: P.Pacer, dials: int, answered: float, live: float, talk: float = 100.0) -> None:
    """Observed history: ``answered`` of the dials answered (at 4..12 s), ``live`` of those live."""
    k = 0
    for i in range(dials):
        p.observe(P.Dialed(), 0.0)
        if evenly(i, answered):
            k += 1
            result = "live" if evenly(k, live) else "machine"
            p.observe(P.DialResult(result, 4.0 + (i % 9)), 0.0)
            if result == "live" and i % 4 == 0:
                p.observe(P.Handled(talk, 20.0), 0.0)
        else:
            p.observe(P.DialResult("no_answer", 20.0), 0.0)


def evenly(i: int, share: float) -> bool:
    """True for ``share`` of the i's, spread evenly."""
    return int((i + 1) * share + 1e-9) > int(i * share + 1e-9)


# -- 2. estimators ---------------------------------------------------------------------------------
def test_outcomes_answers_conditional_questions():
    o = PP._Outcomes(0.25, 30.0)
    for _ in range(100):
        o.add(5.0, True)
        o.add(20.0, False)
    assert o.hit_rate == 0.5
    assert o.hit_within(0.0, [4.0, 10.0]) == pytest.approx([0.0, 0.5], abs=0.01)
    assert o.hit_within(6.0, [10.0]) == pytest.approx([0.0], abs=0.01)     # the answers have passed
    assert o.hit_within(25.0, [1.0]) == [0.0]                                # nothing left alive


def test_handling_conditions_on_time_already_on_the_call():
    h = PP._Handling(horizon=25)
    for _ in range(3):
        h.add(10.0, 0.0)      # short calls with no wrap-up (machines)
    for _ in range(5):
        h.add(100.0, 20.0)    # conversations, then wrap-up
    h.MIN_ALIVE = 1.0
    h.version += 1
    ys = [2, 6, 24]
    p5 = h.free_within(5.3, ys)
    assert p5 is not None and p5[0] == pytest.approx([0.0, 3 / 8, 3 / 8])
    assert h.free_within(50.0, ys) is None                     # 70 s still to go
    p99 = h.free_within(99.2, ys)
    assert p99 is not None and p99[0] == pytest.approx([0.0, 0.0, 1.0])  # 0.5 s of talk + 20 s wrap-up


def test_predictive_learns_from_what_it_observes_not_from_its_priors():
    p = P.Predictive()
    feed(p, dials=5000, answered=0.8, live=0.75)
    p.forecast(snap(available=1))
    assert p.ring.hit_rate == pytest.approx(0.8, abs=0.01)
    assert p.p_live == pytest.approx(0.75, abs=0.01)
    assert p.new_dial[-1] == pytest.approx(0.6, abs=0.02)
    low = P.Predictive()
    feed(low, dials=5000, answered=0.1, live=1.0)
    low.forecast(snap(available=1))
    assert low.new_dial[-1] == pytest.approx(0.1, abs=0.01)


# -- 3. the simulator ------------------------------------------------------------------------------
def tiny(**kw):
    base = dict(agents=1, hours=1.0, live_answer=1.0, machine_answer=0.0, no_answer=0.0, busy=0.0,
                answer_delay=Delay(distribution="constant", median_seconds=8.0),
                talk=Distribution(distribution="constant", mean_seconds=100.0), wrapup_seconds=20.0)
    base.update(kw)
    return replace(STANDARD, **base)


class Script(P.Pacer):
    """Dials ``plan[t]`` lines at time t, nothing else."""

    name = "script"

    def __init__(self, plan: dict[float, int]) -> None:
        super().__init__()
        self.plan = TDict(plan)

    def decide(self, snap: P.Snapshot, now: float) -> int:
        return self.plan.pop(now, 0)


@pytest.mark.parametrize("talk,connected", [(1.9, True), (2.1, False)])
def test_an_abandon_is_counted_exactly_when_no_agent_is_free_within_the_grace(talk, connected):
    scenario = tiny(talk=Distribution(distribution="constant", mean_seconds=talk), wrapup_seconds=0.0)
    r = DialerSimulation(scenario, "script", pacer=Script({0.0: 2})).run()
    assert r["dials"] == 2 and r["live_answers"] == 2
    assert r["abandoned"] == (0 if connected else 1) and r["connected"] == (2 if connected else 1)
    assert r["answer_to_agent_seconds"]["p99"] == pytest.approx(talk if connected else 0.0)


def test_agent_time_is_counted_to_the_second():
    r = DialerSimulation(tiny(), "script", pacer=Script({0.0: 1, 1000.0: 1})).run()
    assert r["connected"] == 2 and r["abandoned"] == 0
    assert r["occupancy"] == pytest.approx(2 * 120 / 3600)   # 100 s talk + 20 s wrap-up, twice
    assert r["talk_minutes_per_agent_hour"] == pytest.approx(200 / 60)
    machine = DialerSimulation(tiny(live_answer=0.0, machine_answer=1.0), "script", pacer=Script({0.0: 1})).run()
    assert machine["live_answers"] == 1 and machine["talk_minutes_per_agent_hour"] == 0  # AMD off: an agent hears it
    assert machine["occupancy"] == pytest.approx(STANDARD.machine_handling_seconds / 3600)


def without_wall(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "wall_seconds"}


def test_same_seed_same_report_another_seed_another():
    s = replace(STANDARD, hours=1.0)
    for algorithm in ("predictive", "vicidial-adapt"):
        a, b = run(s, algorithm), run(s, algorithm)
        assert json.dumps(without_wall(a)) == json.dumps(without_wall(b))
        assert without_wall(run(s, algorithm, seed=2)) != without_wall(a)


@pytest.mark.parametrize("amd", [False, True])
def test_counts_add_up(amd):
    s = replace(STANDARD, hours=2.0, amd=replace(STANDARD.amd, enabled=amd, false_positive=0.05, false_negative=0.1))
    r = run(s, "predictive")
    assert r["dials"] == r["persons"] + r["machines"] + r["no_answer"] + r["busy"]
    assert r["live_answers"] == r["connected"] + r["abandoned"]
    assert r["abandon_rate"] == pytest.approx(r["abandoned"] / r["live_answers"])
    answered = r["persons"] + r["machines"]
    if amd:  # passed on: persons AMD let through + machines it missed
        passed = r["persons"] - r["amd_false_positives"] + r["amd_false_negatives"]
        assert r["amd_false_positives"] > 0 and r["amd_false_negatives"] > 0
        assert passed - 30 <= r["live_answers"] <= passed   # those still ringing at the end: not counted
        assert r["answer_to_agent_seconds"]["p50"] >= s.amd.delay_seconds
    else:
        assert answered - 30 <= r["live_answers"] <= answered
    assert abs(r["dials"] * s.busy - r["busy"]) < 4 * math.sqrt(r["dials"] * s.busy)
    assert 0 < r["occupancy"] < 1


def test_the_standard_scenario_loads_as_described():
    s = STANDARD
    assert (s.agents, s.hours, s.live_answer, s.machine_answer, s.no_answer, s.busy) == (10, 8, 0.25, 0.15, 0.45, 0.15)
    assert (s.answer_delay.median_seconds, s.answer_delay.sigma, s.no_answer_timeout_seconds) == (8, 0.5, 20)
    assert (s.talk.mean_seconds, s.talk.cv, s.wrapup_seconds, s.amd.enabled) == (120, 1.0, 20, False)
    assert (s.abandon_target_percent, s.connect_grace_seconds) == (3.0, 2)
    live10 = sweep_scenario(s, 5, 0.10)
    live80 = sweep_scenario(s, 5, 0.80)
    assert (live10.machine_answer, live10.busy, live10.no_answer) == pytest.approx((0.15, 0.15, 0.60))
    assert (live80.machine_answer, live80.busy, live80.no_answer) == pytest.approx((0.10, 0.05, 0.05))


GOOD = STANDARD_FILE.read_text()


@pytest.mark.parametrize("old,new,expected", [
    ("live_answer: 0.25", "live_answer: 0.35", "s.yaml:6:14: live_answer + machine_answer + no_answer + busy must add up"),
    ("no_answer_timeout_seconds: 20", "no_answer_timeout_seconds: 10", "s.yaml:11:28: no_answer_timeout_seconds: "
                                                                        "expected 15 or more"),
    ("busy: 0.15", "bussy: 0.15", "s.yaml:9:1: unknown key 'bussy'"),
    ("median_seconds: 8,", "median_seconds: 25,", "s.yaml:10:15: answer_delay: the median (25 s) must be under"),
    ("amd: {enabled: false}", "amd: {enabled: maybe}", "s.yaml:18:16: amd.enabled: expected true or false"),
])
def test_scenario_errors_name_file_and_line(old, new, expected):
    assert old in GOOD
    with pytest.raises(ConfigError) as info:
        load_dialer_scenario_text(GOOD.replace(old, new), file="s.yaml")
    found = [str(p) for p in info.value.problems]
    assert any(p.startswith(expected) for p in found), found


def test_cli_table_json_and_errors(tmp_path, capsys):
    args = ["sim", "dialer", "--scenario", str(STANDARD_FILE), "--hours", "0.5", "--seed", "3"]
    assert cli([*args, "--algorithm", "progressive", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["algorithm"], r["seed"], r["hours"], r["agents"]) == ("progressive", 3, 0.5, 10)
    for key in ("dials", "live_answers", "abandoned", "abandon_rate", "occupancy", "talk_minutes_per_agent_hour",
                "machines", "no_answer", "busy"):
        assert key in r
    assert set(r["answer_to_agent_seconds"]) == {"p50", "p99"}
    assert cli([*args, "--algorithm", "ratio:1.5"]) == 0
    out = capsys.readouterr().out
    assert "abandon rate" in out and "occupancy" in out and "ratio:1.5" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("busy: 0.15", "busy: 0.25"))
    assert cli(["sim", "dialer", "--scenario", str(bad), "--algorithm", "predictive"]) == 1
    assert f"{bad}:6:14: live_answer + machine_answer" in capsys.readouterr().err
    assert cli([*args, "--algorithm", "magic"]) == 2
    assert cli(["sim", "acd", "--scenario", str(REPO / "examples" / "sim" / "erlang-c.yaml"), "--hours", "5"]) == 0


# -- 4. the targets, on reduced runs ---------------------------------------------------------------
def test_standard_10_agents_predictive_reaches_85_percent_within_the_abandon_target():
    runs = [run(STANDARD, "predictive", seed=seed, hours=12) for seed in (1, 2)]  # two 12-hour days
    for r in runs:
        assert r["abandon_rate"] <= TARGET, r["abandon_rate"]
        assert r["human_abandon_rate"] <= TARGET
    assert sum(r["occupancy"] for r in runs) / 2 >= 0.85, [r["occupancy"] for r in runs]


@functools.lru_cache(maxsize=None)
def standard_50() -> dict:
    return run(replace(STANDARD, agents=50), "predictive", hours=6)


def test_standard_50_agents_predictive_within_the_target_at_94_percent_and_more():
    r = standard_50()
    assert r["abandon_rate"] <= TARGET and r["occupancy"] >= 0.94, (r["occupancy"], r["abandon_rate"])


@pytest.mark.xfail(strict=True, reason="issue 5 asks for 95% with 50 agents; predictive reaches 94.6% at 2.9% "
                                       "abandons over 8 h (seeds 1-4): the variants measured are listed in "
                                       "engine.core.pacing.Predictive's docstring")
def test_standard_50_agents_predictive_reaches_95_percent():
    assert standard_50()["occupancy"] >= 0.95


@pytest.mark.parametrize("agents,live,hours", [(5, 0.10, 8), (10, 0.80, 8), (20, 0.25, 4), (100, 0.25, 1.5)])
def test_predictive_beats_progressive_and_vicidial_without_passing_the_target(agents, live, hours):
    s = replace(sweep_scenario(STANDARD, agents, live), hours=hours)
    pred = run(s, "predictive")
    assert pred["abandon_rate"] <= TARGET
    for other in ("progressive", "vicidial-adapt"):
        assert pred["occupancy"] > run(s, other)["occupancy"] + 0.01, other


def test_vicidial_adapt_bursts_early_then_lands_near_progressive():
    s = replace(STANDARD, agents=20)
    levels: list[tuple[float, float]] = []

    class Watched(P.VicidialAdapt):   # (a pacer changes only in its steps: no patching it from outside)
        def decide(self, snap: P.Snapshot, now: float) -> int:
            n = super().decide(snap, now)
            levels.append((now, self.level))
            return n

    sim = DialerSimulation(s, "vicidial-adapt", pacer=Watched(settings_for(s)))
    r = sim.run()
    prog = run(s, "progressive")
    assert max(level for t, level in levels if t < 60) > 2.0             # everyone idle at the start: L climbs
    late = [level for t, level in levels if t > 3600]
    assert sum(1 for level in late if level == 1.0) / len(late) > 0.5   # then mostly 1:1 for hours
    assert abs(r["occupancy"] - prog["occupancy"]) < 0.03
    assert r["abandon_rate"] > 0.02                                      # it spends (and overshoots) its budget


def test_estimates_follow_a_list_that_changes():
    p = P.Predictive()
    feed(p, dials=10000, answered=0.2, live=1.0)
    p.forecast(snap(available=1))
    assert p.ring.hit_rate == pytest.approx(0.2, abs=0.01)
    feed(p, dials=10000, answered=0.6, live=1.0)
    p.forecast(snap(available=1))
    assert p.ring.hit_rate == pytest.approx(0.6, abs=0.05)  # the old list is (nearly) forgotten


# -- 5. blending: inbound and outbound on the same agents --------------------------------------------
BLENDED = load_dialer_scenario(REPO / "examples" / "sim" / "dialer-blended.yaml")


def test_blended_agents_serve_inbound_first_and_the_dialer_fills_the_rest_within_the_target():
    r = run(BLENDED, "predictive", hours=4)
    inbound = r["inbound"]
    assert inbound["offered"] == inbound["answered"] + inbound["abandoned"]
    assert 0.8 * 4 * 60 < inbound["offered"] < 1.2 * 4 * 60
    assert inbound["service_level"] >= 0.85, inbound         # 80% in 20 s is the queue's target
    assert r["abandon_rate"] <= TARGET
    alone = run(replace(BLENDED, inbound=None), "predictive", hours=4)
    # The dialer gives inbound its agents: fewer outbound live answers, the agents as busy as before.
    assert r["live_answers"] < 0.85 * alone["live_answers"]
    assert r["occupancy"] > alone["occupancy"] - 0.03


def test_blended_heavy_inbound_keeps_the_abandon_target():
    # 6 Erlangs of inbound on 10 agents: inbound callers take the agents coming free, so the
    # pacer counts them (waiting and arriving) against its supply (found by the blended simulation).
    r = run(replace(BLENDED, inbound=replace(BLENDED.inbound, calls_per_hour=120)), "predictive", hours=4)
    assert r["abandon_rate"] <= TARGET
    assert r["live_answers"] > 0
