"""``callcenter report``, ``callcenter recordings purge`` and ``callcenter gdpr export|erase``.

    callcenter report inbound|outbound|agents --config PATH [--from T] [--to T] [--interval 30m]
                      [--format table|csv|json] [--tz ZONE]
    callcenter recordings purge --older-than 90d --config PATH [--dry-run]
    callcenter gdpr export NUMBER --config PATH [--out FILE.json] [--region US]
    callcenter gdpr erase NUMBER --yes --config PATH [--region US]
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

from engine.cli.outbound import with_db
from engine.shared.textsafe import printable

__all__ = ["add_parsers"]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("report", help="inbound, outbound or agent figures over a period, from PostgreSQL")
    p.add_argument("kind", choices=("inbound", "outbound", "agents"))
    p.add_argument("--config", required=True)
    p.add_argument("--from", dest="start", default="today",
                   help="now, today, yesterday, 7d / 12h (that long ago; or --from=-7d), 2026-11-24 or 2026-11-24T08:30 (default today)")
    p.add_argument("--to", dest="end", default="now",
                   help="the same forms; a date is included whole (default now)")
    p.add_argument("--interval", help="one row per bin of this length: 15m, 30m, 1h, 1d")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--tz", help="time zone for dates and the table (default: this machine's)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("recordings", help="call recordings")
    r = p.add_subparsers(dest="recordings_command", required=True)
    g = r.add_parser("purge", help="delete recording files older than the retention; their rows are kept, marked")
    g.add_argument("--older-than", required=True, help="a duration: 90d, 12h")
    g.add_argument("--dry-run", action="store_true", help="say what would be deleted, change nothing")
    g.add_argument("--config", required=True)
    g.set_defaults(func=cmd_purge)

    p = sub.add_parser("gdpr", help="what is held on one phone number: export it, or erase it")
    d = p.add_subparsers(dest="gdpr_command", required=True)
    e = d.add_parser("export", help="everything held on the number, as JSON")
    e.add_argument("number")
    e.add_argument("--out", help="write here (mode 0600) instead of standard output")
    e.add_argument("--region", default="US", help="region for a number without a country code (default US)")
    e.add_argument("--config", required=True)
    e.set_defaults(func=cmd_gdpr_export)
    x = d.add_parser("erase", help="erase everything held on the number, in one transaction (DNC entries stay)")
    x.add_argument("number")
    x.add_argument("--yes", action="store_true", help="required: erasing cannot be undone")
    x.add_argument("--region", default="US")
    x.add_argument("--config", required=True)
    x.set_defaults(func=cmd_gdpr_erase)


def cmd_report(args: argparse.Namespace) -> int:
    from engine.services.reports import REPORTS, format_report, parse_period, parse_zone

    try:
        tz = parse_zone(args.tz)
        start, end, interval = parse_period(args.start, args.end, args.interval, now=datetime.now(timezone.utc),
                                            tz=tz)
    except ValueError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2

    async def work(conn: Any, cfg: Any) -> int:
        report = await REPORTS[args.kind](conn, cfg, start, end, interval)
        print(format_report(report, args.format, tz))
        return 0

    return with_db(args, work)


def cmd_purge(args: argparse.Namespace) -> int:
    from engine.services.gdpr import purge_recordings
    from engine.config.yamlconf import parse_duration

    try:
        older = timedelta(seconds=parse_duration(args.older_than))
    except ValueError as exc:
        print(f"recordings purge: --older-than: {exc}", file=sys.stderr)
        return 2

    async def work(conn: Any, cfg: Any) -> int:
        report = await purge_recordings(conn, older, directory=cfg.recording.dir, dry_run=args.dry_run)
        print(report.text())
        return 1 if report.failed else 0

    return with_db(args, work)


def _forms(args: argparse.Namespace) -> Any:
    from engine.services.gdpr import number_forms

    try:
        return number_forms(args.number, args.region)
    except ValueError as exc:
        print(f"gdpr {args.gdpr_command}: {exc}", file=sys.stderr)
        return None


def cmd_gdpr_export(args: argparse.Namespace) -> int:
    from engine.services.gdpr import export_number, write_json

    forms = _forms(args)
    if forms is None:
        return 2

    async def work(conn: Any, cfg: Any) -> int:
        data = await export_number(conn, forms)
        write_json(data, args.out)
        if args.out:
            held = ", ".join(f"{k} {len(v)}" for k, v in data.items() if isinstance(v, list) and v
                             and k not in ("matched_digits", "numbers_of_the_same_leads"))
            print(f"{args.out}: {held or 'nothing held on this number'}")
        return 0

    return with_db(args, work)


def cmd_gdpr_erase(args: argparse.Namespace) -> int:
    from engine.services.gdpr import erase_number

    if not args.yes:
        print("gdpr erase: this cannot be undone; add --yes (export it first: callcenter gdpr export)",
              file=sys.stderr)
        return 2
    forms = _forms(args)
    if forms is None:
        return 2

    async def work(conn: Any, cfg: Any) -> int:
        done = await erase_number(conn, forms, directory=cfg.recording.dir)
        kept = done.pop("dnc_numbers_kept")
        files, failed = done.pop("files_deleted"), done.pop("files_failed")
        print(f"{printable(forms.e164 or forms.given)}: erased in one transaction: "
              + ", ".join(f"{k} {v}" for k, v in done.items()) + f"; recording files deleted {len(files)}")
        for scope in kept:
            print(f"kept on do-not-call list {printable(scope['scope'])} ({printable(scope['number'])}): "
                  "removing it would let campaigns call this number again")
        for f in failed:
            print(f"could not delete {printable(f)}", file=sys.stderr)
        return 1 if failed else 0

    return with_db(args, work)
