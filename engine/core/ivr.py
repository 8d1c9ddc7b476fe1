"""The IVR interpreter: ``(state, event, now) -> (state, commands)`` over a tree of verbs. Pure.

Theory of operation
-------------------
The state says which tree (the version the call started on: a reload does not change it), which
node, what the call's variables are, and where inside the node the call is (``stage``): saying a
prompt, collecting keys, waiting for the CRM, recording. Entering a node carries out its verb;
verbs that take no input (``branch``, ``set``, ``language``, ``goto``) pass straight on. Verbs that
end the IVR (``queue``, ``transfer``, ``hangup``) return an outcome command for the call machine.

One timer (``ivr``) covers whatever the node waits for: the caller's keys, the CRM, the recording.
Every node entered and every input is recorded (:class:`~engine.core.ivr_messages.Step`), so the
call's path is in the database. A runtime guard stops a call that passes through more than
``MAX_HOPS`` nodes without the caller pressing anything (check-config refuses such loops; this is
the belt to its braces).

The events and commands are engine/core/ivr_messages.py's; how a verb's strings read at run time
(variables filled in, say-items made media URIs, a CRM answer's values) is engine/core/ivr_text.py's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum
from types import MappingProxyType
from zoneinfo import ZoneInfo

from engine.core.ivrtree import (Branch, Callback, Gather, Goto, Hangup, Hours, Http, IvrTree, Language, Menu, Play, QueueTo,
                      SetVars, Survey, Transfer, Voicemail)
from engine.core.channel import Dtmf, PlaybackDone, StopPlayback
from engine.core.channel import Play as PlayMedia
from engine.core.common import CancelTimer, Command, Event, Row, StartTimer, TimerFired, Transitions, stay
from engine.core.hours import open_at
from engine.core.ivr_messages import (CallbackWanted, HttpCall, HttpDone, IvrHangup, RecordingDone, RecordMessage,
                                      SetLanguage, Step, SurveyAnswer, ToQueue, TransferTo)
from engine.core.ivr_text import as_int, fill, lookup, media

__all__ = ["Ivr", "Stage", "handle", "is_open", "start"]

MAX_HOPS = 100
PROMPT_TIMEOUT = 300.0
CALLBACK_TYPE_TIMEOUT = 15.0
BEEP = "sound:beep"


class Stage(Enum):
    PROMPT = "prompt"      # saying something; then a next step
    COLLECT = "collect"    # keys wanted (during and after the prompt)
    WAIT = "wait"          # the CRM
    RECORD = "record"      # the caller's message
    DONE = "done"          # an outcome was given to the call


@dataclass(frozen=True, slots=True)
class Ivr:
    library: Mapping[str, IvrTree]   # every tree, as they were when the call began
    tree: str
    node: str
    variables: Mapping[str, str]
    stage: Stage = Stage.PROMPT
    tries: int = 0
    digits: str = ""
    question: int = 0
    seq: int = 0
    playing: bool = False
    hops: int = 0
    then: str = ""  # what PROMPT does when the prompt ends: "next", "hangup", "record", "collect"
    ahead: str = ""  # keys pressed to skip a prompt, kept for the next node that listens

    @property
    def current(self) -> IvrTree:
        return self.library[self.tree]

    @property
    def playback_id(self) -> str:
        return f"{self.variables.get('call_id', 'ivr')}-i{self.seq}"


# -- helpers ---------------------------------------------------------------------------------------
def is_open(hours: Hours, now: float) -> bool:
    return open_at(hours.week, ZoneInfo(hours.timezone), now)


# -- entering nodes --------------------------------------------------------------------------------
def start(library: Mapping[str, IvrTree], tree: str, variables: Mapping[str, str], now: float,
          node: str | None = None) -> tuple[Ivr, list[Command]]:
    t = library[tree]
    ivr = Ivr(library=library, tree=tree, node=node or t.tree.start, variables=MappingProxyType(dict(variables)))
    return _enter(ivr, ivr.node, now)


def _step(ivr: Ivr, now: float, input: str = "", result: str = "") -> Step:
    return Step(ivr.tree, ivr.current.version, ivr.node, ivr.current.node(ivr.node).verb, now, input, result)


def _say(ivr: Ivr, items: tuple[str, ...], then: str, now: float,
         stage: Stage = Stage.PROMPT) -> tuple[Ivr, list[Command]]:
    """Say ``items``, then do ``then``; with nothing to say, do it now. A prompt that never ends
    (Asterisk lost it) is given up after PROMPT_TIMEOUT."""
    played = media(items, ivr.variables)
    ivr = replace(ivr, stage=stage, then=then, seq=ivr.seq + 1, playing=bool(played))
    if not played:
        return _after_prompt(ivr, now)
    return ivr, [PlayMedia(played, ivr.playback_id), StartTimer("ivr", now + PROMPT_TIMEOUT)]


def _enter(ivr: Ivr, name: str, now: float, tree: str | None = None) -> tuple[Ivr, list[Command]]:
    """Enter a node; if it listens and keys were typed ahead, they are its first input."""
    ivr, cmds = _enter_node(ivr, name, now, tree)
    while ivr.ahead and ivr.stage is Stage.COLLECT:
        key, ivr = ivr.ahead[0], replace(ivr, ahead=ivr.ahead[1:])
        ivr, more = _key(ivr, Dtmf(key), now)
        cmds += more
    return ivr, cmds


def _enter_node(ivr: Ivr, name: str, now: float, tree: str | None = None) -> tuple[Ivr, list[Command]]:
    ivr = replace(ivr, tree=tree or ivr.tree, node=name, tries=0, digits="", question=0, hops=ivr.hops + 1)
    if ivr.hops > MAX_HOPS:
        return replace(ivr, stage=Stage.DONE), [_step(ivr, now, result="loop"), CancelTimer("ivr"), IvrHangup()]
    node = ivr.current.node(name)
    body = node.body
    entered = _step(ivr, now)
    if isinstance(body, Play):
        then = "next" if body.next else "hangup"
        ivr, cmds = _say(ivr, body.say, then, now, Stage.COLLECT if body.barge_in else Stage.PROMPT)
    elif isinstance(body, (Menu, Gather)):
        ivr, cmds = _say(ivr, body.prompt, "collect", now, Stage.COLLECT)
    elif isinstance(body, Branch):
        return _branch(ivr, body, now, entered)
    elif isinstance(body, SetVars):
        values = {k: fill(v, ivr.variables) for k, v in body.variables.items()}
        ivr = replace(ivr, variables=MappingProxyType({**ivr.variables, **values}))
        ivr, cmds = _enter(ivr, body.next, now)
        return ivr, [entered, *cmds]
    elif isinstance(body, Language):
        ivr = replace(ivr, variables=MappingProxyType({**ivr.variables, "language": body.code}))
        more_ivr, cmds = _enter(ivr, body.next, now)
        return more_ivr, [entered, SetLanguage(body.code), *cmds]
    elif isinstance(body, Goto):
        ivr2, cmds = _enter(ivr, body.node or ivr.library[body.tree or ivr.tree].tree.start, now,
                            tree=body.tree or ivr.tree)
        return ivr2, [entered, *cmds]
    elif isinstance(body, QueueTo):
        skills = {k: as_int(fill(v, ivr.variables), 1) for k, v in body.skills.items()} or None
        after = (ivr.tree, body.after) if body.after else None
        ivr = replace(ivr, stage=Stage.DONE)
        return ivr, [entered, CancelTimer("ivr"),
                     ToQueue(body.name, as_int(fill(body.priority, ivr.variables), 0), skills, after)]
    elif isinstance(body, Transfer):
        failure = (ivr.tree, body.on_failure) if body.on_failure else None
        ivr = replace(ivr, stage=Stage.DONE)
        return ivr, [entered, CancelTimer("ivr"), TransferTo(fill(body.to, ivr.variables), body.timeout_seconds,
                                                             failure)]
    elif isinstance(body, Hangup):
        ivr, cmds = _say(ivr, body.say, "hangup", now)
    elif isinstance(body, Voicemail):
        ivr, cmds = _say(ivr, body.prompt, "record", now)
    elif isinstance(body, Callback):
        ivr, cmds = _say(ivr, (*body.prompt, "digits:{caller}"), "collect", now, Stage.COLLECT)
    elif isinstance(body, Http):
        url = fill(body.url, ivr.variables)
        data = {k: fill(v, ivr.variables) for k, v in body.body.items()}
        ivr = replace(ivr, stage=Stage.WAIT)
        return ivr, [entered, HttpCall(body.method, url, MappingProxyType(data), body.timeout_seconds),
                     StartTimer("ivr", now + body.timeout_seconds + 1.0)]
    elif isinstance(body, Survey):
        ivr, cmds = _ask(ivr, body, now)
    else:  # pragma: no cover - VERBS and this function are kept in step by the tests
        raise TypeError(f"no handler for {type(body).__name__}")
    return ivr, [entered, *cmds]


def _branch(ivr: Ivr, body: Branch, now: float, entered: Step) -> tuple[Ivr, list[Command]]:
    v = ivr.variables
    chosen = body.default
    for c in body.when:
        ok = True
        if c.variable is not None:
            value = v.get(c.variable, "")
            ok &= (c.equals is None or value == fill(c.equals, v)) and (c.matches is None or bool(re.fullmatch(c.matches, value)))
        if c.caller is not None:
            ok &= bool(re.fullmatch(c.caller, v.get("caller", "")))
        if c.dialed is not None:
            ok &= bool(re.fullmatch(c.dialed, v.get("dialed", "")))
        if c.open is not None:
            ok &= is_open(ivr.current.tree.hours[c.open], now)
        if c.closed is not None:
            ok &= not is_open(ivr.current.tree.hours[c.closed], now)
        if ok:
            chosen = c.then
            break
    ivr2, cmds = _enter(ivr, chosen, now)
    return ivr2, [replace(entered, result=chosen), *cmds]


def _ask(ivr: Ivr, survey: Survey, now: float) -> tuple[Ivr, list[Command]]:
    if ivr.question >= len(survey.questions):
        return _say(ivr, survey.thanks, "next" if survey.next else "hangup", now)
    return _say(ivr, survey.questions[ivr.question].prompt, "collect", now, Stage.COLLECT)


def _after_prompt(ivr: Ivr, now: float) -> tuple[Ivr, list[Command]]:
    """The prompt ended (or there was none): do what the node does next."""
    body = ivr.current.node(ivr.node).body
    then = ivr.then
    if then == "collect":
        wait = body.timeout_seconds if isinstance(body, (Menu, Gather, Survey)) else CALLBACK_TYPE_TIMEOUT
        return replace(ivr, stage=Stage.COLLECT, playing=False), [StartTimer("ivr", now + wait)]
    if then == "record":
        assert isinstance(body, Voicemail)
        return replace(ivr, stage=Stage.RECORD, playing=False), [
            RecordMessage(body.max_seconds, body.beep), StartTimer("ivr", now + body.max_seconds + 10.0)]
    if then == "next":
        nxt = getattr(body, "next", None)
        if nxt:
            return _enter(replace(ivr, playing=False), nxt, now)
    return replace(ivr, stage=Stage.DONE, playing=False), [CancelTimer("ivr"), IvrHangup()]


# -- events ----------------------------------------------------------------------------------------
def _playback_done(ivr: Ivr, e: PlaybackDone, now: float):
    if e.playback_id != ivr.playback_id or not ivr.playing:
        return ivr, []
    return _after_prompt(replace(ivr, hops=0), now)  # time passed: not a busy loop


def _key(ivr: Ivr, e: Dtmf, now: float):
    if e.from_agent:
        return ivr, []
    ivr = replace(ivr, hops=0)
    cmds: list[Command] = []
    if ivr.playing:  # keys cut prompts short
        cmds.append(StopPlayback(ivr.playback_id))
        ivr = replace(ivr, playing=False)
    body = ivr.current.node(ivr.node).body
    if isinstance(body, Play):  # barge-in: straight to the next node, which gets the key
        ivr = replace(ivr, then="next" if body.next else "hangup", ahead=ivr.ahead + e.digit)
        ivr, more = _after_prompt(ivr, now)
        return ivr, [*cmds, *more]
    if isinstance(body, Menu):
        target = body.options.get(e.digit)
        if target is None:
            ivr, more = _retry(ivr, body, now, e.digit, invalid=True)
        else:
            ivr2, more = _enter(ivr, target, now)
            more = [_step(ivr, now, e.digit, target), *more]
            ivr = ivr2
        return ivr, [*cmds, *more]
    if isinstance(body, Gather):
        ivr, more = _gather_key(ivr, body, e.digit, now)
        return ivr, [*cmds, *more]
    if isinstance(body, Survey):
        ivr, more = _survey_key(ivr, body, e.digit, now)
        return ivr, [*cmds, *more]
    if isinstance(body, Callback):
        ivr, more = _callback_key(ivr, body, e.digit, now)
        return ivr, [*cmds, *more]
    return ivr, cmds


def _gather_key(ivr: Ivr, body: Gather, digit: str, now: float):
    if digit == body.terminator and body.terminator:
        return _gathered(ivr, body, now)
    if digit in "*#":  # a key that is not a digit here: the input is not valid
        return _retry(ivr, body, now, ivr.digits + digit, invalid=True)
    ivr = replace(ivr, digits=ivr.digits + digit)
    if len(ivr.digits) >= body.max_digits:
        return _gathered(ivr, body, now)
    return ivr, [StartTimer("ivr", now + body.timeout_seconds)]


def _gathered(ivr: Ivr, body: Gather, now: float):
    typed = ivr.digits
    if not typed or (body.pattern is not None and not re.fullmatch(body.pattern, typed)):
        return _retry(ivr, body, now, typed, invalid=True)
    ivr = replace(ivr, variables=MappingProxyType({**ivr.variables, body.variable: typed}))
    step = _step(ivr, now, typed, body.next)
    ivr, cmds = _enter(ivr, body.next, now)
    return ivr, [step, *cmds]


def _retry(ivr: Ivr, body: Menu | Gather, now: float, typed: str, *, invalid: bool):
    tries = ivr.tries + 1
    step = _step(ivr, now, typed, "invalid" if invalid else "timeout")
    if tries > body.retries:
        if body.after_retries:
            ivr, cmds = _enter(ivr, body.after_retries, now)
            return ivr, [step, *cmds]
        return replace(ivr, stage=Stage.DONE), [step, CancelTimer("ivr"), IvrHangup()]
    ivr = replace(ivr, tries=tries, digits="")
    ivr, cmds = _say(ivr, (*(body.invalid if invalid else body.timeout), *body.prompt), "collect", now,
                     Stage.COLLECT)
    return ivr, [step, *cmds]


def _survey_key(ivr: Ivr, body: Survey, digit: str, now: float):
    if digit not in "12345":
        return ivr, []  # ignored: the question is still open
    q = body.questions[ivr.question]
    answer = SurveyAnswer(q.name, int(digit), now)
    ivr2, cmds = _ask(replace(ivr, question=ivr.question + 1), body, now)
    return ivr2, [answer, _step(ivr, now, digit, q.name), CancelTimer("ivr"), *cmds]


def _callback_key(ivr: Ivr, body: Callback, digit: str, now: float):
    if ivr.digits == "" and digit == "1":  # confirm the number we said
        return _callback_done(ivr, body, ivr.variables.get("caller", ""), now)
    if digit == "#":
        return _callback_done(ivr, body, ivr.digits, now)
    if digit.isdigit() and len(ivr.digits) < 20:
        return replace(ivr, digits=ivr.digits + digit), [StartTimer("ivr", now + CALLBACK_TYPE_TIMEOUT)]
    return ivr, []


def _callback_done(ivr: Ivr, body: Callback, number: str, now: float):
    step = _step(ivr, now, number, "callback")
    ivr = replace(ivr, digits="", variables=MappingProxyType({**ivr.variables, "callback_number": number}))
    if not re.fullmatch(r"\+?[0-9]{3,20}", number):
        ivr, cmds = _say(ivr, ("pbx-invalid",), "next" if body.next else "hangup", now)
        return ivr, [replace(step, result="invalid number"), *cmds]
    wanted = CallbackWanted(number, body.queue, now)
    ivr, cmds = _say(ivr, ("auth-thankyou",), "next" if body.next else "hangup", now)
    return ivr, [step, wanted, *cmds]


def _timeout(ivr: Ivr, e: TimerFired, now: float):
    if e.key != "ivr":
        return ivr, []
    body = ivr.current.node(ivr.node).body
    if ivr.stage is Stage.COLLECT:
        if isinstance(body, Gather) and ivr.digits:
            return _gathered(ivr, body, now)  # typed something, then stopped: that is the input
        if isinstance(body, (Menu, Gather)):
            return _retry(ivr, body, now, "", invalid=False)
        if isinstance(body, Survey):
            q = body.questions[ivr.question]
            ivr2, cmds = _ask(replace(ivr, question=ivr.question + 1), body, now)
            return ivr2, [SurveyAnswer(q.name, None, now), _step(ivr, now, "", "no answer"), *cmds]
        if isinstance(body, Callback):
            return _callback_done(ivr, body, ivr.digits or ivr.variables.get("caller", ""), now)
        return _after_prompt(ivr, now)
    if ivr.stage is Stage.WAIT:
        return _http_failed(ivr, now, "timeout")
    if ivr.stage is Stage.RECORD:
        return _recorded(ivr, RecordingDone(False), now)
    return ivr, []


def _http_done(ivr: Ivr, e: HttpDone, now: float):
    body = ivr.current.node(ivr.node).body
    assert isinstance(body, Http)
    if not e.ok:
        return _http_failed(ivr, now, e.detail or "failed")
    values = {var: v for var, path in body.assign.items() if (v := lookup(e.data, path)) is not None}
    ivr = replace(ivr, variables=MappingProxyType({**ivr.variables, **values}))
    step = _step(ivr, now, "", "ok " + " ".join(f"{k}={v}" for k, v in sorted(values.items())))
    ivr, cmds = _enter(ivr, body.next, now)
    return ivr, [step, CancelTimer("ivr"), *cmds]


def _http_failed(ivr: Ivr, now: float, why: str):
    body = ivr.current.node(ivr.node).body
    assert isinstance(body, Http)
    step = _step(ivr, now, "", f"failed: {why}")
    ivr, cmds = _enter(ivr, body.on_failure, now)
    return ivr, [step, CancelTimer("ivr"), *cmds]


def _recorded(ivr: Ivr, e: RecordingDone, now: float):
    body = ivr.current.node(ivr.node).body
    assert isinstance(body, Voicemail)
    step = _step(ivr, now, "", "recorded" if e.ok else "no message")
    if body.next:
        ivr, cmds = _enter(ivr, body.next, now)
        return ivr, [step, CancelTimer("ivr"), *cmds]
    ivr, cmds = _say(ivr, ("auth-thankyou", "goodbye"), "hangup", now)
    return ivr, [step, CancelTimer("ivr"), *cmds]


def _ignore(ivr: Ivr, e: Event, now: float):
    return ivr, []


def _type_ahead(ivr: Ivr, e: Dtmf, now: float):
    # keys pressed while the CRM is asked: the next node that listens gets them
    if e.from_agent or len(ivr.ahead) >= 32:
        return ivr, []
    return replace(ivr, ahead=ivr.ahead + e.digit), []


S = Stage
_ANY = tuple(Stage)   # entering a node (directly, or once a prompt, input, request or recording ends) lands anywhere
TABLE: Transitions[Ivr] = Transitions("ivr", lambda i: i.stage, {
    **{(s, PlaybackDone): Row(_ANY, _playback_done) for s in (S.PROMPT, S.COLLECT)},
    (S.COLLECT, Dtmf): Row(_ANY, _key),
    (S.WAIT, Dtmf): Row((S.WAIT,), _type_ahead),
    **stay(_ignore, (S.PROMPT, S.RECORD, S.DONE), (Dtmf,)),
    **{(s, TimerFired): Row(_ANY, _timeout) for s in (S.COLLECT, S.WAIT, S.RECORD)},
    **stay(_timeout, (S.PROMPT,), (TimerFired,)),   # not acted on: a prompt Asterisk lost waits for the call's max
    (S.WAIT, HttpDone): Row(_ANY, _http_done),
    (S.RECORD, RecordingDone): Row(_ANY, _recorded),
    **stay(_ignore, (S.WAIT, S.RECORD, S.DONE), (PlaybackDone,)),
    **stay(_ignore, (S.PROMPT, S.COLLECT, S.RECORD, S.DONE), (HttpDone,)),
    **stay(_ignore, (S.PROMPT, S.COLLECT, S.WAIT, S.DONE), (RecordingDone,)),
    **stay(_ignore, (S.DONE,), (TimerFired,)),
})


def handle(ivr: Ivr, event: Event, now: float) -> tuple[Ivr, list[Command]]:
    return TABLE.handle(ivr, event, now)
