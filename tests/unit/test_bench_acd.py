"""tools/bench_acd.py's figures from sipp's logs (pure logic; the benchmark itself runs on the stack)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))


def _tool():
    spec = importlib.util.spec_from_file_location("bench_acd_tool", REPO / "tools" / "bench_acd.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _tool()
box = bench.B


def traffic(**kw) -> object:
    base = dict(invited={}, answered={}, offers=[], connected={}, freed=[], callers_failed=0,
                invite_retransmissions=0, agent_sipp_failed=0)
    return box.Traffic(**{**base, **kw})


def test_an_idle_gap_counts_only_while_a_caller_waits_unoffered():
    # a0 frees at 10.0 while caller 3 waits (invited 9.0, offered 10.5): gap 500 ms.
    # a1 frees at 20.0 with nobody waiting, its next offer at 30.0: not a gap.
    t = traffic(invited={"1": 0.0, "2": 0.0, "3": 9.0, "4": 30.0},
                offers=[("a0", "1", 0.01), ("a1", "2", 0.02), ("a0", "3", 10.5), ("a1", "4", 30.0)],
                connected={"1": ("a0", 0.02), "2": ("a1", 0.03), "3": ("a0", 10.51), "4": ("a1", 30.01)},
                freed=[("a0", "1", 10.0), ("a1", "2", 20.0)])
    m = bench.measure(t)
    assert m["idle_gaps"] == 1 and m["idle_gap_p50_ms"] == 500.0
    assert m["calls_answered"] == 4
    assert m["wait_p99_ms"] == 1510.0            # caller 3: invited 9.0, connected 10.51
    assert m["calls_per_second"] == round(4 / 30.01, 2)


def test_a_caller_still_being_set_up_is_not_waiting():
    # caller 2 was invited 20 ms before a0 freed: set-up, not a queue; a0's next offer is no gap
    t = traffic(invited={"1": 0.0, "2": 9.98}, offers=[("a0", "1", 0.01), ("a1", "2", 9.99), ("a0", "3", 12.0)],
                connected={"1": ("a0", 0.02), "2": ("a1", 10.0)}, freed=[("a0", "1", 10.0)])
    assert bench.measure(t)["idle_gaps"] == 0


def test_calls_no_agent_took_are_not_answered():
    t = traffic(invited={"1": 0.0, "2": 1.0}, answered={"1": 0.05, "2": 1.05},
                offers=[("a0", "1", 0.1)], connected={"1": ("a0", 0.2)})
    m = bench.measure(t)
    assert m["calls_offered"] == 2 and m["calls_answered"] == 1
    assert m["answer_p50_ms"] == 50.0
    assert m["idle_gaps"] == 0 and m["idle_gap_p50_ms"] is None


def test_sipp_logs_are_read_by_kind(tmp_path):
    callers, agents = tmp_path / "c.log", tmp_path / "a.log"
    callers.write_text("invite 991 1796407459.000000 654321.000000\nanswered 991 1796407459.000000 656886.000000\n"
                       "bye 991 1796407459.000000 963282.000000\n")
    agents.write_text("offer bench0001 991 1796407459.000000 655571.000000\n"
                      "connected bench0001 991 1796407459.000000 656970.000000\n"
                      "free bench0001 991 1796407459.000000 962086.000000\n")
    t = box.read_traffic(callers, agents, 3, 0, 0)
    assert t.invited == {"991": 1796407459.654321}
    assert t.connected == {"991": ("bench0001", 1796407459.65697)}
    assert t.freed == [("bench0001", "991", 1796407459.962086)] and t.invite_retransmissions == 3


def test_app_queue_is_set_up_as_the_engine_queue_is():
    conf = box.queues_conf(3, retry=1)
    for line in ("ringinuse = no", "wrapuptime = 0", "strategy = leastrecent", "retry = 1",
                 "member => PJSIP/bench0003"):
        assert line in conf
    assert "bench0004" not in conf
    assert box.endpoints_conf(2, 26555).count("contact = sip:bench") == 2
