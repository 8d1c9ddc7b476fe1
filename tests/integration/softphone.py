"""A real softphone for the integration tests: Debian's baresip (1.0), headless, as a test agent's phone.

The stack's agent900N endpoints are static contacts at 127.0.0.1:<ASTERISK_AGENT_PORT_BASE + N>
(tools/stack.py: no REGISTER, no authentication, the endpoint is known by the From user), so the
phone listens on that port with an account that never registers (``regint=0``). Everything stays on
loopback: ``net_interface 127.0.0.1``, a ``dns_server`` on loopback, no STUN/TURN/ICE modules, RTP
from ``ausine`` (a 440 Hz tone) and no sound card. ``call_max_calls 1``: no call waiting, as on a
desk phone that has it off: a second call while one is up is refused by baresip itself (486).

It is driven over ``ctrl_tcp``: commands (``dial``, ``accept``, ``hangup``, ``sndcode``...) as
netstring-framed JSON, answered by token; the phone's events (``CALL_INCOMING``,
``CALL_ESTABLISHED``, ``CALL_CLOSED``...) come on the same connection and are kept in order, so a
test waits on what the phone says happened, never on a sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import shutil
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

BARESIP = "baresip"
MODULES = ("g711.so", "g722.so", "ausine.so", "aubridge.so", "ctrl_tcp.so")
APPS = ("account.so", "menu.so")   # menu: the /dial, /accept, /hangup ... commands


def config_text(*, sip_port: int, ctrl_port: int, rtp_ports: tuple[int, int], max_calls: int) -> str:
    lines = [
        ("poll_method", "epoll"),
        ("sip_listen", f"127.0.0.1:{sip_port}"),
        ("net_interface", "127.0.0.1"),
        ("dns_server", "127.0.0.1:53"),   # never asked (every URI is an address); loopback anyway
        ("call_local_timeout", "120"),
        ("call_max_calls", str(max_calls)),
        ("audio_source", "ausine,440"),
        ("ausrc_srate", "48000"),   # ausine makes 48 kHz stereo only; baresip resamples for the codec
        ("ausrc_channels", "2"),
        # No sound card: what the phone hears goes to aubridge, a player that no source reads
        # (without a player baresip ends each call as it connects: "Operation not supported").
        ("audio_player", "aubridge,nowhere"),
        ("audio_alert", "aubridge,nowhere"),
        ("rtp_ports", f"{rtp_ports[0]}-{rtp_ports[1]}"),
        ("module_path", "/usr/lib/baresip/modules"),
        *(("module", m) for m in MODULES),
        *(("module_app", m) for m in APPS),
        ("ctrl_tcp_listen", f"127.0.0.1:{ctrl_port}"),
    ]
    return "".join(f"{k}\t\t{v}\n" for k, v in lines)


def free_tcp_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def netstring(data: bytes) -> bytes:
    return str(len(data)).encode() + b":" + data + b","


@dataclass
class Baresip:
    """One baresip process and its control connection."""

    proc: asyncio.subprocess.Process
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    output: list[str]
    events: list[dict] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _answers: dict[str, asyncio.Future] = field(default_factory=dict)
    _tokens: itertools.count = field(default_factory=itertools.count)
    closed: bool = False

    @classmethod
    @asynccontextmanager
    async def running(cls, stack: dict[str, str], agent: int, folder: Path, *,
                      max_calls: int = 1) -> AsyncIterator[Baresip]:
        """baresip as agent900``agent``'s phone (its port on the stack), config and log
        (``baresip.log``, with a SIP trace) in ``folder``. Calls ring until ``accept``."""
        if shutil.which(BARESIP) is None:
            raise RuntimeError("baresip is not installed (make deps installs it)")
        sip_port = int(stack["ASTERISK_AGENT_PORT_BASE"]) + agent
        ctrl_port = free_tcp_port()
        folder.mkdir(parents=True, exist_ok=True)
        # RTP next to the phone's SIP port, away from Asterisk's 30000-30999
        rtp = (sip_port + 1000, sip_port + 1000 + 19)
        (folder / "config").write_text(config_text(sip_port=sip_port, ctrl_port=ctrl_port, rtp_ports=rtp,
                                                   max_calls=max_calls))
        sip = f"{stack['ASTERISK_SIP_HOST']}:{stack['ASTERISK_SIP_PORT']}"
        (folder / "accounts").write_text(
            f"<sip:agent{9000 + agent}@{sip}>;regint=0;answermode=manual;"
            "audio_codecs=G722/16000/1,PCMU/8000/1,PCMA/8000/1\n")
        (folder / "contacts").write_text("")
        proc = await asyncio.create_subprocess_exec(
            BARESIP, "-f", str(folder), "-s", stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output: list[str] = []
        ready = asyncio.Event()
        log = (folder / "baresip.log").open("w")

        async def read_output() -> None:
            # in chunks: during a call baresip redraws a status line with \r and no \n
            assert proc.stdout is not None
            rest = ""
            while chunk := await proc.stdout.read(65536):
                *lines, rest = re.split(r"[\r\n]", rest + chunk.decode(errors="replace"))
                lines = [line for line in lines if line.strip()]
                output.extend(lines)
                log.writelines(f"{time.time():.6f} {line}\n" for line in lines)   # when we read it
                log.flush()
                if "baresip is ready." in lines:   # printed once every module is loaded
                    ready.set()

        reading = asyncio.create_task(read_output())
        started = asyncio.ensure_future(ready.wait())
        try:
            async with asyncio.timeout(10):
                await asyncio.wait({reading, started}, return_when=asyncio.FIRST_COMPLETED)
                if not ready.is_set():
                    raise RuntimeError("baresip exited at start:\n" + "\n".join(output[-30:]))
                reader, writer = await asyncio.open_connection("127.0.0.1", ctrl_port)
            phone = cls(proc, reader, writer, output)
            events = asyncio.create_task(phone._read_events())
            try:
                yield phone
            finally:
                events.cancel()
                writer.close()
        finally:
            started.cancel()
            if proc.returncode is None:
                proc.terminate()
                try:
                    async with asyncio.timeout(5):
                        await proc.wait()
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
            log.close()

    async def _read_events(self) -> None:
        try:
            while True:
                size = await self.reader.readuntil(b":")
                body = await self.reader.readexactly(int(size[:-1]) + 1)   # the JSON and the ","
                message = json.loads(body[:-1])
                if message.get("response"):
                    answer = self._answers.pop(str(message.get("token")), None)
                    if answer is not None and not answer.done():
                        answer.set_result(message)
                elif message.get("event"):
                    message["at"] = time.time()
                    async with self._changed:
                        self.events.append(message)
                        self._changed.notify_all()
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed = True
            async with self._changed:
                self._changed.notify_all()

    async def command(self, name: str, params: str = "", timeout: float = 5) -> dict:
        """Run one menu command (``dial``, ``accept``, ``hangup``, ``sndcode``...); its answer."""
        token = f"t{next(self._tokens)}"
        answer = asyncio.get_running_loop().create_future()
        self._answers[token] = answer
        self.writer.write(netstring(json.dumps({"command": name, "params": params, "token": token}).encode()))
        await self.writer.drain()
        async with asyncio.timeout(timeout):
            message = await answer
        if not message.get("ok"):
            raise AssertionError(f"baresip refused {name} {params!r}: {message}")
        return message

    async def event(self, match: Callable[[dict], bool], *, after: int = 0, timeout: float = 20) -> int:
        """The index in :attr:`events` of the first event from ``after`` on that ``match`` accepts."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                while True:
                    for i in range(after, len(self.events)):
                        if match(self.events[i]):
                            return i
                    if self.closed:
                        raise AssertionError("baresip exited:\n" + "\n".join(self.output[-30:]))
                    await self._changed.wait()
        except TimeoutError:
            seen = [(e.get("type"), e.get("peeruri"), e.get("param")) for e in self.events[after:]]
            raise AssertionError(f"baresip said nothing that matches within {timeout} s; since then: {seen}; "
                                 "its last lines:\n" + "\n".join(self.output[-20:])) from None

    def calls(self, direction: str) -> list[dict]:
        """Each call's first event, by direction (``incoming`` or ``outgoing``)."""
        first: dict[str, dict] = {}
        for e in self.events:
            if e.get("class") == "call" and e.get("direction") == direction and e.get("id"):
                first.setdefault(str(e.get("id")), e)
        return list(first.values())

    def dial_uri(self, stack: dict[str, str], number: str) -> str:
        return f"sip:{number}@{stack['ASTERISK_SIP_HOST']}:{stack['ASTERISK_SIP_PORT']}"


def is_event(kind: str, **fields: object) -> Callable[[dict], bool]:
    """A match for :meth:`Baresip.event`: an event of type ``kind`` with these fields."""
    return lambda e: e.get("type") == kind and all(e.get(k) == v for k, v in fields.items())
