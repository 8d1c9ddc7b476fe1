"""docs/architecture.md is what tools/architecture.py writes now, and the tool draws what a table says."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import textwrap
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from engine.core.common import Event, Row, Transitions, stay

REPO = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("architecture_tool", REPO / "tools" / "architecture.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


tool = _tool()


def test_docs_architecture_is_what_the_tool_writes_now():
    doc = REPO / "docs" / "architecture.md"
    written = doc.read_text() if doc.exists() else ""
    assert written == tool.render(), ("docs/architecture.md is not what the tables and LAYERS say now: "
                                      "run `python3 tools/architecture.py --write` and commit it")


def test_every_machine_of_the_core_has_its_diagram():
    doc = tool.render()
    for m in tool.machines():
        assert f"### {m.table.machine} (`{m.module.replace('.', '/')}.py`)" in doc
        assert f"    [*] --> {m.table.initial.name}" in doc
    assert {m.module for m in tool.machines()} >= {f"engine.core.{n}" for n in ("agent", "call", "callback",
                                                                                "feature", "ivr")}


def test_a_new_machine_is_found_by_itself(tmp_path, monkeypatch):
    package = tmp_path / "newcore"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "plain.py").write_text("TABLE = 'not a table'\n")
    (package / "attempt.py").write_text(textwrap.dedent('''\
        """An outbound attempt, as a pure state machine."""
        from dataclasses import dataclass
        from enum import Enum
        from engine.core.common import Event, Row, Transitions

        class Phase(Enum):
            DIALING = "dialing"
            ENDED = "ended"

        @dataclass(frozen=True)
        class Hangup(Event):
            pass

        TABLE = Transitions("attempt", lambda s: s, {(Phase.DIALING, Hangup): Row((Phase.ENDED,), None)})
        '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    found = tool.machines(importlib.import_module("newcore"))
    assert [(m.module, m.summary, m.table.machine) for m in found] == [
        ("newcore.attempt", "An outbound attempt, as a pure state machine.", "attempt")]
    monkeypatch.delitem(sys.modules, "newcore")
    monkeypatch.delitem(sys.modules, "newcore.attempt")
    monkeypatch.delitem(sys.modules, "newcore.plain")


class Door(Enum):
    SHUT = "shut"
    OPEN = "open"
    LOCKED = "locked"
    GONE = "gone"


@dataclass(frozen=True, slots=True)
class Push(Event):
    pass


@dataclass(frozen=True, slots=True)
class Kick(Event):
    pass


@dataclass(frozen=True, slots=True)
class Knock(Event):
    pass


def _any(state, event, now):
    return state, []


DOOR = Transitions("door", lambda s: s, {
    (Door.SHUT, Push): Row((Door.OPEN, Door.SHUT), _any),
    (Door.SHUT, Kick): Row((Door.OPEN, Door.GONE), _any),
    (Door.OPEN, Push): Row((Door.SHUT,), _any),
    **stay(_any, (Door.SHUT, Door.OPEN), (Knock,)),
    (Door.LOCKED, Kick): Row((Door.SHUT,), _any),
}, initial=Door.LOCKED)


def test_the_diagram_marks_the_start_and_the_ends_and_merges_events_between_two_states():
    assert tool.diagram(DOOR) == [
        "```mermaid",
        "stateDiagram-v2",
        "    [*] --> LOCKED",
        "    SHUT --> OPEN : Push, Kick",
        "    SHUT --> GONE : Kick",
        "    OPEN --> SHUT : Push",
        "    LOCKED --> SHUT : Kick",
        "    GONE --> [*]",
        "```",
        "",
        "| state | events that may leave it where it is |",
        "|---|---|",
        "| SHUT | Push, Knock |",
        "| OPEN | Knock |",
    ]
