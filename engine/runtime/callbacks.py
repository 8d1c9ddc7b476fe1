"""Placing callbacks in the shell: dial the customer once their agent has answered, then bridge.

The pure machine is :mod:`engine.core.callback`; this module dials (ARI originate with the queue's
``callback.dial`` template), routes the two legs' events to the machine, and bridges them.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING, Any

import structlog

from engine.runtime.acdservice import AcdService
from engine.adapters.ari import AriError, path
from engine.core import acd as A
from engine.core import call as C
from engine.core import callback as K
from engine.core.causes import callback_result
from engine.core import leg as L
from engine.core.common import Command
from engine.store.db import Write
from engine.shared.logsetup import get_logger
from engine.runtime.legs import LegWatch
from engine.runtime.ports import AgentLeg
from engine.runtime.session import Session

if TYPE_CHECKING:
    from engine.runtime.calls import CallManager

__all__ = ["Callbacks"]

log = get_logger("callbacks")
_DIALABLE = re.compile(r"^\+?[0-9]{3,20}$")
RING_SECONDS = 30.0


class Callbacks:
    def __init__(self, *, calls: CallManager, acd: AcdService) -> None:
        self.calls = calls
        self.acd = acd

    def begin(self, leg: AgentLeg, queue: str) -> None:
        assert leg.callback_number is not None
        cfg = self.calls.config()
        q = next((q for q in cfg.queues if q.name == queue), None)
        template = q.callback.dial if q is not None and q.callback is not None else None
        caller_id, ring = None, RING_SECONDS
        preview = self.calls.outbound.preview_dial(leg.call_id)
        if preview is not None:   # a campaign's preview: its dial string, caller id and ring time
            template, caller_id, ring = preview
        state, first = K.start(leg.call_id, leg.agent_id, leg.channel_id, leg.callback_number, ring, time.time())
        customer = f"cbleg-{uuid.uuid4()}"
        bound = log.bind(call_id=leg.call_id, agent_id=leg.agent_id, number=leg.callback_number)
        session: Session[K.Callback] = Session(
            state=state, handle=K.handle, phase_of=lambda s: s.phase, is_finished=lambda s: s.phase is K.Phase.ENDED,
            log=bound, execute=lambda s, c: self._execute(s, c, customer, template, caller_id))

        def on_customer(command: Command) -> None:
            if isinstance(command, L.LegAnswered):
                session.post(K.CustomerAnswered())
            elif isinstance(command, L.LegFailed):
                session.post(K.CustomerFailed(callback_result(command.cause)))
            elif isinstance(command, L.LegEnded):
                session.post(C.ChannelGone())

        def on_agent(event: dict[str, Any]) -> None:
            if event.get("type") in ("StasisEnd", "ChannelDestroyed"):
                session.post(C.AgentGone())

        LegWatch(self.calls.router, customer, on_customer)
        self.calls.router.follow(leg.channel_id, on_agent)
        bound.info("callback.placing")
        self.calls.spawn(self._run(session, first, customer, leg.channel_id))

    async def _run(self, session: Session[K.Callback], first: list[Command], customer: str, agent: str) -> None:
        structlog.contextvars.bind_contextvars(call_id=session.state.call_id, agent_id=session.state.agent_id)
        try:
            await session.run(first)
        except Exception:
            session.log.exception("callback.crashed")
            self.acd.post(A.CallFinished(session.state.agent_id))
        finally:
            self.calls.router.forget(customer)
            self.calls.router.forget(agent)
            await self.calls.remove_bridge(_bridge_id(session.state.call_id))

    async def _execute(self, session: Session[K.Callback], command: Command, customer: str,
                       template: str | None, caller_id: str | None) -> None:
        cb = session.state
        self.calls.outbound.preview_observe(cb.call_id, command)
        if isinstance(command, K.DialCustomer):
            refusal = await self.calls.outbound.preview_recheck(cb.call_id)
            if refusal is not None:   # a preview the gate no longer allows (DNC since, hours over)
                session.log.info("callback.refused", reason=refusal)
                session.post(C.RequestFailed("dial", False, f"refused by the compliance gate: {refusal}"))
                return
            if template is None or not _DIALABLE.match(command.number):
                session.log.warning("callback.not_dialable", template=template)
                session.post(C.RequestFailed("dial", False, f"cannot dial {command.number!r}"))
                return
            try:
                await self.calls.ari.post(
                    "/channels", endpoint=template.format(number=command.number),
                    app=self.calls.config().asterisk.ari.app, channelId=customer,
                    appArgs=f"callbackleg,{cb.call_id}", timeout=int(command.ring_seconds), callerId=caller_id)
            except AriError as exc:
                session.post(C.RequestFailed("dial", exc.gone, str(exc)))
        elif isinstance(command, K.BridgeCustomer):
            bridge = _bridge_id(cb.call_id)
            ok = await self.calls.rest(session, "bridge", "POST", "/bridges", type="mixing", bridgeId=bridge,
                                       name=bridge)
            if ok:
                await self.calls.rest(session, "bridge", "POST", path("bridges", bridge, "addChannel"),
                                      channel=[cb.agent_channel, customer])
        elif isinstance(command, K.HangupCustomer):
            await self.calls.hang_up(customer, "callback over")
        elif isinstance(command, C.HangupAgent):
            await self.calls.hang_up(command.agent_channel, "callback over")
        elif isinstance(command, C.AgentCallOver):
            self.acd.post(A.CallFinished(command.agent_id))
        elif isinstance(command, K.RecordOutcome):
            session.log.info("callback.outcome", outcome=command.outcome)
            self.calls.writer.submit(Write("callback_placed", (command.call_id, command.at, command.agent_id,
                                                               command.outcome)))
        else:
            raise TypeError(f"no executor for {command!r}")


def _bridge_id(call_id: str) -> str:
    return f"cc-cb-{call_id}"
