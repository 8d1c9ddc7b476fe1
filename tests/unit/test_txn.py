"""engine.core.txn: tracked state changes only in a transaction, and a transaction that raises
leaves it exactly as it was.

1. Any sequence of container and attribute operations (some of them failing, as the built-ins
   fail) does what the built-in containers do when it commits, and nothing at all when the
   transaction raises; an inner transaction that raises undoes only its own part.
2. Outside a transaction every mutation raises and changes nothing; a machine is open while its
   ``__init__`` runs; plain containers cannot enter a state; tracked ones join it with what they hold.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.txn import (Machine, OutsideTransaction, TDeque, TDict, TList, TSet, Tracked, atomic,
                             transaction)

from .structure import dump


@dataclass(slots=True)
class Record(Tracked):
    a: int = 0
    b: object = None


class Box(Machine):
    def __init__(self) -> None:
        self.n = 0
        self.d = TDict({1: 10})
        self.s = TSet({1})
        self.l = TList([1, 3])
        self.q = TDeque([1])
        self.r = Record()


class Plain:
    """The same state in built-in containers: what every operation should do."""

    def __init__(self) -> None:
        self.n = 0
        self.d = {1: 10}
        self.s = {1}
        self.l = [1, 3]
        self.q = deque([1])
        self.r = Record()


def view(x) -> tuple:
    return (x.n, sorted(x.d.items()), sorted(x.s), list(x.l), list(x.q), x.r.a)


K = st.integers(0, 4)
OPS = st.one_of(
    st.tuples(st.just("n"), K), st.tuples(st.just("rec"), K), st.tuples(st.just("newattr"), K),
    st.tuples(st.just("d[k]=v"), K, K), st.tuples(st.just("del d[k]"), K), st.tuples(st.just("d.pop"), K),
    st.tuples(st.just("d.setdefault"), K, K), st.tuples(st.just("d.update"), K, K), st.tuples(st.just("d.popitem")),
    st.tuples(st.just("d.clear")),
    st.tuples(st.just("s.add"), K), st.tuples(st.just("s.discard"), K), st.tuples(st.just("s.remove"), K),
    st.tuples(st.just("s.pop")), st.tuples(st.just("s|="), K, K), st.tuples(st.just("s-="), K),
    st.tuples(st.just("s.clear")),
    st.tuples(st.just("l.append"), K), st.tuples(st.just("l.insert"), st.integers(-6, 6), K),
    st.tuples(st.just("l[i]=v"), st.integers(-6, 6), K), st.tuples(st.just("del l[i]"), st.integers(-6, 6)),
    st.tuples(st.just("l.pop"), st.integers(-6, 6)), st.tuples(st.just("l[i:j]=v"), K, K, K),
    st.tuples(st.just("del l[i:j]"), K, K), st.tuples(st.just("l.extend"), K, K), st.tuples(st.just("l.sort")),
    st.tuples(st.just("l.reverse")), st.tuples(st.just("l.remove"), K), st.tuples(st.just("insort"), K),
    st.tuples(st.just("q.append"), K), st.tuples(st.just("q.appendleft"), K), st.tuples(st.just("q.pop")),
    st.tuples(st.just("q.popleft")), st.tuples(st.just("q.rotate"), st.integers(-2, 2)), st.tuples(st.just("q.clear")),
)


def apply(x, op) -> None:
    kind, *a = op
    {
        "n": lambda: setattr(x, "n", a[0]), "rec": lambda: setattr(x.r, "a", a[0]),
        "newattr": lambda: setattr(x, "extra", a[0]),
        "d[k]=v": lambda: x.d.__setitem__(a[0], a[1]), "del d[k]": lambda: x.d.__delitem__(a[0]),
        "d.pop": lambda: x.d.pop(a[0]), "d.setdefault": lambda: x.d.setdefault(a[0], a[1]),
        "d.update": lambda: x.d.update({a[0]: a[1]}), "d.popitem": lambda: x.d.popitem(), "d.clear": lambda: x.d.clear(),
        "s.add": lambda: x.s.add(a[0]), "s.discard": lambda: x.s.discard(a[0]), "s.remove": lambda: x.s.remove(a[0]),
        "s.pop": lambda: x.s.pop(), "s|=": lambda: x.s.__ior__({a[0], a[1]}), "s-=": lambda: x.s.__isub__({a[0]}),
        "s.clear": lambda: x.s.clear(),
        "l.append": lambda: x.l.append(a[0]), "l.insert": lambda: x.l.insert(a[0], a[1]),
        "l[i]=v": lambda: x.l.__setitem__(a[0], a[1]), "del l[i]": lambda: x.l.__delitem__(a[0]),
        "l.pop": lambda: x.l.pop(a[0]), "l[i:j]=v": lambda: x.l.__setitem__(slice(a[0], a[1]), [a[2]] * a[2]),
        "del l[i:j]": lambda: x.l.__delitem__(slice(a[0], a[1])), "l.extend": lambda: x.l.extend([a[0], a[1]]),
        "l.sort": lambda: x.l.sort(), "l.reverse": lambda: x.l.reverse(), "l.remove": lambda: x.l.remove(a[0]),
        "insort": lambda: bisect.insort(x.l, a[0]),
        "q.append": lambda: x.q.append(a[0]), "q.appendleft": lambda: x.q.appendleft(a[0]),
        "q.pop": lambda: x.q.pop(), "q.popleft": lambda: x.q.popleft(), "q.rotate": lambda: x.q.rotate(a[0]),
        "q.clear": lambda: x.q.clear(),
    }[kind]()


def run(x, ops) -> list[str]:
    """Apply ``ops``, each one failing (or not) on its own; the names of what each raised."""
    raised = []
    for op in ops:
        try:
            apply(x, op)
            raised.append("")
        except (KeyError, IndexError, ValueError) as exc:
            raised.append(type(exc).__name__)
    return raised


class Boom(Exception):
    pass


@settings(max_examples=300, deadline=None)
@given(first=st.lists(OPS, max_size=12), ops=st.lists(OPS, max_size=25), commit=st.booleans())
def test_a_transaction_does_what_the_builtins_do_or_nothing_at_all(first, ops, commit):
    box, plain = Box(), Plain()
    with transaction(box):
        assert run(box, first) == run(plain, first)
    assert view(box) == view(plain) and getattr(box, "extra", None) == getattr(plain, "extra", None)
    before = dump(box)

    def event() -> list[str]:
        raised = run(box, ops)
        if not commit:
            raise Boom
        return raised

    if commit:
        assert atomic(box, event) == run(plain, ops)
        assert view(box) == view(plain) and getattr(box, "extra", None) == getattr(plain, "extra", None)
    else:
        with pytest.raises(Boom):
            atomic(box, event)
        assert dump(box) == before


@settings(max_examples=100, deadline=None)
@given(outer=st.lists(OPS, max_size=10), inner=st.lists(OPS, max_size=10))
def test_an_inner_transaction_that_raises_undoes_only_its_own_part(outer, inner):
    box, plain = Box(), Plain()
    with transaction(box):
        run(box, outer)
        run(plain, outer)
        with pytest.raises(Boom):
            with transaction(box):
                run(box, inner)
                raise Boom
        assert view(box) == view(plain)
    assert view(box) == view(plain)


@pytest.mark.parametrize("change", [
    lambda b: setattr(b, "n", 1), lambda b: setattr(b, "fresh", 1), lambda b: delattr(b, "n"),
    lambda b: setattr(b.r, "a", 5),
    lambda b: b.d.__setitem__(2, 2), lambda b: b.d.__delitem__(1), lambda b: b.d.pop(1),
    lambda b: b.d.setdefault(3, 3), lambda b: b.d.update({4: 4}), lambda b: b.d.clear(), lambda b: b.d.popitem(),
    lambda b: b.s.add(7), lambda b: b.s.discard(1), lambda b: b.s.pop(), lambda b: b.s.update({9}),
    lambda b: b.s.__isub__({1}),
    lambda b: b.l.append(0), lambda b: b.l.insert(0, 0), lambda b: b.l.__setitem__(0, 9),
    lambda b: b.l.__delitem__(0), lambda b: b.l.pop(), lambda b: b.l.sort(), lambda b: bisect.insort(b.l, 2),
    lambda b: b.l.__setitem__(slice(0, 1), [5]),
    lambda b: b.q.append(0), lambda b: b.q.popleft(), lambda b: b.q.clear(),
])
def test_outside_a_transaction_every_change_raises_and_changes_nothing(change):
    box = Box()
    before = dump(box)
    with pytest.raises(OutsideTransaction, match="the Box changes only inside a transaction"):
        change(box)
    assert dump(box) == before


def test_plain_containers_are_refused_and_tracked_ones_join_with_what_they_hold():
    box = Box()
    for plain in ([], {}, set(), deque(), bytearray()):
        with pytest.raises(TypeError, match=f"not a plain {type(plain).__name__}"), transaction(box):
            box.d[5] = plain
    with transaction(box):
        box.d[5] = Record(1, TList([TDict()]))   # built detached, then put in: all of it joins
    with pytest.raises(OutsideTransaction):
        box.d[5].b[0]["k"] = 1
    other = Box()
    with pytest.raises(ValueError, match="already part of another machine"), transaction(other):
        other.d[1] = box.d[5]
    assert 1 in other.d and other.d[1] == 10


def test_a_detached_object_changes_freely_until_it_joins():
    r = Record()
    r.a = 3
    r.b = TList([1])
    r.b.append(2)
    assert (r.a, list(r.b)) == (3, [1, 2])
