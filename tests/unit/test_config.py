"""The main config file: every error names file, line and what was expected."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.cli.main import main as cli
from engine.config.model import Config, load_config
from engine.config.yamlconf import ConfigError, load_text, parse_duration


MINIMAL = """\
engine: {state_dir: /tmp/cc}
asterisk:
  ari: {url: "http://127.0.0.1:8088/ari", username: u, password: p}
  ami: {username: u, password: p}
database: {dsn: "postgresql://x"}
"""


def load(text: str, environ: dict[str, str] | None = None) -> Config:
    cfg = load_text(textwrap.dedent(text), Config, file="cc.yaml", base_dir=Path("/etc/cc"), environ=environ or {})
    if cfg.problems():
        raise ConfigError(cfg.problems())
    return cfg


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text, environ)
    return [str(p) for p in info.value.problems]


def test_example_config_is_valid(example_env):
    cfg = load_config(example_env)
    assert cfg.trees["main"].tree.start == "welcome" and cfg.route("1000").ivr == "main"
    assert cfg.asterisk.ari.password == "s3cret"
    assert cfg.database.dsn == "postgresql://u@127.0.0.1:1/db"
    assert cfg.asterisk.ami.port == 5038
    assert cfg.route("2001").prompt == "tt-monkeys"
    assert cfg.route("999").prompt == "hello-world"


def test_minimal_config_takes_defaults():
    cfg = load(MINIMAL)
    assert cfg.http.bind == "127.0.0.1"
    assert cfg.inbound_default.prompt == "hello-world"
    assert cfg.timeouts.answer_seconds == 10
    assert cfg.asterisk.ari.app == "callcenter"


def test_config_is_frozen():
    cfg = load(MINIMAL)
    with pytest.raises(AttributeError):
        cfg.http = None  # type: ignore[misc]


def test_unknown_key_names_file_line_and_suggests():
    out = problems(MINIMAL + "htp: {port: 1}\n")
    assert out == ["cc.yaml:6:1: unknown key 'htp'; expected one of: engine, asterisk, database, http, inbound, "
                   "inbound_default, timeouts, files, logging, webhooks, reports, agents, queues, agent_codes, pause_reasons, dispositions, "
                   "recording, outbound, campaigns (did you mean 'http'?)"]


def test_wrong_types_are_reported_together_with_lines():
    out = problems("""\
        engine: {state_dir: /tmp/cc}
        asterisk:
          ari: {url: "http://h/ari", username: u, password: p}
          ami: {username: u, password: p, port: many}
        database: {dsn: x, migrate_on_start: maybe}
        http: {port: 70000}
        """)
    assert out == [
        "cc.yaml:4:41: asterisk.ami.port: expected a whole number, got 'many'",
        "cc.yaml:5:38: database.migrate_on_start: expected true or false, got 'maybe'",
        "cc.yaml:6:14: http.port: expected a port number 1..65535 (or 0 for any free port), got 70000",
    ]


def test_missing_required_key():
    out = problems("engine: {state_dir: /tmp}\nasterisk:\n  ami: {username: u, password: p}\ndatabase: {dsn: x}\n")
    assert out == ["cc.yaml:3:3: asterisk: missing required key 'ari'"]


def test_duplicate_key_is_an_error():
    out = problems(MINIMAL + "http: {port: 1}\nhttp: {port: 2}\n")
    assert out == ["cc.yaml:7:1: duplicate key 'http' (first on line 6)"]


def test_environment_interpolation():
    text = MINIMAL.replace('password: p}', 'password: "${PW}"}', 1).replace("dsn: \"postgresql://x\"",
                                                                            'dsn: "${DSN:-postgresql://d}"')
    cfg = load(text, {"PW": "from-env"})
    assert cfg.asterisk.ari.password == "from-env"
    assert cfg.database.dsn == "postgresql://d"
    assert problems(text, {}) == [
        "cc.yaml:3:66: asterisk.ari.password: environment variable PW is not set "
        "(write ${NAME:-default} to give a default)"]


def test_dollar_dollar_is_a_literal_dollar():
    cfg = load(MINIMAL.replace("password: p}", 'password: "a$$b"}', 1))
    assert cfg.asterisk.ari.password == "a$b"


def test_numbers_written_unquoted_stay_as_written():
    cfg = load(MINIMAL + "inbound:\n  - {number: 0123, prompt: hello-world}\n")
    assert cfg.inbound[0].number == "0123"


def test_a_number_routed_twice_is_an_error():
    out = problems(MINIMAL + "inbound:\n  - {number: '1', prompt: beep}\n  - {number: '1', prompt: beep}\n")
    assert out == ["cc.yaml:8:5: inbound: number '1' is routed twice (first at cc.yaml:7:5)"]


def test_a_route_goes_to_a_prompt_a_queue_or_a_tree():
    out = problems(MINIMAL + "inbound:\n  - {number: '1'}\n  - {number: '2', prompt: beep, queue: sales}\n")
    assert out == ["cc.yaml:7:5: inbound[0]: give exactly one of prompt, queue or ivr",
                   "cc.yaml:8:5: inbound[1]: give exactly one of prompt, queue or ivr"]
    out = problems(MINIMAL + "inbound:\n  - {number: '1', ivr: main}\n")
    assert out == ["cc.yaml:7:5: inbound number 1: unknown IVR tree 'main' (files.ivr is not set)"]


def test_prompt_cannot_escape_the_sounds_folder():
    out = problems(MINIMAL + "inbound_default: {prompt: ../../etc/passwd}\n")
    assert len(out) == 1 and out[0].startswith("cc.yaml:6:27: inbound_default.prompt: expected an Asterisk sound")


def test_relative_paths_are_from_the_file_folder(tmp_path):
    (tmp_path / "ivr.yaml").write_text("x: 1\n")
    main = tmp_path / "cc.yaml"
    main.write_text(MINIMAL + "files: {ivr: ivr.yaml, queues: nope.yaml}\n")
    with pytest.raises(ConfigError) as info:
        load_config(main)
    assert [str(p) for p in info.value.problems] == [
        f"{main}:6:32: files.queues: {tmp_path / 'nope.yaml'} does not exist"]


def test_invalid_yaml_points_at_the_line():
    out = problems(MINIMAL + "http: {port: 1\n")
    assert len(out) == 1 and out[0].startswith("cc.yaml:7:1: not valid YAML")


def test_empty_and_non_mapping_files():
    assert problems("") == ["cc.yaml:1:1: the file is empty; expected a mapping"]
    assert problems("- a\n") == ["cc.yaml:1:1: expected a mapping, got a list"]


def test_durations():
    assert parse_duration("90") == 90
    assert parse_duration("10m") == 600
    assert parse_duration("2h") == 7200
    assert parse_duration("30d") == 30 * 86400
    assert parse_duration("250ms") == 0.25
    with pytest.raises(ValueError):
        parse_duration("ten minutes")


def test_check_config_command(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(MINIMAL)
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL + "loging: {}\n")
    assert cli(["check-config", str(good)]) == 0
    assert capsys.readouterr().out == f"{good}: ok\n"
    assert cli(["check-config", str(bad)]) == 1
    assert f"{bad}:6:1: unknown key 'loging'" in capsys.readouterr().err
    assert cli(["check-config", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read the file" in capsys.readouterr().err
