"""The ARI event reader against a small fake ARI server on loopback (aiohttp)."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
from aiohttp import web

from engine.adapters.ari import AriClient, AriError, AriUnavailable
from engine.config.model import AriConfig


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    """``app`` on a free loopback port."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


class FakeAri:
    """Each websocket connection gets the next batch of messages, then the server closes it."""

    def __init__(self, batches: list[list[str]]) -> None:
        self.batches = batches
        self.connections = 0
        self.auth: list[str] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> FakeAri:
        app = web.Application()
        app.router.add_get("/ari/events", self.events)
        app.router.add_get("/ari/channels", self.channels)
        app.router.add_post("/ari/channels/{id}/answer", self.missing)
        self.runner, self.port = await serve(app)
        return self

    async def events(self, request: web.Request) -> web.WebSocketResponse:
        self.auth.append(request.headers.get("Authorization", ""))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        batch = self.batches[self.connections] if self.connections < len(self.batches) else []
        self.connections += 1
        for message in batch:
            await ws.send_str(message)
        if self.connections < len(self.batches):
            await ws.close()
        else:
            await ws.receive()  # stay open until the client goes
        return ws

    async def channels(self, request: web.Request) -> web.Response:
        assert request.query.get("flag") == "true"
        return web.json_response([])

    async def missing(self, request: web.Request) -> web.Response:
        return web.json_response({"message": "Channel not found"}, status=404)

    async def close(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def config(port: int) -> AriConfig:
    return AriConfig(url=f"http://127.0.0.1:{port}/ari", username="u", password="p", reconnect_max_seconds=0.2)


async def test_reader_survives_bad_events_and_reconnects():
    fake = await FakeAri([
        ["not json", json.dumps({"type": "Explode"}), json.dumps({"type": "Good", "n": 1})],
        [json.dumps({"type": "Good", "n": 2})],
    ]).start()
    got: list[dict] = []
    connects = 0
    second = asyncio.Event()

    def on_event(event: dict) -> None:
        if event["type"] == "Explode":
            raise KeyError("channel")  # a handler bug on one event
        got.append(event)
        if event.get("n") == 2:
            second.set()

    async def on_connect() -> None:
        nonlocal connects
        connects += 1

    try:
        async with AriClient(config(fake.port)) as ari:
            reader = asyncio.create_task(ari.run_events(on_event, on_connect))
            async with asyncio.timeout(10):
                await second.wait()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    finally:
        await fake.close()
    assert [e["n"] for e in got] == [1, 2]
    assert connects == 2
    assert fake.auth[0] == "Basic dTpw"  # base64("u:p"), set by hand


async def test_rest_errors_are_typed():
    fake = await FakeAri([]).start()
    try:
        async with AriClient(config(fake.port)) as ari:
            assert await ari.get("/channels", flag=True) == []
            with pytest.raises(AriError) as info:
                await ari.post("/channels/x/answer")
            assert info.value.status == 404 and info.value.gone and info.value.message == "Channel not found"
    finally:
        await fake.close()
    async with AriClient(config(fake.port)) as ari:  # nothing listens there any more
        with pytest.raises(AriUnavailable) as unavailable:
            await ari.get("/channels")
    assert unavailable.value.status is None and not unavailable.value.gone


class RestOverWs:
    """An Asterisk 22.10 that answers RESTRequest messages on the events websocket: a 404 for
    ``channels/x/answer``, the query string echoed for ``echo``, for ``silent`` no answer ever, and
    for ``hang`` no answer: it closes the websocket."""

    def __init__(self) -> None:
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.http_requests: list[str] = []

    async def start(self) -> RestOverWs:
        app = web.Application()
        app.router.add_get("/ari/events", self.events)
        app.router.add_get("/ari/asterisk/info", self.info)
        self.runner, self.port = await serve(app)
        return self

    async def info(self, request: web.Request) -> web.Response:
        self.http_requests.append(request.path)
        return web.json_response({"system": {"version": "22.10.0"}})

    async def events(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            req = json.loads(msg.data)
            answer = {"type": "RESTResponse", "request_id": req["request_id"], "uri": req["uri"]}
            if req["uri"] == "hang":
                await ws.close()
                break
            if req["uri"] == "silent":   # taken, never answered
                continue
            if req["uri"].startswith("echo"):
                body = {"uri": req["uri"], "body": req.get("message_body"), "type": req.get("content_type")}
                answer.update(status_code=200, message_body=json.dumps(body))
            else:
                answer.update(status_code=404, message_body=json.dumps({"message": "Channel not found"}))
            await ws.send_str(json.dumps({"type": "Before", "n": 1}))   # events go on around answers
            await ws.send_str(json.dumps(answer))
        return ws

    async def close(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


async def test_requests_over_the_websocket_are_answered_by_id_and_fail_when_it_closes():
    fake = await RestOverWs().start()
    events: list[dict] = []
    try:
        async with AriClient(config(fake.port)) as ari:
            reader = asyncio.create_task(ari.run_events(events.append, lambda: asyncio.sleep(0)))
            async with asyncio.timeout(10):
                await ari.connected.wait()
                assert ari.requests_over_websocket
                echoed = await ari.request("POST", "/echo", params={"a": "b c", "flag": True, "none": None},
                                           body={"variables": {"X": "1"}})
                assert echoed == {"uri": "echo?a=b%20c&flag=true", "body": '{"variables": {"X": "1"}}',
                                  "type": "application/json"}
                with pytest.raises(AriError) as missing:
                    await ari.post("/channels/x/answer")
                assert missing.value.status == 404 and missing.value.gone
                ari.cfg = dataclasses.replace(ari.cfg, request_timeout_seconds=0.2)
                with pytest.raises(AriUnavailable, match="TimeoutError"):   # no answer in time
                    await ari.get("/silent")
                assert not ari._pending   # the request is forgotten, its timer gone with it
                with pytest.raises(AriUnavailable):        # the websocket closed: no answer will come
                    await ari.get("/hang")
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    finally:
        await fake.close()
    assert fake.http_requests == ["/ari/asterisk/info"] * len(fake.http_requests) and fake.http_requests
    assert all(e["type"] == "Before" for e in events) and len(events) == 2   # answers are not events
