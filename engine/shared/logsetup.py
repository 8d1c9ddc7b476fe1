"""structlog set-up: JSON lines for daemons, readable lines on a terminal.

Context (``call_id``, ``channel_id``, later ``agent_id`` and ``campaign_id``) is bound with
contextvars at the start of each call or agent session and merged into every line logged inside
it. Libraries that log through the standard library (aiohttp, asyncpg, panoramisk) are rendered
the same way.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import TextIO

import structlog

from engine.shared.textsafe import printable

__all__ = ["configure", "get_logger"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None, *, cache: bool = True) -> None:
    stream = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    # JSON escapes control characters itself; on a terminal a caller's name could ring or recolour it.
    escape: list[structlog.typing.Processor] = [] if as_json else [_printable_values]
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        # JSON, the daemon's format, in one processor (_json_line: the same line as add_log_level,
        # TimeStamper, format_exc_info, the head first and JSONRenderer: 8.6 against 11.5 µs a line)
        # written with one write(2) per line. ConsoleRenderer formats exceptions itself.
        processors=([structlog.contextvars.merge_contextvars, _json_line] if as_json else
                    [*shared, structlog.processors.StackInfoRenderer(), *escape, renderer]),
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=_LineWriterFactory(stream) if as_json else structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=cache,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *escape, renderer],
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Libraries speak at WARNING and above unless we are debugging.
    root.setLevel(min(_LEVELS[level], logging.DEBUG) if level == "debug" else logging.WARNING)


def _printable_values(logger: object, method: str, event: dict) -> dict:
    return {k: printable(v) if isinstance(v, str) else v for k, v in event.items()}


_LEVEL_OF_METHOD = {"warn": "warning", "exception": "error", "critical": "critical", "fatal": "critical"}
_exc_info = structlog.processors.format_exc_info
_stack_info = structlog.processors.StackInfoRenderer()
_second = [-1, ""]   # the whole second last stamped, and its text


def _stamp(now: float) -> str:
    """``2026-12-04T18:52:09.675447Z`` (what TimeStamper(fmt="iso", utc=True) writes)."""
    whole = int(now)
    if whole != _second[0]:
        _second[0], _second[1] = whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{_second[1]}.{int((now - whole) * 1_000_000):06d}Z"


def _json_line(logger: object, method: str, event: dict) -> str:
    """The JSON line: time, level and event first, then the rest; exceptions and stacks as text."""
    if "exc_info" in event or "exception" in event:
        event = _exc_info(logger, method, event)
    if "stack_info" in event:
        event = _stack_info(logger, method, event)
    line = {"timestamp": _stamp(time.time()), "level": _LEVEL_OF_METHOD.get(method, method),
            "event": event.pop("event", None)}
    line.update(event)
    return json.dumps(line, default=repr)


class _LineWriter:
    """A line per call, in one write(2) when the stream has a file descriptor (a pipe to journald,
    a file): atomic for a line up to PIPE_BUF, and no print() or flush machinery per line."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        try:
            self._fd: int | None = stream.fileno()
            stream.flush()
        except (AttributeError, OSError, ValueError):   # io.StringIO and the like (tests)
            self._fd = None

    def msg(self, message: str) -> None:
        if self._fd is None:
            self._stream.write(message + "\n")
            self._stream.flush()
            return
        data = (message + "\n").encode("utf-8", "backslashreplace")
        while data:
            try:
                written = os.write(self._fd, data)
            except InterruptedError:
                continue
            except OSError:   # the log's reader is gone: nothing to do about it here
                return
            data = data[written:]

    log = debug = info = warn = warning = error = err = critical = exception = fatal = failure = msg


class _LineWriterFactory:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def __call__(self, *args: object) -> _LineWriter:
        return _LineWriter(self._stream)


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(component=name)
