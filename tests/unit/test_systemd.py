"""systemd: the sd_notify datagram (received on a socket standing in for systemd's), and the unit
file in packaging/ with what it reads."""

from __future__ import annotations

import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine.adapters.systemd import notify


def test_notify_sends_the_state_to_the_socket_systemd_names(tmp_path, monkeypatch):
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert notify("READY=1")
        assert systemd.recv(100) == b"READY=1"


def test_notify_reaches_an_abstract_socket(monkeypatch):
    name = f"callcenter-test-{id(monkeypatch)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify("STOPPING=1")
        assert systemd.recv(100) == b"STOPPING=1"


def test_without_systemd_notify_does_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not notify("READY=1")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert not notify("READY=1")


# -- packaging/: the unit file and the environment file it reads --------------------------------

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "packaging" / "callcenter.service"


def required_variables() -> set[str]:
    """The ${VAR}s examples/callcenter.yaml needs set (those without a :-default)."""
    text = "\n".join(line.split("#", 1)[0] for line in (REPO / "examples" / "callcenter.yaml").read_text().splitlines())
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", text))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_the_unit_file_passes_systemd_analyze_verify(tmp_path):
    # verify also checks that ExecStart's program exists: point it at a stand-in that runs this
    # checkout's engine with the Python running the tests (a venv's bin/ may hold no callcenter)
    program = tmp_path / "callcenter"
    program.write_text(f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(REPO))} exec {shlex.quote(sys.executable)} -m engine \"$@\"\n")
    program.chmod(0o755)
    unit = tmp_path / "callcenter.service"
    unit.write_text(UNIT.read_text().replace("/opt/callcenter/bin/callcenter", str(program)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "callcenter.service" in line]
    assert result.returncode == 0 and not ours, result.stdout + result.stderr


def test_the_unit_runs_the_engine_as_the_readme_says():
    lines = [line.strip() for line in UNIT.read_text().splitlines()]
    for expected in ("Type=notify", "User=callcenter", "EnvironmentFile=/etc/callcenter/env", "Restart=on-failure",
                     "ExecReload=/bin/kill -HUP $MAINPID",
                     "ExecStart=/opt/callcenter/bin/callcenter run --config /etc/callcenter/callcenter.yaml"):
        assert expected in lines


def test_the_example_environment_file_sets_what_the_example_config_needs():
    names = {line.split("=", 1)[0] for line in (REPO / "packaging" / "env.example").read_text().splitlines()
             if line and not line.startswith("#")}
    assert required_variables() <= names


def test_compose_gives_the_engine_what_the_example_config_needs():
    engine = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())["services"]["engine"]
    assert required_variables() <= set(engine["environment"])
    mounts = {v.split(":")[1] for v in engine["volumes"]}
    assert any(engine["environment"]["ASTERISK_SOUNDS_DIR"].startswith(m + "/") for m in mounts)
