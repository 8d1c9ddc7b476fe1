"""AMI through panoramisk: logged in, events subscribed, reconnecting.

ARI drives calls; AMI gives what ARI does not (device and contact state, AMD results, originate
by dialplan). panoramisk does the protocol and reconnects by itself; this wrapper adds what a
daemon needs around it: login failures logged as such, no reconnect after we closed, state for the
health check, and the latest device / contact states kept for the parts of the engine that ask.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from panoramisk import Manager

from engine.config.model import AmiConfig
from engine.shared.logsetup import get_logger

__all__ = ["Ami", "EVENTS"]

log = get_logger("ami")

# The events the adapter reads (device and contact state); Asterisk sends no other (see Ami._filter).
EVENTS = ("DeviceStateChange", "ContactStatus")


class _Manager(Manager):
    """panoramisk's Manager, told not to reconnect once we closed it, and to say why a login failed."""

    closing = False

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        if self.closing:
            return None
        return super().connect(*args, **kwargs)

    def login(self, future: asyncio.Future[Any]) -> bool:
        ok = super().login(future)
        if not ok:
            log.error("ami.login_failed", message=str(future.result().get("Message", "")))
        return ok

    def connection_lost(self, exc: Exception | None) -> None:
        self.authenticated = False
        if self.closing:
            self._connected = False
            self.on_disconnect(self, exc)
            return
        log.warning("ami.disconnected", retry_in=self.reconnect_timeout)
        super().connection_lost(exc)  # schedules on_disconnect and the reconnect


class Ami:
    def __init__(self, cfg: AmiConfig) -> None:
        self.cfg = cfg
        self.manager: _Manager | None = None
        self.device_states: dict[str, str] = {}
        self.contact_states: dict[str, str] = {}
        self.listeners: list[Callable[[dict[str, str]], None]] = []   # hear the EVENTS only
        self._filtering: asyncio.Future[None] | None = None   # held so the loop does not drop the task
        self.filtered = asyncio.Event()   # this session sends only EVENTS (cleared when it ends)
        self.logged_in_event = asyncio.Event()
        self.logged_out_event = asyncio.Event()  # set whenever ``logged_in_event`` is not
        self.logged_out_event.set()

    @property
    def logged_in(self) -> bool:
        m = self.manager
        return bool(m is not None and m._connected and m.authenticated)

    def start(self) -> None:
        self.manager = _Manager(
            host=self.cfg.host, port=self.cfg.port, username=self.cfg.username, secret=self.cfg.password,
            events="on", ping_delay=10, reconnect_timeout=self.cfg.reconnect_seconds,
            loop=asyncio.get_running_loop(), on_login=self._on_login, on_disconnect=self._on_disconnect,
            log=_quiet_stdlib_logger())
        self.manager.register_event("*", self._on_event)
        self.manager.connect()

    def close(self) -> None:
        if self.manager is not None:
            self.manager.closing = True
            self.manager.close()  # panoramisk does not report its own close as a disconnection
            self._on_disconnect(self.manager, None)

    def _on_login(self, manager: Manager) -> None:
        log.info("ami.logged_in", host=self.cfg.host, port=self.cfg.port)
        self.logged_in_event.set()
        self.logged_out_event.clear()
        self._filtering = asyncio.ensure_future(self._filter(manager))

    async def _filter(self, manager: Manager) -> None:
        """Ask Asterisk for only the events this adapter reads (its Filter action, per session):
        otherwise every channel event of every call is sent and parsed here for nothing (about
        7% of the engine's time at 40 calls/s, and Asterisk's to format and send them)."""
        for event in EVENTS:
            try:
                reply = await manager.send_action({"Action": "Filter", "Operation": "Add", "Filter": f"Event: {event}"})
            except Exception as exc:   # AMI went away again: the next login asks again
                log.warning("ami.filter_failed", ami_event=event, error=repr(exc))
                return
            if isinstance(reply, list) or reply.get("Response") != "Success":
                log.warning("ami.filter_refused", ami_event=event, reply=str(reply)[:200])
                return
        if manager is self.manager and self.logged_in:
            self.filtered.set()

    def _on_disconnect(self, manager: Manager, exc: Exception | None) -> None:
        self.filtered.clear()
        self.logged_in_event.clear()
        self.logged_out_event.set()

    def _on_event(self, manager: Manager, event: Any) -> None:
        name = event.get("Event", "")
        if name == "DeviceStateChange":
            self.device_states[event.get("Device", "")] = event.get("State", "")
        elif name == "ContactStatus":
            self.contact_states[event.get("AOR", "")] = event.get("ContactStatus", "")
        for listener in self.listeners:
            listener(dict(event))

    async def command(self, cli: str) -> str:
        """Run an Asterisk CLI command over AMI; return its output."""
        if self.manager is None or not self.logged_in:
            raise ConnectionError("AMI is not logged in")
        resp = await self.manager.send_command(cli)
        output = resp.get("Output", "") if not isinstance(resp, list) else ""
        return "\n".join(output) if isinstance(output, list) else str(output)


def _quiet_stdlib_logger() -> logging.Logger:
    # panoramisk logs every reconnect attempt at ERROR/INFO; our wrapper says it once, structured.
    logger = logging.getLogger("panoramisk.manager")
    logger.setLevel(logging.CRITICAL)
    return logger
