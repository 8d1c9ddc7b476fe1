"""tools/bench_transfer.py's reading of sipp's message logs (pure logic; the benchmark runs on the stack)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# A trace as sipp 3.6 writes it with -trace_msg (cut short).
TRACE = """\
----------------------------------------------- 2026-12-06 22:12:28.970916
UDP message sent (634 bytes):

REFER sip:asterisk@127.0.0.1:25060 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-2394-2-0
CSeq: 101 REFER

----------------------------------------------- 2026-12-06 22:12:28.972331
UDP message received [316] bytes :

SIP/2.0 202 Accepted
CSeq: 101 REFER

----------------------------------------------- 2026-12-06\t22:12:29.473912
UDP message received [434] bytes :

BYE sip:127.0.0.1:26001 SIP/2.0
CSeq: 2626 BYE
"""


def _tool():
    spec = importlib.util.spec_from_file_location("bench_transfer_tool", REPO / "tools" / "bench_transfer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_message_of_the_trace_is_its_time_its_way_and_its_first_line(tmp_path):
    log = tmp_path / "agent1.log"
    log.write_text(TRACE)
    got = _tool().messages(log)
    assert [(way, line) for _, way, line in got] == [("sent", "REFER sip:asterisk@127.0.0.1:25060 SIP/2.0"),
                                                      ("received", "SIP/2.0 202 Accepted"),
                                                      ("received", "BYE sip:127.0.0.1:26001 SIP/2.0")]
    assert round((got[2][0] - got[0][0]) * 1000, 3) == 502.996


def test_percentiles_pick_the_order_statistic():
    tool = _tool()
    assert tool.percentile([5.0, 1.0, 3.0], 0.99) == 5.0 and tool.percentile([5.0, 1.0, 3.0], 0.0) == 1.0
