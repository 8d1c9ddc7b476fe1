"""One Q.850 table (engine/core/causes.py) for every leg: agents' offers, IVR transfers, the
dialer's customers and callbacks' customers each read it in their own words."""

from __future__ import annotations

import pytest

from engine.core import causes

# cause -> (agent offer that rang, agent offer that never rang, dialer, callback)
EXPECTED = {
    17: ("busy", "busy", "busy", "busy"),
    18: ("no-answer", "unreachable", "no_answer", "no-answer"),
    19: ("no-answer", "unreachable", "no_answer", "no-answer"),
    102: ("no-answer", "unreachable", "no_answer", "no-answer"),
    21: ("rejected", "rejected", "no_answer", "failed"),
    58: ("codec", "codec", "failed", "failed"),
    65: ("codec", "codec", "failed", "failed"),
    79: ("codec", "codec", "failed", "failed"),
    88: ("codec", "codec", "failed", "failed"),
    1: ("unreachable", "unreachable", "invalid_number", "failed"),
    22: ("unreachable", "unreachable", "invalid_number", "failed"),
    28: ("unreachable", "unreachable", "invalid_number", "failed"),
    34: ("unreachable", "unreachable", "failed", "failed"),
    16: ("unreachable", "unreachable", "failed", "failed"),
    None: ("unreachable", "unreachable", "failed", "failed"),
    999: ("unreachable", "unreachable", "failed", "failed"),
}


@pytest.mark.parametrize("cause", list(EXPECTED))
def test_each_leg_reads_the_one_table_in_its_own_words(cause):
    got = (causes.offer_result(cause, True), causes.offer_result(cause, False), causes.dial_result(cause),
           causes.callback_result(cause))
    assert got == EXPECTED[cause]


def test_every_cause_has_its_text_and_an_unknown_one_its_number():
    assert causes.text(17) == "User busy" and causes.text(88) == "Incompatible destination"
    assert causes.text(4242) == "cause 4242"
    assert all(causes.text(code) == causes.CAUSES[code] for code in causes.CAUSES)
    assert set(causes.REASON_CAUSES.values()) - set(causes.CAUSES) == {26}   # answered elsewhere: no text needed
