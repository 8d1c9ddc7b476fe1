"""The short fault run (tools/faults.py has the long one): SIGKILL at random moments under
inbound and under outbound load, with PostgreSQL there and without it; nothing lost, nothing
twice, nobody stuck. The books (tools/faultbooks.py) include the webhooks a CRM was sent, the
recordings of answered calls and how long each conversation lasted."""

from __future__ import annotations

import pytest

from tools.faults import run_fault


@pytest.mark.one_loop
@pytest.mark.parametrize("fault", ["sigkill", "sigkill-without-db"])
async def test_sigkill_under_load_loses_nothing_and_counts_nothing_twice(fault):
    out = await run_fault(fault, calls=12, rate=1, kills=2, talk_ms=1500, seed=7)
    assert out.placed == 12
    assert (out.lost, out.duplicated, out.wrong_state) == (0, 0, 0), out.details
    assert out.rows == 12


@pytest.mark.one_loop
@pytest.mark.parametrize("fault", ["outbound-sigkill", "outbound-sigkill-without-db"])
async def test_sigkill_under_a_campaign_loses_no_attempt_and_dials_nobody_twice(fault):
    out = await run_fault(fault, calls=10, rate=0.6, kills=2, talk_ms=1500, seed=7)
    assert out.placed >= 10 and out.rows == out.placed   # an attempt ringing at a kill is dialled again
    assert (out.lost, out.duplicated, out.wrong_state) == (0, 0, 0), out.details
