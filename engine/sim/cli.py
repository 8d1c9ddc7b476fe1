"""``callcenter sim ...``: simulations of the pure core on a virtual clock.

    callcenter sim acd --scenario examples/sim/erlang-c.yaml [--json] [--seed N] [--hours H]
    callcenter sim dialer --scenario examples/sim/dialer-standard.yaml --algorithm predictive \
        [--json] [--seed N] [--hours H]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_parser", "format_dialer_table", "format_table"]


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser("sim", help="simulate the engine's core on a virtual clock")
    sim = p.add_subparsers(dest="sim_command", required=True, metavar="{acd,dialer}")
    a = sim.add_parser("acd", help="inbound queues and agents: service level, ASA, abandonment, occupancy")
    a.add_argument("--scenario", required=True, help="the scenario YAML file (see examples/sim/)")
    a.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    a.add_argument("--seed", type=int, help="override the scenario's seed")
    a.add_argument("--hours", type=_positive_float, help="override the scenario's hours")
    a.set_defaults(func=cmd_sim_acd)
    d = sim.add_parser("dialer", help="outbound pacing: dials, live answers, abandon rate, occupancy")
    d.add_argument("--scenario", required=True, help="the scenario YAML file (see examples/sim/dialer-standard.yaml)")
    d.add_argument("--algorithm", required=True,
                   help="progressive, ratio:X (X >= 1), vicidial-adapt or predictive")
    d.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    d.add_argument("--seed", type=int, help="override the scenario's seed")
    d.add_argument("--hours", type=_positive_float, help="override the scenario's hours")
    d.set_defaults(func=cmd_sim_dialer)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected more than 0, got {text}")
    return value


def cmd_sim_acd(args: argparse.Namespace) -> int:
    from engine.config.yamlconf import ConfigError
    from engine.sim.acd import run
    from engine.sim.scenario import load_scenario

    try:
        scenario = load_scenario(args.scenario, seed=args.seed, hours=args.hours)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    report = run(scenario)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_table(report))
    return 0


def cmd_sim_dialer(args: argparse.Namespace) -> int:
    from engine.core.pacing import make_pacer
    from engine.config.yamlconf import ConfigError
    from engine.sim.dialer import run
    from engine.sim.dialer_scenario import load_dialer_scenario

    try:
        make_pacer(args.algorithm)
    except ValueError as exc:
        print(f"--algorithm: {exc}", file=sys.stderr)
        return 2
    try:
        scenario = load_dialer_scenario(args.scenario, seed=args.seed, hours=args.hours)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    report = run(scenario, args.algorithm)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_dialer_table(report))
    return 0


def format_dialer_table(r: dict[str, Any]) -> str:
    lat = r["answer_to_agent_seconds"]
    rows = [
        ("dials", f"{r['dials']}  ({r['dials_per_agent_hour']:.1f} per agent hour)"),
        ("outcomes", f"persons {r['persons']}, machines {r['machines']}, no answer {r['no_answer']}, "
                     f"busy {r['busy']}"),
        ("live answers", f"{r['live_answers']}  (connected {r['connected']})"),
        ("abandoned", f"{r['abandoned']}"),
        ("abandon rate", f"{100 * r['abandon_rate']:.2f}%  (target {100 * r['abandon_target']:g}%)"),
        ("persons lost", f"{100 * r['human_abandon_rate']:.2f}%  (abandoned or AMD false positive, of persons "
                         f"who answered)"),
        ("occupancy", f"{100 * r['occupancy']:.1f}%"),
        ("talk min/agent h", f"{r['talk_minutes_per_agent_hour']:.1f}"),
        ("answer to agent", f"p50 {_num3(lat['p50'])} s, p99 {_num3(lat['p99'])} s"),
    ]
    if r["amd_false_positives"] or r["amd_false_negatives"]:
        rows.append(("AMD errors", f"false positives {r['amd_false_positives']}, "
                                   f"false negatives {r['amd_false_negatives']}"))
    if (inbound := r.get("inbound")) is not None:   # blending: the same agents took inbound callers
        rows.append(("inbound", f"offered {inbound['offered']}, answered {inbound['answered']}, abandoned "
                                f"{inbound['abandoned']} ({_pct(inbound['abandon_rate'])}); service level "
                                f"{_pct(inbound['service_level'])}, ASA {_num(inbound['asa_seconds'])} s"))
    width = max(len(k) for k, _ in rows)
    return "\n".join([
        f"scenario {r['scenario']}  algorithm {r['algorithm']}  seed {r['seed']}  {r['hours']:g} h  "
        f"{r['agents']} agents" + (f"  (first {r['warmup_minutes']:g} min not counted)" if r["warmup_minutes"] else ""),
        "",
        *(f"{k.ljust(width)}  {v}" for k, v in rows),
        "",
        f"{r['decisions']} pacing decisions, {r['events']} events in {r['wall_seconds']:.2f} s",
    ])


def _num3(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def format_table(report: dict[str, Any]) -> str:
    sl = report["service_level_seconds"]
    header = ["queue", "offered", "answered", "abandoned", "overflowed", f"SL {sl:g}s", "ASA s", "abandon",
              "P(wait)", "occupancy"]
    rows = []
    for name, f in [*report["queues"].items(), ("total", report["total"])]:
        rows.append([name, str(f["offered"]), str(f["answered"]), str(f["abandoned"]), str(f.get("overflowed", "")),
                     _pct(f["service_level"]), _num(f["asa_seconds"]), _pct(f["abandon_rate"]), _pct(f["p_wait"]),
                     _pct(f["occupancy"])])
    widths = [max(len(c) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    unfinished = report["total"]["unfinished"]
    return "\n".join([
        f"scenario {report['scenario']}  seed {report['seed']}  {report['hours']:g} h "
        f"(first {report['warmup_minutes']:g} min not counted)  {report['agents']} agents",
        "",
        line(header), line(["-" * w for w in widths]), *(line(r) for r in rows),
        "",
        f"SL = answered within {sl:g} s / offered; ASA over answered calls; P(wait) = found no free agent",
        *([f"{unfinished} calls still queued at the drain limit (unfinished)"] if unfinished else []),
        f"{report['events']} events, {report['simulated_hours']:.1f} simulated hours in "
        f"{report['wall_seconds']:.2f} s",
    ])
