"""Reading a YAML file before it is believed: bounded, and every refusal one clean error.

Theory of operation
-------------------
Nothing in a configuration file may crash or stall the loader, whatever the file holds (a file cut
in half, binary garbage, a 10 MB paste, ``[[[[...`` thousands deep, aliases that expand a
billion-fold). So, before :mod:`engine.config.yamlconf` reads a file against its schema:

- the file must be a regular file (not a FIFO or a device that never ends) of at most
  :data:`MAX_FILE_BYTES`, and UTF-8; a bad byte is reported at its line and column;
- it is composed by libyaml when PyYAML has it (ten times faster than the pure-Python parser,
  which is the fallback), and nests at most :data:`MAX_DEPTH` levels: the pure-Python composer is
  stopped at that depth (it is recursive: a deeper file would exhaust Python's stack), libyaml's
  tree is measured after it is built (libyaml itself stops at 1,000 levels);
- the tree, counted as the schema walk will visit it (an alias counts each time it is used), holds
  at most :data:`MAX_VALUES` values.

Each refusal is a :class:`ConfigError` naming the file, line and column, like every other problem.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

import yaml

from engine.core.schema import Mark, shown

__all__ = ["ConfigError", "MAX_DEPTH", "MAX_FILE_BYTES", "MAX_VALUES", "Mark", "Problem", "compose", "read_text",
           "shown"]

MAX_FILE_BYTES = 4 * 1024 * 1024   # 50,000 inbound numbers take about 2.5 MB
MAX_DEPTH = 64                     # the deepest schema (an IVR branch condition) needs 7
MAX_VALUES = 1_000_000             # scalars, lists and mappings, aliases counted each time used


@dataclass(frozen=True, slots=True)
class Problem:
    mark: Mark
    message: str

    def __post_init__(self) -> None:
        if len(self.message) > 1000:   # a value quoted in full could be megabytes
            object.__setattr__(self, "message", self.message[:1000] + "…")

    def __str__(self) -> str:
        return f"{self.mark}: {self.message}"


class ConfigError(Exception):
    """One or more problems in a configuration file; ``str()`` gives one line per problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.mark.file, p.mark.line, p.mark.column))
        super().__init__("\n".join(str(p) for p in self.problems))


def _refuse(file: str, line: int, column: int, message: str) -> ConfigError:
    return ConfigError([Problem(Mark(file, line, column), message)])


def read_text(path: Path) -> str:
    """The file's text; :class:`ConfigError` if it cannot be read, is not a regular file, is larger
    than :data:`MAX_FILE_BYTES` or is not UTF-8."""
    file = str(path)
    try:
        info = path.stat()   # before opening: opening a FIFO waits for a writer
        if not stat.S_ISREG(info.st_mode):
            raise _refuse(file, 1, 1, "cannot read the file: not a regular file")
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except (OSError, ValueError) as exc:   # ValueError: a NUL in the name
        raise _refuse(file, 1, 1, f"cannot read the file: {exc}") from None
    if len(data) > MAX_FILE_BYTES:
        size = max(info.st_size, len(data))
        raise _refuse(file, 1, 1, f"the file is {size:,} bytes; a configuration file may be at most "
                                  f"{MAX_FILE_BYTES:,} bytes ({MAX_FILE_BYTES // 2**20} MiB)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[:exc.start].decode("utf-8", "replace")
        line, column = _position(before, len(before))
        raise _refuse(file, line, column, f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot start or "
                                          "continue a character (is this a binary file?)") from None


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of ``text[index]``."""
    before = text[:index]
    line = before.count("\n") + 1
    return line, index - (before.rfind("\n") + 1) + 1


class _TooDeep(Exception):
    def __init__(self, mark: yaml.Mark) -> None:
        self.mark = mark


class _GuardedLoader(yaml.SafeLoader):
    """The pure-Python composer, stopped at :data:`MAX_DEPTH` (it recurses once per level)."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_LOADER = yaml.CSafeLoader if yaml.__with_libyaml__ else _GuardedLoader


def compose(text: str, file: str, loader: type | None = None) -> yaml.Node:
    """The node tree of ``text``, checked against the bounds; :class:`ConfigError` otherwise."""
    try:
        node = yaml.compose(text, Loader=loader or _LOADER)
    except _TooDeep as exc:
        raise _too_deep(file, exc.mark) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if mark and "maximum nesting depth" in str(exc.problem):   # libyaml's own bound (1,000)
            raise _too_deep(file, mark) from None
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise _refuse(file, line, col, f"not valid YAML: {exc.problem or exc}") from None
    except yaml.reader.ReaderError as exc:
        index = exc.position
        if (loader or _LOADER) is not _GuardedLoader:   # libyaml counts bytes of the UTF-8 text
            index = len(text.encode("utf-8", "surrogatepass")[:index].decode("utf-8", "ignore"))
        line, col = _position(text, index)
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
        raise _refuse(file, line, col, f"not valid YAML: character U+{code:04X} is not allowed "
                                       f"({exc.reason}; is this a binary file?)") from None
    except yaml.YAMLError as exc:
        raise _refuse(file, 1, 1, f"not valid YAML: {exc}") from None
    except UnicodeEncodeError as exc:   # libyaml encodes the text: a lone surrogate cannot be
        line, col = _position(text, exc.start)
        raise _refuse(file, line, col, f"not valid text: {exc.reason}") from None
    if node is None:
        raise _refuse(file, 1, 1, "the file is empty; expected a mapping")
    _measure(node, file)
    return node


def _too_deep(file: str, mark: yaml.Mark) -> ConfigError:
    return _refuse(file, mark.line + 1, mark.column + 1,
                   f"nested more than {MAX_DEPTH} levels deep; no part of a configuration goes that deep")


def _measure(root: yaml.Node, file: str) -> None:
    """Depth and size of the tree as the schema walk would visit it (without recursion)."""
    count = 0
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise _refuse(file, node.start_mark.line + 1, node.start_mark.column + 1,
                          f"more than {MAX_VALUES:,} values (counting each use of an alias); "
                          "a configuration holds far fewer")
        if depth > MAX_DEPTH:
            raise _too_deep(file, node.start_mark)
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
