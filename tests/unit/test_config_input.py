"""Input the loader must refuse cleanly (issue 11, item 14 and 17): numbers out of bounds, files too
big, too deep or not text, unset variables in check-config; and no input raises anything but
ConfigError."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import textwrap
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config import model as config_module
from engine.config.acd import AgentsFile, QueuesFile
from engine.config.campaign import CampaignsFile
from engine.cli.main import main as cli
from engine.config.model import MAX_INBOUND, Config, load_config
from engine.config.ivr import Tree
from engine.config.yamlconf import MAX_ITEMS, ConfigError, Mark, load_text, parse_duration
from engine.config.yamlread import MAX_DEPTH, MAX_FILE_BYTES, _GuardedLoader, compose
from tests.unit.test_config import MINIMAL

REPO = Path(__file__).resolve().parents[2]



def problems(text: str, cls: type = Config, environ: Mapping[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_text(textwrap.dedent(text), cls, file="cc.yaml", base_dir=Path("/etc/cc"), environ=environ or {})
    return [str(p) for p in info.value.problems]


def refused(path: Path) -> str:
    """What load_config says of the file at ``path`` (it must refuse it)."""
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


# -- every number has bounds -----------------------------------------------------------------------

def _schemas(tp: object, seen: dict[type, None]) -> None:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType, tuple) or origin in (Mapping, dict):
        for a in args:
            _schemas(a, seen)
    elif dataclasses.is_dataclass(tp) and tp not in seen and tp is not Mark:
        seen[tp] = None
        hints = typing.get_type_hints(tp)
        for f in dataclasses.fields(tp):
            _schemas(hints[f.name], seen)


def _numeric_fields() -> list[tuple[type, str, type]]:
    seen: dict[type, None] = {}
    for root in (Config, AgentsFile, QueuesFile, CampaignsFile, Tree):
        _schemas(root, seen)
    out = []
    for cls in seen:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if not f.init or f.metadata.get("internal"):
                continue
            tp = hints[f.name]
            if typing.get_origin(tp) in (typing.Union, types.UnionType):
                tp = next(a for a in typing.get_args(tp) if a is not type(None))
            if tp in (int, float):
                out.append((cls, f.name, tp))
    return out


NUMERIC = _numeric_fields()


def test_the_schema_walk_finds_the_numbers():
    names = {f"{cls.__name__}.{name}" for cls, name, _ in NUMERIC}
    assert len(NUMERIC) >= 40
    assert {"EngineConfig.shutdown_grace_seconds", "PoolConfig.max_size", "QueueConfig.wrapup_seconds",
            "Retry.max_attempts", "Gather.max_digits", "Target.priority"} <= names


@pytest.mark.parametrize("cls,name,tp", NUMERIC, ids=[f"{c.__name__}.{n}" for c, n, _ in NUMERIC])
def test_every_number_in_the_config_is_finite_and_bounded(cls, name, tp):
    huge = ["100000000000000000000000000", "-100000000000000000000000000"] if tp is int else \
        ["1e400", "-1e400", "nan", "1e300", "-1e300"]
    for value in huge:
        out = problems(f"{name}: {value}\n", cls)
        assert any(name in p for p in out), (value, out)


def test_bounds_errors_name_the_place_and_what_was_expected():
    out = problems(MINIMAL.replace("state_dir: /tmp/cc}", "state_dir: /tmp/cc, shutdown_grace_seconds: 1e400}")
                   .replace("dsn: \"postgresql://x\"}", "dsn: x, pool: {max_size: 100000000000000000000000000}}"))
    assert out == [
        "cc.yaml:1:54: engine.shutdown_grace_seconds: expected a finite number, got '1e400'",
        "cc.yaml:5:37: database.pool.max_size: expected 1 to 1000, got 100000000000000000000000000"]
    out = problems(MINIMAL + "timeouts: {answer_seconds: 0, max_call_seconds: 1e300}\n")
    assert out == ["cc.yaml:6:28: timeouts.answer_seconds: expected above 0 and at most 600 seconds, got 0",
                   "cc.yaml:6:49: timeouts.max_call_seconds: expected above 0 and at most 86400 seconds, got 1e+300"]


def test_a_number_from_the_environment_is_bounded_too():
    text = MINIMAL.replace("state_dir: /tmp/cc}", "state_dir: /tmp/cc, shutdown_grace_seconds: '${GRACE}'}")
    assert problems(text, environ={"GRACE": "1e400"}) == [
        "cc.yaml:1:54: engine.shutdown_grace_seconds: expected a finite number, got '1e400'"]
    assert problems(text, environ={"GRACE": "7200"}) == [
        "cc.yaml:1:54: engine.shutdown_grace_seconds: expected above 0 and at most 3600 seconds, got 7200"]


def test_durations_are_finite_and_bounded():
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration("9" * 400 + "d")   # 1e400 days: infinity
    assert problems(MINIMAL + "reports: {fcr_window: 31d}\n") == [
        "cc.yaml:6:23: reports.fcr_window: expected a duration above 0 and at most 30d, got '31d'"]
    out = problems("campaigns:\n  - {name: c, mode: preview, queue: q, caller_id: '+15551230000', "
                   "retry: {busy: 1000d}}\n", CampaignsFile)
    assert out == ["cc.yaml:2:81: campaigns[0].retry.busy: expected a duration above 0 and at most 90d, got '1000d'"]


# -- what a file may hold --------------------------------------------------------------------------

def test_more_inbound_numbers_than_allowed_is_one_clear_error():
    entries = "".join(f'  - {{number: "{n}", prompt: beep}}\n' for n in range(MAX_INBOUND + 1))
    assert problems(MINIMAL + "inbound:\n" + entries) == [
        f"cc.yaml:7:3: inbound: {MAX_INBOUND + 1} entries; at most {MAX_INBOUND} are allowed here"]


def test_any_other_list_is_bounded_by_default():
    tokens = ", ".join(["0123456789abcdef"] * (MAX_ITEMS + 1))
    assert problems(MINIMAL + f"http: {{tokens: [{tokens}]}}\n") == [
        f"cc.yaml:6:16: http.tokens: {MAX_ITEMS + 1} entries; at most {MAX_ITEMS} are allowed here"]


def test_the_main_file_and_the_agents_file_are_bounded_together(tmp_path, monkeypatch):
    monkeypatch.setattr(config_module, "MAX_AGENTS", 2)
    (tmp_path / "agents.yaml").write_text("agents:\n  - {id: '3', pin: '1'}\n")
    main = tmp_path / "cc.yaml"
    main.write_text(MINIMAL + "files: {agents: agents.yaml}\nagents: [{id: '1', pin: '1'}, {id: '2', pin: '1'}]\n")
    assert refused(main) == (f"{tmp_path / 'agents.yaml'}:2:5: agents: 3 in all (this file and files.agents "
                             "together); at most 2 are allowed")


def test_a_file_too_big_is_refused_before_it_is_parsed(tmp_path):
    big = tmp_path / "cc.yaml"
    big.write_bytes(MINIMAL.encode() + b"#" * MAX_FILE_BYTES)
    assert refused(big) == (f"{big}:1:1: the file is {big.stat().st_size:,} bytes; a configuration file may be "
                            f"at most {MAX_FILE_BYTES:,} bytes (4 MiB)")


@pytest.mark.parametrize("loader", [None, _GuardedLoader], ids=["libyaml", "python"])
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 2_500, 100_000])
def test_deep_nesting_is_an_error_not_a_traceback(loader, depth):
    text = "engine: " + "[" * depth + "]" * depth + "\n"
    with pytest.raises(ConfigError) as info:
        compose(text, "cc.yaml", loader)
    (problem,) = info.value.problems
    assert problem.mark.file == "cc.yaml" and problem.mark.line == 1
    assert problem.message == f"nested more than {MAX_DEPTH} levels deep; no part of a configuration goes that deep"


def test_aliases_that_expand_a_billion_fold_are_refused():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{b}: &{b} [*{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}]\n"
        for a, b in zip("abcdefgh", "bcdefghi"))
    with pytest.raises(ConfigError, match=r"cc.yaml:\d+:\d+: more than 1,000,000 values"):
        load_text(bomb, Config, file="cc.yaml")


def test_binary_garbage_and_odd_files_are_named_with_the_reason(tmp_path):
    cases = {
        "binary.yaml": (b"engine: {}\n\x89PNG\r\n\x1a\n\xff\xd8", "2:1: not UTF-8 text: byte 0x89"),
        "nul.yaml": (b"engine: {}\nasterisk: a\x00b\n", "2:12: not valid YAML: character U+0000 is not allowed"),
        "bell.yaml": (b"engine: {state_dir: \x07}\n", "1:21: not valid YAML: character U+0007 is not allowed"),
    }
    for name, (data, expected) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert refused(tmp_path / name).startswith(f"{tmp_path / name}:{expected}")
    os.mkfifo(tmp_path / "fifo.yaml")   # opening it would wait for a writer forever
    for path, reason in ((tmp_path / "fifo.yaml", "not a regular file"), (tmp_path, "not a regular file"),
                         (tmp_path / "none.yaml", "No such file")):
        message = refused(path)
        assert message.startswith(f"{path}:1:1: cannot read the file") and reason in message


def test_an_ivr_file_that_is_not_text_is_an_error_at_its_name(tmp_path):
    (tmp_path / "ivr").mkdir()
    (tmp_path / "ivr" / "main.yaml").write_bytes(b"start: a\n\xff")
    main = tmp_path / "cc.yaml"
    main.write_text(MINIMAL + "files: {ivr: ivr}\n")
    assert refused(main).startswith(f"{tmp_path / 'ivr' / 'main.yaml'}:2:1: not UTF-8 text")


def test_a_long_chain_of_silent_nodes_is_checked_without_recursion():
    nodes = "".join(f"  n{i}: {{goto: {{node: n{i + 1}}}}}\n" for i in range(3000)) + "  n3000: {hangup: {}}\n"
    tree = load_text("start: n0\nnodes:\n" + nodes, Tree, file="t.yaml")
    from engine.config.ivr import _silent_loops
    assert _silent_loops(tree) == []


# -- nothing routed: a warning ---------------------------------------------------------------------

def test_a_file_cut_before_its_routes_passes_with_a_warning(tmp_path, capsys, example_env):
    text = example_env.read_text()
    cut = tmp_path / "cc.yaml"
    cut.write_text(text[:text.index("# Inbound numbers")])
    assert cli(["check-config", str(cut)]) == 0
    out = capsys.readouterr()
    assert out.out == f"{cut}: ok\n"
    assert out.err == (f"{cut}:10:1: warning: no number is routed anywhere: none of the 0 inbound numbers nor "
                       "inbound_default goes to a queue or an IVR tree, so every call hears a prompt (hello-world) "
                       "and is hung up (is the file complete?)\n")
    assert load_config(example_env).warnings() == []


# -- unset variables: warnings in check-config, errors in run --------------------------------------

def test_check_config_reports_unset_variables_and_checks_the_rest(capsys, example_env, monkeypatch):
    monkeypatch.delenv("CALLCENTER_DSN")
    assert cli(["check-config", str(example_env)]) == 0
    out = capsys.readouterr()
    assert out.out == f"{example_env}: ok\n"
    assert out.err == f"{example_env}:39:8: warning: CALLCENTER_DSN is unset; database.dsn not checked\n"

    monkeypatch.delenv("ASTERISK_AMI_PASSWORD")
    assert cli(["run", "--config", str(example_env)]) == 1    # run never starts on a guess
    err = capsys.readouterr().err
    assert "database.dsn: environment variable CALLCENTER_DSN is not set" in err
    assert "asterisk.ami.password: environment variable ASTERISK_AMI_PASSWORD is not set" in err


def test_unset_variables_do_not_hide_other_errors(tmp_path, capsys):
    bad = tmp_path / "cc.yaml"
    bad.write_text(MINIMAL.replace('dsn: "postgresql://x"', 'dsn: "${NO_SUCH_DSN}", pool: {max_size: 0}')
                   .replace("ami: {username: u", "ami: {port: '${NO_SUCH_PORT}', username: u"))
    assert cli(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[:2] == [f"{bad}:4:15: warning: NO_SUCH_PORT is unset; asterisk.ami.port not checked",
                       f"{bad}:5:17: warning: NO_SUCH_DSN is unset; database.dsn not checked"]
    assert err[-1] == f"{bad}:5:52: database.pool.max_size: expected 1 to 1000, got 0"


# -- no input raises anything but ConfigError ------------------------------------------------------

_NASTY = st.sampled_from([
    "1e400", "-1e400", "nan", "inf", "1e300", "100000000000000000000000000", "-1", "0", "0x10", "1_000", "٣",
    "", "~", "null", "yes", "${NO_SUCH_VARIABLE}", "$${x}", "${BAD", "~nobody_such_user/x", "a" * 300,
    "/" + "x" * 300 + "/y", "/dev/zero", "/dev/null", "/proc/self/status", "/", ".", "..", "\x00", "\x1b[31m",
    "\u202e", "PJSIP/{number}@x", "+15551230000", "08:00", "24:00", "99:99", "Mars/Base", "../../etc/passwd",
    "30d", "0s", "9" * 400 + "d", "x" * 5000,
])
_PATHS = st.sampled_from(["~nobody_such_user/x", "/" + "x" * 300, "a\x00b", "/dev/zero", "/dev/null", "/proc/self",
                          "/", ".", "..", "missing/file.yaml", "~"])
_SCALAR = st.one_of(_NASTY, st.one_of(st.text(max_size=20), st.integers(), st.floats(), st.booleans(), st.none()))


def _values(tp: object, depth: int = 0) -> st.SearchStrategy[object]:
    """YAML-able values shaped like the schema's type, often wrong, so the walk reaches the checks."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if depth > 6:
        return _SCALAR
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(_values(a, depth) for a in args if a is not type(None)), st.none())
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        fields = {f.name: st.deferred(lambda t=hints[f.name]: _values(t, depth + 1))
                  for f in dataclasses.fields(tp) if f.init and not f.metadata.get("internal") and hints[f.name]
                  not in (Mark, Mark | None)}
        return st.one_of(st.fixed_dictionaries({}, optional=fields), _SCALAR) if fields else _SCALAR
    if origin is tuple:
        return st.one_of(st.lists(_values(args[0], depth + 1), max_size=3), _SCALAR)
    if origin in (Mapping, dict):
        return st.one_of(st.dictionaries(st.one_of(_NASTY, st.text(max_size=5)), _values(args[1], depth + 1),
                                         max_size=3), _SCALAR)
    if origin is Literal:
        return st.one_of(st.sampled_from(args), _SCALAR)
    if tp is Path:
        return st.one_of(_PATHS, _SCALAR)
    return _SCALAR


def _loads_or_refuses(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cc.yaml"
        path.write_bytes(data)
        try:
            cfg = load_config(path)
        except ConfigError as exc:
            assert exc.problems and all(p.mark.file for p in exc.problems)
        else:
            assert isinstance(cfg, Config)
        try:
            load_config(path, warnings=[])
        except ConfigError:
            pass


_PROPERTY = settings(max_examples=int(os.environ.get("CC_FUZZ_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY
@given(st.builds(lambda v: yaml.safe_dump(v, allow_unicode=True).encode("utf-8", "surrogatepass"),
                 _values(Config)))
def test_no_config_shaped_input_makes_load_config_raise_anything_but_config_error(data):
    _loads_or_refuses(data)


_BASE = yaml.safe_load(MINIMAL + """\
inbound: [{number: "1", queue: q}, {number: "2", prompt: beep}]
queues: [{name: q, expand: [{after_seconds: 30, skills: {a: 1}}]}]
agents: [{id: "1", pin: "1", queues: [q]}]
campaigns: [{name: c, mode: progressive, queue: q, caller_id: "+15551230000", safe_harbor_sound: s}]
""")


def _over(base: object, new: object) -> object:
    if isinstance(base, dict) and isinstance(new, dict):
        return {**base, **{k: _over(base.get(k), v) for k, v in new.items()}}
    return new


@_PROPERTY
@given(_values(Config).map(lambda v: yaml.safe_dump(_over(_BASE, v), allow_unicode=True).encode("utf-8",
                                                                                               "surrogatepass")))
def test_no_change_to_a_valid_config_makes_load_config_raise_anything_but_config_error(data):
    _loads_or_refuses(data)


@_PROPERTY
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
                 st.builds(lambda prefix, cut: (MINIMAL + prefix).encode()[:cut], st.text(max_size=40),
                           st.integers(0, 400)),
                 st.builds(lambda key, open_, close, n: (MINIMAL + f"{key}: " + open_ * n + close * n).encode(),
                           st.sampled_from([f.name for f in dataclasses.fields(Config) if f.init]),
                           st.sampled_from(["[", "{a: "]), st.sampled_from(["]", "}", ""]), st.integers(0, 3000))))
def test_no_text_or_bytes_make_load_config_raise_anything_but_config_error(data):
    _loads_or_refuses(data)


def test_check_config_passes_on_a_fresh_machine_with_nothing_set(capsys):
    """Issue 11 item 17: no variable set, no Asterisk installed: warnings, and exit 0."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    example = repo / "examples" / "callcenter.yaml"
    env = {"PATH": "/usr/bin:/bin", "ASTERISK_SOUNDS_DIR": "/nonexistent/sounds"}
    # run from the checkout: `-m engine` imports this checkout's engine, not the one a venv has installed
    proc = subprocess.run([sys.executable, "-m", "engine", "check-config", str(example)], env=env, cwd=repo,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{example}: ok\n"
    assert "warning: CALLCENTER_DSN is unset" in proc.stderr
    assert "asterisk.sounds_dir: /nonexistent/sounds is not a folder on this machine" in proc.stderr
