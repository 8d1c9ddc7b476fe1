"""The daemon's JSON lines: one per call, time, level and event first, exceptions as text."""

from __future__ import annotations

import json
import re
import time

import structlog

from engine.shared import logsetup
from engine.shared.logsetup import configure, get_logger


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_json_lines_have_the_head_first_and_the_bound_context(tmp_path):
    out = tmp_path / "log.jsonl"
    with open(out, "w") as stream:
        configure("info", "json", stream, cache=False)
        structlog.contextvars.bind_contextvars(call_id="c-1")
        try:
            get_logger("calls").info("transition", before="a", on="E", after="b")
            get_logger("calls").warning("odd", text='quote " and \n newline', n=1.5)
            get_logger("calls").debug("hidden")
        finally:
            structlog.contextvars.clear_contextvars()
    first, second = _lines(out)
    assert list(first)[:3] == ["timestamp", "level", "event"]
    assert first == {**first, "level": "info", "event": "transition", "component": "calls", "call_id": "c-1",
                     "before": "a", "on": "E", "after": "b"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", first["timestamp"])
    assert second["level"] == "warning" and second["text"] == 'quote " and \n newline' and second["n"] == 1.5


def test_an_exception_is_logged_as_text_at_error(tmp_path):
    out = tmp_path / "log.jsonl"
    with open(out, "w") as stream:
        configure("info", "json", stream, cache=False)
        try:
            raise KeyError("channel")
        except KeyError:
            get_logger("ari").exception("ari.event_failed", type="Explode")
    (line,) = _lines(out)
    assert line["level"] == "error" and line["event"] == "ari.event_failed"
    assert "KeyError: 'channel'" in line["exception"] and "Traceback" in line["exception"]


def test_the_stamp_is_the_iso_time_in_utc():
    now = time.time()
    assert logsetup._stamp(now) == time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int((now % 1) * 1e6):06d}Z"
    assert logsetup._stamp(1796407459.0) == "2026-12-04T18:04:19.000000Z"


def test_a_stream_without_a_file_descriptor_gets_the_lines_too():
    import io

    stream = io.StringIO()
    configure("info", "json", stream, cache=False)
    get_logger("x").info("hello", k="v")
    assert json.loads(stream.getvalue())["k"] == "v"
