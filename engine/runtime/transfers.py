"""What an agent's transfer key dialled, as a target the call machine knows (a queue or a number).

A phone's blind transfer (a REFER, handed to ARI as ``ChannelTransfer``) carries the user part of
what the agent dialled. Read in this order: a queue's name (``billing``); an agent's id (``9002``);
an inbound number that routes to a queue or an IVR tree (``3200``: the queue it is published for,
so agents dial the numbers callers know; ``1000``: the tree's start); any other number of 3 to 20
digits (an optional ``+``): dialled through the carrier. Anything else names nothing.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.config.model import Config

__all__ = ["destination_of", "target_of"]

_NUMBER = re.compile(r"\+?[0-9]{3,20}")


def target_of(cfg: Config, dialled: str) -> tuple[str, str] | None:
    """``("queue", name)``, ``("agent", id)``, ``("ivr", tree)``, ``("number", digits)``, or None when
    it names nothing to transfer to."""
    queues = {q.name for q in cfg.queues}
    if dialled in queues:
        return "queue", dialled
    if any(a.id == dialled for a in cfg.agents):
        return "agent", dialled
    for inbound in cfg.inbound:
        if inbound.number == dialled and inbound.queue in queues:
            return "queue", inbound.queue
        if inbound.number == dialled and inbound.ivr in cfg.trees:
            return "ivr", inbound.ivr
    if _NUMBER.fullmatch(dialled):
        return "number", dialled
    return None


def destination_of(event: dict[str, Any]) -> str | None:
    """The blind transfer's destination of a ``ChannelTransfer`` (None: an attended one, which names
    the call to replace instead)."""
    refer_to = event.get("refer_to")
    wanted = refer_to.get("requested_destination") if isinstance(refer_to, dict) else None
    dest = wanted.get("destination") if isinstance(wanted, dict) else None
    return str(dest) if dest else None
