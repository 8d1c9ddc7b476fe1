"""The campaign schema: strict defaults, every refusal at its file and line, cross-checks with queues."""

from __future__ import annotations

import textwrap
from datetime import time
from pathlib import Path

import pytest

from engine.config.campaign import CampaignsFile, find, to_rules
from engine.config.model import Config, load_config
from engine.config.yamlconf import ConfigError, load_text

GOOD = """\
campaigns:
  - name: renewals
    mode: predictive
    queue: renewals
    caller_id: "+15551230000"
    safe_harbor_sound: custom/safe-harbor
"""


def load(text: str) -> CampaignsFile:
    return load_text(textwrap.dedent(text), CampaignsFile, file="campaigns.yaml", base_dir=Path("/etc/cc"),
                     environ={})


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text)
    return [str(p) for p in info.value.problems]


def test_defaults_are_the_strict_values():
    c = load(GOOD).campaigns[0]
    assert c.ring_timeout_seconds == 20
    assert (c.abandon.target_percent, c.abandon.rule, c.abandon.window_seconds) == (3.0, "us", 30 * 86400)
    assert (c.calling_hours.start, c.calling_hours.end, c.calling_hours.legal_start, c.calling_hours.legal_end) == (
        "08:00", "21:00", "08:00", "21:00")
    assert c.national_dnc.required and c.national_dnc.max_age == "31d"
    assert (c.retry.delay("busy"), c.retry.delay("no_answer"), c.retry.delay("machine")) == (600, 7200, 14400)
    assert c.retry.delay("abandoned") == 7200 and c.retry.max_attempts == 6
    assert c.amd.enabled is False and c.amd.action == "hangup"
    rules = to_rules(c)
    assert (rules.window, rules.days, rules.max_attempts, rules.national_max_age) == (
        (time(8), time(21)), frozenset(range(6)), 6, 31 * 86400)


def test_every_key_of_the_brief():
    c = load("""\
        campaigns:
          - name: renewals
            mode: predictive
            queue: renewals
            dial: "PJSIP/{number}@carrier"
            caller_id_pool: ["+12125550100", "+13125550100"]
            ring_timeout_seconds: 25
            abandon: {target_percent: 2.5, window: 7d, rule: us}
            safe_harbor_sound: custom/safe-harbor
            amd: {enabled: true, message: custom/vm}
            calling_hours: {start: "09:00", end: "22:00", days: [mon, tue, wed]}
            retry: {busy: 5m, no_answer: 1h, machine: 3h, max_attempts: 4, dispositions: {LATER: 1d}}
            success_dispositions: [SALE, APPT]
            default_region: gb
            dnc_lists: []
        """).campaigns[0]
    assert c.abandon.window_seconds == 7 * 86400 and c.amd.action == "message"
    assert c.default_region == "GB" and c.retry.dispositions["LATER"] == "1d"
    assert to_rules(c).window == (time(9), time(21))   # 22:00 is clipped to the legal end
    assert c.caller_id_for("+13125550177") == "+13125550100"    # same area code
    assert c.caller_id_for("+14155550199") == "+12125550100"    # same country: the first such
    assert c.caller_id_for("+442079460958") == "+12125550100"   # nothing matches: the pool's first


def test_ring_timeout_below_15_seconds_is_refused_at_its_line():
    assert problems(GOOD + "    ring_timeout_seconds: 10\n") == [
        "campaigns.yaml:7:27: campaigns[0].ring_timeout_seconds: unanswered calls must ring at least 15 s "
        "(US TSR, Ofcom); got 10"]


def test_abandon_over_the_legal_limit_and_windows():
    assert problems(GOOD + "    abandon: {target_percent: 5}\n") == [
        "campaigns.yaml:7:14: campaigns[0].abandon: abandon.target_percent: expected above 0 and at most 3 "
        "(the legal limit), got 5"]
    assert problems(GOOD + "    abandon: {rule: uk, window: 30d}\n") == [
        "campaigns.yaml:7:14: campaigns[0].abandon: abandon.window: rule uk measures over at most 24h, got 30d"]
    assert problems(GOOD + "    abandon: {window: soon}\n") == [
        "campaigns.yaml:7:23: campaigns[0].abandon.window: expected a duration like 30s, 10m, 2h or 30d, got 'soon'"]
    uk = load(GOOD + "    abandon: {rule: uk}\n").campaigns[0]
    assert uk.abandon.window_seconds == 86400


def test_uk_with_amd_needs_a_false_positive_estimate():
    out = problems(GOOD + "    abandon: {rule: uk}\n    amd: {enabled: true}\n")
    assert out == ["campaigns.yaml:2:5: campaigns[0]: campaign renewals: rule uk counts AMD false positives as "
                   "abandons: give abandon.amd_false_positive_percent (a reasoned estimate)"]


def test_rules_across_keys_point_at_the_campaign():
    text = """\
        campaigns:
          - name: quiet
            mode: progressive
            queue: q
            caller_id: "+15551230000"
          - name: robot
            mode: agentless
            caller_id: "+15551230000"
          - name: nocid
            mode: preview
            queue: q
        """
    assert problems(text) == [
        "campaigns.yaml:2:5: campaigns[0]: campaign quiet: mode progressive may abandon calls: give safe_harbor_sound "
        "(the message that identifies the seller)",
        "campaigns.yaml:6:5: campaigns[1]: campaign robot: mode agentless needs agentless: {message: [...], keys: {...}}",
        "campaigns.yaml:9:5: campaigns[2]: campaign nocid: give caller_id or caller_id_pool (the law requires a caller "
        "id that can be called back)"]


def test_bad_values_each_at_their_line():
    out = problems("""\
        campaigns:
          - name: Bad Name
            mode: robocall
            queue: q
            caller_id: "5551230000"
            dial: "PJSIP/carrier"
            calling_hours: {start: "8am", days: [mon, funday]}
            retry: {busy: never, max_attempts: 0}
            default_region: XX
            dnc_lists: [missing.txt]
            sucess_dispositions: [SALE]
        """)
    assert out == [
        "campaigns.yaml:2:11: campaigns[0].name: expected a name of lower-case letters, digits, _ and -, got 'Bad Name'",
        "campaigns.yaml:3:11: campaigns[0].mode: expected one of preview, progressive, predictive, agentless; got "
        "'robocall'",
        "campaigns.yaml:5:16: campaigns[0].caller_id: expected an E.164 number such as +15551230000, got '5551230000'",
        "campaigns.yaml:6:11: campaigns[0].dial: the dial string must contain {number}, got 'PJSIP/carrier'",
        "campaigns.yaml:7:28: campaigns[0].calling_hours.start: expected a time of day like 08:00 or 21:30, got '8am'",
        "campaigns.yaml:7:47: campaigns[0].calling_hours.days[1]: expected one of mon, tue, wed, thu, fri, sat, sun; "
        "got 'funday'",
        "campaigns.yaml:8:19: campaigns[0].retry.busy: expected a duration like 30s, 10m, 2h or 30d, got 'never'",
        "campaigns.yaml:9:21: campaigns[0].default_region: expected a region code such as US, GB or DE, got 'XX'",
        "campaigns.yaml:10:16: campaigns[0].dnc_lists: /etc/cc/missing.txt does not exist",
        "campaigns.yaml:11:5: campaigns[0]: unknown key 'sucess_dispositions'; expected one of: name, mode, queue, dial, "
        "caller_id, caller_id_pool, ring_timeout_seconds, abandon, safe_harbor_sound, amd, calling_hours, retry, "
        "success_dispositions, default_region, time_zone, dnc_lists, national_dnc, agentless, active, pacing, dispositions "
        "(did you mean 'success_dispositions'?)",
    ]


def test_calling_hours_must_leave_a_window():
    assert problems(GOOD + "    calling_hours: {start: '21:30', end: '23:00'}\n") == [
        "campaigns.yaml:7:20: campaigns[0].calling_hours: calling_hours: 21:30-23:00 lies outside the legal window "
        "08:00-21:00: no call could ever be placed"]
    assert problems(GOOD + "    calling_hours: {start: '18:00', end: '09:00'}\n")[0].endswith(
        "calling_hours: start 18:00 must come before end 09:00")
    assert problems(GOOD + "    national_dnc: {max_age: 45d}\n")[0].endswith(
        "national_dnc.max_age: the list must be re-checked at least every 31 days, got 45d")


def test_agentless_keys():
    out = problems("""\
        campaigns:
          - name: remind
            mode: agentless
            caller_id: "+15551230000"
            agentless: {message: [custom/hello], keys: {"12": OK, "2": "not ok"}}
        """)
    assert out == ["campaigns.yaml:5:16: campaigns[0].agentless: agentless.keys: expected single keys 0-9, * or #, "
                   "got '12'"]


MAIN = """\
engine: {state_dir: /tmp/cc}
asterisk:
  ari: {url: "http://127.0.0.1:8088/ari", username: u, password: p}
  ami: {username: u, password: p}
database: {dsn: "postgresql://x"}
queues: [{name: renewals}]
"""


def test_campaigns_from_the_file_and_inline_are_merged_and_cross_checked(tmp_path):
    (tmp_path / "campaigns.yaml").write_text(
        GOOD + '  - {name: other, mode: preview, queue: nowhere, caller_id: "+15551230000"}\n')
    main = tmp_path / "cc.yaml"
    main.write_text(MAIN + "files: {campaigns: campaigns.yaml}\ncampaigns:\n  - {name: renewals, mode: preview, "
                    "queue: renewals, caller_id: '+15551230000'}\n")
    with pytest.raises(ConfigError) as info:
        load_config(main)
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path / 'campaigns.yaml'}:2:5: campaigns: 'renewals' is defined twice (first at {main}:9:5)",
        f"{tmp_path / 'campaigns.yaml'}:7:5: campaign other: unknown queue 'nowhere'",
    ]
    main.write_text(MAIN + "files: {campaigns: campaigns.yaml}\n")
    (tmp_path / "campaigns.yaml").write_text(GOOD)
    cfg = load_config(main)
    assert [c.name for c in cfg.campaigns] == ["renewals"]
    assert find(cfg.campaigns, "renewals").queue == "renewals"
    with pytest.raises(KeyError, match="no campaign 'x'; the campaigns are: renewals"):
        find(cfg.campaigns, "x")


def test_an_error_in_the_campaigns_file_names_that_file(tmp_path):
    (tmp_path / "campaigns.yaml").write_text(GOOD + "    ring_timeout_seconds: 5\n")
    main = tmp_path / "cc.yaml"
    main.write_text(MAIN + "files: {campaigns: campaigns.yaml}\n")
    with pytest.raises(ConfigError) as info:
        load_config(main)
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path / 'campaigns.yaml'}:7:27: campaigns[0].ring_timeout_seconds: unanswered calls must ring at "
        "least 15 s (US TSR, Ofcom); got 5"]


def test_the_example_campaigns(example_env):
    cfg: Config = load_config(example_env)
    names = [c.name for c in cfg.campaigns]
    assert names == ["renewals", "appointment-reminders", "uk-winback"]
    renewals = find(cfg.campaigns, "renewals")
    assert renewals.queue == "renewals" and renewals.dnc_lists[0].name == "dnc-renewals.txt"
    assert renewals.caller_id_for("+14155550199") == "+14155550100"
    assert find(cfg.campaigns, "uk-winback").abandon.window_seconds == 86400
