"""The API's edge on the real stack: text PostgreSQL cannot store, bodies too large or nested too
deep, wrong types, each a 4xx naming the field; and writes that are records (a do-not-call
request, a lead, a campaign's start / pause / stop) acknowledged only once they are stored, 503
saying so while the database is away. Every answer is checked against the OpenAPI document
(:class:`~tests.integration.test_api.Api`)."""

from __future__ import annotations

import asyncio
import io
import json
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from engine.http import api
from engine.app import Engine
from engine.config.campaign import NationalDnc

from .harness import Proxy, running
from .test_acd import acd_config, rows
from .test_api import TOKEN, Api, with_api
from .test_dialer import campaign, dialer_config


def edge_config(stack, dsn, tmp_path):
    """The API over the renewals campaign, which never dials here: automated dialling needs a
    national DNC list and none is imported (the gate refuses every number), so no call is placed."""
    return with_api(dialer_config(stack, dsn, tmp_path, campaign(national_dnc=NationalDnc(required=True))))


LEAD = {"number": "+12125550111", "consent": True}


async def test_text_postgresql_cannot_store_is_a_400_naming_the_field_and_nothing_is_written(stack, dsn, tmp_path):
    engine = Engine(edge_config(stack, dsn, tmp_path))
    async with running(engine), aiohttp.ClientSession() as session:
        call = Api(engine, session)
        status, err = await call.get("/calls?number=a%00b")
        assert status == 400 and err["field"] == "number" and "NUL" in err["error"]
        status, err = await call.post("/campaigns/renewals/leads", {**LEAD, "first_name": "Ann\x00"})
        assert status == 400 and err["field"] == "first_name" and "NUL" in err["error"]
        status, err = await call.post("/campaigns/renewals/leads", {**LEAD, "fields": {"source": "web\x00form"}})
        assert status == 400 and err["field"] == "fields.source"
        status, err = await call.post("/campaigns/renewals/leads", {**LEAD, "fields": {"so\x00urce": "web"}})
        assert status == 400 and err["field"] == "fields" and "field name" in err["error"]
        status, err = await call.post("/campaigns/renewals/leads",
                                      raw=b'{"number": "+12125550111", "last_name": "\\ud800"}')
        assert status == 400 and err["field"] == "last_name" and "surrogate" in err["error"]
        status, err = await call.post("/dnc", {"number": "212-555-0131", "reason": "asked by e-mail\x00"})
        assert status == 400 and err["field"] == "reason" and "NUL" in err["error"]
        status, err = await call.post("/agents/9001/pause", {"reason": "lunch\x00"})
        assert status == 400 and err["field"] == "reason"
        await engine.writer.wait_idle()
        assert engine.writer.rejected == 0            # nothing was queued that PostgreSQL then refused
    assert await rows(dsn, "SELECT id FROM leads") == []
    assert await rows(dsn, "SELECT number FROM dnc_numbers") == []


async def test_a_body_over_1_mib_is_413_one_nested_too_deep_or_of_the_wrong_type_400(stack, dsn, tmp_path):
    engine = Engine(edge_config(stack, dsn, tmp_path))
    async with running(engine), aiohttp.ClientSession() as session:
        call = Api(engine, session)
        big = json.dumps({"number": "212-555-0131", "reason": "x" * (1 << 20)}).encode()
        status, err = await call.post("/dnc", raw=io.BytesIO(big))
        assert status == 413 and err["field"] == "body" and "1 MiB" in err["error"]
        status, err = await call.post("/agents/9001/login", raw=b"[" * 100_000 + b"]" * 100_000)
        assert status == 400 and err["field"] == "body" and "deep" in err["error"]
        status, err = await call.post("/agents/9001/login", {"queues": [[[[[[[[["support"]]]]]]]]]})
        assert status == 400 and err["field"] == "body" and "deep" in err["error"]
        status, err = await call.post("/campaigns/renewals/leads", raw=b'{"number": "+12125550111", "priority": NaN}')
        assert status == 400 and err["field"] == "body" and "NaN" in err["error"]
        status, err = await call.post("/campaigns/renewals/leads", {**LEAD, "priority": "high"})
        assert status == 400 and err["field"] == "priority" and "expected integer" in err["error"]
        status, err = await call.get("/calls?limit=1.5")
        assert status == 400 and err["field"] == "limit"
        status, err = await call.get("/calls?to=soon")
        assert status == 400 and err["field"] == "to"
        assert (await call.get("/status"))[0] == 200      # and the API goes on answering
    assert await rows(dsn, "SELECT number FROM dnc_numbers") == []


async def raw_request(port: int, head: bytes) -> tuple[int, dict]:
    """One request written byte for byte (what an HTTP client would not send), its status and JSON."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + b"Connection: close\r\n\r\n")
        answer = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


async def test_what_the_router_and_the_token_check_refuse_is_json_too(stack, dsn, tmp_path):
    engine = Engine(with_api(acd_config(stack, dsn, tmp_path)))
    async with running(engine), aiohttp.ClientSession() as session:
        base, auth = f"http://127.0.0.1:{engine.http_port}{api.PREFIX}", {"Authorization": f"Bearer {TOKEN}"}
        async with session.delete(base + "/dnc", headers=auth) as r:     # not in the document: JSON all the same
            assert r.status == 405 and r.headers["Allow"] == "POST" and "DELETE" in (await r.json())["error"]
        async with session.get(base + "/nowhere", headers=auth) as r:
            assert r.status == 404 and "openapi.json" in (await r.json())["error"]
        async with session.get(f"http://127.0.0.1:{engine.http_port}/nowhere") as r:
            assert r.status == 404 and r.content_type == "text/plain"    # outside the API: aiohttp's own
        # a token that is not UTF-8 (aiohttp hands it on as surrogates): refused, not a crash
        status, err = await raw_request(engine.http_port, b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n"
                                                          b"Authorization: Bearer \xff\xfe-not-utf-8\r\n")
        assert status == 401 and "token" in err["error"]


def through(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc.replace(f":{parts.port}", f":{port}"), parts.path, parts.query,
                       parts.fragment))


async def test_records_are_acknowledged_only_once_stored_and_503_while_the_database_is_away(stack, dsn, tmp_path):
    """DNC, leads and campaign control: a 2xx means the row is in PostgreSQL now (read here at once,
    without waiting for the write queue); with the database cut, 503 saying nothing was stored."""
    parts = urlsplit(dsn)
    proxy = await Proxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    dnc_of = "SELECT number, scope, source, reason FROM dnc_numbers WHERE number = $1"
    try:
        engine = Engine(edge_config(stack, through(dsn, proxy.port), tmp_path))
        async with running(engine), aiohttp.ClientSession() as session:
            call = Api(engine, session)
            status, listed = await call.post("/dnc", {"number": "212-555-0131", "reason": "asked by letter"})
            assert status == 201 and listed["number"] == "+12125550131"
            [entry] = await rows(dsn, dnc_of, "+12125550131")
            assert tuple(entry) == ("+12125550131", "global", "api:token1", "asked by letter")

            await proxy.cut()
            status, err = await call.post("/dnc", {"number": "212-555-0132", "reason": "asked on the phone"})
            assert status == 503 and "database" in err["error"] and "not stored" in err["error"]
            status, err = await call.post("/campaigns/renewals/leads", LEAD)
            assert status == 503 and "database" in err["error"]
            status, err = await call.post("/campaigns/renewals/pause")
            assert status == 503 and "database" in err["error"]
            assert "renewals" not in engine.dialer.control      # not applied either: it was not stored
            assert await rows(dsn, dnc_of, "+12125550132") == []

            await proxy.restore()
            status, _ = await call.post("/dnc", {"number": "212-555-0132", "reason": "asked on the phone"})
            assert status == 201                                   # the client's retry
            assert len(await rows(dsn, dnc_of, "+12125550132")) == 1
            status, lead = await call.post("/campaigns/renewals/leads", LEAD)
            assert status == 201 and len(await rows(dsn, "SELECT id FROM leads WHERE id = $1", lead["lead_id"])) == 1
            status, c = await call.post("/campaigns/renewals/pause")
            assert status == 200 and c["state"] == "paused"
            assert [tuple(r) for r in await rows(dsn, "SELECT name, state FROM campaign_control")] == [
                ("renewals", "paused")]
    finally:
        await proxy.close()
