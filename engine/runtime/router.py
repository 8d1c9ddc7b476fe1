"""The channel router: which owner hears each ARI event.

One registry for every channel the engine follows. An owner (a call session, an agent leg, a
callback, an attempt, a feature call, a transfer) :meth:`~Router.follow` s the channels it made or
took, and :meth:`~Router.forget` s them when it is done with them; nothing else writes the registry.
A StasisStart for a channel nobody follows is a new channel: it goes to the starter registered for
its role (the first Stasis argument: ``inbound`` when there is none, ``agent``, ...), or is hung up
by the ``unknown`` handler. Other events of channels nobody follows are dropped.

The ARI reader calls :meth:`Router.dispatch` synchronously for each event: owners route, they do
not wait (anything that waits is spawned or posted to a session).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["EVENTS", "Owner", "Router", "target_channel"]

Owner = Callable[[dict[str, Any]], None]

# The ARI events some owner reads. Asterisk is asked for these only (the application's event
# filter, set at each connect): the rest (ChannelVarset for every variable set, ChannelDialplan,
# bridges entered and left, PlaybackStarted ...) would be built, sent and parsed for nothing.
# tests/unit/test_router.py checks that every event type the runtime names is here.
EVENTS = frozenset({
    "StasisStart", "StasisEnd", "ChannelDestroyed", "ChannelStateChange", "ChannelHangupRequest",
    "ChannelDtmfReceived", "PlaybackFinished", "RecordingFinished", "RecordingFailed", "ChannelHold", "ChannelUnhold",
    "ChannelTransfer",
})


def target_channel(event: dict[str, Any]) -> str | None:
    """The channel an ARI event is about (a playback's: the channel it plays on; a transfer's: the
    channel whose phone sent the REFER)."""
    channel = event.get("channel")
    if isinstance(channel, dict):
        return channel.get("id")
    referred = event.get("referred_by")
    if isinstance(referred, dict) and isinstance(referred.get("source_channel"), dict):
        return referred["source_channel"].get("id")
    playback = event.get("playback")
    if isinstance(playback, dict):
        uri = playback.get("target_uri", "")
        if uri.startswith("channel:"):
            return uri[len("channel:"):]
    return None


class Router:
    def __init__(self, unknown: Callable[[dict[str, Any], str], None]) -> None:
        self._owners: dict[str, Owner] = {}
        self._starters: dict[str, Owner] = {}
        self._kinds: dict[str, Owner] = {}
        self._unknown = unknown

    # -- owners ------------------------------------------------------------------------------------
    def follow(self, channel_id: str, owner: Owner) -> None:
        self._owners[channel_id] = owner

    def forget(self, channel_id: str) -> None:
        self._owners.pop(channel_id, None)

    def follows(self, channel_id: str) -> bool:
        return channel_id in self._owners

    def __len__(self) -> int:
        return len(self._owners)

    def start_role(self, role: str, starter: Owner) -> None:
        """New channels entering the application with ``role`` go to ``starter``."""
        self._starters[role] = starter

    def on_kind(self, kind: str, handler: Owner) -> None:
        """Events of ``kind`` that are about no channel (recordings)."""
        self._kinds[kind] = handler

    # -- the reader's events -----------------------------------------------------------------------
    def dispatch(self, event: dict[str, Any]) -> None:
        kind = str(event.get("type"))
        handler = self._kinds.get(kind)
        if handler is not None:
            handler(event)
            return
        channel_id = target_channel(event)
        if channel_id is None:
            return
        owner = self._owners.get(channel_id)
        if owner is not None:
            owner(event)
        elif kind == "StasisStart":
            args = event.get("args") or []
            role = str(args[0]) if args else "inbound"
            starter = self._starters.get(role)
            if starter is not None:
                starter(event)
            else:
                self._unknown(event, role)
