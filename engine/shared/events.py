"""Domain events for whoever listens in-process: webhooks to a CRM, Prometheus metrics, the wallboard.

The shell modules publish what happened (a fact already decided by the core, already queued for
PostgreSQL); listeners are plain functions called at once, in order, and must not block (queue work
for later, as the webhook sender does). A listener that raises is logged and does not stop the
others or the call.

Events (``kind``: fields, all JSON-ready):

``call.started``      call_id, direction, caller_number, dialed_number, at
``call.offered``      call_id, queue, agent_id, offer_id, reason, at          (an agent's phone rings)
``call.offer_ended``  offer_id, result, at                                 (answered | no-answer | busy | ...)
``call.answered``     call_id, agent_id, queue, at                            (an agent took it)
``queue.entered``     call_id, queue, priority, at                          (a caller starts waiting)
``queue.left``        call_id, queue, outcome, wait_seconds, agent_id, at
``queue.reopened``    call_id, queue, agent_id, at                  (the agent's leg went before the bridge:
                      the caller is back in line, the stay the agent answered goes on)
``call.ended``        call_id, cause, cause_text, ended_by, at
``call.dispositioned`` call_id, agent_id, code, name, at
``call.held``         call_id, held_party, by, agent_id, at     (held_party caller: the agent holds them;
                      agent: the caller's phone holds the agent. by: phone | api)
``call.resumed``      call_id, held_party, by, agent_id, at     (by: phone | api | agent-left | transfer)
``call.transferred``  call_id, to, target, by, from_agent, at    (a blind transfer: to queue | number)
``agent.state``       agent_id, state, reason, call_id, at
``dial.placed``       campaign, attempt_id, lead_id, number, at
``dial.ended``        campaign, attempt_id, lead_id, number, outcome, call_id, agent_id, at
                      (outcome ``abandoned``: a live answer that found no agent within the grace)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.shared.logsetup import get_logger

__all__ = ["Hub", "Listener"]

log = get_logger("events")

Listener = Callable[[str, dict[str, Any]], None]


class Hub:
    def __init__(self) -> None:
        self.listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self.listeners:
            self.listeners.remove(listener)

    def publish(self, kind: str, **data: Any) -> None:
        for listener in list(self.listeners):
            try:
                listener(kind, data)
            except Exception:   # one broken listener must not cost a call or the other listeners
                log.exception("events.listener_failed", kind=kind)
