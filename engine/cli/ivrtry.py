"""``callcenter ivr try``: walk a tree without Asterisk, as a caller pressing the given keys would.

The same interpreter as live calls (:mod:`engine.core.ivr`) on a made-up clock: each prompt takes
``PROMPT_SECONDS``, keys are pressed one at a time when the tree is listening, and once the keys
run out the tree's own timeouts fire. CRM lookups get ``http_response`` (or fail), recordings
take ``RECORD_SECONDS``. The report lists every step, what the caller heard, and the outcome.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from engine.core import ivr as I
from engine.core import ivr_messages as IM
from engine.core.channel import Dtmf, Play, PlaybackDone, StopPlayback
from engine.core.common import CancelTimer, StartTimer, TimerFired
from engine.config.ivr import IvrTree

__all__ = ["DryRun", "dry_run"]

PROMPT_SECONDS = 2.0
RECORD_SECONDS = 8.0
MAX_EVENTS = 2000


@dataclass
class DryRun:
    tree: str
    version: str
    lines: list[str] = field(default_factory=list)
    heard: list[str] = field(default_factory=list)
    outcome: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    keys_left: list[str] = field(default_factory=list)
    steps: list[IM.Step] = field(default_factory=list)
    answers: list[tuple[str, int | None]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"tree": self.tree, "version": self.version, "path": self.lines, "heard": self.heard,
                           "outcome": self.outcome, "variables": self.variables, "keys_unused": self.keys_left})

    def text(self) -> str:
        out = [f"tree {self.tree} (version {self.version})", *self.lines, f"outcome: {self.outcome}"]
        if self.keys_left:
            out.append(f"keys not used: {','.join(self.keys_left)}")
        return "\n".join(out)


def dry_run(library: Mapping[str, IvrTree], tree: str, *, caller: str, dialed: str, keys: list[str], at: float,
            http_response: Mapping[str, object] | None = None) -> DryRun:
    now = at
    variables = {"caller": caller, "dialed": dialed, "call_id": "dry-run"}
    state, commands = I.start(library, tree, variables, now)
    report = DryRun(tree, library[tree].version)
    timer: float | None = None
    playing: str | None = None
    pending = list(keys)
    for _ in range(MAX_EVENTS):
        for c in commands:
            if isinstance(c, StartTimer):
                timer = c.at
            elif isinstance(c, CancelTimer):
                timer = None
            elif isinstance(c, Play):
                playing = c.playback_id
                report.heard.append(" ".join(c.media))
                report.lines.append(f"{_clock(now, at)}    says {' '.join(c.media)}")
            elif isinstance(c, StopPlayback):
                playing = None
            elif isinstance(c, IM.Step):
                report.steps.append(c)
                note = " ".join(x for x in (f"key {c.input}" if c.input else "", f"-> {c.result}" if c.result else "") if x)
                report.lines.append(f"{_clock(now, at)}  {c.tree}/{c.node} ({c.verb}) {note}".rstrip())
            elif isinstance(c, IM.HttpCall):
                report.lines.append(f"{_clock(now, at)}    {c.method} {c.url}")
            elif isinstance(c, IM.SurveyAnswer):
                report.answers.append((c.question, c.answer))
                report.lines.append(f"{_clock(now, at)}    survey {c.question} = {c.answer}")
            elif isinstance(c, IM.CallbackWanted):
                report.lines.append(f"{_clock(now, at)}    callback requested to {c.number}")
            elif isinstance(c, IM.SetLanguage):
                report.lines.append(f"{_clock(now, at)}    language {c.code}")
            elif isinstance(c, IM.RecordMessage):
                report.lines.append(f"{_clock(now, at)}    records a message (up to {c.max_seconds:g} s)")
            elif isinstance(c, IM.ToQueue):
                skills = f" skills {dict(c.skills)}" if c.skills else ""
                report.outcome = f"queue {c.queue} (priority {c.priority}{skills})"
            elif isinstance(c, IM.TransferTo):
                report.outcome = f"transfer to {c.target}"
            elif isinstance(c, IM.IvrHangup):
                report.outcome = "hang up"
        if state.stage is I.Stage.DONE:
            break
        event, now = _next(state, playing, pending, timer, now, http_response)
        if isinstance(event, PlaybackDone):
            playing = None
        elif isinstance(event, TimerFired):
            timer = None
        state, commands = I.handle(state, event, now)
    else:
        report.outcome = f"stopped after {MAX_EVENTS} events"
    report.variables = {k: v for k, v in state.variables.items() if k != "call_id"}
    report.keys_left = pending
    return report


def _next(state: I.Ivr, playing: str | None, keys: list[str], timer: float | None, now: float,
          http_response: Mapping[str, object] | None) -> tuple[object, float]:
    """What happens next to the caller, and when."""
    if state.stage is I.Stage.WAIT:
        if http_response is None:
            return IM.HttpDone(False, detail="no --http-response in a dry run"), now + 0.1
        return IM.HttpDone(True, http_response), now + 0.1
    if state.stage is I.Stage.RECORD:
        return IM.RecordingDone(True, RECORD_SECONDS), now + RECORD_SECONDS
    if state.stage is I.Stage.COLLECT and keys:
        return Dtmf(keys.pop(0)), now + 0.5
    if playing is not None:
        return PlaybackDone(playing), now + PROMPT_SECONDS
    if timer is not None:
        return TimerFired("ivr"), max(now, timer)
    raise RuntimeError(f"the tree waits for nothing at {state.node} ({state.stage.value})")


def _clock(now: float, start: float) -> str:
    return f"+{now - start:6.1f}s"


def parse_at(text: str | None) -> float:
    """``--at``: an ISO timestamp (a zone, or UTC), or epoch seconds; default now."""
    if text is None:
        return datetime.now(timezone.utc).timestamp()
    try:
        return float(text)
    except ValueError:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
