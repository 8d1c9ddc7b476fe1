"""The import contract: the layers hold, by test. A broken rule fails with the file, the line and
the import that breaks it.

- the core (engine/core) is pure: it imports only the standard library (no asyncio, no I/O
  libraries) and itself; in particular nothing else of the engine, no aiohttp, asyncpg or yaml;
- the simulator (engine/sim) runs the core on a virtual clock: it imports the core, the
  configuration loaders and itself, never an adapter, the store or the runtime.

Every import is read, function-level ones included, relative ones resolved.
"""

from __future__ import annotations

import ast
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
CONFIG = {"engine.yamlconf", "engine.yamlread", "engine.acdconf", "engine.campaignconf", "engine.ivrconf",
          "engine.config"}


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


def test_the_core_imports_only_the_standard_library_and_itself():
    assert broken("core", core_may) == []


def test_the_simulator_imports_the_core_and_the_configuration_never_the_runtime():
    assert broken("sim", sim_may) == []


def test_importing_the_whole_core_loads_nothing_impure():
    """What the AST check cannot see: a module the core imports that itself imports more."""
    modules = sorted(module_name(p) for p in (ENGINE / "core").glob("*.py") if p.name != "__init__.py")
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
            "print('\\n'.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    names = loaded.stdout.split()
    assert [n for n in names if n.startswith("engine.") and not n.startswith("engine.core")] == []
    assert {"yaml", "asyncio", "aiohttp", "asyncpg", "structlog"} & {_top(n) for n in names} == set()


@pytest.mark.parametrize("source,ok", [
    ("import asyncio\n", False),
    ("from ..db import Write\n", False),
    ("from ..ivrconf import IvrTree\n", False),
    ("import yaml\n", False),
    ("from .common import Event\n", True),
    ("from . import ivr\n", True),
    ("from collections.abc import Mapping\n", True),
])
def test_the_contract_names_a_broken_rule(tmp_path, monkeypatch, source, ok):
    """The check itself: a module of the core with ``source`` passes or is named."""
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "ENGINE", tmp_path / "engine")
    (tmp_path / "engine" / "core").mkdir(parents=True)
    (tmp_path / "engine" / "core" / "bad.py").write_text("from __future__ import annotations\n" + source)
    found = broken("core", core_may)
    assert (found == []) is ok
    if not ok:
        assert found[0].startswith("engine/core/bad.py:2: imports ")
