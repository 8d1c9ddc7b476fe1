"""IVR trees: the schema's errors, the checks, and the interpreter through dry runs."""

from __future__ import annotations

import textwrap
from engine.cli.main import main as cli
from engine.core import ivr as I
from engine.core import ivr_messages as IM
from engine.core.call import Dtmf, PlaybackDone
from engine.core.common import TimerFired
from engine.config.ivr import IvrTree, Tree, check_trees
from engine.cli.ivrtry import dry_run, parse_at
from engine.config.yamlconf import ConfigError, load_text

TUESDAY_10_LONDON = parse_at("2026-11-24T10:00:00+00:00")
CHRISTMAS = parse_at("2026-12-25T10:00:00+00:00")


def tree(text: str, name: str = "t") -> IvrTree:
    return IvrTree(name, "v1", f"{name}.yaml", load_text(textwrap.dedent(text), Tree, file=f"{name}.yaml"))


def problems(text: str) -> list[str]:
    try:
        t = tree(text)
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return [str(p) for p in check_trees({"t": t}, {"support", "billing"}, None)]


MENU = """\
start: menu
nodes:
  menu:
    menu:
      prompt: [main-menu]
      options: {"1": support, "2": account}
      retries: 1
      after_retries: bye
  support:
    queue: {name: support}
  account:
    gather: {prompt: [enter-account], variable: account, pattern: "[0-9]{4}", retries: 1, next: billing,
             after_retries: bye}
  billing:
    queue: {name: billing, priority: "{prio}", skills: {billing: "{level}"}}
  bye:
    hangup: {say: [goodbye]}
"""


def run(text: str, keys: str = "", **kw) -> I.Ivr | object:
    t = tree(text)
    return dry_run({"t": t}, "t", caller=kw.pop("caller", "5551234"), dialed="1000",
                   keys=[k for k in keys.split(",") if k], at=kw.pop("at", TUESDAY_10_LONDON), **kw)


def path(r) -> list[tuple[str, str, str]]:
    return [(s.node, s.input, s.result) for s in r.steps]


def test_menu_option_goes_to_its_node():
    r = run(MENU, "1")
    assert r.outcome == "queue support (priority 0)"
    assert path(r) == [("menu", "", ""), ("menu", "1", "support"), ("support", "", "")]


def test_invalid_key_then_timeout_use_the_retries_then_after_retries():
    r = run(MENU, "7")
    assert path(r) == [("menu", "", ""), ("menu", "7", "invalid"), ("menu", "", "timeout"), ("bye", "", "")]
    assert r.outcome == "hang up" and r.heard[-1] == "sound:goodbye"
    assert r.heard[1] == "sound:pbx-invalid sound:main-menu"  # the invalid prompt, then the menu again


def test_gather_checks_the_pattern_and_fills_the_variable():
    r = run(MENU, "2,1,2,#,1,2,3,4,#")  # 12 is refused (4 digits needed), 1234 accepted
    assert r.variables["account"] == "1234"
    assert r.outcome == "queue billing (priority 0 skills {'billing': 1})"  # unset variables: defaults


def test_a_key_that_is_not_a_digit_in_gather_is_invalid_input():
    r = run(MENU, "2,*,*")
    assert r.outcome == "hang up"


def test_priority_and_skills_from_variables():
    text = MENU.replace("start: menu", "start: prep") + """\
  prep:
    set: {variables: {prio: "7", level: "4"}, next: menu}
"""
    r = run(text, "2,1,2,3,4,#")
    assert r.outcome == "queue billing (priority 7 skills {'billing': 4})"


HOURS = """\
start: check
hours:
  office:
    timezone: Europe/London
    weekly: {tue: ["09:00-17:00"], fri: ["09:00-17:00"]}
    holidays: ["2026-12-25"]
nodes:
  check:
    branch:
      when:
        - {closed: office, then: closed}
        - {caller: "555.*", then: vip}
      default: normal
  closed: {hangup: {say: [closed]}}
  vip: {queue: {name: support, priority: "5"}}
  normal: {queue: {name: support}}
"""


def test_branch_on_open_hours_and_caller():
    assert run(HOURS).outcome == "queue support (priority 5)"                      # Tuesday 10:00, 555...
    assert run(HOURS, caller="4441234").outcome == "queue support (priority 0)"
    assert run(HOURS, at=CHRISTMAS).outcome == "hang up"                          # a holiday (a Friday)
    assert run(HOURS, at=parse_at("2026-11-24T17:30:00+00:00")).outcome == "hang up"  # after hours


def test_opening_hours_may_run_past_midnight():
    night = HOURS.replace('weekly: {tue: ["09:00-17:00"], fri: ["09:00-17:00"]}', 'weekly: {tue: ["22:00-02:00"]}')
    assert run(night, at=parse_at("2026-11-24T23:30:00+00:00")).outcome == "queue support (priority 5)"  # Tue
    assert run(night, at=parse_at("2026-11-25T01:59:00+00:00")).outcome == "queue support (priority 5)"  # Wed
    assert run(night, at=parse_at("2026-11-25T02:00:00+00:00")).outcome == "hang up"
    assert run(night, at=parse_at("2026-11-25T23:30:00+00:00")).outcome == "hang up"   # Wednesday's own night


def test_a_span_past_2400_or_with_60_minutes_is_refused_at_its_file_and_line():
    # a span's end took any hour up to 24 with any minutes: 24:59 was accepted (open until 00:59)
    for span in ("09:00-24:59", "09:00-24:01", "09:60-17:00", "09:00-17:60", "24:00-02:00", "25:00-02:00"):
        found = problems(HOURS.replace('tue: ["09:00-17:00"]', f'tue: ["{span}"]'))
        assert found == [f"t.yaml:4:5: hours.office: weekly.tue: expected spans like 09:00-17:00 (hours 00 to 23, "
                         f"minutes 00 to 59; 24:00 only as an end), got {span!r}"], span
    assert problems(HOURS.replace('tue: ["09:00-17:00"]', 'tue: ["00:00-24:00"]')) == []   # 24:00 ends the day


def test_http_results_feed_the_route_and_failure_has_its_path():
    text = """\
    start: crm
    nodes:
      crm:
        http: {url: "http://crm/c/{caller}", assign: {tier: customer.tier}, next: route, on_failure: plain}
      route:
        branch: {when: [{variable: tier, equals: gold, then: vip}], default: plain}
      vip: {queue: {name: support, priority: "9"}}
      plain: {queue: {name: support}}
    """
    assert run(text, http_response={"customer": {"tier": "gold"}}).outcome == "queue support (priority 9)"
    assert run(text, http_response={"customer": {}}).outcome == "queue support (priority 0)"
    failed = run(text)
    assert failed.outcome == "queue support (priority 0)"
    assert any("failed" in line for line in failed.lines)


def test_survey_answers_and_voicemail():
    text = """\
    start: q
    nodes:
      q:
        survey: {questions: [{name: csat, prompt: [rate]}, {name: again, prompt: [again]}], next: vm}
      vm:
        voicemail: {max_seconds: 30}
    """
    r = run(text, "9,4")  # 9 is not an answer; 4 is; the second question times out
    assert r.answers == [("csat", 4), ("again", None)]
    assert any("records a message" in line for line in r.lines) and r.outcome == "hang up"


def test_barge_in_keys_reach_the_next_listening_node():
    text = MENU.replace("start: menu", "start: hello") + """\
  hello:
    play: {say: [welcome], barge_in: true, next: menu}
"""
    assert run(text, "1").outcome == "queue support (priority 0)"


def test_the_interpreter_refuses_nothing_silently_and_stops_busy_loops():
    # A loop with no input gets past check-config only if someone bypasses it: the runtime stops it.
    text = """\
    start: a
    nodes:
      a: {set: {variables: {x: "1"}, next: b}}
      b: {goto: {node: a}}
    """
    t = tree(text)
    state, cmds = I.start({"t": t}, "t", {"caller": "1"}, 0.0)
    assert state.stage is I.Stage.DONE and isinstance(cmds[-1], IM.IvrHangup)
    assert [c.result for c in cmds if isinstance(c, IM.Step)][-1] == "loop"


def test_stale_events_are_ignored():
    t = tree(MENU)
    state, _ = I.start({"t": t}, "t", {"caller": "1", "call_id": "c"}, 0.0)
    same, cmds = I.handle(state, PlaybackDone("not-ours"), 1.0)
    assert same == state and cmds == []
    same, cmds = I.handle(state, TimerFired("other"), 1.0)
    assert same == state and cmds == []
    agent_key, cmds = I.handle(state, Dtmf("1", from_agent=True), 1.0)
    assert agent_key == state


# -- the checks ------------------------------------------------------------------------------------
def test_schema_errors_name_the_line():
    out = problems("start: a\nnodes:\n  a:\n    plya: {say: [x]}\n")
    assert out == ["t.yaml:4:5: nodes.a: unknown key 'plya'; expected one of: play, menu, gather, branch, set, "
                   "language, queue, transfer, hangup, voicemail, record, callback, http, survey, goto "
                   "(did you mean 'play'?)"]
    out = problems("start: a\nnodes:\n  a:\n    play: {say: [x]}\n    hangup: {}\n")
    assert out == ["t.yaml:4:5: nodes.a: a node is one verb (play, menu, gather, branch, set, language, queue, "
                   "transfer, hangup, voicemail, record, callback, http, survey, goto); got play, hangup"]
    out = problems("start: a\nnodes:\n  a:\n    gather: {prompt: [x], variable: v, pattern: '[0-9', next: a}\n")
    assert len(out) == 1 and out[0].startswith("t.yaml:4:49: nodes.a.gather.pattern: not a valid regular expression")


def test_checks_find_unknown_nodes_queues_unreachable_nodes_and_silent_loops():
    out = problems("""\
start: a
nodes:
  a: {menu: {prompt: [x], options: {"1": b, "2": nowhere}}}
  b: {queue: {name: sales}}
  lonely: {hangup: {}}
  c: {set: {variables: {x: "1"}, next: d}}
  d: {goto: {node: c}}
""")
    assert "t.yaml:3:6: node a: goes to unknown node 'nowhere'" in out
    assert "t.yaml:4:6: node b: unknown queue 'sales'" in out
    assert "t.yaml:5:11: node lonely: unreachable from start 'a'" in out
    assert "t.yaml:6:6: a loop that takes no input from the caller: c -> d -> c" in out


def test_missing_sounds_are_found(tmp_path):
    (tmp_path / "main-menu.gsm").write_bytes(b"")
    t = tree(MENU)
    out = [str(p) for p in check_trees({"t": t}, {"support", "billing"}, tmp_path)]
    assert "t.yaml:17:5: node bye: sound 'goodbye' not found in " + str(tmp_path) in out
    assert not any("main-menu" in p for p in out)


def test_ivr_try_command(example_env, capsys):
    args = ["ivr", "try", "main", "--config", str(example_env), "--caller", "5551234", "--dialed", "1000",
            "--at", "2026-11-24T10:00:00Z"]
    assert cli([*args, "--digits", "1"]) == 0
    out = capsys.readouterr().out
    assert "main/main-menu (menu) key 1 -> support-hours" in out
    assert out.endswith("outcome: queue support (priority 0)\n")  # a Tuesday, 10:00 in London: open
    assert cli([*args, "--http-response", '{"customer": {"tier": "gold"}}', "--json"]) == 0
    assert '"outcome": "queue support (priority 10)"' in capsys.readouterr().out
    assert cli([*args[:2], "nope", *args[3:]]) == 1
    assert "no tree 'nope'; the trees are: main" in capsys.readouterr().err
    assert cli([*args, "--digits", "1,x"]) == 1
