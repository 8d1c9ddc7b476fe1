"""The API's OpenAPI document against the routes the server registers; request checking; webhook
signatures, back-off and configuration."""

from __future__ import annotations

import hashlib
import hmac
import re
import textwrap
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest

from engine.http import api
from engine.http.api import edge
from engine.config.model import Config, DatabaseConfig, WebhookConfig
from engine.store.db import Database, Writer
from engine.http.server import build_app
from engine.adapters.webhooks import Webhooks, backoff, sign
from engine.config.yamlconf import ConfigError, load_text

from .test_config import MINIMAL



def registered() -> set[tuple[str, str]]:
    app = build_app(SimpleNamespace())  # type: ignore[arg-type]   (routes only; nothing runs)
    out = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith(api.PREFIX) and route.method != "HEAD":
            out.add((route.method, path))
    return out


def test_every_api_route_is_documented_and_every_documented_route_exists():
    doc = api.openapi()
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert registered() == documented
    assert len(documented) >= 17


def test_the_document_is_openapi_31_with_valid_schemas_and_resolvable_refs():
    doc = api.openapi()
    assert doc["openapi"] == "3.1.0"
    for name, schema in doc["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
    refs: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(doc)
    assert refs and all(r.removeprefix("#/components/schemas/") in doc["components"]["schemas"] for r in refs)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert params == set(re.findall(r"\{(\w+)\}", path)), (method, path)
            if op.get("security") != []:
                assert {"401", "403"} <= set(op["responses"]), (method, path)
            if "requestBody" in op:
                assert "400" in op["responses"]
                jsonschema.Draft202012Validator.check_schema(op["requestBody"]["content"]["application/json"]["schema"])


def body_of(method: str, path: str) -> dict:
    return next(r.body for r in api.ROUTES if r.method == method and r.path == path)


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"reason": "lunch", "extra": 1}, "extra", "unknown field"),
    ({}, "reason", "missing field"),
    ({"reason": 5}, "reason", "expected string"),
    ({"reason": ""}, "reason", "characters"),
])
def test_bodies_are_checked_against_their_documented_schema_naming_the_field(body, field, words):
    with pytest.raises(api.ApiError) as info:
        api.check(body_of("POST", "/agents/{agent_id}/pause"), body)
    assert info.value.status == 400 and info.value.body["field"] == field and words in info.value.body["error"]


def test_what_the_server_accepts_the_documented_schema_accepts_too():
    schema = body_of("POST", "/campaigns/{name}/leads")
    good = {"number": "+12125550111", "fields": {"source": "web"}, "consent": True, "priority": 5}
    api.check(schema, good)
    jsonschema.validate(good, schema)
    for bad in ({"numbers": []}, {"priority": 5000}, {"fields": {"a": 1}}, {"consent": "yes"}):
        with pytest.raises(api.ApiError):
            api.check(schema, bad)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    disposition = body_of("POST", "/calls/{call_id}/disposition")
    for bad in ({}, {"code": "1", "name": "resolved"}, {"code": "x"}):
        with pytest.raises(api.ApiError):
            api.check(disposition, bad)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, disposition)


@pytest.mark.parametrize(("raw", "field", "words"), [
    (b'{"reason": "lunch\\u0000"}', "reason", "NUL character"),
    (b'{"fields": {"a": ["x", "\\ud800"]}}', "fields.a[1]", "unpaired surrogate (U+D800)"),
    (b'{"fields": {"a\\u0000b": "x"}}', "fields", "a field name contains a NUL"),
    (b'{"priority": NaN}', "body", "NaN is not a JSON number"),
    (b'{"priority": -Infinity}', "body", "-Infinity is not a JSON number"),
    (b'{"reason": "\xff"}', "body", "not UTF-8"),
    (b"{not json", "body", "not JSON"),
    (b"[" * 9 + b"]" * 9, "body", "deeper than 8 levels"),
    (b"[" * 100_000 + b"]" * 100_000, "body", "deeper than 8 levels"),     # past the parser's own recursion limit
])
def test_bodies_postgresql_could_not_store_or_too_deep_are_refused_naming_the_field(raw, field, words):
    with pytest.raises(api.ApiError) as info:
        edge.parse_body(raw)
    assert info.value.status == 400 and info.value.body["field"] == field and words in info.value.body["error"]


def test_what_the_edge_lets_through_is_the_json_as_sent():
    assert edge.parse_body(b"") == {}
    assert edge.parse_body(b"[" * 8 + b"]" * 8) == [[[[[[[[]]]]]]]]
    assert edge.parse_body('{"name": "Zoë 😀", "n": 1e3}'.encode()) == {"name": "Zoë 😀", "n": 1000.0}


def test_every_route_documents_the_errors_its_shape_can_give():
    for r in api.ROUTES:
        takes_input = r.body is not None or r.query or "{" in r.path
        assert (400 in r.errors) == bool(takes_input), r.path
        assert (413 in r.errors) == (r.body is not None), r.path
        if r.record:
            assert 503 in r.errors, r.path
    assert {(r.method, r.path) for r in api.ROUTES if r.record} == {
        ("POST", "/dnc"), ("POST", "/campaigns/{name}/leads"), ("POST", "/campaigns/{name}/start"),
        ("POST", "/campaigns/{name}/pause"), ("POST", "/campaigns/{name}/stop")}


def test_the_signature_is_the_hex_hmac_sha256_of_the_exact_body():
    body = b'{"id": "d1", "kind": "call.offered", "at": 1.0, "data": {}}'
    secret = "0123456789abcdef-secret"
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert sign(secret, body) == "sha256=" + expected
    # a known vector (RFC 4231 test case 2: key "Jefe")
    assert sign("Jefe", b"what do ya want for nothing?") == \
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert sign(secret, body + b" ") != sign(secret, body)


def test_a_fact_published_again_after_a_restart_keeps_its_delivery_id(tmp_path):
    """A dial.ended the killed run had sent, published again by the next run's recovery, must be
    the same delivery (the receiver de-duplicates on the id), not a second attempt ending."""
    hook = WebhookConfig(url="http://127.0.0.1:9/hook", secret="x" * 16, events=("*",))
    cfg = SimpleNamespace(engine=SimpleNamespace(instance="a"), webhooks=(hook,))

    def published(*events: tuple[str, dict]) -> list[str]:
        writer = Writer(Database(DatabaseConfig(dsn="postgresql://127.0.0.1:1/none")), tmp_path / str(len(events)))
        Webhooks(writer=writer, db=writer.db, config=lambda: cfg)   # type: ignore[arg-type]  (subscribes)
        for kind, data in events:
            writer.hub.publish(kind, **data)
        return [e.args[0] for e in writer._queue if e.op == "webhook_queued"]

    first, again, other = published(("dial.ended", {"attempt_id": "a1", "outcome": "answered"}),
                                    ("dial.ended", {"attempt_id": "a1", "outcome": "answered"}),
                                    ("dial.ended", {"attempt_id": "a2", "outcome": "busy"}))
    assert first == again != other
    # in another process too: the id comes from the fact, not from the run
    assert published(("dial.ended", {"attempt_id": "a1"}))[0] == first
    # events that may happen more than once per call keep an id of their own
    offered = published(("call.offered", {"call_id": "c1"}), ("call.offered", {"call_id": "c1"}))
    assert len(set(offered)) == 2


def test_retries_back_off_exponentially_up_to_the_ceiling():
    hook = WebhookConfig(url="http://127.0.0.1:9/hook", secret="x" * 16, events=("*",), retry_seconds=2,
                         retry_max_seconds=30)
    assert [backoff(hook, n) for n in range(1, 7)] == [2, 4, 8, 16, 30, 30]


def load(text: str) -> Config:
    return load_text(MINIMAL + textwrap.dedent(text), Config, file="cc.yaml", base_dir=Path("/etc/cc"), environ={})


def test_webhooks_and_tokens_are_validated_with_file_and_line():
    cfg = load("""\
        http: {tokens: ["0123456789abcdef0123"]}
        webhooks:
          - url: https://crm.example.com/hooks/calls
            secret: 0123456789abcdef
            events: [call.offered, call.ended]
            max_attempts: 3
        """)
    assert cfg.http.tokens == ("0123456789abcdef0123",)
    assert cfg.webhooks[0].events == ("call.offered", "call.ended") and cfg.webhooks[0].max_attempts == 3
    with pytest.raises(ConfigError) as info:
        load("""\
            http: {tokens: [short]}
            webhooks:
              - url: ftp://crm
                secret: short
                events: [Call Offered]
                timeout_seconds: 0
            """)
    text = str(info.value)
    assert "cc.yaml:6:" in text and "at least 16 printable characters" in text
    assert "cc.yaml:8:" in text and "http:// or https://" in text
    assert "cc.yaml:9:" in text and "at least 16 characters" in text
    assert "cc.yaml:10:" in text and "'Call Offered'" in text
    assert "cc.yaml:11:" in text and "above 0" in text
