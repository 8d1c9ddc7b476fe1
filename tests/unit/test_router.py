"""The ARI events Asterisk is asked for (engine.runtime.router.EVENTS) are all the runtime reads."""

from __future__ import annotations

import ast
from pathlib import Path

from engine.runtime.router import EVENTS

REPO = Path(__file__).resolve().parents[2]

# Asterisk 22's ARI event types (rest-api/api-docs/events.json), RESTResponse aside.
ARI_EVENT_TYPES = frozenset("""
ApplicationMoveFailed ApplicationRegistered ApplicationReplaced ApplicationUnregistered BridgeAttendedTransfer
BridgeBlindTransfer BridgeCreated BridgeDestroyed BridgeMerged BridgeVideoSourceChanged CallBroadcast CallClaimed
ChannelCallerId ChannelConnectedLine ChannelCreated ChannelDestroyed ChannelDialplan ChannelDtmfReceived
ChannelEnteredBridge ChannelHangupRequest ChannelHold ChannelLeftBridge ChannelStateChange ChannelTalkingFinished
ChannelTalkingStarted ChannelToneDetected ChannelTransfer ChannelUnhold ChannelUserevent ChannelVarset ContactInfo
ContactStatusChange DeviceStateChanged Dial EndpointStateChange PeerStatusChange PlaybackContinuing PlaybackFinished
PlaybackStarted RecordingFailed RecordingFinished RecordingStarted StasisEnd StasisStart TextMessageReceived
""".split())


def named_events(source: str) -> set[str]:
    """ARI event types written as string constants in ``source`` (outside ``__all__``)."""
    tree = ast.parse(source)
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets) for n in ast.walk(node)}
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and n.value in ARI_EVENT_TYPES and id(n) not in skip}


def test_every_event_the_runtime_reads_is_asked_for():
    files = sorted((REPO / "engine" / "runtime").glob("*.py")) + [REPO / "engine" / "adapters" / "ari.py"]
    named = {name: f.relative_to(REPO) for f in files for name in named_events(f.read_text())}
    assert {n: str(f) for n, f in named.items() if n not in EVENTS} == {}
    assert EVENTS <= ARI_EVENT_TYPES and "StasisStart" in named and "PlaybackFinished" in named


def test_the_scan_finds_a_comparison_and_skips_all():
    src = '__all__ = ["ChannelHold"]\nif kind == "ChannelTransfer":\n    pass\nx = "Connected"\n'
    assert named_events(src) == {"ChannelTransfer"}
