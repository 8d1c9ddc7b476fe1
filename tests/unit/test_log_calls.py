"""Every log call of the engine can run: no keyword that structlog takes itself.

``log.info("name", event=...)`` raises TypeError (the first argument of a structlog method is
already ``event``) and, inside a call session, kills the session. This scans the source, so
a log line on a rarely taken path (an overload, a race) is checked as well as the common ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine"
METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "msg", "log", "bind", "new"}
# Keywords structlog's bound loggers take as their own arguments, or that its processors
# overwrite (a value passed under these names is lost or raises).
RESERVED = {"event", "level", "timestamp", "_record", "_from_structlog"}


def _is_logger(node: ast.expr) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return "log" in name.lower()


def bad_log_calls(source: str, filename: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in METHODS and _is_logger(node.func.value)):
            for kw in node.keywords:
                if kw.arg in RESERVED:
                    found.append(f"{filename}:{node.lineno}: {node.func.attr}(..., {kw.arg}=...)")
    return found


def test_the_scan_finds_a_reserved_keyword() -> None:
    assert bad_log_calls('log.info("calls.x", event=1)\nsession.log.warning("y", level=2)\n', "x.py") == [
        "x.py:1: info(..., event=...)", "x.py:2: warning(..., level=...)"]
    assert bad_log_calls('log.info("calls.x", kind=1)\nother.info(event=1)\n', "x.py") == []


def test_no_engine_log_call_passes_a_reserved_keyword() -> None:
    found = []
    for file in sorted(ENGINE.rglob("*.py")):
        found += bad_log_calls(file.read_text(encoding="utf-8"), str(file.relative_to(ENGINE.parent)))
    assert found == []
