"""A structural dump of a machine's whole state, to check that a refused event changed nothing.

``dump(x)`` walks every attribute (``vars()``, slots, dataclass fields) and what they hold, down to
plain values, and gives nested tuples that compare by value: take one before an event, one after,
and compare them. A type it does not know is an error, so nothing is left out unseen.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import deque
from collections.abc import Mapping
from enum import Enum

__all__ = ["dump"]

_PLAIN = (type(None), bool, int, float, str, bytes)


def dump(x: object) -> object:
    if isinstance(x, _PLAIN):
        return x
    if isinstance(x, Enum):
        return (type(x).__name__, x.name)
    if isinstance(x, itertools.count):
        return ("count", repr(x))  # its next value, read without taking it
    if isinstance(x, Mapping):
        return (type(x).__name__, tuple(sorted(((dump(k), dump(v)) for k, v in x.items()), key=repr)))
    if isinstance(x, (list, tuple, deque)):
        return (type(x).__name__, tuple(dump(v) for v in x))
    if isinstance(x, (set, frozenset)):
        return (type(x).__name__, tuple(sorted((dump(v) for v in x), key=repr)))
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        names = [f.name for f in dataclasses.fields(x)]
    elif hasattr(x, "__dict__"):
        names = sorted(vars(x))
    else:
        raise TypeError(f"dump: no structure known for {type(x).__name__}")
    return (type(x).__name__, tuple((n, dump(getattr(x, n))) for n in names))
