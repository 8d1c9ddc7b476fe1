"""What the face (HTTP API, /metrics, the wallboard, the live status) may read of a running engine.

The face depends on this interface, not on the class that wires the engine (engine/app.py), so
the layers hold: the HTTP layer imports the runtime, never the wiring above it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from engine.config.model import Config
    from engine.runtime.acdservice import AcdService
    from engine.runtime.calls import CallManager
    from engine.runtime.dialer import Dialer
    from engine.runtime.phones import Phones
    from engine.store.db import Database, Writer

__all__ = ["EngineView"]


class EngineView(Protocol):
    config: Config
    config_path: Path | None
    db: Database
    writer: Writer
    acd: AcdService | None
    calls: CallManager | None
    dialer: Dialer | None
    phones: Phones | None
    http_port: int | None

    def health(self) -> dict[str, Any]:
        """Whether the engine is fit to serve (Asterisk, the database, the journal)."""
        ...
