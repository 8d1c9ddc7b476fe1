"""docs/architecture.md, generated: the engine's layers and one state diagram per machine.

    python3 tools/architecture.py            # print it
    python3 tools/architecture.py --write    # write docs/architecture.md
    python3 tools/architecture.py --check    # exit 1 when docs/architecture.md is not what --write writes

The layers are :data:`LAYERS` below: edit it when the tree moves. The machines are found, not
listed: every module of :mod:`engine.core` with a module-level ``TABLE`` (a
:class:`~engine.core.common.Transitions`) gets a Mermaid ``stateDiagram-v2`` drawn from
``TABLE.edges()``. ``[*]`` points at the table's initial state; a state no row leads out of
points at ``[*]``; the events that take one state to another share one label. What leaves a state
where it is (late or crossing events, stale timers, requests kept for later) is listed under the
diagram rather than drawn as loops. Only the standard library and engine.core are imported, so
the system's python3 runs it.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import engine.core  # noqa: E402  (the checkout's engine, first on the path)
from engine.core.common import Transitions  # noqa: E402

DOC = REPO / "docs" / "architecture.md"
COMMAND = "python3 tools/architecture.py --write"


@dataclass(frozen=True, slots=True)
class Layer:
    name: str
    where: tuple[str, ...]        # folders and modules, as the tree has them now
    what: str
    may_import: tuple[str, ...]   # the other layers it may use (each may use itself)
    libraries: str                # what it may use outside the engine
    checked: bool = False         # tests/unit/test_layers.py fails when the rule is broken


# From the bottom up: each layer uses only those above it in this list. tests/unit/test_layers.py
# holds the same table (LAYERS there) and fails, naming file, line and import, when one is broken.
LAYERS: tuple[Layer, ...] = (
    Layer("core", ("engine/core/",),
          "the pure machines and rules: `(state, event, now) -> (state, commands)`, no I/O, no clock",
          (), "the standard library without I/O or concurrency (no asyncio, socket, threading, "
              "subprocess, logging, ...)", checked=True),
    Layer("shared", ("engine/shared/",),
          "small helpers with no engine imports: log set-up, safe text and tables, CSV lines, the in-process event hub",
          (), "the standard library, structlog", checked=True),
    Layer("config", ("engine/config/",),
          "the configuration schemas, loaded once into frozen values with file:line errors",
          ("core", "shared"), "the standard library, PyYAML, phonenumbers", checked=True),
    Layer("sim", ("engine/sim/",), "the simulators: the production machines on a virtual clock",
          ("core", "config", "shared"), "the standard library, PyYAML", checked=True),
    Layer("store", ("engine/store/", "migrations/"),
          "PostgreSQL, and every SQL statement: the ordered write queue and its local journal, migrations, "
          "the lead hopper, one module per subject", ("core", "config", "shared"), "asyncpg", checked=True),
    Layer("adapters", ("engine/adapters/",),
          "Asterisk (ARI, AMI), systemd and the CRM's webhooks: translate, hold no rules",
          ("core", "config", "shared", "store"), "aiohttp, panoramisk", checked=True),
    Layer("services", ("engine/services/",),
          "what the API and the command line share over the store: lead files, do-not-call lists, reports, GDPR",
          ("core", "config", "shared", "store"), "phonenumbers", checked=True),
    Layer("runtime", ("engine/runtime/",),
          "the shell: the channel router, one session per machine (events in, commands carried out), "
          "reconciliation after a restart, the dialer, and the face's view of the engine (snapshots and named actions)",
          ("core", "config", "shared", "store", "adapters", "services"),
          "asyncio, uvloop, aiohttp, structlog, phonenumbers", checked=True),
    Layer("http", ("engine/http/",),
          "the HTTP server: the API and its OpenAPI document, the live picture, the wallboard, /metrics; of the "
          "runtime it imports only engine/runtime/view.py, and reads and asks the engine through that view",
          ("core", "config", "shared", "store", "adapters", "services", "runtime"),
          "aiohttp, prometheus_client", checked=True),
    Layer("cli", ("engine/cli/", "engine/app.py", "engine/__main__.py"),
          "the `callcenter` command, and engine/app.py: the one module that wires a running engine",
          ("every layer",), "any", checked=True),
)


# -- the machines ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Machine:
    module: str
    summary: str
    table: Transitions


def machines(package: ModuleType = engine.core) -> list[Machine]:
    """Every module of ``package`` with a module-level TABLE, by module name."""
    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        table = getattr(module, "TABLE", None)
        if isinstance(table, Transitions):
            summary = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
            found.append(Machine(module.__name__, summary, table))
    return found


def moves(table: Transitions) -> dict[tuple[Enum, Enum], list[str]]:
    """(from, to) -> the events that take one to the other (in table order), in the enum's order."""
    out: dict[tuple[Enum, Enum], list[str]] = {}
    for start, event, to in table.edges():
        names = out.setdefault((start, to), [])
        if event not in names:
            names.append(event)
    order = {state: i for i, state in enumerate(table.states)}
    return dict(sorted(out.items(), key=lambda item: (order[item[0][0]], order[item[0][1]])))


def diagram(table: Transitions) -> list[str]:
    """The Mermaid stateDiagram-v2 of one table, and what leaves each state where it is."""
    edges = moves(table)
    leaving = {start for start, to in edges if start is not to}
    lines = ["```mermaid", "stateDiagram-v2", *(f"    [*] --> {first.name}" for first in table.initials)]
    lines += [f"    {start.name} --> {to.name} : {', '.join(events)}"
              for (start, to), events in edges.items() if start is not to]
    lines += [f"    {state.name} --> [*]" for state in table.states if state not in leaving]
    lines.append("```")
    loops = [(state, edges[state, state]) for state in table.states if (state, state) in edges]
    if loops:
        lines += ["", "| state | events that may leave it where it is |", "|---|---|"]
        lines += [f"| {state.name} | {', '.join(events)} |" for state, events in loops]
    return lines


# -- the document ----------------------------------------------------------------------------------
def _layers() -> list[str]:
    lines = ["## Layers", "",
             "Each layer may import the layers named in its row and itself, nothing else of the engine. "
             "The rows marked *checked* fail `tests/unit/test_layers.py` when broken (naming the file, the "
             "line and the import); the others are the rules the tree is being moved to.", "",
             "| layer | where | what | may import | outside the engine | checked |", "|---|---|---|---|---|---|"]
    for layer in LAYERS:
        where = ", ".join(f"`{w}`" for w in layer.where)
        may = ", ".join(layer.may_import) or "nothing"
        lines.append(f"| {layer.name} | {where} | {layer.what} | {may} | {layer.libraries} | "
                     f"{'checked' if layer.checked else ''} |")
    return lines


def _machines() -> list[str]:
    lines = ["## State machines", "",
             "One diagram per transition table (`TABLE` in a module of `engine/core/`), drawn from the table "
             "itself: a row names the states its handler may land on, and `Transitions.handle` refuses a "
             "handler that lands elsewhere, so the diagram is what the machine can do. `[*] -->` marks the "
             "state a machine starts in; `--> [*]` a state nothing leads out of."]
    for m in machines():
        path = m.module.replace(".", "/") + ".py"
        lines += ["", f"### {m.table.machine} (`{path}`)", "", m.summary, "", *diagram(m.table)]
    return lines


def render() -> str:
    lines = [f"<!-- Generated by tools/architecture.py from LAYERS and the transition tables: do not edit. "
             f"Run `{COMMAND}`. -->", "", "# Architecture", "", *_layers(), "", *_machines()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(REPO)}")
    group.add_argument("--check", action="store_true", help=f"exit 1 when {DOC.relative_to(REPO)} is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text(text)
    elif args.check:
        if not DOC.exists() or DOC.read_text() != text:
            print(f"{DOC.relative_to(REPO)} is out of date: run {COMMAND}", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
