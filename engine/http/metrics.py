"""Prometheus ``GET /metrics``, with prometheus_client (the text format or OpenMetrics, as asked).

Each engine has its own :class:`CollectorRegistry` (never the process-wide default one): tests and
tools run several engines in one process.

- **Counters** follow the domain events of :mod:`engine.shared.events`, counted as they are published:
  calls started (by direction) and ended (by who hung up), queue entries, waits in queue
  (histogram by queue and outcome), offers to agents (by queue and result), dispositions, dials,
  dial outcomes and abandons (by campaign). They count from the engine's start, as Prometheus
  expects of counters (``rate()`` copes with restarts).
- **Gauges** are read at scrape time from the engine's memory: agents by queue and state, calls
  waiting and the longest wait per queue, live calls, campaign lines in flight, and whether ARI,
  AMI and PostgreSQL are up (``/healthz``'s view), plus writes waiting for the database.
- **Event-loop lag**: a task asks to wake every 0.5 s and records how late it woke (gauge: the
  last one; histogram: all of them). A lag of tens of milliseconds means something blocks the loop.
- **Database latency**: every 5 s (from when the pool is ready) a ``SELECT 1`` on the pool (histogram; a failure counts in
  ``callcenter_database_probe_failures_total``).

Open like ``/healthz`` (the HTTP server binds to loopback unless ``http.bind`` says otherwise).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from engine.core import agent as ag
from engine.shared.logsetup import get_logger
from engine.store.db import ping

if TYPE_CHECKING:
    from engine.runtime.view import EngineView as Engine

__all__ = ["Metrics", "setup"]

log = get_logger("metrics")

LAG_PERIOD = 0.5
DB_PROBE_PERIOD = 5.0
DB_PROBE_TIMEOUT = 5.0
WAIT_BUCKETS = (1, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, float("inf"))
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, float("inf"))
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, float("inf"))
MAX_OPEN_OFFERS = 10_000   # offer id -> queue, kept until the offer ends (bounded in case one never does)


class Metrics:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        r = self.registry = CollectorRegistry()
        self.calls_started = Counter("callcenter_calls_started", "Calls that began, by direction",
                                     ["direction"], registry=r)
        self.calls_ended = Counter("callcenter_calls_ended", "Calls that ended, by who hung up",
                                   ["ended_by"], registry=r)
        self.queue_entered = Counter("callcenter_queue_entered", "Callers who started waiting in a queue",
                                     ["queue"], registry=r)
        self.queue_wait = Histogram("callcenter_queue_wait_seconds",
                                    "Time in a queue, by how the stay ended (answered, abandoned, overflow...)",
                                    ["queue", "outcome"], buckets=WAIT_BUCKETS, registry=r)
        self.offers = Counter("callcenter_offers", "Calls offered to an agent's phone, by result",
                              ["queue", "result"], registry=r)
        self.dispositions = Counter("callcenter_dispositions", "Dispositions keyed by agents", ["name"], registry=r)
        self.dials = Counter("callcenter_dials", "Numbers dialled by campaigns", ["campaign"], registry=r)
        self.dial_outcomes = Counter("callcenter_dial_outcomes", "Campaign dials that ended, by outcome",
                                     ["campaign", "outcome"], registry=r)
        self.abandons = Counter("callcenter_abandons",
                                "Live answers that found no agent within the grace (the compliance abandons)",
                                ["campaign"], registry=r)
        self.loop_lag = Gauge("callcenter_event_loop_lag_seconds", "How late the last event-loop probe woke",
                              registry=r)
        self.loop_lag_hist = Histogram("callcenter_event_loop_lag_distribution_seconds",
                                       f"How late event-loop probes woke (one every {LAG_PERIOD} s)",
                                       buckets=LAG_BUCKETS, registry=r)
        self.db_latency = Histogram("callcenter_database_latency_seconds",
                                    f"Round trip of SELECT 1 on the pool, every {DB_PROBE_PERIOD:g} s",
                                    buckets=DB_BUCKETS, registry=r)
        self.db_failures = Counter("callcenter_database_probe_failures", "SELECT 1 probes that failed or timed out",
                                   registry=r)
        r.register(_LiveCollector(engine))
        self._offer_queue: dict[str, str] = {}

    # -- domain events (engine.events) ------------------------------------------------------------
    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "call.started":
            self.calls_started.labels(data["direction"]).inc()
        elif kind == "call.ended":
            self.calls_ended.labels(data.get("ended_by") or "unknown").inc()
        elif kind == "queue.entered":
            self.queue_entered.labels(data["queue"]).inc()
        elif kind == "queue.left":
            self.queue_wait.labels(data["queue"], data["outcome"]).observe(max(0.0, data["wait_seconds"]))
        elif kind == "call.offered":
            if len(self._offer_queue) >= MAX_OPEN_OFFERS:
                self._offer_queue.pop(next(iter(self._offer_queue)))
            self._offer_queue[data["offer_id"]] = data["queue"]
        elif kind == "call.offer_ended":
            queue = self._offer_queue.pop(data["offer_id"], "unknown")
            self.offers.labels(queue, data["result"]).inc()
        elif kind == "call.dispositioned":
            self.dispositions.labels(data.get("name") or data.get("code") or "unknown").inc()
        elif kind == "dial.placed":
            self.dials.labels(data["campaign"]).inc()
        elif kind == "dial.ended":
            self.dial_outcomes.labels(data["campaign"], data["outcome"]).inc()
            if data["outcome"] == "abandoned":
                self.abandons.labels(data["campaign"]).inc()

    # -- probes -----------------------------------------------------------------------------------
    async def probe_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(LAG_PERIOD)
            lag = max(0.0, loop.time() - asked - LAG_PERIOD)
            self.loop_lag.set(lag)
            self.loop_lag_hist.observe(lag)

    async def probe_database(self) -> None:
        while True:
            await self.engine.database_ready()
            pool = self.engine.pool()
            if pool is not None:
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(DB_PROBE_TIMEOUT):
                        await ping(pool)
                except Exception as exc:  # down or slow: /healthz and the database's own logs say more
                    self.db_failures.inc()
                    log.debug("metrics.db_probe_failed", error=repr(exc))
                else:
                    self.db_latency.observe(time.perf_counter() - started)
            await asyncio.sleep(DB_PROBE_PERIOD)


class _LiveCollector(Collector):
    """Gauges read at scrape time from the engine's memory."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> list[Any]:
        return []   # no fixed description: the registry calls collect() only at scrape time

    def collect(self) -> Iterator[GaugeMetricFamily]:
        engine, now = self.engine, time.time()
        health = engine.health()
        up = GaugeMetricFamily("callcenter_up", "Whether the engine's connection is up (1) or not (0)",
                               labels=["dependency"])
        up.add_metric(["ari"], float(health["ari"] is True))
        if health["ami"] != "disabled":
            up.add_metric(["ami"], float(health["ami"] is True))
        up.add_metric(["database"], float(health["database"] is True))
        yield up
        yield GaugeMetricFamily("callcenter_live_calls", "Calls in progress in this engine",
                                value=health["live_calls"])
        yield GaugeMetricFamily("callcenter_pending_writes", "Database writes queued, not yet applied",
                                value=health["pending_writes"])
        yield GaugeMetricFamily("callcenter_journal_bytes", "Size of the write journal on local disk",
                                value=health["journal_bytes"])
        yield GaugeMetricFamily("callcenter_journal_max_bytes", "The write journal's bound (no new calls past it)",
                                value=health["journal_max_bytes"])
        agents = GaugeMetricFamily("callcenter_agents", "Logged-in agents by queue and state",
                                   labels=["queue", "state"])
        waiting = GaugeMetricFamily("callcenter_queue_waiting", "Callers waiting now", labels=["queue"])
        longest = GaugeMetricFamily("callcenter_queue_longest_wait_seconds", "The longest current wait",
                                    labels=["queue"])
        logged_in = [a for a in engine.agents().values() if a.phase is not ag.AgentPhase.LOGGED_OUT]
        for q in engine.queues().values():
            counts = dict.fromkeys((p.value for p in ag.AgentPhase if p is not ag.AgentPhase.LOGGED_OUT), 0)
            for a in logged_in:
                if q.name in a.queues:
                    counts[a.phase.value] += 1
            for state, n in counts.items():
                agents.add_metric([q.name, state], n)
            waits = [now - w.queued_at for w in q.waiting]
            waiting.add_metric([q.name], len(waits))
            longest.add_metric([q.name], max(waits, default=0.0))
        yield agents
        yield waiting
        yield longest
        lines = GaugeMetricFamily("callcenter_campaign_lines", "Campaign dials ringing, screened or waiting for an agent",
                                  labels=["campaign"])
        for name, run in engine.campaigns(now).items():
            lines.add_metric([name], run.lines_in_flight)
        yield lines


METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)


def setup(app: web.Application) -> None:
    """Add ``/metrics`` to the engine's app (see :func:`engine.http.server.build_app`)."""
    from engine.http.server import ENGINE, run_beside

    metrics = app[METRICS] = Metrics(app[ENGINE])
    app.router.add_get("/metrics", _metrics)
    run_beside(app, metrics.on_event, metrics.probe_loop, metrics.probe_database)


async def _metrics(request: web.Request) -> web.Response:
    # the text format Prometheus asks for in Accept (OpenMetrics or the classic text format)
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return web.Response(body=encode(request.app[METRICS].registry), headers={"Content-Type": content_type})
