"""The ACD simulator: the real core on a virtual clock, checked against queueing theory.

Statistics. Each validation run is cut into 20 batches of equal length after the warm-up
(``run(..., batches=20)``); the per-batch figures give a batch-means Student-t interval at 99.9%
(19 degrees of freedom, t = 3.883), and the domain.md value (widened by its own rounding) must lie
inside it. Batches are 9.5 h (19 h for N = 11), many times the relaxation time of each system
(about 180 s / (sqrt(N) - sqrt(A))^2: 15 min at N = 13, 2 h at N = 11), so batch means are close to
independent. Checked over 30 seeds x 5 N x 4 measures: 1 of 600 outside (0.6 expected), with the
largest deviations about 0.9 half-widths; Erlang A over 30 seeds: none outside. Each check also
asserts the interval is narrow enough to mean something (a missed 10 s wrap-up, or one agent
fewer, lands outside it). Lengths were chosen so the file runs in about 15 s on one core.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from engine.config.acd import QueueConfig
from engine.cli.main import main as cli
from engine.sim.acd import AcdSimulation, batch_interval, run
from engine.sim.clock import Scheduler
from engine.sim.scenario import Distribution, Scenario, load_scenario, load_scenario_text, uniform_agents
from engine.config.yamlconf import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "sim"
MAIN = (QueueConfig(name="main", wrapup_seconds=0),)
EXP180 = Distribution(distribution="exponential", mean_seconds=180)

# shared/docs/domain.md, A = 10 Erlangs, t = 20 s: N -> P_wait, SL 20 s, ASA (s), occupancy
ERLANG_C = {11: (0.682, 0.390, 122.8, 0.909), 12: (0.449, 0.640, 40.4, 0.833), 13: (0.285, 0.796, 17.1, 0.769),
            14: (0.174, 0.888, 7.8, 0.714), 15: (0.102, 0.941, 3.7, 0.667)}
ROUNDING = {"p_wait": 5e-4, "service_level": 5e-4, "asa_seconds": 0.05, "occupancy": 5e-4, "abandon_rate": 5e-4}
BATCHES = 20


def erlang_scenario(n: int, hours: float, seed: int = 1, patience: Distribution | None = None) -> Scenario:
    return Scenario(handle_time=EXP180, agents=uniform_agents(n, MAIN), queues=MAIN, hours=hours, seed=seed,
                    rates_per_hour=(200.0,), patience=patience or Distribution(distribution="none"))


def check(report: dict, metric: str, theory: float, max_half_width: float) -> None:
    mean, hw = batch_interval([b[metric] for b in report["batches"]])
    assert abs(mean - theory) <= hw + ROUNDING[metric], (
        f"{metric}: simulated {mean:.4f} +- {hw:.4f} (99.9%), theory {theory}")
    assert hw < max_half_width, f"{metric}: the interval (+- {hw:.4f}) is too wide to test anything"


def check_offered(report: dict, rate_per_hour: float, measured_hours: float) -> None:
    expected = rate_per_hour * measured_hours  # Poisson: 4 standard deviations
    assert abs(report["total"]["offered"] - expected) < 4 * math.sqrt(expected)


# -- (a) Erlang C ------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,hours", [(11, 400), (12, 200), (13, 200), (14, 200), (15, 200)])
def test_erlang_c(n, hours):
    report = run(erlang_scenario(n, hours), batches=BATCHES)
    p_wait, sl, asa, occupancy = ERLANG_C[n]
    total = report["total"]
    assert total["answered"] == total["offered"] and total["abandoned"] == total["unfinished"] == 0
    check_offered(report, 200, hours * 0.95)  # default warm-up: 5% of the run
    check(report, "p_wait", p_wait, 0.1)
    check(report, "service_level", sl, 0.1)
    check(report, "asa_seconds", asa, 0.6 * asa)
    check(report, "occupancy", occupancy, 0.035)


# -- (b) Erlang A ------------------------------------------------------------------------------------
def test_erlang_a():
    report = run(erlang_scenario(11, 300, patience=EXP180), batches=BATCHES)
    check_offered(report, 200, 300 * 0.95)
    check(report, "p_wait", 0.417, 0.05)
    check(report, "abandon_rate", 0.083, 0.02)
    # served traffic A(1 - P_abandon) spread over N agents
    check(report, "occupancy", 10 * (1 - 0.083) / 11, 0.03)


# -- (c) determinism ---------------------------------------------------------------------------------
def without_wall(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "wall_seconds"}


def test_same_seed_same_output_another_seed_another():
    scenario = load_scenario(EXAMPLES / "skills.yaml")
    a, b = run(scenario), run(scenario)
    assert json.dumps(without_wall(a)) == json.dumps(without_wall(b))
    assert without_wall(run(scenario, seed=scenario.seed + 1)) != without_wall(a)


def test_simultaneous_events_are_shuffled_by_the_seed():
    def order(seed: int) -> list[int]:
        seen: list[int] = []
        clock = Scheduler(random.Random(seed))
        for i in range(8):
            clock.at(5.0, seen.append, i)
        clock.run(lambda t: False)
        return seen

    assert order(1) == order(1)
    assert sorted(order(1)) == list(range(8))
    assert len({tuple(order(s)) for s in range(10)}) > 1


def test_scheduler_cancel_and_replace_never_revive_an_entry():
    seen: list[str] = []
    clock = Scheduler(random.Random(0))
    clock.at(10, seen.append, "first", key="k")
    clock.at(20, seen.append, "replaced", key="k")   # replaces "first"
    clock.at(15, seen.append, "cancelled", key="c")
    clock.cancel("c")
    clock.at(30, seen.append, "again", key="c")      # a new entry under a cancelled key
    clock.at(math.inf, seen.append, "never")
    clock.run(lambda t: False)
    assert seen == ["replaced", "again"] and clock.now == 30


def test_arrival_rates_per_interval_repeat_and_zero_means_none():
    scenario = load_scenario_text(
        "hours: 4\narrivals_per_hour: [0, 720]\ninterval_minutes: 30\nwarmup_minutes: 0\n"
        "handle_time: {distribution: constant, mean_seconds: 1}\nagents: 2\n", file="rates.yaml")
    sim = AcdSimulation(scenario)
    times, t = [], 0.0
    while (t := sim._next_arrival(t)) < math.inf:
        times.append(t)
    assert times and all(int(t // 1800) % 2 == 1 for t in times)  # only in the odd half-hours
    assert abs(len(times) - 1440) < 4 * math.sqrt(1440)
    report = AcdSimulation(scenario).run()  # a fresh one draws the same arrivals
    assert report["total"]["offered"] == len(times) and report["total"]["answered"] == len(times)


def test_every_call_has_one_outcome_with_skills_expansion_and_overflow():
    report = run(load_scenario(EXAMPLES / "skills.yaml"), hours=24)
    total, billing, sales = report["total"], report["queues"]["billing"], report["queues"]["sales"]
    for q in (billing, sales):
        assert q["offered"] == q["answered"] + q["abandoned"] + q["overflowed"] + q["unroutable"] + q["unfinished"]
        assert 0 < q["occupancy"] < 1
    assert total["offered"] == total["answered"] + total["abandoned"] + total["unroutable"] + total["unfinished"]
    assert billing["overflowed"] > 0
    # overflowed calls enter sales too: per-queue offers exceed the calls by exactly the overflows
    assert billing["offered"] + sales["offered"] == total["offered"] + billing["overflowed"]


# -- (d) scenario errors name file and line ----------------------------------------------------------
GOOD = """\
hours: 10
arrivals_per_hour: 100
handle_time: {distribution: exponential, mean_seconds: 180}
queues:
  - {name: billing, skills: {billing: 3}}
  - {name: sales}
agents:
  - {id: ann, skills: {billing: 5}}
  - {id: bob, queues: [sales]}
mix: {billing: 0.7, sales: 0.3}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_scenario_text(text, file="s.yaml")
    return [str(p) for p in info.value.problems]


def test_the_good_scenario_and_the_examples_load():
    s = load_scenario_text(GOOD, file="s.yaml")
    assert [a.id for a in s.agents] == ["ann", "bob"]
    assert s.agents[0].queues == {"billing", "sales"} and s.mix == (("billing", 0.7), ("sales", 0.3))
    assert s.warmup_seconds == 0.05 * 10 * 3600
    for path in EXAMPLES.glob("*.yaml"):
        if not path.name.startswith("dialer-"):  # outbound scenarios: tests/unit/test_pacing.py
            load_scenario(path)


@pytest.mark.parametrize("change,expected", [
    (("arrivals_per_hour: 100", "arivals_per_hour: 100"), "s.yaml:2:1: unknown key 'arivals_per_hour'"),
    (("mean_seconds: 180}", "cv: 2}"), "s.yaml:3:14: handle_time: distribution 'exponential' needs mean_seconds"),
    (("queues: [sales]", "queues: [salse]"), "s.yaml:9:5: agent bob: unknown queue(s) salse"),
    (("sales: 0.3}", "sale: 0.3}"), "s.yaml:10:21: mix: unknown queue 'sale'"),
    (("hours: 10", "hours: 10\nwarmup_minutes: 600"), "s.yaml:2:17: warmup_minutes (600) must be shorter"),
    (("{name: sales}", "{name: sales, overflow: {queue: nowhere}}"), "s.yaml:6:5: queue sales: overflow to unknown"),
    (("agents:\n  - {id: ann, skills: {billing: 5}}\n  - {id: bob, queues: [sales]}", "agents: many"),
     "s.yaml:7:9: agents: expected a whole number"),
])
def test_scenario_errors_name_file_and_line(change, expected):
    old, new = change
    assert old in GOOD
    found = problems(GOOD.replace(old, new))
    assert any(p.startswith(expected) for p in found), found


def test_a_scenario_error_exits_1_with_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("handle_time: {distribution: exponential", "handle_time: {distribution: gamma"))
    assert cli(["sim", "acd", "--scenario", str(bad)]) == 1
    assert f"{bad}:3:29: handle_time.distribution: expected one of" in capsys.readouterr().err


# -- (e) the command line ----------------------------------------------------------------------------
def test_cli_json_and_table(capsys):
    args = ["sim", "acd", "--scenario", str(EXAMPLES / "erlang-a.yaml"), "--hours", "12", "--seed", "5"]
    assert cli([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["seed"] == 5 and report["hours"] == 12 and report["agents"] == 11
    for key in ("offered", "answered", "abandoned", "service_level", "asa_seconds", "abandon_rate", "p_wait",
                "occupancy"):
        assert key in report["total"] and key in report["queues"]["main"]
    assert report["events"] > 0 and report["wall_seconds"] >= 0 and "service_level" in report["definitions"]
    assert cli(args) == 0
    table = capsys.readouterr().out
    assert "total" in table and "P(wait)" in table
