"""The report command's parsing (periods, intervals, zones), the reports: config section, the number
forms GDPR matches, and the three output formats."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from engine.config.model import Config
from engine.services.gdpr import number_forms
from engine.services.reports import (INBOUND_COLUMNS, Report, format_report, parse_interval, parse_period, parse_when,
                            parse_zone)
from engine.config.yamlconf import ConfigError, load_text

from .test_config import MINIMAL

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 24, 18, 30, tzinfo=timezone.utc)   # 19:30 in Paris


@pytest.mark.parametrize("text, end, expected", [
    ("now", False, NOW),
    ("today", False, datetime(2026, 11, 24, tzinfo=PARIS)),
    ("today", True, datetime(2026, 11, 25, tzinfo=PARIS)),              # a day as the end is included
    ("yesterday", False, datetime(2026, 11, 23, tzinfo=PARIS)),
    ("yesterday", True, datetime(2026, 11, 24, tzinfo=PARIS)),
    ("-7d", False, NOW - timedelta(days=7)),
    ("7d", False, NOW - timedelta(days=7)),
    ("12h ago", False, NOW - timedelta(hours=12)),
    ("30m", True, NOW - timedelta(minutes=30)),                         # a moment: the same either way
    ("2026-11-01", False, datetime(2026, 11, 1, tzinfo=PARIS)),
    ("2026-11-01", True, datetime(2026, 11, 2, tzinfo=PARIS)),
    ("2026-11-24T08:30", False, datetime(2026, 11, 24, 8, 30, tzinfo=PARIS)),
    ("2026-11-24 08:30:15+00:00", False, datetime(2026, 11, 24, 8, 30, 15, tzinfo=timezone.utc)),
])
def test_when(text, end, expected):
    assert parse_when(text, now=NOW, tz=PARIS, end=end) == expected


@pytest.mark.parametrize("text", ["tomorrow", "2026-13-01", "-7w", "7", ""])
def test_when_refuses_what_it_cannot_read(text):
    with pytest.raises(ValueError) as info:
        parse_when(text, now=NOW, tz=PARIS)
    assert repr(text) in str(info.value)


def test_period_and_interval():
    assert parse_period("yesterday", "yesterday", "30m", now=NOW, tz=PARIS) == (
        datetime(2026, 11, 23, tzinfo=PARIS), datetime(2026, 11, 24, tzinfo=PARIS), timedelta(minutes=30))
    assert parse_period("today", "now", None, now=NOW, tz=timezone.utc)[2] is None
    assert parse_interval("1h") == timedelta(hours=1) and parse_interval(None) is None
    with pytest.raises(ValueError, match=r"--to \(.*\) must be after --from"):
        parse_period("now", "2026-11-24T10:00", None, now=NOW, tz=timezone.utc)
    with pytest.raises(ValueError, match="--from: expected now"):
        parse_period("soon", "now", None, now=NOW, tz=timezone.utc)
    with pytest.raises(ValueError, match="at least 1m"):
        parse_interval("30s")
    with pytest.raises(ValueError, match="more than 10000 bins"):
        parse_period("2020-01-01", "now", "1m", now=NOW, tz=timezone.utc)
    with pytest.raises(ValueError, match="expected a duration"):
        parse_interval("half an hour")


def test_zone():
    assert parse_zone("Europe/Paris") == PARIS
    assert parse_zone(None).utcoffset(NOW) is not None   # this machine's
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        parse_zone("Mars/Base")


def test_reports_section_defaults_and_errors():
    cfg = load_text(MINIMAL, Config, file="cc.yaml")
    assert (cfg.reports.short_abandon_seconds, cfg.reports.fcr_window_seconds) == (5.0, 86400.0)
    cfg = load_text(MINIMAL + "reports: {short_abandon_seconds: 0, fcr_window: 3d}\n", Config, file="cc.yaml")
    assert (cfg.reports.short_abandon_seconds, cfg.reports.fcr_window_seconds) == (0.0, 3 * 86400.0)
    with pytest.raises(ConfigError) as info:
        load_text(MINIMAL + "reports:\n  short_abandon_seconds: -1\n  fcr_window: soon\n  fcr: 1d\n", Config,
                  file="cc.yaml")
    text = str(info.value)
    assert "cc.yaml:7:26: reports.short_abandon_seconds: expected 0 to 3600 seconds, got -1" in text
    assert "cc.yaml:8:15: reports.fcr_window: expected a duration like 30s" in text
    assert "cc.yaml:9:3: reports: unknown key 'fcr'" in text


def test_number_forms_cover_how_calls_and_leads_store_a_number():
    f = number_forms("(212) 555-7202")
    assert f.e164 == "+12125557202"
    assert set(f.digits) == {"12125557202", "2125557202"}
    uk = number_forms("+44 20 7946 0000", "GB")
    assert uk.e164 == "+442079460000" and set(uk.digits) == {"442079460000", "2079460000", "02079460000"}
    assert "5557101" in number_forms("5557101").digits   # a short number: matched as written too
    with pytest.raises(ValueError, match="not a phone number"):
        number_forms("anonymous")


def sample() -> Report:
    row = {"queue": "support", "offered": 4, "answered": 2, "abandoned": 1, "short_abandoned": 1,
           "abandon_rate": 1 / 3, "asa_seconds": 0.312, "service_level": 2 / 3,
           "service_level_target": "80% in 20s", "aht_seconds": 2.61, "talk_seconds": 1.6, "wrap_up_seconds": 1.01,
           "fcr": 0.5, "csat": 4.0, "surveys": 1, "interval": None}
    total = {**row, "queue": "(total)", "service_level_target": "each queue's", "csat": None, "surveys": 0}
    return Report("inbound", datetime(2026, 11, 24, tzinfo=timezone.utc), datetime(2026, 11, 25, tzinfo=timezone.utc),
                  None, INBOUND_COLUMNS, [row, total], ["a note"])


def test_table_format():
    lines = format_report(sample(), "table").splitlines()
    assert lines[0] == "inbound report 2026-11-24 00:00 to 2026-11-25 00:00 (UTC)"
    assert lines[2].split() [:4] == ["queue", "offered", "answered", "abandoned"]
    cells = lines[4].split()
    assert cells[:7] == ["support", "4", "2", "1", "1", "33.3%", "0.3s"] and "66.7%" in cells and "4.00" in cells
    assert lines[5].split()[0] == "(total)" and " - " in lines[5]   # no CSAT: a dash
    assert lines[-1] == "* a note"
    empty = Report("agents", NOW, NOW, None, INBOUND_COLUMNS, [])
    assert "(no data in this period)" in format_report(empty, "table")


def test_csv_and_json_formats_keep_raw_values():
    rows = list(csv.DictReader(io.StringIO(format_report(sample(), "csv"))))
    assert rows[0]["queue"] == "support" and float(rows[0]["service_level"]) == pytest.approx(2 / 3, abs=1e-4)
    assert rows[1]["csat"] == ""
    data = json.loads(format_report(sample(), "json"))
    assert data["report"] == "inbound" and data["from"] == "2026-11-24T00:00:00+00:00"
    assert data["rows"][0]["abandon_rate"] == 0.3333 and data["interval_seconds"] is None
