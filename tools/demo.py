"""`make demo`: the engine on the example config, real calls into it, and what PostgreSQL recorded.

Run by the Makefile after `make stack-up`, with the project's virtualenv. Starts
`callcenter run --config examples/callcenter.yaml` as a daemon would run, places a few sipp calls
through Asterisk's carrier trunk, lets the renewals campaign dial three customers (sipp behind the
carrier: a person, an answering machine, a busy line), prints the calls table and the dialer's
attempts, and stops the engine with SIGTERM.
"""

from __future__ import annotations

import csv
import json
import os
import random
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

        outbound(env, callcenter, config)

        say("Alice logs out: *12")
        sipp(env, "agent_feature.xml", "*12", agent="agent9001")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    say(f"engine stopped (exit {proc.returncode}); the calls as PostgreSQL has them")
    subprocess.run([callcenter, "calls", "--config", str(config), "--last", "5"], env=env, check=True)
    say("why each queued call went to its agent (the routing reason log)")
    subprocess.run([callcenter, "routing", "--config", str(config), "--last", "2"], env=env, check=True)
    for kind in ("inbound", "outbound", "agents"):
        say(f"today's {kind} report (computed in PostgreSQL)")
        subprocess.run([callcenter, "report", kind, "--config", str(config), "--from", "today"], env=env, check=True)

    say("call in yourself")
    print(f"""The stack is still up. Run the engine in the foreground:
    make run
then point a softphone on this machine (it must send from 127.0.0.1) at
    sip:1000@127.0.0.1:{env['ASTERISK_SIP_PORT']}    (the example IVR; any number works: 2000 and 2001
                                             play a prompt, 3100 and 3200 queue for an agent)
Asterisk takes loopback SIP as the carrier trunk and hands the call to the engine. A softphone
listening on 127.0.0.1:{int(env['ASTERISK_AGENT_PORT_BASE']) + 1} with user agent9001 is agent 9001's desk phone (test stack:
no password): dial *11, then 9001# and 1234#, and queue calls ring it.
While it runs: the wallboard at http://127.0.0.1:{http_port}/wallboard, Prometheus metrics at
http://127.0.0.1:{http_port}/metrics, health at /healthz (the API needs `http.tokens`: README, HTTP API).
Stop everything with `make stack-down`.""")
    return 0 if proc.returncode == 0 else 1


def zone_at_noon() -> str:
    """A time zone where it is about midday now, so the campaign's calling hours are open."""
    hour = time.gmtime().tm_hour
    offset = (12 - hour + 12) % 24 - 12
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/UTC"


def retire_earlier_demo_leads(dsn: str) -> None:
    """Leads an earlier demo left for a retry would be dialled again with nobody to answer."""
    import asyncio

    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("""UPDATE leads SET status = 'done', result = 'demo rerun', locked_by = NULL,
                                  locked_until = NULL
                                  WHERE campaign = 'renewals' AND external_id LIKE 'demo-%'
                                    AND status IN ('new', 'retry', 'active')""")
        finally:
            await conn.close()

    asyncio.run(go())


def outbound(env: dict[str, str], callcenter: str, config: Path) -> None:
    run = REPO / ".run" / "demo"
    run.mkdir(parents=True, exist_ok=True)
    say("outbound: the national do-not-call list (autodialling needs one no older than 31 days)")
    national = run / "national-dnc.txt"
    national.write_text("+12125550000\n+13125550000\n")
    subprocess.run([callcenter, "dnc", "import", str(national), "--scope", "national", "--config", str(config)],
                   env=env, check=True)
    retire_earlier_demo_leads(env["CALLCENTER_DSN"])
    say("three leads for the renewals campaign (predictive, AMD on): a person, a machine, a busy line")
    block = random.Random().randrange(100, 999)            # new numbers each run: ...1 person, ...2 machine, ...3 busy
    leads = run / "leads.csv"
    with leads.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["external_id", "first_name", "last_name", "phone", "timezone", "consent", "plan"])
        zone = zone_at_noon()   # their local time is midday, whenever the demo runs
        for digit, (first, last) in zip("123", [("Dana", "Person"), ("Max", "Machine"), ("Bea", "Busy")]):
            w.writerow([f"demo-{block}{digit}", first, last, f"+1212555{block}{digit}", zone, "yes", "gold"])
    subprocess.run([callcenter, "import-leads", "renewals", str(leads), "--config", str(config)], env=env, check=True)
    voices = {}
    for preset in ("human", "machine"):
        voices[preset] = run / f"{preset}.pcap"
        subprocess.run([sys.executable, str(REPO / "tools" / "make_rtp_pcap.py"), "--preset", preset,
                        str(voices[preset])], check=True, capture_output=True)
    carrier = ["sipp", "-sf", str(REPO / "tests" / "sipp" / "customer_mix.xml"), "-key", "human_pcap",
               str(voices["human"]), "-key", "machine_pcap", str(voices["machine"]), "-i", "127.0.0.1",
               "-p", env["ASTERISK_CARRIER_SIP_PORT"], "-m", "3", "-nostdin", "-timeout", "90s", "-timeout_error"]
    print("$ " + " ".join(shlex.quote(a) for a in carrier), flush=True)
    customers = subprocess.Popen(carrier, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    say("Alice's phone answers the person the dialer connects; she talks 4 s, then keys *161 (SALE)")
    agent_port = int(env["ASTERISK_AGENT_PORT_BASE"]) + 1
    phone = subprocess.Popen(sipp_args(env, "agent_answer.xml", port=agent_port, answer_ms="100", hangup_ms="4000"),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        customers.wait(timeout=90)
        phone.wait(timeout=30)
    except subprocess.TimeoutExpired:
        customers.kill()
        phone.kill()
    print("   -> customers done" if customers.returncode == 0 else f"   -> customers sipp exit {customers.returncode}")
    sipp(env, "agent_feature.xml", "*161", agent="agent9001")
    time.sleep(1.5)   # the wrap-up's end reaches the database; then show it
    say("what the dialer did (and why it refused anything)")
    subprocess.run([callcenter, "attempts", "--config", str(config), "--last", "3"], env=env, check=True)


if __name__ == "__main__":
    raise SystemExit(main())
