"""The transition tables themselves: a row names the states it leads to, the runner holds every
handler to that, and every machine's table is well formed (one enum, every state reachable).

Then each machine is explored, breadth first, a few events deep from many starts (every IVR node
among them), trying every event that may come in every state reached: the moves it makes are
exactly the moves its table declares. A handler that lands on a state its row does not name
raises UndeclaredTarget; a declared target no path takes is named (a false edge in the diagrams).
"""

from __future__ import annotations

import importlib
import pkgutil
import textwrap
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from types import MappingProxyType

import pytest

import engine.core
from engine.core import agent as A
from engine.core import call as c
from engine.core import callback as K
from engine.core import feature as F
from engine.core import ivr as I
from engine.core import ivr_messages as IM
from engine.core.channel import Answered, ChannelGone, Dtmf, HangupRequested, PlaybackDone, RequestFailed
from engine.core.common import Event, IllegalTransition, Row, TimerFired, Transitions, UndeclaredTarget, stay
from engine.config.ivr import IvrTree, Tree, load_trees
from engine.config.yamlconf import load_text

from .structure import dump

REPO = Path(__file__).resolve().parents[2]
T0 = 1_780_000_000.0


# -- the runner ------------------------------------------------------------------------------------
class Light(Enum):
    RED = "red"
    GREEN = "green"
    AMBER = "amber"


@dataclass(frozen=True, slots=True)
class Lamp:
    light: Light = Light.RED
    changes: int = 0


@dataclass(frozen=True, slots=True)
class Go(Event):
    pass


@dataclass(frozen=True, slots=True)
class Stop(Event):
    pass


def _go(lamp: Lamp, e: Event, now: float):
    return replace(lamp, light=Light.GREEN, changes=lamp.changes + 1), []


def _stop_badly(lamp: Lamp, e: Event, now: float):   # its row says RED; it goes to AMBER
    return replace(lamp, light=Light.AMBER, changes=lamp.changes + 1), []


LAMP = Transitions("lamp", lambda s: s.light, {
    (Light.RED, Go): Row((Light.GREEN,), _go),
    (Light.GREEN, Stop): Row((Light.RED,), _stop_badly),
})


def test_a_declared_target_is_where_the_handler_lands():
    lamp, cmds = LAMP.handle(Lamp(), Go(), T0)
    assert (lamp.light, lamp.changes, cmds) == (Light.GREEN, 1, [])


def test_an_undeclared_target_raises_and_leaves_the_state_as_it_was():
    green = Lamp(Light.GREEN, 1)
    before = dump(green)
    with pytest.raises(UndeclaredTarget, match="lamp: GREEN on Stop went to AMBER, which its row does not name") as e:
        LAMP.handle(green, Stop(), T0)
    assert (e.value.state, e.value.target, type(e.value.event)) == (Light.GREEN, Light.AMBER, Stop)
    assert dump(green) == before


@pytest.mark.parametrize("row", [_go, Row((), _go), Row(Light.GREEN, _go)], ids=["bare", "empty", "not-a-tuple"])
def test_a_row_without_its_targets_is_refused_naming_machine_state_and_event(row):
    with pytest.raises(TypeError, match="lamp: the row RED on Go names no target states"):
        Transitions("lamp", lambda s: s.light, {(Light.RED, Go): row})


class Other(Enum):
    ELSEWHERE = "elsewhere"


def test_states_of_another_enum_are_refused():
    with pytest.raises(TypeError, match=r"lamp: the row RED on Go names \[<Other.ELSEWHERE"):
        Transitions("lamp", lambda s: s.light, {(Light.RED, Go): Row((Other.ELSEWHERE,), _go)})
    with pytest.raises(TypeError, match="lamp: the initial state"):
        Transitions("lamp", lambda s: s.light, {(Light.RED, Go): Row((Light.GREEN,), _go)}, initial=Other.ELSEWHERE)


def test_initial_is_the_first_state_unless_given_and_edges_list_every_target():
    assert LAMP.initial is Light.RED and LAMP.states is Light
    amber_first = Transitions("lamp", lambda s: s.light, {(Light.RED, Go): Row((Light.GREEN, Light.AMBER), _go)},
                              initial=Light.AMBER)
    assert amber_first.initial is Light.AMBER
    assert amber_first.edges() == [(Light.RED, "Go", Light.GREEN), (Light.RED, "Go", Light.AMBER)]


def test_stay_writes_one_row_per_state_and_event_each_naming_its_own_state():
    rows = stay(_go, (Light.RED, Light.AMBER), (Go, Stop))
    assert {k: v.to for k, v in rows.items()} == {
        (Light.RED, Go): (Light.RED,), (Light.RED, Stop): (Light.RED,),
        (Light.AMBER, Go): (Light.AMBER,), (Light.AMBER, Stop): (Light.AMBER,)}


# -- every machine's table -----------------------------------------------------------------------
def tables() -> dict[str, Transitions]:
    """Every module of engine.core with a module-level TABLE."""
    found = {}
    for info in pkgutil.iter_modules(engine.core.__path__):
        module = importlib.import_module(f"engine.core.{info.name}")
        if isinstance(getattr(module, "TABLE", None), Transitions):
            found[info.name] = module.TABLE
    return found


def test_the_machines_are_found():
    assert {"agent", "call", "callback", "feature", "ivr"} <= set(tables())


@pytest.mark.parametrize("name", sorted(tables()))
def test_every_table_is_one_enum_and_every_state_is_reachable_from_the_initial_one(name):
    table = tables()[name]
    states = type(table.initial)
    for (phase, event), row in table.rows.items():
        assert type(phase) is states and row.to and all(type(t) is states for t in row.to), (phase, event)
    reached, frontier = set(table.initials), list(table.initials)
    while frontier:
        here = frontier.pop()
        for start, _, to in table.edges():
            if start is here and to not in reached:
                reached.add(to)
                frontier.append(to)
    assert set(states) - reached == set(), f"{name}: not reachable from {[s.name for s in table.initials]}"


# -- every declared move is one the machine makes, and it makes no other ----------------------------
def explore(table: Transitions, starts, alphabet, depth: int, key=lambda s: s) -> set:
    """Every (from, event, to) the machine takes within ``depth`` events of a start, trying each event
    ``alphabet`` makes (``make(state) -> event``) in every state reached; refused events are skipped,
    and a handler landing on a state its row does not name raises UndeclaredTarget here.
    ``key(state)`` says when two states are the same (so each is explored once)."""
    taken = set()
    seen = {key(s) for s in starts}
    frontier = list(starts)
    for step in range(depth):
        reached = []
        for state in frontier:
            for make in alphabet:
                event = make(state)
                try:
                    after, _ = table.handle(state, event, T0 + step)
                except IllegalTransition:
                    continue
                taken.add((table.phase_of(state), type(event).__name__, table.phase_of(after)))
                if key(after) not in seen:
                    seen.add(key(after))
                    reached.append(after)
        frontier = reached
    return taken


def events(*items: Event):
    return [lambda s, e=e: e for e in items]


def playbacks(of):
    """PlaybackDone for what plays now (said, or failed) and for an older playback."""
    return [lambda s: PlaybackDone(of(s)), lambda s: PlaybackDone(of(s), ok=False), lambda s: PlaybackDone("old")]


KEYS = events(*(Dtmf(d) for d in "12345#*"), Dtmf("1", from_agent=True))
CHANNEL = KEYS + events(HangupRequested(cause=16), ChannelGone(16, "Normal Clearing"), Answered(),
                 *(RequestFailed(what, gone, "x") for what, gone in [("play", False), ("record", False),
                   ("stop_playback", False), ("moh_start", False), ("bridge", False), ("bridge", True)]))


def assert_declared_is_taken(table: Transitions, taken: set) -> None:
    declared = set(table.edges())
    assert taken == declared, (f"declared, never taken: {sorted(_names(declared - taken))}; "
                               f"taken, not declared: {sorted(_names(taken - declared))}")


def _names(edges):
    return [(a.name, e, b.name) for a, e, b in edges]


def test_the_agent_table_is_what_the_agent_does():
    alphabet = events(A.LogIn(frozenset({"support"}), "PJSIP/9001"), A.LogOut(), A.Pause("lunch"), A.Unpause(),
                      A.Reserve("call-1"), A.Answer(), A.NoAnswer(), A.OfferWithdrawn(), A.CallEnded(0.0),
                      A.CallEnded(10.0), A.EndWrapup(), A.Hold(), A.Resume())
    taken = explore(A.TABLE, [A.Agent("9001")], alphabet, 6, key=lambda a: replace(a, since=0.0, idle_since=0.0))
    assert_declared_is_taken(A.TABLE, taken)


def test_the_feature_table_is_what_a_feature_call_does():
    starts = [F.start("chan-1", "PJSIP/9001", F.Request(feature, inline), T0)[0]
              for feature, inline in [("login", ""), ("logout", ""), ("pause", ""), ("pause", "2")]]
    alphabet = [*CHANNEL, *playbacks(lambda s: s.playback_id),
                *events(F.ActionResult(True), F.ActionResult(False), TimerFired("step"), TimerFired("other"))]
    assert_declared_is_taken(F.TABLE, explore(F.TABLE, starts, alphabet, 5))


def test_the_callback_table_is_what_a_callback_does():
    start, _ = K.start("call-1", "9001", "agent-chan", "+441234567890", 30.0, T0)
    alphabet = [*CHANNEL, *events(K.CustomerAnswered(), K.CustomerFailed("busy"), c.AgentGone(), TimerFired("dial"))]
    assert_declared_is_taken(K.TABLE, explore(K.TABLE, [start], alphabet, 3))


# Every verb, and the ways on from each: the example tree and one with the rest.
EXTRA = """\
start: hello
nodes:
  hello: {play: {say: [hello-world], next: lang}}
  lang: {language: {code: fr, next: vars}}
  vars: {set: {variables: {greeting: "{caller}"}, next: offer}}
  offer:
    menu: {prompt: [vm-press], options: {"1": cb, "2": xfer, "3": ask, "4": away, "5": msg}, retries: 0}
  cb: {callback: {queue: support, next: bye}}
  away: {goto: {tree: main}}
  bye: {hangup: {say: [goodbye]}}
  end: {hangup: {}}
  hi: {play: {say: [hello-world], next: ask}}
  hold: {play: {say: [hello-world], barge_in: true, next: line}}
  ring: {play: {say: [hello-world], barge_in: true, next: xfer4}}
  replay: {play: {say: [hello-world], barge_in: true, next: hello}}
  speak: {play: {say: [hello-world], barge_in: true, next: msg}}
  line: {queue: {name: support, after: xfer4}}
  again: {queue: {name: support, after: line}}
  xfer: {transfer: {to: "PJSIP/9001", timeout_seconds: 5, on_failure: offer}}
  xfer2: {transfer: {to: "PJSIP/9002", on_failure: line}}
  xfer3: {transfer: {to: "PJSIP/9003", on_failure: xfer}}
  xfer4: {transfer: {to: "PJSIP/9004"}}
  xfer5: {transfer: {to: "PJSIP/9005", on_failure: end}}
  ask: {http: {url: "http://127.0.0.1:1/x", assign: {tier: tier}, next: msg, on_failure: bye}}
  ask2: {http: {url: "http://127.0.0.1:1/y", next: line, on_failure: ask}}
  ask3: {http: {url: "http://127.0.0.1:1/z", next: end, on_failure: xfer4}}
  ask4: {http: {url: "http://127.0.0.1:1/w", next: end, on_failure: msg2}}
  msg: {voicemail: {prompt: [], max_seconds: 5, next: poll}}
  msg2: {record: {prompt: [], max_seconds: 5, next: line}}
  msg3: {record: {prompt: [], max_seconds: 5, next: ask}}
  msg4: {record: {prompt: [], max_seconds: 5, next: end}}
  msg5: {record: {prompt: [], max_seconds: 5, next: ring}}
  msg6: {record: {prompt: [], max_seconds: 5, next: xfer4}}
  msg7: {record: {prompt: [], max_seconds: 5, next: msg}}
  poll: {survey: {questions: [{name: q1, prompt: [vm-press]}], next: bye}}
"""


def library() -> MappingProxyType:
    """Both trees, and each again starting at every one of its nodes (``main/menu``...)."""
    trees = dict(load_trees(REPO / "examples" / "ivr"))
    trees["extra"] = IvrTree("extra", "v1", "extra.yaml", load_text(textwrap.dedent(EXTRA), Tree, file="extra.yaml"))
    for name, t in list(trees.items()):
        for node in t.tree.nodes:
            trees[f"{name}/{node}"] = replace(t, name=f"{name}/{node}", tree=replace(t.tree, start=node))
    return MappingProxyType(trees)


LIBRARY = library()
TREES = sorted(LIBRARY)
NO_TREES = MappingProxyType({})
IVR_EVENTS = events(IM.HttpDone(True, MappingProxyType({"tier": "gold", "customer": {"tier": "gold"}})),
                    IM.HttpDone(False), IM.RecordingDone(True), TimerFired("ivr"), TimerFired("max"), TimerFired("other"))


def _ivr_key(ivr: I.Ivr) -> str:
    return repr(replace(ivr, library=NO_TREES))


def test_the_ivr_table_is_what_the_interpreter_does():
    variables = {"caller": "5551234", "dialed": "1000", "call_id": "call-1"}
    starts = [I.start(LIBRARY, tree, variables, T0)[0] for tree in TREES]
    alphabet = [*KEYS, *playbacks(lambda s: s.playback_id), *IVR_EVENTS]
    assert_declared_is_taken(I.TABLE, explore(I.TABLE, starts, alphabet, 3, key=_ivr_key))


def _call_key(s: c.CallState) -> str:
    return repr(replace(s, library=NO_TREES, ivr=s.ivr and replace(s.ivr, library=NO_TREES)))


def _call_playback(s: c.CallState) -> str:
    return s.ivr.playback_id if s.phase is c.Phase.IVR and s.ivr is not None else s.playback_id


def test_the_call_table_is_what_a_call_does():
    routes = [*(c.Route(ivr=t) for t in TREES), c.Route(ivr="gone"), c.Route(prompt="hello-world"),
              c.Route(queue="support", callback_key="*", recording="on_demand"),
              c.Route(queue="support", connect_grace=2.0)]
    starts = [c.start(c.Arrival(call_id="call-1", channel_id="chan-1", caller_number="5551234", caller_name="",
                                dialed_number="1000", route=route, started_at=T0, already_answered=answered,
                                library=LIBRARY), c.Limits(10, 60, 5, 3600), T0)[0]
              for route in routes for answered in (False, True)]
    alphabet = [*CHANNEL, *playbacks(_call_playback), *IVR_EVENTS,
                *events(*(TimerFired(k) for k in ("answer", "playback", "hangup", "transfer")),
                        c.Connected("9001", "agent-chan"), c.AgentGone(), c.GaveUp("no-agents"),
                        c.Announcement(position=2, expected_wait=90), c.TransferAnswered("xfer-chan"),
                        c.TransferFailed("busy"), c.HoldRequest(True), c.HoldRequest(False),
                        c.HoldRequest(True, "caller"), c.BlindTransfer("queue", "support"),
                        c.BlindTransfer("number", "5550199", "api"), c.BlindTransfer("agent", "9002", "api", "support"),
                        c.BlindTransfer("ivr", "gone"), *(c.BlindTransfer("ivr", t) for t in TREES)),
                lambda s: TimerFired("grace" if s.route.connect_grace is not None else "none")]  # only then
    assert_declared_is_taken(c.TABLE, explore(c.TABLE, starts, alphabet, 3, key=_call_key))
