from __future__ import annotations

from urllib.parse import quote, urlencode

from hypothesis import given
from hypothesis import strategies as st

from engine.adapters.ari import AriClient, AriError, AriUnavailable, _params, path, query
from engine.config.model import AriConfig


def test_booleans_are_lowercased_and_none_dropped():
    assert _params({"a": True, "b": False, "c": None, "d": 3, "e": ["x", "y"]}) == {
        "a": "true", "b": "false", "d": "3", "e": "x,y"}


def test_path_segments_are_quoted():
    assert path("channels", "1700000000.12", "play", "pb/1") == "/channels/1700000000.12/play/pb%2F1"


@given(st.dictionaries(st.text(min_size=1), st.one_of(st.none(), st.booleans(), st.integers(), st.text(),
                                                       st.lists(st.text(), max_size=3))))
def test_the_query_string_is_what_urlencode_makes(params):
    assert query(params) == urlencode(_params(params), quote_via=quote)


def test_the_query_string_quotes_what_is_not_unreserved():
    assert query({"endpoint": "PJSIP/1001@box", "x": "a b&c=d", "id": "agentleg-1.2_~"}) == \
        "endpoint=PJSIP%2F1001%40box&x=a%20b%26c%3Dd&id=agentleg-1.2_~"
    assert path("channels", "é/") == "/channels/%C3%A9%2F"


def test_events_url_follows_the_rest_url():
    cfg = AriConfig(url="https://pbx.example:8089/ari", username="u", password="p", app="cc-1")
    assert AriClient(cfg).events_url() == "wss://pbx.example:8089/ari/events?app=cc-1&subscribeAll=false"


def test_which_errors_mean_the_channel_is_gone():
    assert AriError("POST", "/x", 404, "Channel not found").gone
    assert AriError("POST", "/x", 409, "Channel not in Stasis application").gone
    assert not AriError("POST", "/x", 500, "Internal").gone
    assert not AriUnavailable("POST", "/x", "refused").gone
    assert str(AriError("POST", "/x", 404, "Channel not found")) == "POST /x: 404 Channel not found"
