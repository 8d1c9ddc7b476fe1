"""The short fault run (tools/faults.py has the long one): SIGKILL at random moments under
inbound load, with PostgreSQL there and without it; nothing lost, nothing twice, nobody stuck."""

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
