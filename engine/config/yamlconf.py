"""Typed YAML: a file into frozen dataclasses, with every error at its file and line.

Theory of operation
-------------------
PyYAML's ``compose`` gives a node tree where each node knows where it starts. We walk that tree
against the type hints of a dataclass, so the schema *is* the dataclass:

- a dataclass is a mapping; unknown keys are errors (with a "did you mean" hint), missing required
  keys are errors, duplicate keys are errors;
- ``str``, ``int``, ``float``, ``bool``, ``Literal[...]``, ``X | None``, ``tuple[X, ...]``,
  ``Mapping[str, X]``, ``Path`` (relative to the file's folder) and nested dataclasses are
  understood; a field's ``metadata["check"]`` callable may raise ``ValueError`` to refuse a value;
  a dataclass's ``__post_init__`` may raise ``ValueError`` for rules across fields (reported at
  the mapping), or :class:`ConfigError` with its own marks (items that clash, each at its line);
- every number is finite, and a field's ``metadata["range"]`` (a :class:`Range`) bounds it; every
  list and mapping holds at most :data:`MAX_ITEMS` entries unless its field's
  ``metadata["max_items"]`` allows more;
- a field typed ``Mark`` is not read from YAML: it receives the place its mapping starts, so
  later cross-reference checks (an IVR node naming an unknown queue) can point at the right line;
  a field with ``metadata["internal"]`` is not read from YAML either (the loader fills it later);
- string scalars may use ``${VAR}`` or ``${VAR:-default}`` (``$$`` is a literal ``$``) so secrets
  can stay in the environment; a variable that is unset and has no default is an error, or, when
  the caller collects ``warnings`` (``check-config``), a warning: the value is then taken as
  written (strings, paths) or the field's default (anything else), and not checked.

What a file may be is bounded before it is believed (:mod:`engine.config.yamlread`): its size, how deep
it nests, how many values it holds (aliases included); past a bound it is one clean error naming
the file, never a traceback. All problems found in one file are reported together, not one per run.
"""

from __future__ import annotations

import dataclasses
import difflib
import gc
import math
import os
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from engine.core.schema import Range, shown
from engine.config.yamlread import ConfigError, Mark, Problem, compose, read_text

__all__ = [
    "ConfigError", "MAX_ITEMS", "Mark", "Problem", "Range", "duration_check", "format_duration", "load_file",
    "load_text", "parse_duration",
]

T = TypeVar("T")

MAX_ITEMS = 1_000   # entries in one list or mapping, unless the field's metadata["max_items"] says more


_ENV_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"10m"``, ``"2h"``, ``"30d"``, ``"250ms"`` -> seconds."""
    m = _DURATION_RE.match(text) if len(text) <= 40 else None
    if not m:
        raise ValueError(f"expected a duration like 30s, 10m, 2h or 30d, got {shown(text)}")
    seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if not math.isfinite(seconds):
        raise ValueError(f"expected a duration like 30s, 10m, 2h or 30d, got {shown(text)}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest way :func:`parse_duration` reads back: 2592000 -> ``30d``."""
    for unit in ("d", "h", "m", "s"):
        count = seconds / _DURATION_UNITS[unit]
        if count >= 1 and count.is_integer():
            return f"{int(count)}{unit}"
    return f"{seconds:g}s"


def duration_check(limit: float) -> Callable[[str], str]:
    """A field check: a duration above 0 and at most ``limit`` seconds."""

    def check(value: str) -> str:
        seconds = parse_duration(value)
        if not 0 < seconds <= limit:
            raise ValueError(f"expected a duration above 0 and at most {format_duration(limit)}, got {value!r}")
        return value

    return check


class _Missing:
    pass


_MISSING = _Missing()


@dataclass(frozen=True, slots=True)
class _Unset:
    """A scalar naming unset variables, in warning mode: taken as written, or left out."""

    raw: str
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Schema:
    hints: Mapping[str, Any]
    readable: Mapping[str, dataclasses.Field[Any]]
    marks: tuple[str, ...]


@lru_cache(maxsize=None)
def _schema(cls: type) -> _Schema:
    """A dataclass's fields and hints, worked out once per class (not once per mapping read)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    marks = tuple(name for name in fields if _is_mark(hints[name]))
    readable = {name: f for name, f in fields.items() if name not in marks and not f.metadata.get("internal")}
    return _Schema(hints, readable, marks)


class _Builder:
    def __init__(self, file: str, base_dir: Path, environ: Mapping[str, str],
                 warnings: list[Problem] | None = None) -> None:
        self.file = file
        self.base_dir = base_dir
        self.environ = environ
        self.problems: list[Problem] = []
        self.warnings = warnings
        self.unset = 0   # scalars read with an unset variable (warning mode), so far

    # -- helpers -------------------------------------------------------------------------------
    def mark(self, node: yaml.Node) -> Mark:
        return Mark(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def fail(self, node: yaml.Node, where: str, message: str) -> _Missing:
        prefix = f"{where}: " if where else ""
        self.problems.append(Problem(self.mark(node), prefix + message))
        return _MISSING

    def scalar_text(self, node: yaml.Node, where: str) -> str | _Missing | _Unset:
        """The scalar's text with ``${VAR}`` expanded (only for string-tagged scalars)."""
        if not isinstance(node, yaml.ScalarNode):
            return self.fail(node, where, f"expected a single value, got {_kind(node)}")
        if node.tag != "tag:yaml.org,2002:str":
            return node.value
        missing: list[str] = []

        def expand(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name, default = m.group(1), m.group(2)
            value = self.environ.get(name)
            if value is None or (value == "" and default is not None):
                if default is None:
                    missing.append(name)
                    return ""
                return default
            return value

        text = _ENV_RE.sub(expand, node.value)
        if not missing:
            return text
        names = ", ".join(missing)
        if self.warnings is None:
            return self.fail(node, where, f"environment variable {names} is not set "
                                          "(write ${NAME:-default} to give a default)")
        self.unset += 1
        self.warnings.append(Problem(self.mark(node), f"{names} is unset; {where or 'this value'} not checked"))
        return _Unset(node.value, tuple(missing))

    def unset_needed(self, node: yaml.Node, where: str, value: _Unset) -> _Missing:
        names = ", ".join(value.names)
        return self.fail(node, where, f"environment variable {names} is unset and this value has no default "
                                      "to check instead (write ${NAME:-default})")

    def items(self, node: yaml.Node, where: str, limit: int | None) -> bool:
        count, limit = len(node.value), limit or MAX_ITEMS
        if count > limit:
            self.fail(node, where, f"{count} entries; at most {limit} are allowed here")
            return False
        return True

    # -- the walk ------------------------------------------------------------------------------
    def build(self, tp: Any, node: yaml.Node, where: str, max_items: int | None = None) -> Any:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)

        if origin in (typing.Union, types.UnionType):
            non_none = [a for a in args if a is not type(None)]
            if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
                if len(non_none) < len(args):
                    return None
            if len(non_none) != 1:
                raise TypeError(f"unsupported union {tp!r}")
            return self.build(non_none[0], node, where, max_items)

        if dataclasses.is_dataclass(tp):
            return self.build_dataclass(tp, node, where)

        if origin is tuple:
            if not isinstance(node, yaml.SequenceNode):
                return self.fail(node, where, f"expected a list, got {_kind(node)}")
            if not self.items(node, where, max_items):
                return _MISSING
            item_tp = args[0]
            items = [self.item(item_tp, child, f"{where}[{i}]") for i, child in enumerate(node.value)]
            return _MISSING if any(i is _MISSING for i in items) else tuple(items)

        if origin in (Mapping, dict) or tp is dict:
            return self.build_mapping(args or (str, Any), node, where, max_items)

        if origin is Literal:
            text = self.scalar_text(node, where)
            if isinstance(text, (_Missing, _Unset)):
                return text
            if text not in args:
                return self.fail(node, where, f"expected one of {', '.join(map(str, args))}; got {shown(text)}"
                                 + _suggest(text, [str(a) for a in args]))
            return text

        if tp is Any:
            return yaml.safe_load(yaml.serialize(node))

        text = self.scalar_text(node, where)
        if isinstance(text, _Unset):
            if tp is str:
                return text.raw
            return self.base_dir / text.raw if tp is Path else text
        if text is _MISSING:
            return _MISSING
        return self.scalar(tp, node, where, text)

    def item(self, tp: Any, node: yaml.Node, where: str) -> Any:
        """A list item or a mapping value: it cannot be left out for a default."""
        value = self.build(tp, node, where)
        return self.unset_needed(node, where, value) if isinstance(value, _Unset) else value

    def build_mapping(self, args: tuple[Any, ...], node: yaml.Node, where: str, max_items: int | None) -> Any:
        if not isinstance(node, yaml.MappingNode):
            return self.fail(node, where, f"expected a mapping, got {_kind(node)}")
        if not self.items(node, where, max_items):
            return _MISSING
        key_tp, val_tp = args
        out: dict[Any, Any] = {}
        seen: dict[Any, yaml.Node] = {}
        ok = True
        for knode, vnode in node.value:
            key = self.item(key_tp, knode, where)
            if key is _MISSING:
                ok = False
                continue
            if key in seen:
                self.fail(knode, where, f"duplicate key {shown(key)} (first on line {self.mark(seen[key]).line})")
                ok = False
                continue
            seen[key] = knode
            value = self.item(val_tp, vnode, f"{where}.{key}" if where else str(key))
            if value is _MISSING:
                ok = False
            out[key] = value
        return types.MappingProxyType(out) if ok else _MISSING

    def scalar(self, tp: Any, node: yaml.Node, where: str, text: str) -> Any:
        if tp is str:
            if node.tag == "tag:yaml.org,2002:null":
                return self.fail(node, where, "expected a string, got nothing")
            return text
        if tp is bool:
            low = text.lower()
            if low in ("true", "yes", "on"):
                return True
            if low in ("false", "no", "off"):
                return False
            return self.fail(node, where, f"expected true or false, got {shown(text)}")
        if tp is int:
            try:
                if node.tag == "tag:yaml.org,2002:bool" or len(text) > 40:
                    raise ValueError
                return int(text, 10)
            except ValueError:
                return self.fail(node, where, f"expected a whole number, got {shown(text)}")
        if tp is float:
            try:
                if node.tag == "tag:yaml.org,2002:bool" or len(text) > 400:
                    raise ValueError
                value = float(text)
            except ValueError:
                return self.fail(node, where, f"expected a number, got {shown(text)}")
            if not math.isfinite(value):
                return self.fail(node, where, f"expected a finite number, got {shown(text)}")
            return value
        if tp is Path:
            if not text:
                return self.fail(node, where, "expected a path, got an empty string")
            try:
                path = Path(text).expanduser()
            except RuntimeError as exc:   # ~nobody: no such user's home
                return self.fail(node, where, f"expected a path, got {shown(text)} ({exc})")
            return path if path.is_absolute() else (self.base_dir / path)
        raise TypeError(f"yamlconf cannot build {tp!r} (at {where})")

    def build_dataclass(self, cls: type[T], node: yaml.Node, where: str) -> T | _Missing:
        if not isinstance(node, yaml.MappingNode):
            return self.fail(node, where, f"expected a mapping, got {_kind(node)}")
        schema = _schema(cls)
        readable = schema.readable
        values: dict[str, Any] = {name: self.mark(node) for name in schema.marks}
        seen: dict[str, yaml.Node] = {}
        ok = True
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                self.fail(knode, where, "a key must be a plain name")
                ok = False
                continue
            key = knode.value
            sub = f"{where}.{key}" if where else key
            if key in seen:
                self.fail(knode, where, f"duplicate key {shown(key)} (first on line {self.mark(seen[key]).line})")
                ok = False
                continue
            seen[key] = knode
            field = readable.get(key)
            if field is None:
                expected = ", ".join(readable) or "nothing"
                self.fail(knode, where, f"unknown key {shown(key)}; expected one of: {expected}"
                          + _suggest(key, list(readable)))
                ok = False
                continue
            unset = self.unset
            value = self.build(schema.hints[key], vnode, sub, field.metadata.get("max_items"))
            if isinstance(value, _Unset):
                if _is_required(field):
                    self.unset_needed(vnode, sub, value)
                    ok = False
                continue   # the default stands in, unchecked
            if value is _MISSING:
                ok = False
                continue
            if self.unset == unset:   # a value read with an unset variable is not checked
                value = self.checked(field, vnode, sub, value)
                if value is _MISSING:
                    ok = False
                    continue
            values[key] = value
        for name, field in readable.items():
            if name not in values and name not in seen and _is_required(field):
                self.fail(node, where, f"missing required key {name!r}")
                ok = False
        if not ok:
            return _MISSING
        try:
            return cls(**values)
        except ConfigError as exc:  # a rule across items that knows its own marks
            self.problems.extend(exc.problems)
            return _MISSING
        except ValueError as exc:
            return self.fail(node, where, str(exc))

    def checked(self, field: dataclasses.Field[Any], node: yaml.Node, where: str, value: Any) -> Any:
        """The value after the field's range and check (which may normalise it), or _MISSING."""
        bounds: Range | None = field.metadata.get("range")
        check = field.metadata.get("check")
        try:
            if bounds is not None and value is not None:
                bounds.check(value)
            return value if check is None else check(value)
        except ValueError as exc:
            return self.fail(node, where, str(exc))


def _is_mark(tp: Any) -> bool:
    return tp is Mark or tp == (Mark | None)


def _is_required(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == "tag:yaml.org,2002:null":
        return "nothing"
    return f"the value {shown(node.value)}"


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1) if len(word) <= 100 else []
    return f" (did you mean {close[0]!r}?)" if close else ""


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """No cyclic garbage collection while a file is read: the node tree and the dataclasses built
    from it make no garbage cycles, and each full collection part-way would walk every one of them
    again (measured: 40% of the time to read 50,000 inbound numbers, growing with the file).
    Reference counting frees as usual; the collector is switched back on after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_text(text: str, cls: type[T], *, file: str = "<string>", base_dir: Path | None = None,
              environ: Mapping[str, str] | None = None, warnings: list[Problem] | None = None) -> T:
    """Parse ``text`` into ``cls``; raise :class:`ConfigError` with every problem found. With a
    ``warnings`` list, unset variables are warnings appended to it instead of errors."""
    builder = _Builder(file, base_dir or Path.cwd(), os.environ if environ is None else environ, warnings)
    with _no_cyclic_gc():
        result = builder.build(cls, compose(text, file), "")
    if builder.problems or result is _MISSING:
        raise ConfigError(builder.problems)
    return result


def load_file(path: str | Path, cls: type[T], *, environ: Mapping[str, str] | None = None,
              warnings: list[Problem] | None = None) -> T:
    path = Path(path)
    return load_text(read_text(path), cls, file=str(path), base_dir=path.resolve().parent, environ=environ,
                     warnings=warnings)
