"""`callcenter run` as an operator runs it: JSON logs, SIGHUP reloads, SIGTERM stops cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
from collections.abc import Callable

import asyncpg

from .harness import REPO, sipp


class Daemon:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict] = []

    async def expect(self, match: Callable[[dict], bool], timeout: float = 20) -> dict:
        """Read log lines until one matches (each line must be a JSON object)."""
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


def event(name: str, **fields: object) -> Callable[[dict], bool]:
    return lambda e: e.get("event") == name and all(e.get(k) == v for k, v in fields.items())


async def test_daemon_reloads_on_sighup_and_stops_on_sigterm(stack, dsn, tmp_path):
    config = tmp_path / "cc.yaml"
    good = (REPO / "examples" / "callcenter.yaml").read_text()
    config.write_text(good)
    for name in ("agents.yaml", "queues.yaml", "campaigns.yaml", "dnc-renewals.txt"):
        (tmp_path / name).write_text((REPO / "examples" / name).read_text())
    shutil.copytree(REPO / "examples" / "ivr", tmp_path / "ivr")
    env = {**os.environ, **stack, "CALLCENTER_DSN": dsn, "CALLCENTER_STATE_DIR": str(tmp_path / "state"),
           "CALLCENTER_HTTP_PORT": "0"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine", "run", "--config", str(config), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    daemon = Daemon(proc)
    try:
        await daemon.expect(event("db.ready"))
        await daemon.expect(event("ari.connected"))

        # An invalid file is refused, with its file:line errors, and the old config kept.
        config.write_text(good.replace("  port: ${CALLCENTER_HTTP_PORT", "  prot: ${CALLCENTER_HTTP_PORT"))
        proc.send_signal(signal.SIGHUP)
        rejected = await daemon.expect(event("config.reload_rejected"))
        assert any(p.startswith(f"{config}:") and "unknown key 'prot'" in p for p in rejected["problems"])

        # A valid change applies to the next call.
        config.write_text(good.replace("prompt: hello-world\n  - number: \"2001\"",
                                       "prompt: beep\n  - number: \"2001\""))
        proc.send_signal(signal.SIGHUP)
        await daemon.expect(event("config.reloaded"))
        (await sipp(stack, "caller_wait_bye.xml", "2000")).check()
        arrived = await daemon.expect(event("call.arrived"))
        assert arrived["prompt"] == "beep" and arrived["dialed"] == "2000"
        assert arrived["call_id"] and arrived["channel_id"]
        ended = await daemon.expect(lambda e: e.get("event") == "transition" and e.get("after") == "ended")
        assert ended["call_id"] == arrived["call_id"]  # ids bound on every line of the call

        proc.send_signal(signal.SIGTERM)
        await daemon.expect(event("engine.stopped"))
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT dialed_number, ended_at, hangup_cause FROM calls")
    finally:
        await conn.close()
    assert row["dialed_number"] == "2000" and row["ended_at"] is not None and row["hangup_cause"] == 16


async def test_daemon_refuses_an_invalid_config_at_start(tmp_path):
    bad = tmp_path / "cc.yaml"
    bad.write_text("engine: {state_dir: /tmp}\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine", "run", "--config", str(bad),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 1
    assert f"{bad}:1:1: missing required key 'asterisk'" in err.decode()
