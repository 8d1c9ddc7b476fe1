"""``callcenter import-leads`` and ``callcenter dnc ...``: filling the outbound tables.

    callcenter import-leads CAMPAIGN FILE.csv --config PATH [--region US] [--rejects PATH]
                            [--column ROLE=HEADER[,HEADER...]] ...
    callcenter dnc import FILE --scope national|global|campaign:NAME --config PATH [--replace] [--region US]
    callcenter dnc add NUMBER [--scope global] [--reason TEXT] --config PATH [--region US]
    callcenter dnc check NUMBER --config PATH [--region US]
    callcenter dnc sync --config PATH         (every campaign's dnc_lists files)
    callcenter campaign what-if CAMPAIGN --config PATH [--agents N] [--days 30] [--hours 8]
                                [--algorithm NAME|all] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from engine.shared.textsafe import printable

__all__ = ["add_parsers", "with_db"]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("import-leads", help="import a CSV of leads into a campaign, in one transaction")
    p.add_argument("campaign")
    p.add_argument("file", type=Path)
    p.add_argument("--config", required=True)
    p.add_argument("--region", help="region for numbers without a country code (default: the campaign's)")
    p.add_argument("--rejects", type=Path, help="where the reject report goes (default: FILE.rejects.csv)")
    p.add_argument("--column", action="append", default=[], metavar="ROLE=HEADER[,HEADER]",
                   help="name the column(s) of a role: phone, first_name, last_name, name, timezone, consent, "
                        "consent_text, external_id, priority (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    p.set_defaults(func=cmd_import_leads)

    p = sub.add_parser("campaign", help="campaigns")
    c = p.add_subparsers(dest="campaign_command", required=True)
    w = c.add_parser("what-if", help="simulate the campaign's pacing on its own history: occupancy, abandons")
    w.add_argument("campaign")
    w.add_argument("--config", required=True)
    w.add_argument("--agents", type=int, help="agents to simulate (default: those who took its calls)")
    w.add_argument("--days", type=float, default=30.0, help="history to read (default 30 days)")
    w.add_argument("--hours", type=float, default=8.0, help="hours to simulate (default 8)")
    w.add_argument("--algorithm", default="all", help="predictive, progressive, vicidial-adapt, ratio:X, or all")
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=cmd_what_if)

    p = sub.add_parser("dnc", help="do-not-call lists")
    d = p.add_subparsers(dest="dnc_command", required=True)
    i = d.add_parser("import", help="load a list file (one number per line) into a scope")
    i.add_argument("file", type=Path)
    i.add_argument("--scope", required=True, help="national, global or campaign:NAME")
    i.add_argument("--config", required=True)
    i.add_argument("--region", default="US", help="region for numbers without a country code (default US)")
    i.add_argument("--replace", action="store_true",
                   help="the file is the whole list: remove the scope's numbers from this source it no longer holds")
    i.add_argument("--source", help="what the numbers came from (default: national, or file:NAME)")
    i.set_defaults(func=cmd_dnc_import)
    a = d.add_parser("add", help="put one number on a list now")
    a.add_argument("number")
    a.add_argument("--scope", default="global")
    a.add_argument("--reason", default="")
    a.add_argument("--config", required=True)
    a.add_argument("--region", default="US")
    a.set_defaults(func=cmd_dnc_add)
    c = d.add_parser("check", help="the lists a number is on")
    c.add_argument("number")
    c.add_argument("--config", required=True)
    c.add_argument("--region", default="US")
    c.set_defaults(func=cmd_dnc_check)
    s = d.add_parser("sync", help="load every campaign's dnc_lists files into campaign:NAME")
    s.add_argument("--config", required=True)
    s.set_defaults(func=cmd_dnc_sync)


def with_db(args: argparse.Namespace, work: Callable[[Any, Any], Awaitable[int]]) -> int:
    """Load the config, connect with its DSN, run ``work(conn, cfg)``; errors to stderr, exit 1."""
    import asyncpg

    from engine.config.model import ConfigError, load_config

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1

    async def go() -> int:
        try:
            conn = await asyncpg.connect(cfg.database.dsn, timeout=10)
        except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
            print(f"{args.command}: cannot connect to the database: {exc}", file=sys.stderr)
            return 1
        try:
            return await work(conn, cfg)
        except asyncpg.UndefinedTableError as exc:
            print(f"{args.command}: {exc}: run `callcenter migrate --config {args.config}` first", file=sys.stderr)
            return 1
        except (asyncpg.PostgresError, OSError) as exc:
            print(f"{args.command}: the database refused: {exc}; nothing was changed", file=sys.stderr)
            return 1
        finally:
            await conn.close()

    return asyncio.run(go())


def _overrides(items: list[str]) -> dict[str, list[str]] | str:
    out: dict[str, list[str]] = {}
    for item in items:
        role, sep, headers = item.partition("=")
        if not sep or not headers.strip():
            return f"--column takes ROLE=HEADER[,HEADER...], got {item!r}"
        out.setdefault(role.strip(), []).extend(h.strip() for h in headers.split(",") if h.strip())
    return out


def _campaign(cfg: Any, name: str, command: str) -> Any:
    """The configured campaign called ``name``, or None after saying which ones there are."""
    from engine.config.campaign import find

    try:
        return find(cfg.campaigns, name)
    except KeyError as exc:
        print(f"{command}: {exc.args[0]}", file=sys.stderr)
        return None


def cmd_import_leads(args: argparse.Namespace) -> int:
    from engine.services.leadimport import import_leads
    from engine.services.leads import ImportFileError

    overrides = _overrides(args.column)
    if isinstance(overrides, str):
        print(f"import-leads: {overrides}", file=sys.stderr)
        return 1

    async def work(conn: Any, cfg: Any) -> int:
        campaign = _campaign(cfg, args.campaign, "import-leads")
        if campaign is None:
            return 1
        try:
            report = await import_leads(conn, campaign, args.file, region=args.region, overrides=overrides,
                                        rejects=args.rejects, progress=not args.no_progress)
        except ImportFileError as exc:
            print(f"import-leads: {exc}; nothing was imported", file=sys.stderr)
            return 1
        print(report.text())
        return 0

    return with_db(args, work)


def cmd_what_if(args: argparse.Namespace) -> int:
    import json

    from engine.core.pacing import make_pacer
    from engine.cli.whatif import ALGORITHMS, format_what_if, what_if

    algorithms = ALGORITHMS if args.algorithm == "all" else (args.algorithm,)
    try:
        for a in algorithms:
            make_pacer(a)
        if args.agents is not None and args.agents < 1:
            raise ValueError("--agents: expected 1 or more")
    except ValueError as exc:
        print(f"campaign what-if: {exc}", file=sys.stderr)
        return 2

    async def work(conn: Any, cfg: Any) -> int:
        campaign = _campaign(cfg, args.campaign, "campaign what-if")
        if campaign is None:
            return 1
        report = await what_if(conn, campaign, agents=args.agents, days=args.days, hours=args.hours,
                               algorithms=algorithms)
        print(json.dumps(report, default=str) if args.json else format_what_if(report))
        return 0

    return with_db(args, work)


def cmd_dnc_import(args: argparse.Namespace) -> int:
    from engine.services.dnc import check_scope, import_file

    try:
        check_scope(args.scope)
    except ValueError as exc:
        print(f"dnc import: {exc}", file=sys.stderr)
        return 1
    if not args.file.is_file():
        print(f"dnc import: {args.file} does not exist", file=sys.stderr)
        return 1

    async def work(conn: Any, cfg: Any) -> int:
        report = await import_file(conn, args.file, args.scope, region=args.region.upper(), source=args.source,
                                   replace=args.replace)
        print(report.text())
        return 0

    return with_db(args, work)


def cmd_dnc_add(args: argparse.Namespace) -> int:
    from engine.services.dnc import add, check_scope, normalize

    number = normalize(args.number, args.region.upper())
    try:
        check_scope(args.scope)
    except ValueError as exc:
        print(f"dnc add: {exc}", file=sys.stderr)
        return 1
    if number is None:
        print(f"dnc add: {args.number!r} is not a phone number", file=sys.stderr)
        return 1

    async def work(conn: Any, cfg: Any) -> int:
        added = await add(conn, number, args.scope, source="cli", reason=args.reason)
        print(f"{number}: {'added to' if added else 'already on'} {args.scope}")
        return 0

    return with_db(args, work)


def cmd_dnc_check(args: argparse.Namespace) -> int:
    from engine.services.dnc import normalize, scopes_of

    number = normalize(args.number, args.region.upper())
    if number is None:
        print(f"dnc check: {args.number!r} is not a phone number", file=sys.stderr)
        return 1

    async def work(conn: Any, cfg: Any) -> int:
        rows = await scopes_of(conn, number)
        if not rows:
            print(f"{number}: on no do-not-call list")
        for r in rows:   # the reason is what an agent or the API wrote
            print(f"{number}: {printable(r['scope'])} (source {printable(r['source'] or '-')}, added "
                  f"{r['added_at']:%Y-%m-%d %H:%M} UTC" + (f", {printable(r['reason'])}" if r["reason"] else "") + ")")
        return 0

    return with_db(args, work)


def cmd_dnc_sync(args: argparse.Namespace) -> int:
    from engine.services.dnc import sync_campaigns

    async def work(conn: Any, cfg: Any) -> int:
        done = await sync_campaigns(conn, cfg.campaigns)
        for d in done:
            print(d.text())
        if not done:
            print("no campaign names dnc_lists")
        return 0

    return with_db(args, work)
