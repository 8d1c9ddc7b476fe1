"""A caller's name is what their phone sent: nothing in it may act on the operator's terminal."""

from __future__ import annotations

import argparse
import csv
import io
import logging
from datetime import datetime, timedelta, timezone

import pytest
import structlog

from engine.cli import main as cli

from engine.services import dnc

from engine.cli import outbound as outboundcli
from engine.services.leads import Note, write_report
from engine.shared.logsetup import configure, get_logger
from engine.services.reports import INBOUND_COLUMNS, Report, format_report
from engine.shared.textsafe import printable

EVIL = "Bob\x07\x1b[2J\x1b]0;pwned\x07\u202eevil\nline2\tx"
SHOWN = "Bob\\x07\\x1b[2J\\x1b]0;pwned\\x07\\u202eevil\\nline2\\tx"
T0 = datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc)


def assert_inert(text: str) -> None:
    """Nothing a terminal acts on: no C0/C1 control but the line breaks of the output itself."""
    assert not [ch for ch in text if not ch.isprintable() and ch != "\n"], repr(text)


@pytest.mark.parametrize("raw,shown", [
    (EVIL, SHOWN),
    ("Zoë Ångström 李 🙂", "Zoë Ångström 李 🙂"),      # ordinary text stays as it is
    ("a\u00a0b\u200bc\x7f\x9b", "a\\xa0b\\u200bc\\x7f\\x9b"),  # no-break space, zero width, DEL, C1 CSI
    (None, "None"), (42, "42"),
])
def test_printable(raw, shown):
    assert printable(raw) == shown


class FakeConn:
    def __init__(self, rows):
        self.rows = rows

    async def fetch(self, sql, *params):
        return self.rows


def run_with(monkeypatch, module, rows):
    """Run the command's database work on fake rows (as with_db would, without a database)."""
    import asyncio

    monkeypatch.setattr(module, "with_db", lambda args, work: asyncio.run(work(FakeConn(rows), None)))


def test_calls_prints_a_caller_name_escaped(monkeypatch, capsys):
    run_with(monkeypatch, cli, [{
        "started_at": T0, "direction": "inbound", "caller_number": "5551234\x1b[31m", "caller_name": EVIL,
        "dialed_number": "1000", "to_answer": timedelta(seconds=1), "duration": timedelta(seconds=5),
        "hangup_cause": 16, "hangup_cause_text": "Normal Clearing", "ended_by": "caller"}])
    assert cli.cmd_calls(argparse.Namespace(last=20)) == 0
    out = capsys.readouterr().out
    assert_inert(out)
    assert SHOWN in out and "5551234\\x1b[31m" in out
    lines = out.splitlines()
    assert len(lines) == 3 and lines[2].index("1000") == lines[0].index("dialed")   # the columns still line up


def test_reports_escape_names_in_table_and_csv_json_stays_json():
    row = {"queue": EVIL, "offered": 1, "interval": None}
    report = Report("inbound", T0, T0, None, INBOUND_COLUMNS, [row], [f"note about {EVIL}"])
    for fmt in ("table", "csv"):
        text = format_report(report, fmt)
        assert_inert(text)
        assert SHOWN in text
    assert next(csv.DictReader(io.StringIO(format_report(report, "csv"))))["queue"] == SHOWN
    assert_inert(format_report(report, "json"))


def test_dnc_check_escapes_what_an_agent_wrote(monkeypatch, capsys):
    run_with(monkeypatch, outboundcli, [])

    async def scopes_of(conn, number):
        return [{"scope": "global", "source": "api", "added_at": T0, "reason": EVIL}]

    monkeypatch.setattr(dnc, "scopes_of", scopes_of)
    assert outboundcli.cmd_dnc_check(argparse.Namespace(number="2125550123", region="US")) == 0
    out = capsys.readouterr().out
    assert_inert(out)
    assert out == f"+12125550123: global (source api, added 2026-11-24 09:30 UTC, {SHOWN})\n"


def test_the_reject_report_escapes_the_file_s_own_text(tmp_path):
    path = tmp_path / "rejects.csv"
    write_report(path, [Note(2, "rejected", "name", EVIL, "no phone number")])
    text = path.read_text()
    assert_inert(text)
    assert list(csv.reader(io.StringIO(text)))[1] == ["2", "rejected", "name", SHOWN, "no phone number"]


def test_console_logs_escape_values_json_logs_need_not():
    for fmt in ("console", "json"):
        out = io.StringIO()
        configure("info", fmt, out, cache=False)
        try:
            get_logger("calls").info("call.arrived", caller_name=EVIL)
            logging.getLogger("aiohttp").warning("from a library: %s", EVIL)
        finally:
            structlog.reset_defaults()
            logging.getLogger().handlers.clear()
        assert_inert(out.getvalue())
        if fmt == "console":
            assert out.getvalue().count(SHOWN) == 2
