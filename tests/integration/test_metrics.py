"""Prometheus /metrics after real calls through the stack, read back with prometheus_client's parser."""

from __future__ import annotations

import asyncio

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from engine.app import Engine
from engine.core import agent as ag

from .harness import running, sipp, wait_until_quiet
from .test_acd import acd_config, agent_phone, log_in
from .test_dialer import add_leads, campaign, customers, dialer_config, migrated, voices  # noqa: F401 (fixture)


async def scrape(engine: Engine) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{engine.http_port}/metrics") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        body = await resp.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def value(samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


async def test_an_answered_queue_call_shows_in_the_counters_histograms_and_gauges(stack, dsn, tmp_path):
    engine = Engine(acd_config(stack, dsn, tmp_path))
    async with running(engine):
        before = await scrape(engine)
        assert value(before, "callcenter_calls_started_total", direction="inbound") is None
        for dependency in ("ari", "ami", "database"):
            assert value(before, "callcenter_up", dependency=dependency) == 1.0
        assert value(before, "callcenter_agents", queue="support", state="available") == 0.0

        await log_in(engine, "9001", "support")
        phone, phone_done = await agent_phone(stack, 1, answer_ms="300", hangup_ms="1000")
        (await sipp(stack, "caller_wait_bye.xml", "3100", variables={"caller": "5557020"})).check()
        (await phone_done()).check()
        await wait_until_quiet(engine, 1)
        await engine.acd.wait_until(lambda acd: acd.agents["9001"].phase is ag.AgentPhase.AVAILABLE)
        # the probes have had time to run: the loop every 0.5 s, the database at once, then every 5 s
        async with asyncio.timeout(5):
            while not value(await scrape(engine), "callcenter_event_loop_lag_distribution_seconds_count"):
                await asyncio.sleep(0.1)
        after = await scrape(engine)

    assert value(after, "callcenter_calls_started_total", direction="inbound") == 1.0
    assert value(after, "callcenter_calls_ended_total", ended_by="agent") == 1.0
    assert value(after, "callcenter_queue_entered_total", queue="support") == 1.0
    assert value(after, "callcenter_queue_wait_seconds_count", queue="support", outcome="answered") == 1.0
    wait = value(after, "callcenter_queue_wait_seconds_sum", queue="support", outcome="answered")
    assert 0.2 < wait < 5   # the phone rang 300 ms before answering
    assert value(after, "callcenter_queue_wait_seconds_bucket", queue="support", outcome="answered", le="5.0") == 1.0
    assert value(after, "callcenter_offers_total", queue="support", result="answered") == 1.0
    assert value(after, "callcenter_agents", queue="support", state="available") == 1.0
    assert value(after, "callcenter_agents", queue="support", state="on_call") == 0.0
    assert value(after, "callcenter_queue_waiting", queue="support") == 0.0
    assert value(after, "callcenter_live_calls") == 0.0
    assert value(after, "callcenter_database_latency_seconds_count") >= 1
    assert 0 < value(after, "callcenter_database_latency_seconds_sum") < 1
    assert value(after, "callcenter_event_loop_lag_distribution_seconds_count") >= 1
    assert value(after, "callcenter_event_loop_lag_seconds") < 0.5


async def test_a_dial_and_its_abandon_show_in_the_campaign_counters(stack, dsn, tmp_path, voices):  # noqa: F811
    engine = Engine(dialer_config(stack, dsn, tmp_path, campaign()))
    carrier, carrier_done = await customers(stack, voices, 1)
    async with running(engine):
        await migrated(engine)
        await add_leads(dsn, "renewals", ["+12125550111"])   # ...1: a person answers
        # the agent's phone only rings: nobody takes the call within the 2 s grace, an abandon
        phone, phone_done = await agent_phone(stack, 1, "agent_noanswer.xml")
        await log_in(engine, "9001", "renewals")
        assert engine.dialer is not None
        async with asyncio.timeout(40):
            await engine.dialer.wait_until(lambda d: d.closed >= 1)
        samples = await scrape(engine)
        await phone_done()
    (await carrier_done()).check()
    assert value(samples, "callcenter_dials_total", campaign="renewals") == 1.0
    assert value(samples, "callcenter_dial_outcomes_total", campaign="renewals", outcome="abandoned") == 1.0
    assert value(samples, "callcenter_abandons_total", campaign="renewals") == 1.0
    assert value(samples, "callcenter_calls_started_total", direction="outbound") == 1.0
    assert value(samples, "callcenter_campaign_lines", campaign="renewals") == 0.0
