"""`callcenter run` as an operator runs it: JSON logs, SIGHUP reloads, SIGTERM stops cleanly."""

from __future__ import annotations

import asyncio
import signal
import sys

import asyncpg

from .harness import REPO, Daemon, logged, sipp


async def test_daemon_reloads_on_sighup_and_stops_on_sigterm(stack, dsn, tmp_path):
    config = tmp_path / "cc.yaml"
    good = (REPO / "examples" / "callcenter.yaml").read_text()
    daemon = await Daemon.start(stack, dsn, tmp_path)
    proc = daemon.proc
    try:
        await daemon.expect(logged("db.ready"))
        await daemon.expect(logged("ari.connected"))

        # An invalid file is refused, with its file:line errors, and the old config kept.
        config.write_text(good.replace("  port: ${CALLCENTER_HTTP_PORT", "  prot: ${CALLCENTER_HTTP_PORT"))
        proc.send_signal(signal.SIGHUP)
        rejected = await daemon.expect(logged("config.reload_rejected"))
        assert any(p.startswith(f"{config}:") and "unknown key 'prot'" in p for p in rejected["problems"])

        # A valid change applies to the next call.
        config.write_text(good.replace("prompt: hello-world\n  - number: \"2001\"",
                                       "prompt: beep\n  - number: \"2001\""))
        proc.send_signal(signal.SIGHUP)
        await daemon.expect(logged("config.reloaded"))
        (await sipp(stack, "caller_wait_bye.xml", "2000")).check()
        arrived = await daemon.expect(logged("call.arrived"))
        assert arrived["prompt"] == "beep" and arrived["dialed"] == "2000"
        assert arrived["call_id"] and arrived["channel_id"]
        ended = await daemon.expect(lambda e: e.get("event") == "transition" and e.get("after") == "ended")
        assert ended["call_id"] == arrived["call_id"]  # ids bound on every line of the call

        proc.send_signal(signal.SIGTERM)
        await daemon.expect(logged("engine.stopped"))
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
