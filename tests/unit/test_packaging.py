"""docker/: no Docker engine runs here, but the compose file must parse and name real files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def compose_command() -> list[str]:
    """`docker compose` where the plugin exists, else Debian's docker-compose (make deps installs it)."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    found = shutil.which("docker-compose")
    assert found, "neither `docker compose` nor `docker-compose` is installed (make deps installs docker-compose)"
    return [found]


def compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*compose_command(), "-f", str(path), "config"], capture_output=True, text=True)


def test_compose_file_parses():
    result = compose_config(REPO / "docker" / "compose.yaml")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"postgres", "asterisk", "engine"}


def test_compose_builds_from_files_that_exist():
    doc = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    for name, service in doc["services"].items():
        if "build" in service:
            context = (REPO / "docker" / service["build"]["context"]).resolve()
            assert (context / service["build"]["dockerfile"]).is_file(), name
            dockerfile = (context / service["build"]["dockerfile"]).read_text()
            for line in dockerfile.splitlines():
                if line.startswith("COPY "):
                    for src in line.split()[1:-1]:
                        assert (context / src).exists(), f"{name}: COPY {src} does not exist"


def test_a_broken_compose_file_is_refused(tmp_path):
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  engine:\n    image: x\n    restart: [not, a, string]\n")
    assert compose_config(bad).returncode != 0
