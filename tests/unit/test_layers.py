"""The import contract: the layers hold, by test. A broken rule fails with the file, the line and
the import that breaks it.

- the core (engine/core) is pure: it imports only the standard library (no asyncio, no I/O
  libraries) and itself; in particular nothing else of the engine, no aiohttp, asyncpg or yaml;
- the simulator (engine/sim) runs the core on a virtual clock: it imports the core, the
  configuration loaders and itself, never an adapter, the store or the runtime;
- the store (engine/store) holds every SQL statement: no string outside it reads as SQL (each one
  found is named with its file, line and first characters), nothing outside it calls asyncpg's
  query methods (a statement kept in the store but run from the shell), and it imports of the
  engine only itself, the core and the few modules it needs (:data:`STORE_USES`);
- the face (engine/http) reads and asks the running engine through engine/runtime/view.py, its one
  import of the runtime (:data:`FACE_USES`); the view imports nothing of the runtime, so the face
  loads no runtime class, and a stub with only the view's members runs it (tests/unit/test_face.py).

Every import is read, function-level ones included, relative ones resolved.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINE = REPO / "engine"
# Standard-library modules the core may not use: they mean I/O, concurrency or the clock's owner.
IMPURE_STDLIB = {"asyncio", "socket", "subprocess", "threading", "multiprocessing", "selectors", "signal",
                 "ssl", "http", "urllib", "sqlite3", "shutil", "tempfile", "logging"}
# What the simulator may use of the engine besides the core and itself: the configuration loaders.
CONFIG = {"engine.config.yamlconf", "engine.config.yamlread", "engine.config.acd", "engine.config.campaign", "engine.config.ivr",
          "engine.config.model"}
# What the store may use of the engine besides the core and itself: the settings it is given
# (engine.config: DatabaseConfig; engine.campaignconf and engine.yamlconf's parse_duration: the
# retry rules the hopper applies when a lead moves on), the logger, and the in-process hub the
# write queue publishes on (engine.events: no imports but the logger). Never the shell above it.
STORE_USES = {"engine.config.model", "engine.config.campaign", "engine.config.yamlconf", "engine.shared.logsetup", "engine.shared.events"}
# SQL as the engine writes it, keywords in capitals: prose ("select a queue from the list") is not
# SQL, and neither are docstrings. (A statement written in lower case would pass: write it as the
# store does.)
SQL = re.compile(r"""
    \bSELECT\b[\s\S]*\bFROM\b | ^\s*SELECT\s+\S+\s*$ | \bWITH\s+\w+\s+AS\s*\( | \bINSERT\s+INTO\b
  | \bUPDATE\s+\w+(\s+\w+)?\s+SET\b | \bDELETE\s+FROM\b
  | \b(CREATE|ALTER|DROP)\s+(TEMP\s+|TEMPORARY\s+|UNIQUE\s+)?(TABLE|INDEX|VIEW)\b
  | \bON\s+CONFLICT\b | \bCOPY\s+\w+[\s\S]*\b(FROM|TO)\b | \b(LISTEN|NOTIFY|ANALYZE|TRUNCATE)\s+\w | pg_advisory
""", re.VERBOSE)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the file."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            if node.module:
                found.append((node.lineno, ".".join([*base, node.module])))
            else:   # from . import x: x is a module of the package
                found += [(node.lineno, ".".join([*base, alias.name])) for alias in node.names]
    return found


def broken(folder: str, allowed) -> list[str]:
    out = []
    for path in sorted((ENGINE / folder).rglob("*.py")):
        for line, name in imports(path):
            if not allowed(name):
                out.append(f"{path.relative_to(REPO)}:{line}: imports {name}")
    return out


def _top(name: str) -> str:
    return name.split(".")[0]


def core_may(name: str) -> bool:
    if name.startswith("engine."):
        return name.startswith("engine.core.") or name == "engine.core"
    return _top(name) in sys.stdlib_module_names and _top(name) not in IMPURE_STDLIB


def sim_may(name: str) -> bool:
    if name.startswith("engine."):
        return name.startswith(("engine.core", "engine.sim")) or any(
            name == c or name.startswith(c + ".") for c in CONFIG)
    return _top(name) in sys.stdlib_module_names and _top(name) != "asyncio" or _top(name) == "yaml"


# What the face (engine/http) may import of the runtime: the view, whose snapshots are frozen values
# and whose actions are named methods. Nothing else: not the services (AcdService, CallManager,
# Dialer, Phones, the gate), not their helpers. The event hub it listens to is engine.shared.events,
# reached through the view's subscribe(); the live picture it renders is its own (engine/http/status.py).
FACE_USES = {"engine.runtime.view"}


def _runtime(name: str) -> bool:
    return name == "engine.runtime" or name.startswith("engine.runtime.")


def face_may(name: str) -> bool:
    return not _runtime(name) or name in FACE_USES


def store_may(name: str) -> bool:
    if name.startswith("engine."):
        return any(name == m or name.startswith(m + ".") for m in ("engine.store", "engine.core", *STORE_USES))
    return True


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def sql_outside_the_store() -> list[str]:
    """``file:line: SQL outside the store: <text>`` for every string constant or f-string of the
    engine outside engine/store that reads as SQL (an f-string is read with ``{}`` for each hole)."""
    out = []
    for path in sorted(ENGINE.rglob("*.py")):
        if (ENGINE / "store") in path.parents:
            continue
        tree = ast.parse(path.read_text(), str(path))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                skip |= {id(v) for v in node.values}
                text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                text = node.value
            else:
                continue
            if SQL.search(text):
                shown = " ".join(text.split())[:60]
                out.append(f"{path.relative_to(REPO)}:{node.lineno}: SQL outside the store: {shown}")
    return out


# asyncpg's methods that run a statement (pools and connections alike); ``execute`` is left out:
# other things execute (commands, a session's executor), and SQL handed to it is a string above.
QUERY_METHODS = {"fetch", "fetchrow", "fetchval", "executemany", "copy_records_to_table", "copy_to_table",
                 "copy_from_table", "copy_from_query"}


def queries_outside_the_store() -> list[str]:
    out = []
    for path in sorted(ENGINE.rglob("*.py")):
        if (ENGINE / "store") in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in QUERY_METHODS:
                out.append(f"{path.relative_to(REPO)}:{node.lineno}: a query outside the store: .{node.func.attr}()")
    return out


def test_the_core_imports_only_the_standard_library_and_itself():
    assert broken("core", core_may) == []


def test_the_simulator_imports_the_core_and_the_configuration_never_the_runtime():
    assert broken("sim", sim_may) == []


def test_every_sql_statement_is_in_the_store():
    assert sql_outside_the_store() == []


def test_only_the_store_runs_queries():
    assert queries_outside_the_store() == []


def test_the_store_imports_the_core_and_its_settings_never_the_shell():
    assert broken("store", store_may) == []


def test_the_face_imports_of_the_runtime_only_its_view():
    assert broken("http", face_may) == []


def test_the_view_imports_nothing_of_the_runtime():
    """Importing the view loads no service (its annotations name none either)."""
    view = ENGINE / "runtime" / "view.py"
    assert [f"{view.relative_to(REPO)}:{line}: imports {name}" for line, name in imports(view) if _runtime(name)] == []


def test_importing_the_face_loads_no_runtime_module_but_its_view():
    """What the AST check cannot see: a module the face imports that itself imports the runtime."""
    modules = sorted(module_name(p) for p in (ENGINE / "http").rglob("*.py"))
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
            "print('\\n'.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert [n for n in loaded.stdout.split() if n.startswith("engine.runtime.") and n not in FACE_USES] == []


# Every layer and the layers of the engine it may import (besides itself). The core, the simulator
# and the store have their finer rules above; these say who may lean on whom, so no lower layer
# reaches up. engine/app.py (the wiring) and engine/__main__.py may import anything.
LAYERS = {
    "shared": (),
    "core": (),
    "config": ("core", "shared"),
    "sim": ("core", "config", "shared"),
    "store": ("core", "config", "shared"),
    "adapters": ("core", "config", "shared", "store"),
    "services": ("core", "config", "shared", "store"),
    "runtime": ("core", "config", "shared", "store", "adapters", "services"),
    "http": ("core", "config", "shared", "store", "adapters", "services", "runtime"),
    "cli": ("core", "config", "shared", "store", "adapters", "services", "runtime", "http", "sim", "app"),
}


def layer_may(layer: str):
    allowed = {"engine", f"engine.{layer}", *(f"engine.{other}" for other in LAYERS[layer])}

    def may(name: str) -> bool:
        if not name.startswith("engine.") and name != "engine":
            return True
        return any(name == a or name.startswith(a + ".") for a in allowed if a != "engine") or name == "engine"
    return may


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_each_layer_imports_only_the_layers_below_it(layer):
    assert broken(layer, layer_may(layer)) == []


def test_every_module_of_the_engine_is_in_a_layer():
    loose = sorted(p.name for p in ENGINE.glob("*.py") if p.name not in ("__init__.py", "__main__.py", "app.py"))
    assert loose == [], "put each module in the folder of its layer (docs/architecture.md)"
    assert {p.name for p in ENGINE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == set(LAYERS)


def test_importing_the_whole_core_loads_nothing_impure():
    """What the AST check cannot see: a module the core imports that itself imports more."""
    modules = sorted(module_name(p) for p in (ENGINE / "core").glob("*.py") if p.name != "__init__.py")
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
            "print('\\n'.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    names = loaded.stdout.split()
    assert [n for n in names if n.startswith("engine.") and not n.startswith("engine.core")] == []
    assert {"yaml", "asyncio", "aiohttp", "asyncpg", "structlog"} & {_top(n) for n in names} == set()


@pytest.fixture
def planted(tmp_path, monkeypatch):
    """An empty engine tree in place of the real one: the checks read the files planted in it."""
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "ENGINE", tmp_path / "engine")
    for folder in ("core", "store"):
        (tmp_path / "engine" / folder).mkdir(parents=True)
    return tmp_path / "engine"


@pytest.mark.parametrize("source,ok", [
    ("import asyncio\n", False),
    ("from ..db import Write\n", False),
    ("from ..ivrconf import IvrTree\n", False),
    ("import yaml\n", False),
    ("from .common import Event\n", True),
    ("from . import ivr\n", True),
    ("from collections.abc import Mapping\n", True),
])
def test_the_contract_names_a_broken_rule(planted, source, ok):
    """The check itself: a module of the core with ``source`` passes or is named."""
    (planted / "core" / "bad.py").write_text("from __future__ import annotations\n" + source)
    found = broken("core", core_may)
    assert (found == []) is ok
    if not ok:
        assert found[0].startswith("engine/core/bad.py:2: imports ")


@pytest.mark.parametrize("source,ok", [
    ('rows = await conn.fetch("SELECT id FROM calls")\n', False),
    ('q = f"SELECT {columns} FROM calls WHERE id = $1"\n', False),
    ('q = "UPDATE leads l SET status = $2 WHERE id = $1"\n', False),
    ('q = """\n    INSERT INTO dnc_numbers (number) VALUES ($1)"""\n', False),
    ('q = "DELETE FROM recordings"\n', False),
    ('q = "CREATE TEMP TABLE t (x int)"\n', False),
    ('q = "x ON CONFLICT (id) DO NOTHING"\n', False),
    ('q = "COPY leads FROM STDIN"\n', False),
    ('q = "SELECT 1"\n', False),
    ('q = "SELECT pg_advisory_lock($1)"\n', False),
    ('q = "NOTIFY dialer"\n', False),
    ('def f():\n    """Leases leads with SELECT ... FROM leads FOR UPDATE SKIP LOCKED."""\n', True),
    ('log.info("select a queue from the list")\n', True),
    ('await rest(session, "hangup", "DELETE", path)\n', True),
    ('x = "UPDATE"\n', True),
])
def test_the_store_rule_names_sql_outside_it(planted, source, ok):
    """The check itself: a shell module with ``source`` passes or is named; the store may hold it."""
    (planted / "store" / "fine.py").write_text(source)
    (planted / "bad.py").write_text("from __future__ import annotations\n" + source)
    found = sql_outside_the_store()
    assert (found == []) is ok
    if not ok:
        assert len(found) == 1 and found[0].startswith("engine/bad.py:2: SQL outside the store: ")


@pytest.mark.parametrize("source,ok", [
    ("rows = await pool.fetch(report_store.INBOUND_SQL, start)\n", False),
    ("await conn.copy_records_to_table('leads', records=rows)\n", False),
    ("value = await pool.fetchval(query)\n", False),
    ("await self.session.execute(command)\n", True),
    ("rows = await report_store.inbound_rows(conn, start)\n", True),
])
def test_the_store_rule_names_a_query_run_outside_it(planted, source, ok):
    (planted / "store" / "fine.py").write_text(source)
    (planted / "bad.py").write_text("from __future__ import annotations\n" + source)
    found = queries_outside_the_store()
    assert (found == []) is ok
    if not ok:
        assert len(found) == 1 and found[0].startswith("engine/bad.py:2: a query outside the store: .")


@pytest.mark.parametrize("source,ok", [
    ("from engine.runtime.acdservice import AcdService\n", False),
    ("from ...runtime.dialer import Dialer\n", False),
    ("from engine.runtime import view\n", False),
    ("import engine.runtime.gate\n", False),
    ("def f():\n    from engine.runtime.status import LiveStatus\n", False),
    ("from engine.runtime.view import EngineView\n", True),
    ("from ...runtime.view import AgentSnapshot\n", True),
    ("from engine.store import hopper\n", True),
    ("from ..status import LiveStatus\n", True),
])
def test_the_face_rule_names_an_import_of_the_runtime(planted, source, ok):
    """The check itself: a module of the face with ``source`` passes or is named."""
    (planted / "http" / "api").mkdir(parents=True)
    (planted / "http" / "api" / "bad.py").write_text("from __future__ import annotations\n" + source)
    found = broken("http", face_may)
    assert (found == []) is ok
    if not ok:
        assert len(found) == 1 and found[0].startswith("engine/http/api/bad.py:")
        assert found[0].split(": imports ")[1].startswith("engine.runtime")
        assert found[0].split(":")[1] == str(1 + source.count("\n"))


@pytest.mark.parametrize("source,ok", [
    ("from ..calls import CallManager\n", False),
    ("from .. import dialer\n", False),
    ("from ..api.base import row\n", False),
    ("from ..config.model import DatabaseConfig\n", True),
    ("from ..core.compliance import Decision\n", True),
    ("from .journal import Journal\n", True),
    ("import asyncpg\n", True),
])
def test_the_store_rule_names_an_import_of_the_shell(planted, source, ok):
    (planted / "store" / "bad.py").write_text("from __future__ import annotations\n" + source)
    found = broken("store", store_may)
    assert (found == []) is ok
    if not ok:
        assert found[0].startswith("engine/store/bad.py:2: imports ")
