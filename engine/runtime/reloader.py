"""SIGHUP: the new configuration is read in a worker thread; the engine serves on the old meanwhile.

Reading a configuration is CPU work (YAML, then every check), seconds for a big file: on the event
loop it would stop every call, timer and health check until it is done. So a reload is a task that
reads the file with :func:`asyncio.to_thread` and, back on the loop, hands the new configuration to
``apply`` (a plain function: nothing else runs between the swap's steps). Until then
``engine.config.model`` is the old one, whole.

- One read at a time: a SIGHUP during a read does not start a second, it asks for one more read
  after this one (the file may have changed since the first began); several fold into one.
- A file that is refused (:class:`ConfigError`: its problems at file:line:col) or a read that
  fails any other way is logged and the old configuration kept: a reload never stops the engine.
- What a file may hold is bounded (:mod:`engine.config.yamlread`, ``MAX_*`` in the config modules), so a
  read is bounded in time and memory too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from engine.config.model import Config, ConfigError, load_config
from engine.shared.logsetup import get_logger

__all__ = ["Reloader"]

log = get_logger("engine")


class Reloader:
    """One engine's reloads (see the module's docstring)."""

    def __init__(self) -> None:
        self.task: asyncio.Task[bool] | None = None
        self.again = False

    def request(self, path: Path, apply: Callable[[Config], None]) -> asyncio.Task[bool]:
        """Read ``path`` off the loop and ``apply`` it; the task says whether a new one was applied."""
        if self.task is not None and not self.task.done():
            self.again = True
            return self.task
        self.task = asyncio.get_running_loop().create_task(self._run(path, apply), name="config-reload")
        return self.task

    async def _run(self, path: Path, apply: Callable[[Config], None]) -> bool:
        applied = False
        while True:
            self.again = False
            applied = await self._once(path, apply) or applied
            if not self.again:
                return applied

    async def _once(self, path: Path, apply: Callable[[Config], None]) -> bool:
        try:
            new = await asyncio.to_thread(load_config, path)
        except ConfigError as exc:
            log.error("config.reload_rejected", file=str(path), problems=[str(p) for p in exc.problems],
                      kept="previous configuration")
            return False
        except Exception as exc:   # a bug must not stop the engine: say it, keep serving
            log.exception("config.reload_failed", file=str(path), error=f"{type(exc).__name__}: {exc}",
                          kept="previous configuration")
            return False
        for w in new.warnings():
            log.warning("config.warning", file=str(path), problem=str(w))
        try:
            apply(new)
        except Exception as exc:
            log.exception("config.reload_failed", file=str(path), error=f"{type(exc).__name__}: {exc}")
            return False
        return True
