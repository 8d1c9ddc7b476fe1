"""structlog set-up: JSON lines for daemons, readable lines on a terminal.

Context (``call_id``, ``channel_id``, later ``agent_id`` and ``campaign_id``) is bound with
contextvars at the start of each call or agent session and merged into every line logged inside
it. Libraries that log through the standard library (aiohttp, asyncpg, panoramisk) are rendered
the same way.
"""

from __future__ import annotations

import logging
import sys
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
        # ConsoleRenderer formats exceptions itself; JSON needs them turned into a string first.
        processors=[*shared, structlog.processors.StackInfoRenderer(),
                    *([structlog.processors.format_exc_info, _head_first] if as_json else escape), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
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


def _head_first(logger: object, method: str, event: dict) -> dict:
    """JSON lines read better with time, level and event first."""
    head = {k: event.pop(k) for k in ("timestamp", "level", "event") if k in event}
    return {**head, **event}


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(component=name)
