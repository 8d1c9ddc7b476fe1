"""``callcenter campaign what-if``: the dialer simulator fed with a campaign's own history.

    callcenter campaign what-if CAMPAIGN --config PATH [--agents N] [--days 30] [--hours 8]
                                [--algorithm predictive|progressive|vicidial-adapt|ratio:X|all] [--json]

"With these agents and this list, what occupancy and abandon rate will this campaign get?" The
command reads the campaign's attempts of the last ``--days`` from ``dial_attempts`` and estimates
the traffic: the shares of dials a person answers, a machine answers, nobody answers, or are busy;
the answer delay (a lognormal fitted to answered - placed); talk time (lognormal mean and cv of
ended - connected); wrap-up (mean); AMD's decision time. The campaign's own settings give the
ring timeout and the abandon target. Then the real pacing code runs on the virtual clock
(:mod:`engine.sim.dialer`) and the predicted figures are printed beside the estimates.

What the history cannot tell (fewer than ``MIN_ATTEMPTS`` attempts for the shares, fewer than
``MIN_SAMPLES`` samples for a duration) comes from the standard scenario
(examples/sim/dialer-standard.yaml's values), and the output says which.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from engine.config.campaign import CampaignConfig
from engine.sim.dialer import run
from engine.sim.dialer_scenario import Amd, Delay, DialerScenario
from engine.sim.scenario import Distribution
from engine.store import outbound

__all__ = ["Estimate", "estimate", "what_if", "format_what_if"]

MIN_ATTEMPTS = 200
MIN_SAMPLES = 30
ALGORITHMS = ("predictive", "progressive", "vicidial-adapt")
STANDARD = DialerScenario(
    agents=10, hours=8, live_answer=0.25, machine_answer=0.15, no_answer=0.45, busy=0.15,
    answer_delay=Delay(distribution="lognormal", median_seconds=8.0, sigma=0.5),
    talk=Distribution(distribution="lognormal", mean_seconds=120.0, cv=1.0), wrapup_seconds=20.0,
    source="what-if")
# dial_attempts.outcome -> the simulator's share (the rest: failed, invalid, lost, in progress)
SHARES = {"answered": "live_answer", "abandoned": "live_answer", "machine": "machine_answer",
          "no_answer": "no_answer", "busy": "busy"}


@dataclass(frozen=True)
class Estimate:
    name: str
    value: Any
    samples: int
    source: str          # history | default | campaign


def estimate(rows: list[Any], campaign: CampaignConfig, *, agents: int | None, hours: float) -> \
        tuple[DialerScenario, list[Estimate]]:
    """The scenario the rows (dial_attempts records) describe, and where each value came from."""
    out: list[Estimate] = []
    s = replace(STANDARD, hours=hours, no_answer_timeout_seconds=campaign.ring_timeout_seconds,
                abandon_target_percent=campaign.abandon.target_percent)
    counted = [r for r in rows if r["outcome"] in SHARES]
    if len(counted) >= MIN_ATTEMPTS:
        shares = {k: 0 for k in ("live_answer", "machine_answer", "no_answer", "busy")}
        for r in counted:
            shares[SHARES[r["outcome"]]] += 1
        s = replace(s, **{k: v / len(counted) for k, v in shares.items()})
        src = "history"
    else:
        src = "default"
    for k in ("live_answer", "machine_answer", "no_answer", "busy"):
        out.append(Estimate(k, round(getattr(s, k), 3), len(counted), src))

    rings = [_secs(r["answered_at"] - r["placed_at"]) for r in rows if r["answered_at"] and r["placed_at"]]
    rings = [x for x in rings if x > 0]
    if len(rings) >= MIN_SAMPLES:
        logs = [math.log(x) for x in rings]
        s = replace(s, answer_delay=Delay(distribution="lognormal", median_seconds=math.exp(statistics.fmean(logs)),
                                          sigma=max(0.01, statistics.pstdev(logs))))
    out.append(Estimate("answer_delay", f"lognormal median {s.answer_delay.median_seconds:.1f} s, "
                                        f"sigma {s.answer_delay.sigma:.2f}", len(rings),
                        "history" if len(rings) >= MIN_SAMPLES else "default"))

    talks = [_secs(r["ended_at"] - r["connected_at"]) for r in rows if r["connected_at"] and r["ended_at"]]
    talks = [x for x in talks if x > 0]
    if len(talks) >= MIN_SAMPLES:
        mean = statistics.fmean(talks)
        cv = statistics.pstdev(talks) / mean if mean > 0 else 1.0
        s = replace(s, talk=Distribution(distribution="lognormal", mean_seconds=mean, cv=max(0.05, cv)))
    out.append(Estimate("talk", f"lognormal mean {s.talk.mean_seconds:.0f} s, cv {s.talk.cv:.2f}", len(talks),
                        "history" if len(talks) >= MIN_SAMPLES else "default"))

    wraps = [float(r["wrapup_seconds"]) for r in rows if r["wrapup_seconds"] is not None]
    if len(wraps) >= MIN_SAMPLES:
        s = replace(s, wrapup_seconds=statistics.fmean(wraps))
    out.append(Estimate("wrapup_seconds", round(s.wrapup_seconds, 1), len(wraps),
                        "history" if len(wraps) >= MIN_SAMPLES else "default"))

    screens = [_secs(r["verdict_at"] - r["answered_at"]) for r in rows
               if r["amd_status"] and r["verdict_at"] and r["answered_at"]]
    if campaign.amd.enabled:
        delay = statistics.median(screens) if len(screens) >= MIN_SAMPLES else 2.5
        s = replace(s, amd=Amd(enabled=True, delay_seconds=delay))
        out.append(Estimate("amd_delay_seconds", round(delay, 2), len(screens),
                            "history" if len(screens) >= MIN_SAMPLES else "default"))

    if agents is None:
        seen = {r["agent_id"] for r in rows if r["agent_id"]}
        agents = len(seen) or STANDARD.agents
        out.append(Estimate("agents", agents, len(seen), "history" if seen else "default"))
    else:
        out.append(Estimate("agents", agents, 0, "given"))
    s = replace(s, agents=agents)
    out.append(Estimate("ring_timeout_seconds", campaign.ring_timeout_seconds, 0, "campaign"))
    out.append(Estimate("abandon_target_percent", campaign.abandon.target_percent, 0, "campaign"))
    s.check()
    return s, out


def _secs(delta: timedelta) -> float:
    return delta.total_seconds()


async def what_if(conn: Any, campaign: CampaignConfig, *, agents: int | None, days: float, hours: float,
                  algorithms: tuple[str, ...], now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(timezone.utc)
    rows = await outbound.attempts_since(conn, campaign.name, now - timedelta(days=days))
    scenario, inputs = estimate(list(rows), campaign, agents=agents, hours=hours)
    results = {name: run(scenario, name) for name in algorithms}
    missing = [e.name for e in inputs if e.source == "default"]
    return {
        "campaign": campaign.name, "attempts": len(rows), "days": days,
        "inputs": [e.__dict__ for e in inputs],
        "from_defaults": missing,
        "results": {name: {k: r[k] for k in ("occupancy", "abandon_rate", "talk_minutes_per_agent_hour",
                                             "dials_per_agent_hour", "live_answers", "abandoned",
                                             "answer_to_agent_seconds")}
                    for name, r in results.items()},
    }


def format_what_if(report: dict[str, Any]) -> str:
    lines = [f"campaign {report['campaign']}: {report['attempts']} attempts in the last {report['days']:g} days", ""]
    width = max(len(i["name"]) for i in report["inputs"])
    lines.append(f"{'input'.ljust(width)}  value  (samples, from)")
    for i in report["inputs"]:
        lines.append(f"{i['name'].ljust(width)}  {i['value']}  ({i['samples']}, {i['source']})")
    if report["from_defaults"]:
        lines += ["", f"too little history for: {', '.join(report['from_defaults'])} (the standard scenario's "
                      f"values are used; at least {MIN_ATTEMPTS} attempts for the shares, {MIN_SAMPLES} samples "
                      f"for a duration)"]
    lines += ["", f"{'algorithm':<16}{'occupancy':>10}{'abandons':>10}{'talk min/agent h':>18}{'dials/agent h':>15}"]
    for name, r in report["results"].items():
        lines.append(f"{name:<16}{100 * r['occupancy']:>9.1f}%{100 * r['abandon_rate']:>9.2f}%"
                     f"{r['talk_minutes_per_agent_hour']:>18.1f}{r['dials_per_agent_hour']:>15.1f}")
    return "\n".join(lines)
