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


def sipp_args(env: dict[str, str], scenario: str, *, dialed: str | None = None, port: int | None = None,
              **variables: str) -> list[str]:
    args = ["sipp"]
    if dialed is not None:
        args += [f"{env['ASTERISK_SIP_HOST']}:{env['ASTERISK_SIP_PORT']}", "-s", dialed]
    args += ["-sf", str(REPO / "tests" / "sipp" / scenario), "-i", "127.0.0.1", "-m", "1", "-nostdin",
             "-timeout", "60s", "-timeout_error"]
    if port is not None:
        args += ["-p", str(port)]
    for k, v in variables.items():
        args += ["-set", k, v]
    print("$ " + " ".join(shlex.quote(a) for a in args), flush=True)
    return args


def sipp(env: dict[str, str], scenario: str, dialed: str, **variables: str) -> None:
    result = subprocess.run(sipp_args(env, scenario, dialed=dialed, **variables), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
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

        say("agent 9001 (Alice) logs in from her desk phone: *11, 9001#, PIN 1234#")
        sipp(env, "agent_feature.xml", "*11", agent="agent9001", digits="9001#1234#")

        say("a caller dials 3100 (queue support); Alice's phone rings, she answers and talks 3 s")
        agent_port = int(env["ASTERISK_AGENT_PORT_BASE"]) + 1
        phone = subprocess.Popen(sipp_args(env, "agent_answer.xml", port=agent_port, answer_ms="800",
                                           hangup_ms="3000"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        sipp(env, "caller_wait_bye.xml", "3100", caller="5554000", caller_name="Queue Caller")
        phone.wait(timeout=60)
        print("   -> agent phone completed" if phone.returncode == 0 else f"   -> agent sipp exit {phone.returncode}")

        say("a caller dials 1000 (the example IVR tree): presses 2, types account 123456#, queues for billing")
        print("(what the tree does, tried first without Asterisk:)")
        subprocess.run([callcenter, "ivr", "try", "main", "--config", str(config), "--caller", "5555000",
                        "--dialed", "1000", "--digits", "2,1,2,3,4,5,6,#"], env=env, check=True)
        phone = subprocess.Popen(sipp_args(env, "agent_answer.xml", port=agent_port, answer_ms="800",
                                           hangup_ms="2000"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        sipp(env, "caller_dtmf.xml", "1000", caller="5555000", caller_name="IVR Caller", digits="2123456#",
             dtmf_delay_ms="2500")
        phone.wait(timeout=60)
        print("   -> agent phone completed" if phone.returncode == 0 else f"   -> agent sipp exit {phone.returncode}")

        say("Alice logs out: *12")
        sipp(env, "agent_feature.xml", "*12", agent="agent9001")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    say(f"engine stopped (exit {proc.returncode}); the calls as PostgreSQL has them")
    subprocess.run([callcenter, "calls", "--config", str(config), "--last", "5"], env=env, check=True)
    say("why each queued call went to its agent (the routing reason log)")
    subprocess.run([callcenter, "routing", "--config", str(config), "--last", "2"], env=env, check=True)

    say("call in yourself")
    print(f"""The stack is still up. Run the engine in the foreground:
    make run
then point a softphone on this machine (it must send from 127.0.0.1) at
    sip:1000@127.0.0.1:{env['ASTERISK_SIP_PORT']}    (the example IVR; any number works: 2000 and 2001
                                             play a prompt, 3100 and 3200 queue for an agent)
Asterisk takes loopback SIP as the carrier trunk and hands the call to the engine. A softphone
listening on 127.0.0.1:{int(env['ASTERISK_AGENT_PORT_BASE']) + 1} with user agent9001 is agent 9001's desk phone (test stack:
no password): dial *11, then 9001# and 1234#, and queue calls ring it.
Stop everything with `make stack-down`.""")
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
