"""Call recordings: started on a call's bridge, stopped with the call, their metadata stored.

Asterisk writes the file (``<recording dir>/<name>.<format>``); we store its metadata in
``recordings``: call, agent, queue, direction, times, size, and the duration read from the WAV
header (Asterisk's own RecordingFinished rounds it down to whole seconds).
"""

from __future__ import annotations

import struct
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

from engine.adapters.ari import AriClient, AriError, path
from engine.store.db import Write, Writer
from engine.shared.logsetup import get_logger

__all__ = ["Recordings", "wav_duration"]

log = get_logger("recordings")
_NS = uuid.UUID("3f1d2c64-8f0e-4c84-a1b5-0d6f2f7c9a10")


def wav_duration(file: Path) -> float | None:
    """Seconds of audio in a PCM WAV file, from its header (data size / byte rate). If the data
    size was never written (a crash mid-recording), it is taken from the file size."""
    try:
        with file.open("rb") as f:
            head = f.read(4096)
            size = file.stat().st_size
    except OSError:
        return None
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, byte_rate, data_size, data_start = 12, None, None, None
    while pos + 8 <= len(head):
        chunk, length = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
        if chunk == b"fmt " and pos + 20 <= len(head):
            byte_rate = struct.unpack("<I", head[pos + 16:pos + 20])[0]
        if chunk == b"data":
            data_size, data_start = length, pos + 8
            break
        pos += 8 + length + (length & 1)
    if not byte_rate or data_start is None:
        return None
    if not data_size or data_start + data_size > size:
        data_size = size - data_start
    return data_size / byte_rate


@dataclass(slots=True)
class _Active:
    call_id: str
    agent_id: str
    queue: str
    bridge_id: str
    started_at: float
    kind: str = "call"
    done: Callable[[bool, float | None], None] | None = None  # told when the file is complete
    adopted: bool = False   # followed after a restart: it began before started_at


class Recordings:
    def __init__(self, *, ari: AriClient, writer: Writer, directory: Path | None, fmt: str) -> None:
        self.ari = ari
        self.writer = writer
        self.directory = directory
        self.format = fmt
        self.active: dict[str, _Active] = {}

    def _file(self, name: str) -> Path | None:
        file = self.directory / f"{name}.{self.format}" if self.directory else None
        return file if file is not None and file.is_file() else None

    async def start(self, bridge_id: str, call_id: str, agent_id: str, queue: str) -> str:
        """Record the bridge; returns the recording's name. Raises AriError if Asterisk refuses."""
        n = len([a for a in self.active.values() if a.call_id == call_id]) + 1
        while self._file(f"{call_id}-{n}") is not None:   # never over a file an earlier run made
            n += 1
        name = f"{call_id}-{n}"
        await self.ari.post(path("bridges", bridge_id, "record"), name=name, format=self.format,
                            ifExists="overwrite", beep=False, terminateOn="none")
        self.active[name] = _Active(call_id, agent_id, queue, bridge_id, time.time())
        log.info("recording.started", call_id=call_id, agent_id=agent_id, name=name)
        return name

    async def adopt(self, bridge_id: str, call_id: str, agent_id: str, queue: str) -> int:
        """After a restart: follow the call's recordings that are still running, and store those
        that ended while no engine ran (their file is there); how many are still running."""
        running = 0
        for n in range(1, 6):
            name = f"{call_id}-{n}"
            try:
                live = await self.ari.get(path("recordings", "live", name))
            except AriError:
                file = self._file(name)
                if file is None:
                    break
                self.active[name] = _Active(call_id, agent_id, queue, bridge_id, time.time(), adopted=True)
                self.finished(name, ended=file.stat().st_mtime)   # its row may exist: the same id
                continue
            if live.get("state") in ("recording", "paused", "queued"):
                self.active[name] = _Active(call_id, agent_id, queue, bridge_id, time.time(), adopted=True)
                log.info("recording.adopted", call_id=call_id, name=name)
                running += 1
        return running

    async def stop_for(self, call_id: str) -> None:
        """Stop the call's recordings (before its bridge goes) and store their metadata."""
        for name in [n for n, a in self.active.items() if a.call_id == call_id]:
            try:
                await self.ari.post(path("recordings", "live", name, "stop"))
            except AriError as exc:
                if not exc.gone:
                    log.warning("recording.stop_failed", name=name, error=str(exc))
            self.finished(name)

    def on_event(self, event: dict[str, Any]) -> None:
        """RecordingFinished / RecordingFailed: a recording that ended by itself."""
        name = (event.get("recording") or {}).get("name", "")
        if name in self.active:
            self.finished(name, failed=event.get("type") == "RecordingFailed")

    async def voicemail(self, channel_id: str, call_id: str, max_seconds: float, beep: bool,
                        done: Callable[[bool, float | None], None]) -> str:
        """Record a caller's message on their channel (``#`` ends it); ``done(ok, seconds)`` when over."""
        name = f"{call_id}-vm-{len([a for a in self.active.values() if a.call_id == call_id]) + 1}"
        await self.ari.post(path("channels", channel_id, "record"), name=name, format=self.format,
                            maxDurationSeconds=int(max_seconds), maxSilenceSeconds=10, beep=beep,
                            terminateOn="#", ifExists="overwrite")
        self.active[name] = _Active(call_id, "", "", "", time.time(), kind="voicemail", done=done)
        log.info("recording.started", call_id=call_id, name=name, kind="voicemail")
        return name

    def finished(self, name: str, failed: bool = False, ended: float | None = None) -> None:
        a = self.active.pop(name, None)
        if a is None:
            return
        file = self.directory / f"{name}.{self.format}" if self.directory else None
        duration = wav_duration(file) if file is not None and self.format == "wav" else None
        size = file.stat().st_size if file is not None and file.exists() else None
        ended = ended or time.time()
        started = ended - duration if a.adopted and duration is not None else a.started_at   # the file knows
        log.info("recording.finished", call_id=a.call_id, name=name, duration=duration, size=size, failed=failed)
        self.writer.submit(Write("recording", (
            str(uuid.uuid5(_NS, name)), a.call_id, name, self.format, str(file) if file else None, "inbound",
            a.agent_id or None, a.queue or None, started, ended, duration, size, a.kind)))
        if a.done is not None:
            a.done(not failed and (size is None or size > 44), duration)  # 44: a WAV header and no audio
