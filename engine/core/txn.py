"""Transactional state for the core's two mutable machines (the ACD and the pacers). Pure, stdlib only.

Theory of operation
-------------------
The other machines of the core are frozen: a handler returns a new state, so one that raises
leaves the caller holding the state it passed in. The ACD and the pacers keep large indexes that
an event touches a little of (sorted lines, free-agent sets, estimator histograms); copying them
per event would cost more than the event. They stay mutable, and this module makes the same
promise structural instead: *an event changes the machine only if it is handled to the end.*

A :class:`Machine` owns a :class:`Journal`. Its state is its attributes and what they hold:
immutable values, :class:`Tracked` objects (records, estimators) and the tracked containers
:class:`TDict`, :class:`TSet`, :class:`TList`, :class:`TDeque`. Every mutation of any of them
(an attribute set, ``d[k] = v``, ``s.add(x)``, ``del l[i]``, ...) first asks the journal:

- inside a transaction (:func:`atomic`, :func:`transaction`: what ``handle``/``step`` run in), the
  mutation is done and an undo entry appended to the journal's log: a tuple ``(function, *args)``
  that puts back what was there (one per mutation, a copy only for bulk operations);
- outside one, it raises :class:`OutsideTransaction`, even if it would change nothing: nobody
  changes a machine except by an event. (Outside, the journal's ``log`` is an object whose
  ``append`` raises: the check costs the tracked operations nothing.) A machine is open while its
  ``__init__`` runs (the metaclass seals it once built), and an object or container not yet part
  of a machine's state (detached) changes freely while it is built.

If anything raises inside a transaction, the log is replayed backwards (with the built-in
operations, which do not log), so the machine is exactly as before, and the exception goes on.
Transactions nest: an inner one that raises undoes only its own part.

A state holds only what the journal sees: putting a plain ``list``, ``dict``, ``set``, ``deque`` or
``bytearray`` into it raises ``TypeError`` (use the tracked ones); a tracked object or container put
into it joins the machine's journal (with everything it holds), and belongs to that machine only.
C functions that write a ``list`` through its C API (``heapq.heappush``) bypass the tracking:
use the methods (``bisect.insort`` calls ``insert``, which is tracked).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["Journal", "Machine", "OutsideTransaction", "TDeque", "TDict", "TList", "TSet", "Tracked",
           "atomic", "transaction"]

R = TypeVar("R")
_MISSING = object()


class OutsideTransaction(RuntimeError):
    """A machine's state was changed outside an event (a bug in the caller: nothing was changed)."""


class _Open:
    """The log of a machine being built: changes are not undone (there is nothing to go back to)."""

    __slots__ = ()

    def append(self, undo: tuple[Any, ...]) -> None:
        pass


class _Closed:
    """The log of a built machine between transactions: every change is refused."""

    __slots__ = ("owner",)

    def __init__(self, owner: str) -> None:
        self.owner = owner

    def append(self, undo: tuple[Any, ...]) -> None:
        raise OutsideTransaction(f"the {self.owner} changes only inside a transaction (an event)")


_OPEN = _Open()
_NOOP = (lambda: None,)   # the undo of a change that changed nothing


class Journal:
    """The undo log of one machine: ``log`` is a list inside a transaction (else _Open, _Closed)."""

    __slots__ = ("log", "owner", "closed")

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.closed = _Closed(owner)
        self.log: list[tuple[Any, ...]] | _Open | _Closed = _OPEN

    def seal(self) -> None:
        self.log = self.closed


def _rollback(log: list[tuple[Any, ...]], mark: int) -> None:
    while len(log) > mark:
        undo = log.pop()
        undo[0](*undo[1:])


def _begin(machine: Machine) -> tuple[Journal, Any, list[tuple[Any, ...]], int]:
    """Open a transaction (or a savepoint in the one under way): the journal, what its log was,
    the log now and where this transaction's part of it starts."""
    j = machine._j
    outer = j.log
    log = outer if type(outer) is list else []
    j.log = log
    return j, outer, log, len(log)


def atomic(machine: Machine, fn: Callable[..., R], *args: Any) -> R:
    """``fn(*args)`` in a transaction on ``machine``: if it raises, the machine is as before."""
    j, outer, log, mark = _begin(machine)
    try:
        return fn(*args)
    except BaseException:
        _rollback(log, mark)
        raise
    finally:
        j.log = outer


@contextmanager
def transaction(machine: Machine) -> Iterator[Machine]:
    """The block as one transaction on ``machine`` (what :func:`atomic` does, for a ``with``)."""
    j, outer, log, mark = _begin(machine)
    try:
        yield machine
    except BaseException:
        _rollback(log, mark)
        raise
    finally:
        j.log = outer


# -- what a state may hold -------------------------------------------------------------------------
_PLAIN = (list, dict, set, deque, bytearray)
_WATCH: set[type] = set(_PLAIN)   # plain mutable containers (refused) and tracked types (adopted)
# the built-in operations, untracked (what the undo entries call; aliases are faster to reach)
_obj_set, _obj_del = object.__setattr__, object.__delattr__
_dict_get, _dict_item, _dict_set, _dict_del = dict.get, dict.__getitem__, dict.__setitem__, dict.__delitem__
_set_add, _set_discard = set.add, set.discard
_list_get, _list_set, _list_insert, _list_del = list.__getitem__, list.__setitem__, list.insert, list.__delitem__


def _adopt(value: Any, j: Journal) -> None:
    """``value`` (of a watched type) goes into a state of journal ``j``."""
    if type(value) in _PLAIN:
        raise TypeError(f"the {j.owner}'s state holds tracked containers only, not a plain "
                        f"{type(value).__name__} (its changes could not be undone)")
    cur = value._j
    if cur is j:
        return
    if cur is not None:
        raise ValueError(f"{type(value).__name__} is already part of another machine's state")
    _obj_set(value, "_j", j)
    for child in value._children():
        if type(child) in _WATCH:
            _adopt(child, j)


def _set_attr(obj: object, name: str, old: object) -> None:
    if old is not _MISSING:
        _obj_set(obj, name, old)
    elif hasattr(obj, name):   # (a set that failed left nothing to take away)
        _obj_del(obj, name)


class Tracked:
    """An object whose attributes are state: set, they are logged (see the module's docstring)."""

    __slots__ = ("_j",)
    _slotted = True

    def __new__(cls, *args: Any, **kwargs: Any) -> Tracked:
        self = object.__new__(cls)
        _obj_set(self, "_j", None)
        return self

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._slotted = cls.__dictoffset__ == 0
        _WATCH.add(cls)

    def __setattr__(self, name: str, value: Any) -> None:
        j = self._j
        if j is not None:
            old = getattr(self, name, _MISSING) if self._slotted else self.__dict__.get(name, _MISSING)
            if type(value) in _WATCH:
                _adopt(value, j)
            j.log.append((_set_attr, self, name, old))
        _obj_set(self, name, value)

    def __delattr__(self, name: str) -> None:
        j = self._j
        if j is not None:
            j.log.append((_set_attr, self, name, getattr(self, name)))
        _obj_del(self, name)

    def _children(self) -> Iterator[Any]:
        if not self._slotted:
            yield from self.__dict__.values()
        for klass in type(self).__mro__:
            for name in klass.__dict__.get("__slots__", ()):
                if name != "_j":
                    yield getattr(self, name, None)


class _Sealer(type):
    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        machine = super().__call__(*args, **kwargs)
        machine._j.seal()
        return machine


class Machine(Tracked, metaclass=_Sealer):
    """A mutable machine: open while ``__init__`` runs, then changed only in transactions."""

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Machine:
        self = object.__new__(cls)
        _obj_set(self, "_j", Journal(cls.__name__))
        return self


# -- containers --------------------------------------------------------------------------------------
# The frequent mutations log their exact inverse, in this order: what can raise on a bad key or
# index, then the adoption of the value that goes in, then the log entry (which raises outside a
# transaction), then the change. The bulk ones (clear, sort, update...) log a copy, through _bulk.
def _reset(base: Any, c: Any, items: Any) -> None:
    base.clear(c)
    if base is dict or base is set:
        base.update(c, items)
    else:
        base.extend(c, items)


def _bulk(base: type, name: str, many: int = -1, one: int = -1) -> Callable[..., Any]:
    """``base.name`` on a tracked container, logging a copy of it first. The values that go in (to
    adopt): argument ``many`` is an iterable of them, argument ``one`` is one."""
    raw = getattr(base, name)

    def op(self: Any, *args: Any, **kwargs: Any) -> Any:
        j = self._j
        if j is not None:
            if many >= 0:
                args = (*args[:many], list(args[many]), *args[many + 1:])
            for value in args[many] if many >= 0 else [args[one]] if one >= 0 else ():
                if type(value) in _WATCH:
                    _adopt(value, j)
            j.log.append((_reset, base, self, (dict if base is dict else list)(self)))
        return raw(self, *args, **kwargs)

    op.__name__ = name
    return op


class TDict(dict):  # type: ignore[type-arg]
    __slots__ = ("_j",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        dict.__init__(self, *args, **kwargs)
        self._j: Journal | None = None

    def _children(self) -> Iterator[Any]:
        return iter(dict.values(self))

    def __setitem__(self, key: Any, value: Any) -> None:
        j = self._j
        if j is not None:
            old = _dict_get(self, key, _MISSING)
            if type(value) in _WATCH:
                _adopt(value, j)
            j.log.append((_dict_del, self, key) if old is _MISSING else (_dict_set, self, key, old))
        _dict_set(self, key, value)

    def __delitem__(self, key: Any) -> None:
        j = self._j
        if j is not None:
            j.log.append((_dict_set, self, key, _dict_item(self, key)))
        _dict_del(self, key)

    def pop(self, key: Any, *default: Any) -> Any:
        j = self._j
        if j is not None:
            j.log.append((_dict_set, self, key, _dict_item(self, key)) if key in self else _NOOP)
        return dict.pop(self, key, *default)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key in self:
            return _dict_item(self, key)
        self[key] = default
        return default

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> TDict:
        self.update(other)
        return self

    popitem = _bulk(dict, "popitem")
    clear = _bulk(dict, "clear")


class TSet(set):  # type: ignore[type-arg]
    """Members are hashable: immutable values, never state of their own."""

    __slots__ = ("_j",)

    def __init__(self, items: Any = ()) -> None:
        set.__init__(self, items)
        self._j: Journal | None = None

    def _children(self) -> Iterator[Any]:
        return iter(())

    def add(self, item: Any) -> None:
        j = self._j
        if j is not None:
            j.log.append(_NOOP if item in self else (_set_discard, self, item))
        _set_add(self, item)

    def discard(self, item: Any) -> None:
        j = self._j
        if j is not None:
            j.log.append((_set_add, self, item) if item in self else _NOOP)
        _set_discard(self, item)

    def remove(self, item: Any) -> None:
        if item not in self:
            raise KeyError(item)
        self.discard(item)

    pop = _bulk(set, "pop")
    clear = _bulk(set, "clear")
    update = _bulk(set, "update")
    difference_update = _bulk(set, "difference_update")
    intersection_update = _bulk(set, "intersection_update")
    symmetric_difference_update = _bulk(set, "symmetric_difference_update")
    __ior__ = _bulk(set, "__ior__")
    __iand__ = _bulk(set, "__iand__")
    __isub__ = _bulk(set, "__isub__")
    __ixor__ = _bulk(set, "__ixor__")


class TList(list):  # type: ignore[type-arg]
    __slots__ = ("_j",)

    def __init__(self, items: Any = ()) -> None:
        list.__init__(self, items)
        self._j: Journal | None = None

    def _children(self) -> Iterator[Any]:
        return list.__iter__(self)

    def __setitem__(self, i: Any, value: Any) -> None:
        j = self._j
        if j is not None:
            if type(i) is slice:
                return _SET_SLICE(self, i, value)
            old = _list_get(self, i)
            if type(value) in _WATCH:
                _adopt(value, j)
            j.log.append((_list_set, self, i, old))
        _list_set(self, i, value)

    def __delitem__(self, i: Any) -> None:
        j = self._j
        if j is not None:
            if type(i) is slice:
                return _DEL_SLICE(self, i)
            j.log.append((_list_insert, self, i + len(self) if i < 0 else i, _list_get(self, i)))
        _list_del(self, i)

    def insert(self, i: int, value: Any) -> None:
        j = self._j
        if j is not None:
            n = len(self)
            if not 0 <= i <= n:
                i = min(max(i + n if i < 0 else i, 0), n)
            if type(value) in _WATCH:
                _adopt(value, j)
            j.log.append((_list_del, self, i))
        _list_insert(self, i, value)

    def append(self, value: Any) -> None:
        self.insert(len(self), value)

    def pop(self, i: int = -1) -> Any:
        j = self._j
        if j is not None:
            j.log.append((_list_insert, self, i + len(self) if i < 0 else i, _list_get(self, i)))
        return list.pop(self, i)

    def remove(self, value: Any) -> None:
        del self[self.index(value)]

    extend = _bulk(list, "extend", many=0)
    __iadd__ = _bulk(list, "__iadd__", many=0)
    __imul__ = _bulk(list, "__imul__")
    clear = _bulk(list, "clear")
    sort = _bulk(list, "sort")
    reverse = _bulk(list, "reverse")


_SET_SLICE = _bulk(list, "__setitem__", many=1)
_DEL_SLICE = _bulk(list, "__delitem__")


class TDeque(deque):  # type: ignore[type-arg]
    """A deque without ``maxlen`` (a full one would drop items untracked)."""

    __slots__ = ("_j",)

    def __init__(self, items: Any = ()) -> None:
        deque.__init__(self, items)
        self._j: Journal | None = None

    def _children(self) -> Iterator[Any]:
        return deque.__iter__(self)

    def _op(self, value: Any, *undo: Any) -> None:
        j = self._j
        if j is not None:
            if type(value) in _WATCH:
                _adopt(value, j)
            j.log.append(undo)

    def append(self, value: Any) -> None:
        self._op(value, deque.pop, self)
        deque.append(self, value)

    def appendleft(self, value: Any) -> None:
        self._op(value, deque.popleft, self)
        deque.appendleft(self, value)

    def pop(self) -> Any:
        self._op(None, deque.append, self, self[-1])
        return deque.pop(self)

    def popleft(self) -> Any:
        self._op(None, deque.appendleft, self, self[0])
        return deque.popleft(self)

    extend = _bulk(deque, "extend", many=0)
    extendleft = _bulk(deque, "extendleft", many=0)
    __iadd__ = _bulk(deque, "__iadd__", many=0)
    __imul__ = _bulk(deque, "__imul__")
    clear = _bulk(deque, "clear")
    remove = _bulk(deque, "remove")
    rotate = _bulk(deque, "rotate")
    reverse = _bulk(deque, "reverse")
    insert = _bulk(deque, "insert", one=1)
    __setitem__ = _bulk(deque, "__setitem__", one=1)
    __delitem__ = _bulk(deque, "__delitem__")


for _tracked in (TDict, TSet, TList, TDeque):
    _WATCH.add(_tracked)
