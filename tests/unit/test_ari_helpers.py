from __future__ import annotations

from engine.adapters.ari import AriClient, AriError, AriUnavailable, _params, path
from engine.config.model import AriConfig


def test_booleans_are_lowercased_and_none_dropped():
    assert _params({"a": True, "b": False, "c": None, "d": 3, "e": ["x", "y"]}) == {
        "a": "true", "b": "false", "d": "3", "e": "x,y"}


def test_path_segments_are_quoted():
    assert path("channels", "1700000000.12", "play", "pb/1") == "/channels/1700000000.12/play/pb%2F1"


def test_events_url_follows_the_rest_url():
    cfg = AriConfig(url="https://pbx.example:8089/ari", username="u", password="p", app="cc-1")
    assert AriClient(cfg).events_url() == "wss://pbx.example:8089/ari/events?app=cc-1&subscribeAll=false"


def test_which_errors_mean_the_channel_is_gone():
    assert AriError("POST", "/x", 404, "Channel not found").gone
    assert AriError("POST", "/x", 409, "Channel not in Stasis application").gone
    assert not AriError("POST", "/x", 500, "Internal").gone
    assert not AriUnavailable("POST", "/x", "refused").gone
    assert str(AriError("POST", "/x", 404, "Channel not found")) == "POST /x: 404 Channel not found"
