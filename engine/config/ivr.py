"""IVR trees: the YAML schema, loading, and the checks ``callcenter check-config`` runs on them.

A tree is one YAML file (``files.ivr`` names a file or a folder of them; the tree is named after
the file). It has a ``start`` node, named ``nodes``, and optional named opening ``hours``. Each node
is a single-key mapping: the key is the verb (``play``, ``menu``, ``gather``, ``branch``, ``set``,
``language``, ``queue``, ``transfer``, ``hangup``, ``voicemail`` / ``record``, ``callback``, ``http``,
``survey``, ``goto``), its value the verb's settings. Example: examples/ivr/main.yaml.

Strings may use ``{name}`` for call variables (``{caller}``, ``{dialed}``, what ``set``, ``gather``
and ``http`` stored); ``${NAME}`` is still the environment, read when the file is loaded. A sound
is an Asterisk sound name (``welcome``, ``custom/welcome``) or ``digits:...``, ``number:...``,
``characters:...``, ``date:YYYY-MM-DD``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path

from engine.core.ivrtree import (MAX_TREES, VERBS, Branch, Callback, Goto, Http, IvrTree, Language, Menu, Node, QueueTo,
                           SetVars, Survey, Tree)
from engine.config.yamlconf import ConfigError, Mark, Problem, load_text
from engine.config.yamlread import read_text

__all__ = ["IvrTree", "Node", "Tree", "VERBS", "check_trees", "load_trees", "sound_names"]


# -- loading ---------------------------------------------------------------------------------------
def load_trees(path: Path, *, warnings: list[Problem] | None = None) -> dict[str, IvrTree]:
    """A file (one tree) or a folder of ``*.yaml`` files (one tree each), named after the file."""
    try:
        files = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")) if path.is_dir() else [path]
    except OSError as exc:
        raise ConfigError([Problem(Mark(str(path), 1, 1), f"cannot read the folder: {exc}")]) from None
    if len(files) > MAX_TREES:
        raise ConfigError([Problem(Mark(str(path), 1, 1), f"{len(files):,} tree files; at most {MAX_TREES:,} "
                                                          "are allowed")])
    trees: dict[str, IvrTree] = {}
    problems: list[Problem] = []
    for file in files:
        try:
            text = read_text(file)
            tree = load_text(text, Tree, file=str(file), base_dir=file.parent, warnings=warnings)
        except ConfigError as exc:
            problems += exc.problems
            continue
        name = file.stem
        trees[name] = IvrTree(name, hashlib.sha256(text.encode()).hexdigest()[:12], str(file), tree)
    if problems:
        raise ConfigError(problems)
    return trees


# -- checks ----------------------------------------------------------------------------------------
def targets(node: Node) -> Iterator[str]:
    """The nodes this node can go to, in the same tree."""
    body = node.body
    for name in ("next", "after_retries", "default", "on_failure", "after"):
        value = getattr(body, name, None)
        if isinstance(value, str):
            yield value
    if isinstance(body, Menu):
        yield from body.options.values()
    if isinstance(body, Branch):
        yield from (c.then for c in body.when)
    if isinstance(body, Goto) and body.node is not None and body.tree is None:
        yield body.node


_NO_INPUT = (Branch, SetVars, Language, Goto, Http)


def sound_names(node: Node) -> Iterator[str]:
    body = node.body
    for name in ("say", "prompt", "invalid", "timeout", "thanks"):
        items = getattr(body, name, None)
        if isinstance(items, tuple):
            yield from (s for s in items if ":" not in s and "{" not in s)
    if isinstance(body, Survey):
        for q in body.questions:
            yield from (s for s in q.prompt if ":" not in s)


def check_trees(trees: Mapping[str, IvrTree], queues: set[str], sounds_dir: Path | None) -> list[Problem]:
    """Problems across trees: unknown nodes, trees or queues, unreachable nodes, loops that take no
    input, hours sets that do not exist, sounds missing from ``sounds_dir`` (when given)."""
    problems: list[Problem] = []
    for t in trees.values():
        tree = t.tree

        def at(node: Node | None) -> Mark:
            return (node.at if node is not None and node.at else None) or tree.at or Mark(t.file, 1, 1)

        if tree.start not in tree.nodes:
            problems.append(Problem(at(None), f"tree {t.name}: start node {tree.start!r} does not exist"))
        for name, node in tree.nodes.items():
            for target in targets(node):
                if target not in tree.nodes:
                    problems.append(Problem(at(node), f"node {name}: goes to unknown node {target!r}"))
            body = node.body
            if isinstance(body, Goto) and body.tree is not None:
                other = trees.get(body.tree)
                if other is None:
                    problems.append(Problem(at(node), f"node {name}: goto unknown tree {body.tree!r}"))
                elif body.node is not None and body.node not in other.tree.nodes:
                    problems.append(Problem(at(node), f"node {name}: tree {body.tree} has no node {body.node!r}"))
            if isinstance(body, (QueueTo, Callback)):
                queue = body.name if isinstance(body, QueueTo) else body.queue
                if queue is not None and queue not in queues:
                    problems.append(Problem(at(node), f"node {name}: unknown queue {queue!r}"))
            if isinstance(body, Branch):
                for c in body.when:
                    for hours in (c.open, c.closed):
                        if hours is not None and hours not in tree.hours:
                            problems.append(Problem(c.at or at(node), f"node {name}: unknown hours {hours!r}"))
            if sounds_dir is not None and sounds_dir.is_dir():
                for sound in sound_names(node):
                    if not any(sounds_dir.glob(f"{sound}.*")):
                        problems.append(Problem(at(node), f"node {name}: sound {sound!r} not found in {sounds_dir}"))
        reachable = _reachable(tree)
        for name, node in tree.nodes.items():
            if name not in reachable:
                problems.append(Problem(at(node), f"node {name}: unreachable from start {tree.start!r}"))
        for loop in _silent_loops(tree):
            first = tree.nodes[loop[0]]
            problems.append(Problem(at(first), "a loop that takes no input from the caller: "
                                               + " -> ".join([*loop, loop[0]])))
    return problems


def _reachable(tree: Tree) -> set[str]:
    seen: set[str] = set()
    todo = [tree.start] if tree.start in tree.nodes else []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [t for t in targets(tree.nodes[name]) if t in tree.nodes]
    return seen


def _silent_loops(tree: Tree) -> list[list[str]]:
    """Cycles made only of nodes that take no input (branch, set, language, goto, http)."""
    silent = {n for n, node in tree.nodes.items() if isinstance(node.body, _NO_INPUT)}
    edges = {n: [t for t in targets(tree.nodes[n]) if t in silent] for n in silent}
    loops: list[list[str]] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []       # the path being walked (depth-first, without recursion: a chain
    todo: list[Iterator[str]] = []   # of thousands of nodes must not exhaust Python's stack)
    for start in sorted(silent):
        if start in state:
            continue
        state[start] = 1
        stack.append(start)
        todo.append(iter(edges[start]))
        while todo:
            m = next(todo[-1], None)
            if m is None:
                todo.pop()
                state[stack.pop()] = 2
            elif state.get(m) == 1:
                loops.append(stack[stack.index(m):])
            elif m not in state:
                state[m] = 1
                stack.append(m)
                todo.append(iter(edges[m]))
    return loops


