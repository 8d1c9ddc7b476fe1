"""The session shell with the real call machine and a recording executor (no Asterisk)."""

from __future__ import annotations

import io
import json
import logging

import structlog

from engine.core import call as c
from engine.core.common import Command
from engine.shared.logsetup import configure, get_logger
from engine.runtime.session import Session

LIMITS = c.Limits(answer_seconds=10, playback_seconds=60, hangup_seconds=5, max_call_seconds=3600)


class FastClock:
    """Time that jumps straight to each timer's due moment: timers fire without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 100.0
        return self.now


def make(executed: list[Command], clock=None) -> tuple[Session, list[Command]]:
    arrival = c.Arrival("id-1", "ch-1", "555", "", "2000", c.Route(prompt="hello-world"), 1000.0)
    state, first = c.start(arrival, LIMITS, 1000.0)

    async def execute(session, command):
        executed.append(command)

    session = Session(state=state, handle=c.handle, execute=execute, phase_of=lambda s: s.phase,
                      is_finished=lambda s: s.phase is c.Phase.ENDED, log=get_logger("test"),
                      clock=clock or FastClock())
    return session, first


async def test_timers_alone_end_a_call_that_asterisk_never_answers():
    executed: list[Command] = []
    session, first = make(executed)
    await session.run(first)  # Answer is never acknowledged: answer timer, hangup, hangup timer
    assert session.finished
    assert [type(x).__name__ for x in executed] == [
        "RecordStarted", "Answer", "RecordEvent", "Hangup", "Hangup", "RecordEnded", "Finish"]
    assert executed[-2].cause_text == "no hang-up event from Asterisk"


async def test_events_drive_the_call_and_illegal_ones_are_dropped():
    executed: list[Command] = []
    session, first = make(executed, clock=lambda: 1000.0)
    for ev in (c.Answered(), c.PlaybackDone("id-1-p1"), c.HangupRequested(None), c.ChannelGone()):
        session.post(ev)
    await session.run(first)
    ended = [x for x in executed if isinstance(x, c.RecordEnded)]
    assert ended == [c.RecordEnded("id-1", 1000.0, 16, "Normal Clearing", "engine")]
    before = session.state
    await session.feed(c.Answered())  # ENDED has no such row: logged, nothing changes
    assert session.state is before


def test_json_logs_carry_the_bound_call_ids():
    out = io.StringIO()
    configure("info", "json", out, cache=False)
    try:
        structlog.contextvars.bind_contextvars(call_id="id-1", channel_id="ch-1")
        get_logger("calls").info("transition", before="answering", on="Answered", after="playing")
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
    line = json.loads(out.getvalue())
    assert line["call_id"] == "id-1" and line["channel_id"] == "ch-1"
    assert line["event"] == "transition" and line["level"] == "info" and line["timestamp"].endswith("Z")
