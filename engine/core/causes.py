"""Q.850 hang-up causes: one table for every leg the engine places or takes.

Asterisk reports why a channel ended with an ITU-T Q.850 cause code. Each code here has its text
and what it says about a leg that ended *before it was answered* (:class:`Unanswered`). Every
originated leg reads this one table (the leg machine, engine/core/leg.py, hands each owner the cause
and whether it rang), each in its own words:

- an agent's offer (:func:`offer_result`): ``busy``, ``codec``, ``rejected``, ``no-answer`` (only
  if it rang: Asterisk gives a phone that never answered the INVITE the same 19 as one that rang
  out), else ``unreachable``;
- a customer the dialer called (:func:`dial_result`): ``busy``, ``no_answer`` (a rejection
  included: the person may answer next time), ``invalid_number``, else ``failed``;
- a callback's customer (:func:`callback_result`): ``busy``, ``no-answer``, else ``failed``;
- an IVR transfer: as an agent's offer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["CAUSES", "REASON_CAUSES", "Unanswered", "callback_result", "dial_result", "offer_result", "text",
           "unanswered"]


class Unanswered(Enum):
    """What a cause says about a leg that ended before the far end answered."""

    BUSY = "busy"
    NO_ANSWER = "no_answer"          # nobody answered (or the phone never said it rang)
    REJECTED = "rejected"            # the far end declined
    CODEC = "codec"                  # no media in common (SIP 488, 606, 415)
    INVALID_NUMBER = "invalid_number"
    UNREACHABLE = "unreachable"      # anything else: not there, congestion, failure


@dataclass(frozen=True, slots=True)
class Cause:
    code: int
    text: str
    unanswered: Unanswered = Unanswered.UNREACHABLE


_TABLE = (
    Cause(1, "Unallocated (unassigned) number", Unanswered.INVALID_NUMBER),
    Cause(3, "No route to destination"),
    Cause(16, "Normal Clearing"),
    Cause(17, "User busy", Unanswered.BUSY),
    Cause(18, "No user responding", Unanswered.NO_ANSWER),
    Cause(19, "User alerting, no answer", Unanswered.NO_ANSWER),
    Cause(21, "Call Rejected", Unanswered.REJECTED),
    Cause(22, "Number changed", Unanswered.INVALID_NUMBER),
    Cause(27, "Destination out of order"),
    Cause(28, "Invalid number format", Unanswered.INVALID_NUMBER),
    Cause(31, "Normal, unspecified"),
    Cause(34, "Circuit/channel congestion"),
    Cause(38, "Network out of order"),
    Cause(41, "Temporary failure"),
    Cause(42, "Switching equipment congestion"),
    Cause(58, "Bearer capability not available", Unanswered.CODEC),       # SIP 488, 606
    Cause(65, "Bearer capability not implemented", Unanswered.CODEC),
    Cause(79, "Service or option not implemented", Unanswered.CODEC),     # SIP 415
    Cause(88, "Incompatible destination", Unanswered.CODEC),
    Cause(102, "Recovery on timer expiry", Unanswered.NO_ANSWER),
    Cause(127, "Interworking, unspecified"),
)
_BY_CODE = {c.code: c for c in _TABLE}
CAUSES = {c.code: c.text for c in _TABLE}
# ARI's hang-up ``reason`` values and the cause Asterisk sets for each.
REASON_CAUSES = {"normal": 16, "busy": 17, "no_answer": 19, "congestion": 34, "answered_elsewhere": 26}


def text(cause: int) -> str:
    return CAUSES.get(cause, f"cause {cause}")


def unanswered(cause: int | None) -> Unanswered:
    found = _BY_CODE.get(cause) if cause is not None else None
    return found.unanswered if found is not None else Unanswered.UNREACHABLE


def offer_result(cause: int | None, rang: bool) -> str:
    """An agent's leg (or an IVR transfer) that ended before the answer."""
    kind = unanswered(cause)
    if kind is Unanswered.NO_ANSWER:
        return "no-answer" if rang else "unreachable"
    if kind in (Unanswered.BUSY, Unanswered.CODEC, Unanswered.REJECTED):
        return kind.value
    return "unreachable"


def dial_result(cause: int | None) -> str:
    """A customer the dialer called who did not answer."""
    kind = unanswered(cause)
    if kind in (Unanswered.NO_ANSWER, Unanswered.REJECTED):
        return "no_answer"
    if kind in (Unanswered.BUSY, Unanswered.INVALID_NUMBER):
        return kind.value
    return "failed"


def callback_result(cause: int | None) -> str:
    """A callback's customer who did not answer (the callback machine's words)."""
    result = offer_result(cause, True)
    return result if result in ("busy", "no-answer") else "failed"
