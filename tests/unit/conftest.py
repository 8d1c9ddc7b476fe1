from __future__ import annotations

from pathlib import Path

import pytest

from engine.config.ivr import load_trees, sound_names

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def example_env(monkeypatch, tmp_path) -> Path:
    """What examples/callcenter.yaml reads from the environment, and a sounds folder holding every
    sound its IVR trees say (empty files: check-config only looks for them)."""
    monkeypatch.setenv("CALLCENTER_DSN", "postgresql://u@127.0.0.1:1/db")
    monkeypatch.setenv("ASTERISK_ARI_PASSWORD", "s3cret")
    monkeypatch.setenv("ASTERISK_AMI_PASSWORD", "s3cret2")
    sounds = tmp_path / "sounds"
    for tree in load_trees(REPO / "examples" / "ivr").values():
        for node in tree.tree.nodes.values():
            for sound in sound_names(node):
                (sounds / f"{sound}.gsm").parent.mkdir(parents=True, exist_ok=True)
                (sounds / f"{sound}.gsm").write_bytes(b"")
    monkeypatch.setenv("ASTERISK_SOUNDS_DIR", str(sounds))
    return REPO / "examples" / "callcenter.yaml"
