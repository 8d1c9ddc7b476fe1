"""The ``callcenter`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from engine import __version__
from engine.config.model import Config, ConfigError, load_config
from engine.config.yamlconf import Problem
from engine.shared.logsetup import configure, get_logger
from engine.cli.outbound import add_parsers as add_outbound_parsers, with_db
from engine.cli.reports import add_parsers as add_report_parsers
from engine.sim.cli import add_parser as add_sim_parser
from engine.store import history
from engine.shared.textsafe import text_table

log = get_logger("cli")


def _run_loop(coro: Coroutine[Any, Any, int]) -> int:
    """uvloop unless CALLCENTER_LOOP=asyncio (both are tested)."""
    if os.environ.get("CALLCENTER_LOOP", "uvloop") == "uvloop":
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
            return asyncio.run(coro)
        return uvloop.run(coro)
    return asyncio.run(coro)


def _load(path: str) -> Config | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return None


def cmd_check_config(args: argparse.Namespace) -> int:
    """Errors and warnings on stderr, each at its file:line:col; exit 1 on an error, else 0 (an
    unset environment variable is a warning here: the values that need it are not checked)."""
    warnings: list[Problem] = []
    try:
        load_config(args.path, warnings=warnings)
    except ConfigError as exc:
        failed: ConfigError | None = exc
    else:
        failed = None
    for w in sorted(warnings, key=lambda p: (p.mark.file, p.mark.line, p.mark.column)):
        print(f"{w.mark}: warning: {w.message}", file=sys.stderr)
    if failed is not None:
        print(str(failed), file=sys.stderr)
        return 1
    print(f"{args.path}: ok")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load(args.config)   # an unset variable is an error here: nothing runs on a guess
    if cfg is None:
        return 1
    configure(cfg.logging.level, cfg.logging.format)
    for w in cfg.warnings():
        log.warning("config.warning", problem=str(w))
    return _run_loop(_serve(cfg, Path(args.config)))


async def _serve(cfg: Config, path: Path) -> int:
    from engine.app import Engine

    engine = Engine(cfg, path)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _stop_on_signal, engine, sig)
    loop.add_signal_handler(signal.SIGHUP, engine.reload)
    try:
        await engine.run()
    except BaseExceptionGroup as group:
        for exc in _leaves(group):   # the real errors, with where they were raised
            log.error("engine.failed", error=f"{type(exc).__name__}: {exc}", exc_info=exc)
        return 1
    return 0


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out += _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return out


def _stop_on_signal(engine: Any, sig: signal.Signals) -> None:
    log.info("engine.signal", signal=sig.name)
    engine.stop.set()


def cmd_migrate(args: argparse.Namespace) -> int:
    import asyncpg

    from engine.store.migrate import MigrationError, default_dir, migrate

    dsn = args.dsn
    directory = None
    if dsn is None:
        cfg = _load(args.config) if args.config else None
        if cfg is None:
            if not args.config:
                print("migrate: give --config PATH or --dsn DSN", file=sys.stderr)
            return 1
        dsn, directory = cfg.database.dsn, cfg.database.migrations_dir

    async def go() -> int:
        try:
            conn = await asyncpg.connect(dsn, timeout=10)
        except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
            print(f"migrate: cannot connect to the database: {exc}", file=sys.stderr)
            return 1
        try:
            done = await migrate(conn, directory or default_dir())
        except (MigrationError, asyncpg.PostgresError) as exc:
            print(f"migrate: {exc}", file=sys.stderr)
            return 1
        finally:
            await conn.close()
        for m in done:
            print(f"applied {m.path.name}")
        if not done:
            print("schema is up to date")
        return 0

    return asyncio.run(go())


def _print_query(args: argparse.Namespace, query: Callable[[Any], Awaitable[list[Any]]], header: list[str],
                 cells: Any) -> int:
    """Connect with the config's DSN, run one query of the store, print its rows (oldest first) as a table."""

    async def work(conn: Any, cfg: Config) -> int:
        rows = await query(conn)
        print(text_table(header, [cells(r) for r in reversed(rows)]))
        return 0

    return with_db(args, work)


def cmd_calls(args: argparse.Namespace) -> int:
    return _print_query(args, lambda conn: history.latest_calls(conn, args.last),
        ["started (UTC)", "dir", "caller", "name", "dialed", "answer after", "duration", "cause", "ended by"],
        lambda r: [r["started_at"].strftime("%Y-%m-%d %H:%M:%S"), r["direction"], r["caller_number"],
                   r["caller_name"], r["dialed_number"], _secs(r["to_answer"]), _secs(r["duration"]),
                   "" if r["hangup_cause"] is None else f'{r["hangup_cause"]} {r["hangup_cause_text"] or ""}',
                   r["ended_by"] or "(live)"])


def cmd_routing(args: argparse.Namespace) -> int:
    """Why each call went where it went: every offer, with the candidates and the rule that chose."""
    return _print_query(args, lambda conn: history.routing_log(conn, args.last, args.call),
        ["offered (UTC)", "caller", "queue", "agent", "result", "why this agent"],
        lambda r: [r["offered_at"].strftime("%Y-%m-%d %H:%M:%S"), r["caller_number"], r["queue"], r["agent_id"],
                   r["result"] or "(ringing)", r["reason"]])


def cmd_attempts(args: argparse.Namespace) -> int:
    """The dialer's latest attempts, and the gate's refusals, newest last."""
    return _print_query(args, lambda conn: history.attempts_log(conn, args.last, args.campaign),
        ["at (UTC)", "campaign", "number", "mode", "result", "agent", "detail"],
        lambda r: [r["at"].strftime("%Y-%m-%d %H:%M:%S"), r["campaign"], r["number"], r["mode"], r["result"],
                   r["agent_id"] or "", r["detail"]])


def cmd_ivr_try(args: argparse.Namespace) -> int:
    from engine.cli.ivrtry import dry_run, parse_at

    cfg = _load(args.config)
    if cfg is None:
        return 1
    if args.tree not in cfg.trees:
        print(f"ivr try: no tree {args.tree!r}; the trees are: {', '.join(sorted(cfg.trees)) or 'none'}",
              file=sys.stderr)
        return 1
    keys = [k.strip() for k in args.digits.split(",") if k.strip()] if args.digits else []
    bad = [k for k in keys if len(k) != 1 or k not in "0123456789*#"]
    if bad:
        print(f"ivr try: --digits takes keys 0-9, * and # separated by commas; got {', '.join(bad)}",
              file=sys.stderr)
        return 1
    try:
        at = parse_at(args.at)
        http = json.loads(args.http_response) if args.http_response else None
    except ValueError as exc:
        print(f"ivr try: {exc}", file=sys.stderr)
        return 1
    report = dry_run(cfg.trees, args.tree, caller=args.caller, dialed=args.dialed, keys=keys, at=at,
                     http_response=http)
    print(report.to_json() if args.json else report.text())
    return 0


def _secs(delta: Any) -> str:
    return "" if delta is None else f"{delta.total_seconds():.2f}s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="callcenter", description="Call-center engine for Asterisk.")
    parser.add_argument("--version", action="version", version=f"callcenter {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the engine (SIGTERM stops, SIGHUP reloads the config)")
    p.add_argument("--config", required=True, help="the main YAML file")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check-config", help="validate a config file without starting anything")
    p.add_argument("path")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("migrate", help="apply database migrations")
    p.add_argument("--config", help="the main YAML file (its database.dsn)")
    p.add_argument("--dsn", help="a PostgreSQL DSN instead of --config")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("calls", help="print the latest calls from the database")
    p.add_argument("--config", required=True)
    p.add_argument("--last", type=int, default=20)
    p.set_defaults(func=cmd_calls)

    p = sub.add_parser("routing", help="the routing reason log: each offer and why that agent")
    p.add_argument("--config", required=True)
    p.add_argument("--call", help="only this call id")
    p.add_argument("--last", type=int, default=20)
    p.set_defaults(func=cmd_routing)

    p = sub.add_parser("attempts", help="the dialer's latest attempts and refused dials")
    p.add_argument("--config", required=True)
    p.add_argument("--campaign", help="only this campaign")
    p.add_argument("--last", type=int, default=20)
    p.set_defaults(func=cmd_attempts)

    p = sub.add_parser("ivr", help="IVR trees")
    ivr_sub = p.add_subparsers(dest="ivr_command", required=True)
    t = ivr_sub.add_parser("try", help="walk a tree without Asterisk: the path, the prompts, the outcome")
    t.add_argument("tree")
    t.add_argument("--config", required=True)
    t.add_argument("--caller", default="5550100")
    t.add_argument("--dialed", default="")
    t.add_argument("--digits", default="", help="keys in order, comma-separated: 1,2,#")
    t.add_argument("--at", help="when the call happens (ISO time, or epoch seconds); default now")
    t.add_argument("--http-response", help="the JSON the CRM answers (else CRM lookups fail)")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_ivr_try)

    add_sim_parser(sub)
    add_outbound_parsers(sub)   # import-leads, dnc
    add_report_parsers(sub)     # report, recordings purge, gdpr

    args = parser.parse_args(argv)
    return args.func(args)
