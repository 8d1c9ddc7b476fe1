"""``callcenter report inbound|outbound|agents``: the figures supervisors live by, from PostgreSQL.

Theory of operation
-------------------
Every figure is one SQL aggregate over what the engine stored (:mod:`engine.store.reports`;
definitions: shared/docs/domain.md; the choices made where the definitions leave room are in the
README, "Reports"):

- inbound, from ``queue_entries`` of inbound calls (a campaign's answered calls queue too: they are
  outbound), one row per stay of a call in a queue, entered in the period and
  left): per queue and in total (a call that overflowed counts once in the total). AHT is talk +
  hold + wrap-up per handled call from the answering agent's ``agent_states`` durations
  (``on_call``, ``on_hold`` and ``wrap_up`` with that call id): hold is not talk. FCR and CSAT
  are per handled call: a repeat inbound call from the same ``caller_number`` within
  ``reports.fcr_window`` after it (looking past the period's end too), and the ``survey_answers``
  the caller gave after it;
- outbound, from ``dial_attempts`` placed in the period, per campaign; live answers and abandons
  are counted as the dialer counts them (a live answer is connected to an agent or abandoned), and
  the abandon rate is also given over the campaign's compliance window ending at the period's end
  (30 d for rule us, 24 h for uk with the AMD false-positive estimate added), the figure the law
  caps; refused dials by reason come from ``dial_decisions``;
- agents, from the ``agent_states`` history cut into spans (each state lasts until the agent's
  next state, the open one until now) clipped to the period or each interval.

``--interval`` cuts the period into bins (``date_bin`` / ``generate_series`` from ``--from``); each
row then carries the start of its bin.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.store import reports as report_store
from engine.shared.textsafe import printable, text_table
from engine.config.yamlconf import parse_duration

__all__ = ["Column", "Report", "agents_report", "format_report", "inbound_report", "outbound_report",
           "parse_interval", "parse_period", "parse_when", "parse_zone"]

Kind = Literal["text", "count", "seconds", "duration", "rate", "number", "time", "breakdown"]
MAX_BINS = 10_000
_RELATIVE = re.compile(r"^-?\s*(\d+(?:\.\d+)?\s*(?:s|m|h|d))(?:\s+ago)?$")


# -- parsing the command line -----------------------------------------------------------------------

def parse_zone(text: str | None) -> tzinfo:
    """An IANA zone name, or this machine's local zone when not given."""
    if not text:
        return datetime.now().astimezone().tzinfo or timezone.utc
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"--tz: unknown time zone {text!r} (expected a name such as Europe/Paris or UTC)") from None


def parse_when(text: str, *, now: datetime, tz: tzinfo, end: bool = False) -> datetime:
    """``now``, ``today``, ``yesterday``, ``7d`` / ``-7d`` / ``12h`` / ``30m`` (that long before now;
    ``--from=-7d`` on a command line, or plain ``7d``), an ISO date
    (``2026-11-24``: its midnight, or the next midnight when ``end``: a day given as the end is
    included) or an ISO time (``2026-11-24T08:30``, with or without an offset; none: ``tz``)."""
    t = text.strip().lower()
    day: date | None = None
    if t == "now":
        return now
    if t in ("today", "yesterday"):
        day = now.astimezone(tz).date() - timedelta(days=1 if t == "yesterday" else 0)
    elif m := _RELATIVE.match(t):
        return now - timedelta(seconds=parse_duration(m.group(1)))
    elif re.match(r"^\d{4}-\d{2}-\d{2}$", t):
        try:
            day = date.fromisoformat(t)
        except ValueError as exc:
            raise ValueError(f"{text!r}: {exc}") from None
    else:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(f"expected now, today, yesterday, 7d (or 12h, 30m: that long ago), a date 2026-11-24 or a time "
                             f"2026-11-24T08:30[+01:00], got {text!r}") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=tz)
    return datetime.combine(day + timedelta(days=1 if end else 0), datetime.min.time(), tz)


def parse_interval(text: str | None) -> timedelta | None:
    """``30m``, ``1h``, ``1d``... (at least a minute), or None."""
    if not text:
        return None
    seconds = parse_duration(text)
    if seconds < 60:
        raise ValueError(f"--interval: expected at least 1m, got {text!r}")
    return timedelta(seconds=seconds)


def parse_period(start: str, end: str, interval: str | None, *, now: datetime,
                 tz: tzinfo) -> tuple[datetime, datetime, timedelta | None]:
    """The period [start, end) and the bin width; ValueError says what is wrong."""
    try:
        a = parse_when(start, now=now, tz=tz)
    except ValueError as exc:
        raise ValueError(f"--from: {exc}") from None
    try:
        b = parse_when(end, now=now, tz=tz, end=True)
    except ValueError as exc:
        raise ValueError(f"--to: {exc}") from None
    if b <= a:
        raise ValueError(f"--to ({b.isoformat()}) must be after --from ({a.isoformat()})")
    step = parse_interval(interval)
    if step is not None and (b - a) / step > MAX_BINS:
        raise ValueError(f"--interval {interval} cuts the period into more than {MAX_BINS} bins")
    return a, b, step


# -- the report ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Column:
    key: str
    header: str
    kind: Kind = "count"


@dataclass(slots=True)
class Report:
    kind: str
    start: datetime
    end: datetime
    interval: timedelta | None
    columns: list[Column]
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if not b or a is None else a / b


def _bins(start: datetime, end: datetime, interval: timedelta | None) -> tuple[datetime, datetime, timedelta]:
    return start, end, interval or (end - start)


_INTERVAL_COLUMN = Column("interval", "interval", "time")


def _with_interval(columns: list[Column], interval: timedelta | None) -> list[Column]:
    return [_INTERVAL_COLUMN, *columns] if interval else columns


# -- inbound ------------------------------------------------------------------------------------------

INBOUND_COLUMNS = [
    Column("queue", "queue", "text"), Column("offered", "offered"), Column("answered", "answered"),
    Column("abandoned", "abandoned"), Column("short_abandoned", "short ab."),
    Column("abandon_rate", "abandon %", "rate"), Column("asa_seconds", "ASA", "seconds"),
    Column("service_level", "SL", "rate"), Column("service_level_target", "SL target", "text"),
    Column("aht_seconds", "AHT", "seconds"), Column("talk_seconds", "talk", "seconds"),
    Column("hold_seconds", "hold", "seconds"), Column("wrap_up_seconds", "wrap-up", "seconds"),
    Column("fcr", "FCR", "rate"),
    Column("csat", "CSAT", "number"), Column("surveys", "surveys"),
]


async def inbound_report(conn: Any, cfg: Any, start: datetime, end: datetime,
                         interval: timedelta | None = None) -> Report:
    short = cfg.reports.short_abandon_seconds
    targets = {q.name: q.service_level for q in cfg.queues}
    a, b, step = _bins(start, end, interval)
    rows = await report_store.inbound_rows(conn, a, b, step, short, timedelta(seconds=cfg.reports.fcr_window_seconds),
                                           {n: t.seconds for n, t in targets.items()})
    out = []
    for r in rows:
        # Short abandons are left out of the base of the service level and of the abandon rate.
        base = r["offered"] - r["short_abandoned"]
        target = targets.get(r["queue"]) if not r["is_total"] else None
        out.append({
            "interval": r["bin"] if interval else None,
            "queue": "(total)" if r["is_total"] else r["queue"],
            "offered": r["offered"], "answered": r["answered"], "abandoned": r["abandoned"],
            "short_abandoned": r["short_abandoned"], "abandon_rate": _ratio(r["abandoned"], base),
            "asa_seconds": r["asa"], "service_level": _ratio(r["in_sl"], base),
            "service_level_target": (f"{target.percent:g}% in {target.seconds:g}s" if target else
                                     "each queue's" if r["is_total"] else "80% in 20s"),
            "aht_seconds": r["aht"], "talk_seconds": r["talk"], "hold_seconds": r["hold"],
            "wrap_up_seconds": r["wrap_up"], "fcr": _ratio(r["fcr_resolved"], r["fcr_calls"]),
            "csat": _ratio(float(r["csat_points"] or 0), float(r["csat_answers"] or 0)),
            "surveys": int(r["csat_answers"] or 0),
        })
    notes = [f"short abandons: gone within {short:g} s; counted apart and left out of offered for SL and abandon %",
             f"FCR: handled calls whose number did not call again within {cfg.reports.fcr_window}",
             "AHT: talk + hold + wrap-up per handled call; CSAT: mean survey answer 1-5"]
    return Report("inbound", start, end, interval, _with_interval(INBOUND_COLUMNS, interval), out, notes)


# -- agents -------------------------------------------------------------------------------------------

AGENTS_COLUMNS = [
    Column("agent", "agent", "text"), Column("logged_in_seconds", "logged in", "duration"),
    Column("talk_seconds", "talk", "duration"), Column("talk_inbound_seconds", "talk in", "duration"),
    Column("talk_outbound_seconds", "talk out", "duration"), Column("hold_seconds", "hold", "duration"),
    Column("wrap_up_seconds", "wrap-up", "duration"),
    Column("idle_seconds", "idle", "duration"), Column("paused_seconds", "paused", "duration"),
    Column("paused_by_reason", "paused by reason", "breakdown"), Column("occupancy", "occupancy", "rate"),
    Column("calls_inbound", "calls in"), Column("calls_outbound", "calls out"),
]


async def agents_report(conn: Any, cfg: Any, start: datetime, end: datetime,
                        interval: timedelta | None = None) -> Report:
    rows = await report_store.agent_rows(conn, *_bins(start, end, interval))
    out = []
    for r in rows:
        available = r["logged_in"] - r["paused"]
        out.append({
            "interval": r["bin"] if interval else None,
            "agent": "(total)" if r["is_total"] else r["agent_id"],
            "logged_in_seconds": r["logged_in"], "talk_seconds": r["talk"],
            "talk_inbound_seconds": r["talk_inbound"], "talk_outbound_seconds": r["talk_outbound"],
            "hold_seconds": r["hold"], "wrap_up_seconds": r["wrap_up"], "idle_seconds": r["idle"],
            "paused_seconds": r["paused"],
            "paused_by_reason": {k: float(v) for k, v in json.loads(r["paused_by_reason"] or "{}").items()},
            "occupancy": _ratio(r["talk"] + r["hold"] + r["wrap_up"], available),
            "calls_inbound": r["calls_inbound"], "calls_outbound": r["calls_outbound"],
        })
    notes = ["occupancy: (talk + hold + wrap-up) / (logged in - paused); ringing (reserved) counts as available",
             "talk and calls by direction: inbound and outbound apart, also for blended agents"]
    return Report("agents", start, end, interval, _with_interval(AGENTS_COLUMNS, interval), out, notes)


# -- outbound -----------------------------------------------------------------------------------------

OUTBOUND_COLUMNS = [
    Column("campaign", "campaign", "text"), Column("dials", "dials"), Column("connects", "connects"),
    Column("connect_rate", "connect %", "rate"), Column("live_answers", "live"), Column("abandoned", "abandoned"),
    Column("abandon_rate", "abandon %", "rate"), Column("window_abandon_rate", "abandon % window", "rate"),
    Column("window", "window", "text"), Column("conversions", "conversions"),
    Column("conversion_rate", "conversion %", "rate"), Column("talk_minutes", "talk min", "number"),
    Column("agent_hours", "agent h", "number"), Column("talk_minutes_per_agent_hour", "talk min/agent h", "number"),
    Column("refused", "refused"), Column("refused_by_reason", "refused by reason", "breakdown"),
]


def _window_label(seconds: float) -> str:
    return f"{seconds / 86400:g}d" if seconds % 86400 == 0 and seconds > 3 * 86400 else f"{seconds / 3600:g}h"


async def outbound_report(conn: Any, cfg: Any, start: datetime, end: datetime,
                          interval: timedelta | None = None, now: datetime | None = None) -> Report:
    campaigns = {c.name: c for c in cfg.campaigns}
    rows = await report_store.outbound_rows(conn, *_bins(start, end, interval),
                                            {c.name: c.success_dispositions for c in cfg.campaigns})
    names = sorted({r["campaign"] for r in rows} | set(campaigns))
    windows = {n: campaigns[n].abandon.window_seconds if n in campaigns else 30 * 86400.0 for n in names}
    until = min(end, now or datetime.now(timezone.utc))
    counted: dict[str, tuple[int, int]] = {}
    for w in await report_store.window_counts(conn, until, names, windows):
        live, abandoned = w["live"], w["abandoned"]
        c = campaigns.get(w["campaign"])
        fp = c.abandon.amd_false_positive_percent if c is not None else None
        if c is not None and c.abandon.rule == "uk" and c.amd.enabled and fp:
            people = round(w["machines"] * fp / 100.0)   # as the dialer counts (Campaign.counted_abandons)
            live, abandoned = live + people, abandoned + people
        counted[w["campaign"]] = (live, abandoned)
    if interval is None:   # every campaign shows, dialled in the period or not: its window matters
        seen = {r["campaign"] for r in rows}
        rows = [*rows, *({"campaign": n, "bin": start, "dials": 0, "connects": 0, "live_answers": 0, "abandoned": 0,
                          "conversions": 0, "talk": 0.0, "refused": 0, "by_reason": None, "agent_seconds": None}
                         for n in names if n not in seen)]
        rows.sort(key=lambda r: r["campaign"])
    out = []
    for r in rows:
        name = r["campaign"]
        live_w, abandoned_w = counted.get(name, (0, 0))
        hours = (r["agent_seconds"] or 0) / 3600
        out.append({
            "interval": r["bin"] if interval else None, "campaign": name,
            "dials": r["dials"], "connects": r["connects"], "connect_rate": _ratio(r["connects"], r["dials"]),
            "live_answers": r["live_answers"], "abandoned": r["abandoned"],
            "abandon_rate": _ratio(r["abandoned"], r["live_answers"]),
            "window_abandon_rate": _ratio(abandoned_w, live_w), "window": _window_label(windows[name]),
            "window_live_answers": live_w, "window_abandoned": abandoned_w,
            "conversions": r["conversions"], "conversion_rate": _ratio(r["conversions"], r["live_answers"]),
            "talk_minutes": r["talk"] / 60, "agent_hours": hours,
            "talk_minutes_per_agent_hour": _ratio(r["talk"] / 60, hours),
            "refused": int(r["refused"]),
            "refused_by_reason": json.loads(r["by_reason"]) if r["by_reason"] else {},
        })
    notes = ["live answers: connected to an agent or abandoned (as the dialer counts them); conversion % of live",
             f"abandon % window: over each campaign's compliance window ending {until:%Y-%m-%d %H:%M} UTC "
             "(rule uk adds the AMD false-positive estimate)",
             "agent h: logged-in, not paused, of the agents who took the campaign's calls in the interval"]
    return Report("outbound", start, end, interval, _with_interval(OUTBOUND_COLUMNS, interval), out, notes)


REPORTS = {"inbound": inbound_report, "outbound": outbound_report, "agents": agents_report}


# -- formatting ---------------------------------------------------------------------------------------

def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _cell(value: Any, kind: Kind, tz: tzinfo) -> str:
    if value is None:
        return "-"
    match kind:
        case "seconds":
            return f"{value:.1f}s"
        case "duration":
            return _hms(value)
        case "rate":
            return f"{value * 100:.1f}%"
        case "number":
            return f"{value:.2f}"
        case "time":
            return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        case "breakdown":
            return ", ".join(f"{k} {_hms(v) if isinstance(v, float) else v}" for k, v in value.items()) or "-"
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, float):
        return round(value, 4)
    return value


def format_report(report: Report, fmt: str = "table", tz: tzinfo = timezone.utc) -> str:
    """``table`` (for people), ``csv`` (one row per line, raw values: seconds, fractions) or ``json``."""
    keys = [c.key for c in report.columns]
    if fmt == "json":
        return json.dumps({"report": report.kind, "from": report.start.isoformat(), "to": report.end.isoformat(),
                           "interval_seconds": report.interval.total_seconds() if report.interval else None,
                           "rows": [{k: _plain(r.get(k)) for k in r} for r in report.rows],
                           "notes": report.notes}, indent=1)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(keys)
        for r in report.rows:
            w.writerow(["" if r.get(k) is None else json.dumps(_plain(r[k])) if isinstance(r[k], dict)
                        else printable(r[k]) if isinstance(r[k], str) else _plain(r[k]) for k in keys])
        return buf.getvalue().rstrip("\n")
    title = (f"{report.kind} report {report.start.astimezone(tz):%Y-%m-%d %H:%M} to "
             f"{report.end.astimezone(tz):%Y-%m-%d %H:%M} ({tz})"
             + (f", every {_hms(report.interval.total_seconds())}" if report.interval else ""))
    body = text_table([c.header for c in report.columns],
                  [[_cell(r.get(c.key), c.kind, tz) for c in report.columns] for r in report.rows])
    return "\n".join([title, "", body if report.rows else "(no data in this period)", "",
                      *(f"* {printable(n)}" for n in report.notes)])
