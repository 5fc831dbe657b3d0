"""The OpenAPI schema, fuzzed by schemathesis against a live API over real data: no 5xx, ever.

Every operation gets generated requests, valid and invalid (bad dates, hostile genres, odd
headers), and each response is checked against the schema: its status is documented, its body
conforms, and it is never a server error. Operations run with API_KEY set and sent, so the
admin endpoints are exercised too (on empty DLQs).
"""

from __future__ import annotations

import datetime as dt
import urllib.parse

import pytest
import schemathesis
from fastapi.exceptions import RequestValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from playcount.api import cursors
from playcount.api.params import MAX_RANGE_DAYS
from playcount.core import keys

ADMIN_KEY = "schema-admin-key-0123456789"
# operations with a parameter whose rule JSON Schema cannot state
RULES_IN_WORDS = {"/genres/{genre}/days/{date}", "/genres/{genre}/days", "/days", "/days/{date}/genres"}


def refused_only_for_a_rule_the_schema_states_in_words(ctx, response, case) -> None:
    """Replaces `positive_data_acceptance` where JSON Schema cannot state the rule, so the schema
    documents it in words: a genre ("at most 256 bytes of UTF-8 once trimmed, NFC and lower-cased",
    Unicode categories), a range (`from` not after `to`, at most 366 days) and a cursor (one the API
    issued). A 422 must then name that parameter, and the value must really break its rule."""
    if response.status_code != 422:
        return
    detail = response.json()["detail"]
    if detail.startswith("genre: "):
        genre = urllib.parse.unquote(case.path_parameters["genre"])  # as sent, percent-encoded: as the server read it
        assert keys.genre_problem(keys.normalise_genre(genre)) is not None, f"{genre!r} refused: {response.text}"
    elif detail.startswith("to: "):
        first, last = (dt.date.fromisoformat(case.query[end]) for end in ("from", "to"))
        assert first > last or (last - first).days >= MAX_RANGE_DAYS, response.text
    elif detail.startswith("cursor: "):
        with pytest.raises(RequestValidationError):
            cursors.decode(case.query["cursor"])
    else:
        raise AssertionError(f"a schema-valid request refused: {response.text}")


@pytest.fixture(scope="module")
def fuzzed_api(shared_written, serve_for_session):
    return serve_for_session(shared_written.settings.model_copy(update={"api_key": ADMIN_KEY})).url


def _fuzz(operation, mode: GenerationMode, base_url: str, examples: int) -> None:
    # valid requests carry the real key, so admin operations run; invalid ones are left as
    # generated (a missing or wrong key is part of what makes them invalid)
    headers = {"X-API-Key": ADMIN_KEY} if mode is GenerationMode.POSITIVE else None
    checks = {}
    if operation.path in RULES_IN_WORDS and mode is GenerationMode.POSITIVE:
        checks = {
            "excluded_checks": [positive_data_acceptance],
            "additional_checks": [refused_only_for_a_rule_the_schema_states_in_words],
        }

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case):
        case.call_and_validate(base_url=base_url, headers=headers, timeout=30, **checks)

    try:
        run()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # an operation without parameters has no invalid request


def test_no_server_error_and_responses_match_the_schema(fuzzed_api):
    # (schemathesis' own pytest fixtures do not run under pytest 9 yet: its API is driven directly)
    schema = schemathesis.openapi.from_url(f"{fuzzed_api}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 16
    failures = []
    for operation in operations:
        # the DLQ endpoints long-poll SQS for a second per call: fewer examples there
        examples = 8 if operation.path.startswith("/ops/") else 40
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, fuzzed_api, examples)
            except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failures, report all
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
