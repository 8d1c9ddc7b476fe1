"""The API fuzzed from its own OpenAPI document (schemathesis), on the real stack.

Every operation of ``GET /api/v1/openapi.json``, as the server serves it, gets cases that fit the
document (positive) and cases that break it (negative: wrong types, missing fields, out of range,
odd characters). Each answer must be no 5xx, a documented status, in the documented content type,
matching the documented schema; and a negative case must be refused (4xx). The number of cases is
fixed and the generation derandomized, so a run is bounded (a few hundred requests, seconds) and
repeatable; a failure lists every operation that failed, with a curl line to reproduce it.

The engine runs in the test's loop; the fuzzer's blocking HTTP client (requests, as schemathesis
uses) runs in a worker thread meanwhile. The campaign never dials (edge_config: no national DNC
list is imported), so starting it and posting leads places no call.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from engine.http import api
from engine.app import Engine

from .harness import running
from .test_api import TOKEN
from .test_api_edge import edge_config

CASES_PER_GROUP = 25
CHECK_NAMES = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
               "response_schema_conformance", "negative_data_rejection"]


# Path parameters the engine knows (the rest of each case is generated): past the 404, into the handlers.
KNOWN = {"agent_id": "9001", "name": "renewals"}
PHONES = ["+12125550141", "(212) 555-0142", "212.555.0143", "+1 646 555 0144", "+442079460145", "2125550146"]
UNSTORABLE = ["a\x00b", "\x00", "lunch\x00"]


@dataclass
class Report:
    cases: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    nothing_to_negate: list[str] = field(default_factory=list)


def _groups(operation: Any) -> list[tuple[str, GenerationMode, dict[str, str]]]:
    params = {p.name for p in operation.path_parameters}
    groups = [("positive", GenerationMode.POSITIVE, {}), ("negative", GenerationMode.NEGATIVE, {})]
    if params and params <= set(KNOWN):
        groups.append(("positive, known names", GenerationMode.POSITIVE, {k: KNOWN[k] for k in params}))
    return groups


def fuzz(document: dict, base_url: str) -> Report:
    """Every operation, in each group of :func:`_groups`; collects every failure rather than stopping at one."""
    load_all_checks()
    checks = CHECKS.get_by_names(CHECK_NAMES)
    config = schemathesis.Config.from_dict({
        "auth": {"openapi": {"bearer": {"bearer": TOKEN}}},
        # every case carries the token (a missing or wrong one is test_api's 401), and a path parameter
        # is now and then text PostgreSQL cannot store
        "generation": {"with-security-parameters": False,
                       "dictionaries": {"string": {"dictionary": "unstorable", "probability": 0.1}}},
        # Random text seldom holds a NUL, and seldom is a phone number: real numbers half the time, so
        # DNC entries and leads get stored, and NULs in the text fields that go with them.
        "dictionaries": {"phone": {"values": PHONES}, "unstorable": {"values": UNSTORABLE},
                         "phone_or_unstorable": {"values": PHONES + UNSTORABLE}},
        "parameters": {"body.number": {"dictionary": "phone", "probability": 0.5},
                       "body.numbers[*]": {"dictionary": "phone", "probability": 0.5},
                       "query.number": {"dictionary": "phone_or_unstorable", "probability": 0.5},
                       **{f"body.{name}": {"dictionary": "unstorable", "probability": 0.2}
                          for name in ("reason", "first_name", "external_id", "time_zone", "consent_text")}}})
    schema = schemathesis.openapi.from_dict(document, config=config)
    report = Report()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            for label, mode, path in _groups(operation):

                @settings(max_examples=CASES_PER_GROUP, deadline=None, derandomize=True, database=None,
                          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
                @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path or None))
                def one(case: schemathesis.Case) -> None:
                    response = case.call(base_url=base_url, session=session, timeout=10)
                    report.cases += 1
                    report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1
                    case.validate_response(response, checks=checks)

                try:
                    one()
                except Unsatisfiable:   # negative: nothing in it can break the document (no body, no query)
                    report.nothing_to_negate.append(operation.label)
                except (Exception, BaseExceptionGroup) as exc:   # every operation is tried; all failures reported
                    report.failures.append(f"{operation.label} ({label}): {exc}")
    return report


async def test_the_api_fuzzed_from_its_document_gives_no_5xx_and_answers_as_documented(stack, dsn, tmp_path):
    engine = Engine(edge_config(stack, dsn, tmp_path))
    async with running(engine), aiohttp.ClientSession() as session:
        base = f"http://127.0.0.1:{engine.http_port}"
        async with session.get(base + api.PREFIX + "/openapi.json") as response:
            document = await response.json()
        started = time.perf_counter()
        report = await asyncio.to_thread(fuzz, document, base)
        seconds = time.perf_counter() - started
        print(f"fuzzer: {report.cases} cases in {seconds:.1f} s; statuses {dict(sorted(report.statuses.items()))}; "
              f"nothing to negate in {len(report.nothing_to_negate)} operations")
        assert not report.failures, "\n\n".join(report.failures)
        operations = sum(len(ops) for ops in document["paths"].values())
        assert report.cases >= operations * CASES_PER_GROUP      # it did fuzz, every operation
        assert not any(status >= 500 for status in report.statuses)
        assert report.statuses.get(201, 0) > 0     # and reached past the checks: DNC entries and leads were stored
        await engine.writer.wait_idle()
        assert engine.writer.rejected == 0       # nothing the API took was refused by PostgreSQL afterwards
