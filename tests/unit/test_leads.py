"""Leads without a database: columns, number normalisation, time zones, merging; DNC lines; retries."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.services import dnc
from engine.config.campaign import CampaignsFile
from engine.runtime.gate import Gate
from engine.store.hopper import Step, plan
from engine.services.leads import (
    ImportFileError, Normalized, detect_columns, merge, normalize_number, parse_file, parse_row, pick_timezone,
)
from engine.config.yamlconf import load_text

HEADER = ["External ID", "First Name", "last_name", "Phone", "phone2", "Mobile", "TZ", "consent", "priority", "plan"]


def cols(header=HEADER, **overrides):
    return detect_columns(header, overrides)


def row(no: int, **values: str) -> tuple:
    cells = {h: "" for h in HEADER}
    cells.update({k.replace("_", " ") if k == "External_ID" else k: v for k, v in values.items()})
    lead, notes = parse_row(no, [cells[h] for h in HEADER], cols(), "US")
    return lead, [(n.outcome, n.column, n.reason) for n in notes]


# -- numbers ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,region,e164", [
    ("(212) 555-0123", "US", "+12125550123"),
    ("212.555.0123", "US", "+12125550123"),
    ("1-212-555-0123", "US", "+12125550123"),
    ("+1 212 555 0123", "GB", "+12125550123"),      # a country code wins over the region
    ("020 7946 0958", "GB", "+442079460958"),
    ("+44 (0)20 7946 0958", "US", "+442079460958"),
    ("07911 123456", "GB", "+447911123456"),
])
def test_numbers_become_e164(raw, region, e164):
    n = normalize_number(raw, region)
    assert isinstance(n, Normalized) and n.e164 == e164


def test_what_is_known_of_a_number():
    assert normalize_number("(212) 555-0123", "US") == Normalized("+12125550123", "fixed_line_or_mobile",
                                                                  ("America/New_York",))
    assert normalize_number("07911 123456", "GB").line_type == "mobile"  # type: ignore[union-attr]
    assert normalize_number("+1 208 555 0111", "US").time_zones == ("America/Boise", "America/Los_Angeles")  # type: ignore[union-attr]


@pytest.mark.parametrize("raw,reason", [
    ("555-1234", "not a valid number in +1"),
    ("12", "not a possible number in +1 (wrong length)"),
    ("call me", "not a phone number (no digits)"),
    ("+999 123 456", "not a phone number (unknown country code)"),
    ("", "empty"),
])
def test_invalid_numbers_say_why(raw, reason):
    assert normalize_number(raw, "US") == reason


def test_several_zones_pick_the_easternmost_whatever_the_order():
    assert pick_timezone(["America/Los_Angeles", "America/Boise"]) == "America/Boise"
    assert pick_timezone(["America/Boise", "America/Los_Angeles"]) == "America/Boise"
    assert pick_timezone(["America/Chicago", "America/New_York", "America/Denver"]) == "America/New_York"
    assert pick_timezone(["America/Toronto", "America/New_York"]) == "America/New_York"   # same offset: by name
    assert pick_timezone([]) is None


# -- columns ---------------------------------------------------------------------------------------

def test_columns_are_found_by_name():
    c = cols()
    assert [HEADER[i] for i in c.phones] == ["Phone", "phone2", "Mobile"]
    assert {role: HEADER[i] for role, i in c.roles.items()} == {
        "first_name": "First Name", "last_name": "last_name", "timezone": "TZ", "consent": "consent",
        "external_id": "External ID", "priority": "priority"}
    assert [HEADER[i] for i in c.fields] == ["plan"]


def test_columns_can_be_named():
    header = ["Tel A", "Tel B", "Account", "Who", "phone"]
    c = detect_columns(header, {"phone": ["Tel B", "tel a"], "external_id": ["Account"], "name": ["Who"]})
    assert [header[i] for i in c.phones] == ["Tel B", "Tel A"]
    assert (c.roles["external_id"], c.roles["name"]) == (2, 3)
    assert [header[i] for i in c.fields] == ["phone"]   # a named phone role turns the guess off


@pytest.mark.parametrize("header,overrides,message", [
    (["phone", "Phone"], {}, "column 'Phone' appears twice in the header (columns 1 and 2)"),
    (["name", "email"], {}, "no phone column found in the header (name, email); name one with --column phone=HEADER"),
    (["phone", ""], {}, "column 2 has no name in the header"),
    (["phone"], {"phone": ["cell"]}, "no column 'cell' in the header (phone)"),
    (["phone"], {"colour": ["phone"]}, "unknown column role 'colour'"),
])
def test_column_errors(header, overrides, message):
    with pytest.raises(ImportFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        detect_columns(header, overrides)


# -- rows ------------------------------------------------------------------------------------------

def test_a_good_row():
    lead, notes = row(2, **{"External ID": "C1", "First Name": "Ada", "Phone": "(212) 555-0123",
                            "Mobile": "bogus", "consent": "Yes", "priority": "5", "plan": "gold"})
    assert notes == [("number_dropped", "Mobile", "not a phone number (no digits)")]
    assert lead is not None and [n.e164 for n in lead.numbers] == ["+12125550123"]
    assert (lead.external_id, lead.first_name, lead.consent, lead.priority, dict(lead.fields)) == (
        "C1", "Ada", True, 5, {"plan": "gold"})
    assert lead.numbers[0].kind == "phone"


@pytest.mark.parametrize("values,note", [
    ({"Phone": "555-1234"}, ("rejected", "", "no valid phone number")),
    ({}, ("rejected", "", "no phone number")),
    ({"Phone": "2125550123", "consent": "maybe"},
     ("rejected", "consent", "consent must read yes or no (yes, y, true, 1, x, opt-in / no, n, false, 0)")),
    ({"Phone": "2125550123", "TZ": "Mars/Base"}, ("rejected", "TZ", "not an IANA time zone (e.g. America/New_York)")),
    ({"Phone": "2125550123", "priority": "high"}, ("rejected", "priority", "priority must be a whole number")),
    ({"Phone": "2125550123", "priority": "5000"}, ("rejected", "priority", "priority must be between -1000 and 1000")),
])
def test_broken_rows_are_rejected_with_a_reason(values, note):
    lead, notes = row(7, **values)
    assert lead is None and notes[-1] == note


def test_a_row_with_the_wrong_number_of_fields():
    lead, notes = parse_row(4, ["x"], cols(), "US")
    assert lead is None and notes[0].reason == f"has 1 fields, the header has {len(HEADER)}"


def test_no_consent_and_the_same_number_twice_in_a_row():
    lead, _ = row(3, Phone="2125550123", phone2="+1 212 555 0123", consent="")
    assert lead is not None and lead.consent is None and len(lead.numbers) == 1


# -- merging ---------------------------------------------------------------------------------------

def test_duplicates_merge_into_the_earliest_row():
    a, _ = row(2, **{"External ID": "C1", "First Name": "Ada", "Phone": "2125550123", "plan": "gold"})
    b, _ = row(3, **{"External ID": "C2", "First Name": "Bob", "Phone": "2125550199"})
    c, _ = row(4, **{"External ID": "C1", "Mobile": "9175550101", "plan": "silver", "consent": "yes",
                     "last_name": "Lovelace"})
    d, _ = row(5, **{"Phone": "9175550101", "TZ": "America/Chicago"})     # meets c by number, so a
    e, _ = row(6, **{"External ID": "C9", "Phone": "2125550199"})          # meets b by number
    leads, notes = merge([a, b, c, d, e])
    assert [lead.row for lead in leads] == [2, 3]
    ada, bob = leads
    assert [n.e164 for n in ada.numbers] == ["+12125550123", "+19175550101"]
    assert (ada.first_name, ada.last_name, ada.fields["plan"], ada.consent, ada.timezone) == (
        "Ada", "Lovelace", "gold", True, "America/Chicago")
    assert ada.merged_rows == (4, 5) and bob.merged_rows == (6,)
    assert [(n.row, n.reason) for n in notes] == [
        (4, "merged into the lead of row 2 (same external id)"),
        (5, "merged into the lead of row 2 (same phone number)"),
        (6, "merged into the lead of row 3 (same phone number); its external id 'C9' is not kept"),
    ]


def test_parse_file_counts_and_row_numbers(tmp_path):
    f = tmp_path / "leads.csv"
    f.write_text("\ufeffphone;name;note\n2125550123;Ada;a\n\n555;Bob;b\n2125550123;Ada again;c\n", encoding="utf-8")
    parsed = parse_file(f, "US")
    assert parsed.rows == 3 and parsed.merged == 1 and len(parsed.leads) == 1
    assert [(n.row, n.outcome) for n in parsed.notes] == [(4, "number_dropped"), (4, "rejected"), (5, "merged")]
    assert parsed.leads[0].fields == {"note": "a"}


def test_a_file_without_header_or_not_text(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ImportFileError, match="is empty"):
        parse_file(empty, "US")
    binary = tmp_path / "x.csv"
    binary.write_bytes(b"phone\n\xff\xfe\x00\x01\n")
    with pytest.raises(ImportFileError, match="is not UTF-8 text"):
        parse_file(binary, "US")


def _parse(tmp_path, text: str):
    f = tmp_path / "leads.csv"
    f.write_text(text, encoding="utf-8")
    parsed = parse_file(f, "US")
    return parsed, [(n.row, n.outcome, n.value, n.reason) for n in parsed.notes]


def test_an_unclosed_quote_to_the_end_of_the_file_loses_no_row_silently(tmp_path):
    parsed, notes = _parse(tmp_path, 'id,name,phone\n1,"Ann,2125550101\n2,Bob,2125550102\n3,Cy,2125550103\n')
    assert parsed.leads == [] and parsed.rows == 3
    assert notes == [
        (2, "rejected", '1,"Ann,2125550101', "unclosed quote? line 2 opens a quoted field that runs to line 4, "
         "taking in 2 more lines (each listed here); none of lines 2-4 is imported: close the quote and import "
         "the file again"),
        (2, "rejected", "2,Bob,2125550102", "line 3: inside the quoted field opened on line 2; not imported"),
        (2, "rejected", "3,Cy,2125550103", "line 4: inside the quoted field opened on line 2; not imported")]


def test_an_unclosed_quote_closed_by_a_later_quote_is_caught_even_when_the_field_count_fits(tmp_path):
    # The CSV reader reads lines 2-4 as one record of three fields, Cy's number its phone: without
    # the check, Ann and Bob vanish and Cy's number is imported under a name made of three rows.
    parsed, notes = _parse(tmp_path, 'id,name,phone\n1,"Ann,2125550101\n2,Bob,2125550102\n3,"Cy Jr",2125550103\n'
                                     '4,Di,2125550104\n')
    assert [(lead.row, lead.numbers[0].e164) for lead in parsed.leads] == [(3, "+12125550104")]
    assert [(row, value) for row, _, value, _ in notes] == [
        (2, '1,"Ann,2125550101'), (2, "2,Bob,2125550102"), (2, '3,"Cy Jr",2125550103')]
    assert parsed.rows == 4


def test_a_quoted_field_over_two_lines_is_still_one_row(tmp_path):
    parsed, notes = _parse(tmp_path, 'id,address,phone\n1,"12 Main St\nApt 4",2125550101\n2,Elm St,2125550102\n')
    assert notes == [] and parsed.rows == 2
    assert [(lead.row, lead.fields) for lead in parsed.leads] == [
        (2, {"address": "12 Main St\nApt 4"}), (3, {"address": "Elm St"})]


def test_a_file_the_csv_reader_refuses_names_the_line(tmp_path):
    f = tmp_path / "leads.csv"
    f.write_text('phone,name\n2125550101,Ann\n2125550102,"Bob\n' + "2125550103,Cy\n" * 10_000)
    with pytest.raises(ImportFileError, match=r"not readable as CSV at the record from line 3 to line \d+ "
                                              r"\(an unclosed quote on line 3\?\): field larger than field limit"):
        parse_file(f, "US")
    f.write_bytes(b"phone,name\n2125550101,Ann\n2125550102,B\xffb\n")
    with pytest.raises(ImportFileError, match=r"is not UTF-8 text \(line 3\)"):
        parse_file(f, "US")


# -- DNC list lines --------------------------------------------------------------------------------

@pytest.mark.parametrize("line,region,e164", [
    ("2125550123\n", "US", "+12125550123"),
    ("212,5550123", "US", "+12125550123"),        # area code, number: the registry's shape
    ("1 (212) 555-0123", "US", "+12125550123"),
    ("+442079460958", "US", "+442079460958"),
    ("020 7946 0958", "GB", "+442079460958"),
    ("2125550123,2026-01-05,added", "US", "+12125550123"),
    ("# a comment", "US", None),
    ("", "US", None),
    ("hello", "US", None),
])
def test_dnc_lines(line, region, e164):
    assert dnc.normalize(line, region) == e164


def test_dnc_scopes():
    for scope in ("global", "national", "campaign:renewals"):
        assert dnc.check_scope(scope) == scope
    for scope in ("campaign:", "Global", "campaign:Big Sale", "local"):
        with pytest.raises(ValueError):
            dnc.check_scope(scope)


# -- retries (the hopper's pure part) --------------------------------------------------------------

CAMPAIGN = load_text(textwrap.dedent("""\
    campaigns:
      - name: renewals
        mode: predictive
        queue: renewals
        caller_id: "+15551230000"
        safe_harbor_sound: custom/safe-harbor
        retry: {busy: 10m, no_answer: 2h, machine: 4h, max_attempts: 6, dispositions: {LATER: 1d}}
        success_dispositions: [SALE, APPT]
    """), CampaignsFile, file="c.yaml", base_dir=Path("."), environ={}).campaigns[0]
T = 1_800_000_000.0


def step(attempts=1, outcome="answered", disposition=None, **kw):
    return plan(CAMPAIGN, attempts=attempts, outcome=outcome, disposition=disposition, now=T, **kw)


def test_retries_by_outcome():
    assert step(outcome="busy") == Step("retry", T + 600)
    assert step(outcome="no_answer") == Step("retry", T + 7200)
    assert step(outcome="machine") == Step("retry", T + 14400)
    assert step(outcome="failed") == Step("retry", T + 1800)
    assert step(outcome="abandoned") == Step("retry", T + 7200)
    assert step(disposition="LATER") == Step("retry", T + 86400)


def test_what_ends_a_lead():
    assert step(disposition="SALE") == Step("done", result="SALE")
    assert step(disposition="SALE", attempts=6) == Step("done", result="SALE")
    assert step(disposition="DNC") == Step("dnc", result="DNC")
    assert step(disposition="NOT_INTERESTED") == Step("done", result="NOT_INTERESTED")
    assert step(disposition=None) == Step("done", result="answered")
    assert step(outcome="busy", attempts=6) == Step("done", result="max_attempts")
    assert step(outcome="invalid_number", numbers_left=0) == Step("invalid", result="no_valid_number")
    assert step(outcome="invalid_number", numbers_left=1) == Step("retry", T)


def test_a_callback_is_kept_whatever_the_count():
    assert step(outcome="answered", disposition="CALLBACK", attempts=6, callback_at=T + 3600) == Step(
        "retry", T + 3600, callback_at=T + 3600)
    assert step(disposition="DNC", callback_at=T + 3600).status == "dnc"


def test_uk_waits_72_hours_after_an_abandon():
    from dataclasses import replace

    uk = replace(CAMPAIGN, abandon=replace(CAMPAIGN.abandon, rule="uk"))
    assert plan(uk, attempts=1, outcome="abandoned", disposition=None, now=T) == Step("retry", T + 72 * 3600)
    assert plan(uk, attempts=1, outcome="busy", disposition=None, now=T) == Step("retry", T + 600)


def test_an_unknown_outcome_is_an_error():
    with pytest.raises(ValueError, match="unknown outcome 'exploded'"):
        step(outcome="exploded")


# -- the gate's shell without a database ------------------------------------------------------------

class _DeadPool:
    def acquire(self):
        raise OSError("connection refused")


async def test_the_gate_fails_closed_without_the_database():
    result = await Gate(_DeadPool(), instance="a").check(CAMPAIGN, mode="manual", number="(212) 555-0123", now=T)
    assert (result.allowed, result.reason, result.id, result.number) == (False, "gate_unavailable", None, "+12125550123")
    assert result.decision.detail.startswith("the database cannot be reached (OSError: connection refused)")
