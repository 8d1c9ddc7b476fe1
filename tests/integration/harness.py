"""What the integration tests drive: the real stack (from .run/stack.env), sipp, the engine.

Nothing here is a fake: Asterisk, PostgreSQL and sipp are the ones `make stack-up` started.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from engine.app import Engine
from engine.config.model import Config, load_config

REPO = Path(__file__).resolve().parents[2]
SIPP_DIR = REPO / "tests" / "sipp"


def stack_env() -> dict[str, str]:
    path = Path(os.environ.get("CALLCENTER_STACK_ENV", REPO / ".run" / "stack.env"))
    if not path.exists():
        raise RuntimeError(f"{path} is missing: the integration tests need the real stack (make stack-up)")
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            parsed = shlex.split(value)
            env[key.strip()] = parsed[0] if parsed else ""
    return env


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@asynccontextmanager
async def fresh_database(server_dsn: str) -> AsyncIterator[str]:
    """A new empty database on the stack's server, dropped afterwards."""
    name = f"cc_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield with_database(server_dsn, name)
    finally:   # a new connection: the server may have been restarted meanwhile (tools/faults.py)
        admin = await asyncpg.connect(server_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def rows(dsn: str, sql: str, *args) -> list[asyncpg.Record]:
    """One query on the test's database, on a connection of its own."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def journalled(state_dir: Path) -> list[dict]:
    """The writes an engine left in its journal (engine/journal.py), oldest first."""
    import json

    return [json.loads(line) for f in sorted((state_dir / "journal").glob("*.jsonl"))
            for line in f.read_text().splitlines() if line.strip()]


def engine_config(stack: dict[str, str], dsn: str, state_dir: Path, **changes: object) -> Config:
    """examples/callcenter.yaml, as a user would run it on the stack, with a test database."""
    env = {**stack, "CALLCENTER_DSN": dsn, "CALLCENTER_STATE_DIR": str(state_dir), "CALLCENTER_HTTP_PORT": "0"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        cfg = load_config(REPO / "examples" / "callcenter.yaml")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return replace(cfg, **changes) if changes else cfg


@asynccontextmanager
async def running_without_database(engine: Engine) -> AsyncIterator[Engine]:
    """Run an engine whose database cannot be reached: wait until it is up and on ARI."""
    task = asyncio.create_task(engine.run())
    try:
        async with asyncio.timeout(20):
            await engine.started.wait()
            assert engine.ari is not None
            await engine.ari.connected.wait()
        yield engine
    finally:
        engine.stop.set()
        async with asyncio.timeout(30):
            await task


@asynccontextmanager
async def running(engine: Engine) -> AsyncIterator[Engine]:
    """Run the engine in this loop until the block ends; wait until ARI, AMI and the DB are up."""
    async with running_without_database(engine):
        async with asyncio.timeout(20):
            await engine.db.ready.wait()
            assert engine.calls is not None
            await engine.calls.lost_swept.wait()
        yield engine


class Daemon:
    """``callcenter run`` as a subprocess, its JSON log lines read as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict] = []

    @classmethod
    async def start(cls, stack: dict[str, str], dsn: str, tmp_path: Path, *, config_text: str | None = None,
                    edits: dict[str, tuple[str, str]] | None = None) -> Daemon:
        """The example configuration copied to ``tmp_path`` (``config_text`` replaces cc.yaml;
        ``edits``: file name -> (old, new) text replaced in that example file), state in
        ``tmp_path/state``."""
        import shutil
        import sys

        config = tmp_path / "cc.yaml"
        config.write_text(config_text or (REPO / "examples" / "callcenter.yaml").read_text())
        for name in ("agents.yaml", "queues.yaml", "campaigns.yaml", "dnc-renewals.txt"):
            text = (REPO / "examples" / name).read_text()
            if name in (edits or {}):
                old, new = edits[name]   # type: ignore[index]
                assert old in text, f"{name} has no {old!r}"
                text = text.replace(old, new)
            (tmp_path / name).write_text(text)
        shutil.copytree(REPO / "examples" / "ivr", tmp_path / "ivr", dirs_exist_ok=True)
        env = {**os.environ, **stack, "CALLCENTER_DSN": dsn, "CALLCENTER_STATE_DIR": str(tmp_path / "state"),
               "CALLCENTER_HTTP_PORT": "0"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "engine", "run", "--config", str(config), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        return cls(proc)

    async def expect(self, match: Callable[[dict], bool], timeout: float = 20) -> dict:
        """Read log lines until one matches (each line must be a JSON object)."""
        import json

        for line in self.lines:
            if match(line):
                return line
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while raw := await self.proc.stdout.readline():
                entry = json.loads(raw)  # every line the daemon writes is JSON
                self.lines.append(entry)
                if match(entry):
                    return entry
        raise AssertionError(f"the daemon exited before the expected line; last lines: {self.lines[-5:]}")

    def follow(self, keep: int = 500) -> None:
        """From now on read (and keep the last ``keep`` of) its lines in the background."""
        import json

        async def read() -> None:
            assert self.proc.stdout is not None
            while raw := await self.proc.stdout.readline():
                try:
                    self.lines.append(json.loads(raw))
                except ValueError:
                    self.lines.append({"event": "not-json", "raw": raw.decode(errors="replace")})
                del self.lines[:-keep]

        self._reader = asyncio.create_task(read())

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


def logged(name: str, **fields: object) -> Callable[[dict], bool]:
    """A match for :meth:`Daemon.expect`: the line ``name`` with these fields."""
    return lambda e: e.get("event") == name and all(e.get(k) == v for k, v in fields.items())


@dataclass
class SippResult:
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> SippResult:
        assert self.returncode == 0, f"sipp failed ({self.returncode}):\n{self.stdout[-2000:]}\n{self.stderr[-2000:]}"
        return self


async def sipp(stack: dict[str, str], scenario: str, dialed: str, *, calls: int = 1, rate: int = 10,
               variables: dict[str, str] | None = None, timeout: float = 60) -> SippResult:
    """Place ``calls`` calls from a sipp on 127.0.0.1 into Asterisk's carrier trunk."""
    args = ["sipp", f"{stack['ASTERISK_SIP_HOST']}:{stack['ASTERISK_SIP_PORT']}",
            "-sf", str(SIPP_DIR / scenario), "-s", dialed, "-i", "127.0.0.1", "-p", "0",
            "-m", str(calls), "-r", str(rate), "-l", str(max(calls, 1)), "-nostdin", "-timeout", f"{int(timeout)}s",
            "-timeout_error", "-trace_err", "-error_file", "/dev/stderr"]
    for k, v in (variables or {}).items():
        args += ["-set", k, v]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout + 10)
    return SippResult(proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))


async def _bound(port: int, proc: asyncio.subprocess.Process, limit: float = 10.0) -> None:
    """Until something (the sipp just started) holds UDP ``port`` on 127.0.0.1."""
    import socket

    deadline = asyncio.get_running_loop().time() + limit
    while asyncio.get_running_loop().time() < deadline and proc.returncode is None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return   # taken: sipp listens
        await asyncio.sleep(0.02)   # polling a port, not synchronising on time
    if proc.returncode is None:
        raise TimeoutError(f"sipp did not listen on 127.0.0.1:{port} within {limit} s")


async def sipp_listening(args: list[str], *, timeout: float = 90):
    """Start a sipp that waits for calls (an agent phone, customers behind the carrier); returns
    the process and a coroutine function giving its result once it has served its calls."""
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    if "-p" in args:   # until it listens: an INVITE that comes while sipp starts gets a broken answer
        await _bound(int(args[args.index("-p") + 1]), proc)

    async def done() -> SippResult:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
        return SippResult(proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))

    return proc, done


async def wait_until_quiet(engine: Engine, calls: int) -> None:
    """Until ``calls`` calls have ended in the engine and every database write has landed."""
    assert engine.calls is not None
    async with asyncio.timeout(30):
        await engine.calls.wait_handled(calls)
        await engine.writer.wait_idle()


class Proxy:
    """A TCP proxy on loopback that a test can cut and restore (asyncpg's fuzzer idea)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> Proxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def cut(self) -> None:
        """Drop every connection and refuse new ones until :meth:`restore`."""
        assert self.server is not None
        self.server.close()
        for w in list(self._writers):
            w.transport.abort()
        await self.server.wait_closed()

    async def restore(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.cut()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}
