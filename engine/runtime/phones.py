"""Agents' feature codes from their own phones: the dialogue (pure, :mod:`engine.core.feature`)
and what each request does to the ACD.

Who is asking: log in says who (agent id and PIN); every other code acts for the agent logged in on
the calling phone (the endpoint the call came from), or else the agent whose configured phone it is.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog

from engine.config.acd import login_queues
from engine.runtime.acdservice import AcdService
from engine.adapters.ari import path
from engine.runtime.calls import CallManager, endpoint_of, translate
from engine.config.model import Config
from engine.core import acd as A
from engine.core import agent as ag
from engine.core import call as C
from engine.core import feature as F
from engine.core.common import Command, Rejected
from engine.store.db import Write
from engine.shared.logsetup import get_logger
from engine.runtime.session import Session

__all__ = ["Phones"]

log = get_logger("phones")


class Phones:
    def __init__(self, *, calls: CallManager, acd: AcdService, config: Callable[[], Config]) -> None:
        self.calls = calls
        self.acd = acd
        self.config = config

    def on_start(self, event: dict[str, Any]) -> None:
        """A phone's own call entered the application (role ``agent``: a feature code)."""
        self.begin(event["channel"])

    def begin(self, channel: dict[str, Any]) -> None:
        cfg = self.config()
        codes = {name: getattr(cfg.agent_codes, name)
                 for name in ("login", "logout", "pause", "unpause", "end_wrapup", "disposition")}
        dialed = str((channel.get("dialplan") or {}).get("exten", ""))
        channel_id = channel["id"]
        endpoint = endpoint_of(str(channel.get("name", "")))
        bound = log.bind(channel_id=channel_id, endpoint=endpoint, dialed=dialed)
        request = F.match(dialed, codes)
        if request is None:
            bound.info("phone.unknown_code")
            request = F.Request("unknown", "")
        state, first = F.start(channel_id, endpoint, request, time.time())
        session: Session[F.FeatureCall] = Session(
            state=state, handle=F.handle, execute=self._execute, phase_of=lambda s: s.phase,
            is_finished=lambda s: s.phase is F.Phase.ENDED, log=bound)

        def route(event: dict[str, Any]) -> None:
            translated = translate(event)
            if translated is not None:
                session.post(translated)

        self.calls.router.follow(channel_id, route)
        bound.info("phone.feature", feature=request.feature)
        # No offer to this phone while its own call is up (it would answer 486, or ring over the prompt).
        self.acd.post(A.PhoneInUse(endpoint, True))
        self.calls.spawn(self._run(session, first))

    async def _run(self, session: Session[F.FeatureCall], first: list[Command]) -> None:
        structlog.contextvars.bind_contextvars(channel_id=session.state.channel_id)
        try:
            await session.run(first)
        except Exception:
            session.log.exception("phone.session_crashed")
            await self.calls.rest(session, "hangup", "DELETE", path("channels", session.state.channel_id))
        finally:
            self.calls.router.forget(session.state.channel_id)
            self.acd.post(A.PhoneInUse(session.state.endpoint, False))

    async def _execute(self, session: Session[F.FeatureCall], command: Command) -> None:
        ch = session.state.channel_id
        if isinstance(command, C.Answer):
            if await self.calls.rest(session, "answer", "POST", path("channels", ch, "answer")):
                session.post(C.Answered())
        elif isinstance(command, C.Play):
            await self.calls.rest(session, "play", "POST", path("channels", ch, "play", command.playback_id),
                                  media=list(command.media))
        elif isinstance(command, C.StopPlayback):
            await self.calls.rest(session, "stop_playback", "DELETE", path("playbacks", command.playback_id))
        elif isinstance(command, C.Hangup):
            await self.calls.rest(session, "hangup", "DELETE", path("channels", ch), reason=command.reason)
        elif isinstance(command, F.AgentAction):
            ok, detail = await self.act(command)
            session.log.info("phone.action", feature=command.feature, ok=ok, detail=detail,
                             agent_id=command.agent_id or self.agent_on(command.endpoint))
            session.post(F.ActionResult(ok, detail))
        else:
            raise TypeError(f"no executor for {command!r}")

    def agent_on(self, endpoint: str) -> str | None:
        """The agent logged in on this phone, else the agent whose configured phone it is."""
        for a in self.acd.acd.agents.values():
            if a.endpoint == endpoint and a.phase is not ag.AgentPhase.LOGGED_OUT:
                return a.id
        for a in self.config().agents:
            if a.endpoint == endpoint:
                return a.id
        return None

    async def act(self, action: F.AgentAction) -> tuple[bool, str]:
        """Carry out one agent request; (done, why not)."""
        cfg = self.config()
        if action.feature == "login":
            agent = next((a for a in cfg.agents if a.id == action.agent_id), None)
            if agent is None or agent.pin != action.pin:
                return False, "unknown agent id or wrong PIN"
            return await self._request(agent.id, ag.LogIn(login_queues(agent, cfg.queues), action.endpoint))
        agent_id = self.agent_on(action.endpoint)
        if agent_id is None:
            return False, f"no agent on {action.endpoint}"
        if action.feature == "logout":
            return await self._request(agent_id, ag.LogOut())
        if action.feature == "pause":
            reason = cfg.pause_reasons.get(action.argument)
            if reason is None:
                return False, f"unknown pause reason code {action.argument!r}"
            return await self._request(agent_id, ag.Pause(reason))
        if action.feature == "unpause":
            return await self._request(agent_id, ag.Unpause())
        if action.feature == "end_wrapup":
            return await self._request(agent_id, ag.EndWrapup())
        if action.feature == "disposition":
            return await self.disposition(agent_id, action.argument)
        return False, f"unknown feature {action.feature!r}"

    async def _request(self, agent_id: str, request: ag.Event) -> tuple[bool, str]:
        try:
            await self.acd.request(A.AgentRequest(agent_id, request))
        except Rejected as exc:
            return False, str(exc)
        return True, ""

    def disposition_codes(self, call_id: str) -> dict[str, str]:
        """Code -> name for a call: the main file's, overridden by its campaign's for a dialer call."""
        return {**self.config().dispositions, **self.calls.outbound.dispositions(call_id)}

    async def disposition(self, agent_id: str, code: str) -> tuple[bool, str]:
        """A disposition for the call in wrap-up; it ends the wrap-up (the agent is done with it).
        The keypad (*16) and the API (POST /api/v1/calls/{id}/disposition) both come here."""
        agent = self.acd.acd.agents.get(agent_id)
        if agent is None or agent.phase is not ag.AgentPhase.WRAP_UP or agent.call_id is None:
            return False, "a disposition is keyed during wrap-up"
        name = self.disposition_codes(agent.call_id).get(code)
        if name is None:
            return False, f"unknown disposition code {code!r}"
        self.calls.writer.submit(Write("disposition", (str(uuid.uuid4()), agent.call_id, agent_id, code, name,
                                                       time.time())))
        log.info("agent.disposition", agent_id=agent_id, call_id=agent.call_id, code=code, name=name)
        self.calls.writer.hub.publish("call.dispositioned", call_id=agent.call_id, agent_id=agent_id, code=code,
                                      name=name, at=time.time())
        self.calls.outbound.on_disposition(agent.call_id, agent_id, name)
        return await self._request(agent_id, ag.EndWrapup())
