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
- a field typed ``Mark`` is not read from YAML: it receives the place its mapping starts, so
  later cross-reference checks (an IVR node naming an unknown queue) can point at the right line;
  a field with ``metadata["internal"]`` is not read from YAML either (the loader fills it later);
- string scalars may use ``${VAR}`` or ``${VAR:-default}`` (``$$`` is a literal ``$``) so secrets
  can stay in the environment; a variable that is unset and has no default is an error.

All problems found in one file are reported together, not one per run.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

__all__ = ["ConfigError", "Mark", "Problem", "load_file", "load_text", "parse_duration"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Mark:
    """Where something was written: file and 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Problem:
    mark: Mark
    message: str

    def __str__(self) -> str:
        return f"{self.mark}: {self.message}"


class ConfigError(Exception):
    """One or more problems in a configuration file; ``str()`` gives one line per problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.mark.file, p.mark.line, p.mark.column))
        super().__init__("\n".join(str(p) for p in self.problems))


_ENV_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"10m"``, ``"2h"``, ``"30d"``, ``"250ms"`` -> seconds."""
    m = _DURATION_RE.match(text)
    if not m:
        raise ValueError(f"expected a duration like 30s, 10m, 2h or 30d, got {text!r}")
    return float(m.group(1)) * _DURATION_UNITS[m.group(2)]


class _Missing:
    pass


_MISSING = _Missing()


class _Builder:
    def __init__(self, file: str, base_dir: Path, environ: Mapping[str, str]) -> None:
        self.file = file
        self.base_dir = base_dir
        self.environ = environ
        self.problems: list[Problem] = []

    # -- helpers -------------------------------------------------------------------------------
    def mark(self, node: yaml.Node) -> Mark:
        return Mark(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def fail(self, node: yaml.Node, where: str, message: str) -> _Missing:
        prefix = f"{where}: " if where else ""
        self.problems.append(Problem(self.mark(node), prefix + message))
        return _MISSING

    def scalar_text(self, node: yaml.Node, where: str) -> str | _Missing:
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
        if missing:
            return self.fail(
                node, where, "environment variable " + ", ".join(missing) + " is not set "
                "(write ${NAME:-default} to give a default)"
            )
        return text

    # -- the walk ------------------------------------------------------------------------------
    def build(self, tp: Any, node: yaml.Node, where: str) -> Any:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)

        if origin in (typing.Union, types.UnionType):
            non_none = [a for a in args if a is not type(None)]
            if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
                if len(non_none) < len(args):
                    return None
            if len(non_none) != 1:
                raise TypeError(f"unsupported union {tp!r}")
            return self.build(non_none[0], node, where)

        if dataclasses.is_dataclass(tp):
            return self.build_dataclass(tp, node, where)

        if origin is tuple:
            if not isinstance(node, yaml.SequenceNode):
                return self.fail(node, where, f"expected a list, got {_kind(node)}")
            item_tp = args[0]
            items = [self.build(item_tp, child, f"{where}[{i}]") for i, child in enumerate(node.value)]
            return _MISSING if any(i is _MISSING for i in items) else tuple(items)

        if origin in (Mapping, dict) or tp is dict:
            if not isinstance(node, yaml.MappingNode):
                return self.fail(node, where, f"expected a mapping, got {_kind(node)}")
            key_tp, val_tp = args or (str, Any)
            out: dict[Any, Any] = {}
            seen: dict[str, yaml.Node] = {}
            ok = True
            for knode, vnode in node.value:
                key = self.build(key_tp, knode, where)
                if key is _MISSING:
                    ok = False
                    continue
                if key in seen:
                    self.fail(knode, where, f"duplicate key {key!r} (first on line {self.mark(seen[key]).line})")
                    ok = False
                    continue
                seen[key] = knode
                value = self.build(val_tp, vnode, f"{where}.{key}" if where else str(key))
                if value is _MISSING:
                    ok = False
                out[key] = value
            return types.MappingProxyType(out) if ok else _MISSING

        if origin is Literal:
            text = self.scalar_text(node, where)
            if text is _MISSING:
                return _MISSING
            if text not in args:
                return self.fail(node, where, f"expected one of {', '.join(map(str, args))}; got {text!r}"
                                 + _suggest(text, [str(a) for a in args]))
            return text

        if tp is Any:
            return yaml.safe_load(yaml.serialize(node))

        text = self.scalar_text(node, where)
        if text is _MISSING:
            return _MISSING
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
            return self.fail(node, where, f"expected true or false, got {text!r}")
        if tp is int:
            try:
                if node.tag == "tag:yaml.org,2002:bool":
                    raise ValueError
                return int(text, 10)
            except ValueError:
                return self.fail(node, where, f"expected a whole number, got {text!r}")
        if tp is float:
            try:
                if node.tag == "tag:yaml.org,2002:bool":
                    raise ValueError
                return float(text)
            except ValueError:
                return self.fail(node, where, f"expected a number, got {text!r}")
        if tp is Path:
            if not text:
                return self.fail(node, where, "expected a path, got an empty string")
            path = Path(text).expanduser()
            return path if path.is_absolute() else (self.base_dir / path)
        raise TypeError(f"yamlconf cannot build {tp!r} (at {where})")

    def build_dataclass(self, cls: type[T], node: yaml.Node, where: str) -> T | _Missing:
        if not isinstance(node, yaml.MappingNode):
            return self.fail(node, where, f"expected a mapping, got {_kind(node)}")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        readable = {name: f for name, f in fields.items()
                    if not _is_mark(hints[name]) and not f.metadata.get("internal")}
        values: dict[str, Any] = {name: self.mark(node) for name in fields if _is_mark(hints[name])}
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
                self.fail(knode, where, f"duplicate key {key!r} (first on line {self.mark(seen[key]).line})")
                ok = False
                continue
            seen[key] = knode
            field = readable.get(key)
            if field is None:
                expected = ", ".join(readable) or "nothing"
                self.fail(knode, where, f"unknown key {key!r}; expected one of: {expected}"
                          + _suggest(key, list(readable)))
                ok = False
                continue
            value = self.build(hints[key], vnode, sub)
            if value is _MISSING:
                ok = False
                continue
            check = field.metadata.get("check")
            if check is not None:
                try:
                    value = check(value)
                except ValueError as exc:
                    self.fail(vnode, sub, str(exc))
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
    return f"the value {node.value!r}"


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def load_text(text: str, cls: type[T], *, file: str = "<string>", base_dir: Path | None = None,
              environ: Mapping[str, str] | None = None) -> T:
    """Parse ``text`` into ``cls``; raise :class:`ConfigError` with every problem found."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ConfigError([Problem(Mark(file, line, col), f"not valid YAML: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(Mark(file, 1, 1), f"not valid YAML: {exc}")]) from None
    if node is None:
        raise ConfigError([Problem(Mark(file, 1, 1), "the file is empty; expected a mapping")])
    builder = _Builder(file, base_dir or Path.cwd(), os.environ if environ is None else environ)
    result = builder.build(cls, node, "")
    if builder.problems or result is _MISSING:
        raise ConfigError(builder.problems)
    return result


def load_file(path: str | Path, cls: type[T], *, environ: Mapping[str, str] | None = None) -> T:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(Mark(str(path), 1, 1), f"cannot read the file: {exc}")]) from None
    return load_text(text, cls, file=str(path), base_dir=path.resolve().parent, environ=environ)
