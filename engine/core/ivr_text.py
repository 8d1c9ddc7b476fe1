"""The IVR's strings at run time (engine/core/ivr.py is the interpreter): ``{name}`` filled in
from the call's variables, sounds and say-items (``digits:``, ``number:``, ``characters:``,
``date:``) made ARI media URIs, a value read from the CRM's answer by its path, a number read from
a setting. Pure functions of what they are given."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date

__all__ = ["as_int", "fill", "lookup", "media"]

_VAR = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def fill(text: str, variables: Mapping[str, str]) -> str:
    """``{name}`` -> the variable's value ('' when unset)."""
    return _VAR.sub(lambda m: variables.get(m.group(1), ""), text)


def media(items: tuple[str, ...], variables: Mapping[str, str]) -> tuple[str, ...]:
    """Sound names and say-items -> ARI media URIs."""
    out: list[str] = []
    for item in items:
        item = fill(item, variables)
        kind, _, value = item.partition(":")
        if not value:
            out.append(f"sound:{item}")
        elif kind == "date":
            try:
                d = date.fromisoformat(value)
            except ValueError:
                continue
            out += [f"sound:digits/mon-{d.month - 1}", f"sound:digits/h-{d.day}", f"number:{d.year}"]
        elif kind in ("digits", "number", "characters"):
            if value and (kind != "number" or value.lstrip("-").isdigit()):
                out.append(f"{kind}:{value}")
        else:
            out.append(f"sound:{item}")
    return tuple(out)


def lookup(data: object, path: str) -> str | None:
    """The value at ``path`` (``a.b.0.c``) in a JSON answer, as text; None when it is not there or
    is not a single value (booleans as ``true``/``false``)."""
    for part in path.split("."):
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    if data is None or isinstance(data, (dict, list)):
        return None
    return str(data).lower() if isinstance(data, bool) else str(data)


def as_int(text: str, default: int) -> int:
    """``text`` as a whole number (a setting after its variables are filled); ``default`` if it is not."""
    try:
        return int(text)
    except ValueError:
        return default
