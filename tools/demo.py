"""`make demo`: the engine on the example config, real calls into it, and what PostgreSQL recorded.

Run by the Makefile after `make stack-up`, with the project's virtualenv. Starts
`callcenter run --config examples/callcenter.yaml` as a daemon would run, places a few sipp calls
through Asterisk's carrier trunk, prints the calls table and stops the engine with SIGTERM.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def stack_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in (REPO / ".run" / "stack.env").read_text().splitlines():
        if line.strip() and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            parsed = shlex.split(value)
            env[key] = parsed[0] if parsed else ""
    return env


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def wait_healthy(port: int, proc: subprocess.Popen[bytes], deadline: float) -> dict[str, object]:
    last: dict[str, object] = {}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo: the engine exited with {proc.returncode}; see .run/engine.log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                return json.loads(resp.read())
        except OSError as exc:  # 503 (not ready yet) or connection refused (not listening yet)
            last = {"error": str(exc)}
        time.sleep(0.2)
    raise SystemExit(f"demo: the engine did not become healthy: {last}")


def sipp(env: dict[str, str], scenario: str, dialed: str, **variables: str) -> None:
    args = ["sipp", f"{env['ASTERISK_SIP_HOST']}:{env['ASTERISK_SIP_PORT']}", "-sf",
            str(REPO / "tests" / "sipp" / scenario), "-s", dialed, "-i", "127.0.0.1", "-p", "0", "-m", "1",
            "-nostdin", "-timeout", "60s", "-timeout_error"]
    for k, v in variables.items():
        args += ["-set", k, v]
    shown = " ".join(shlex.quote(a) for a in args)
    print(f"$ {shown}", flush=True)
    result = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    print("   -> call completed" if result.returncode == 0 else f"   -> sipp exit {result.returncode}: {result.stderr[-300:]}")


def main() -> int:
    env = {**os.environ, **stack_env()}
    http_port = int(env.get("CALLCENTER_HTTP_PORT", "28480"))
    env.update(CALLCENTER_STATE_DIR=str(REPO / ".run" / "engine"), CALLCENTER_HTTP_PORT=str(http_port))
    config = REPO / "examples" / "callcenter.yaml"
    callcenter = str(VENV_BIN / "callcenter")

    say("checking the example configuration")
    subprocess.run([callcenter, "check-config", str(config)], env=env, check=True)

    say("starting the engine (logs in .run/engine.log)")
    log = (REPO / ".run" / "engine.log").open("ab")
    proc = subprocess.Popen([callcenter, "run", "--config", str(config)], env=env, stdout=log, stderr=log)
    try:
        health = wait_healthy(http_port, proc, time.monotonic() + 30)
        print(f"healthy: {health}")

        say("placing calls through Asterisk (sipp as the carrier)")
        sipp(env, "caller_wait_bye.xml", "2000", caller="5551000", caller_name="Demo Caller")
        sipp(env, "caller_hangup.xml", "2001", caller="5552000", hangup_ms="3000")
        sipp(env, "caller_wait_bye.xml", "4242", caller="5553000", caller_name="Robert'); DROP TABLE calls;--")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    say(f"engine stopped (exit {proc.returncode}); the calls as PostgreSQL has them")
    subprocess.run([callcenter, "calls", "--config", str(config), "--last", "3"], env=env, check=True)

    say("call in yourself")
    print(f"""The stack is still up. Run the engine in the foreground:
    make run
then point a softphone on this machine (it must send from 127.0.0.1) at
    sip:2000@127.0.0.1:{env['ASTERISK_SIP_PORT']}    (any number works; 2001 plays a longer prompt)
Asterisk takes loopback SIP as the carrier trunk and hands the call to the engine.
Stop everything with `make stack-down`.""")
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
