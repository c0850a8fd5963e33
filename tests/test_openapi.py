"""The OpenAPI document is the API: schemathesis runs every operation against a real server
and checks each answer against the document (status, body schema, headers, Allow on 405,
auth enforced), with valid and invalid input alike."""

import itertools
import time
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.checks import CheckFunction
from schemathesis.config._auth import AuthConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tidings.api import create_app
from tidings.settings import Settings

ADMIN_TOKEN = "admin-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
#: Examples per operation: enough to reach every documented answer, within a minute for all.
EXAMPLES = 25

#: The document as the app makes it (making it reaches no Redis).
DOCUMENT: dict[str, Any] = create_app(Settings(redis_url="redis://127.0.0.1:1/0")).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)

#: Each example comes from an address of its own (uvicorn trusts X-Forwarded-For from
#: 127.0.0.1), so that the wrong credentials schemathesis tries do not throttle the rest.
_addresses = (f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" for n in itertools.count(1))


@pytest.fixture(scope="module")
def fuzz_credentials(module_live_server: str) -> str:
    """A secret key, and the admin token, given to schemathesis as the document's two
    security schemes."""
    answer = httpx.post(
        f"{module_live_server}/admin/keys", json={"name": "fuzz", "env": "test"}, headers=ADMIN
    )
    secret: str = answer.json()["secret"]
    schema.config.auth = AuthConfig(
        openapi={"SecretKey": {"api_key": secret}, "AdminToken": {"bearer": ADMIN_TOKEN}}
    )
    return secret


def test_the_document_is_valid_openapi_3_1_and_is_what_the_server_serves(
    module_live_server: str,
) -> None:
    assert DOCUMENT["openapi"].startswith("3.1")
    validate(DOCUMENT)
    assert httpx.get(f"{module_live_server}/openapi.json").json() == DOCUMENT


def test_every_error_an_operation_answers_is_documented_with_the_error_body() -> None:
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            statuses = {int(status) for status in operation["responses"]}
            assert {413, 431, 500, 503} <= statuses, (method, path)
            if path.startswith("/webhooks/"):  # signatures, checked unthrottled
                assert 401 in statuses and 429 not in statuses, (method, path)
            elif path != "/health":
                assert {401, 429} <= statuses, (method, path)
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    body = answer["content"]["application/json"]["schema"]
                    assert body == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/admin/keys", "GET, POST"),
        ("GET", "/emit", "POST"),
        ("PUT", "/events/some-key", "GET"),
        ("GET", "/events/some-key/rerun", "POST"),
        ("POST", "/health", "GET"),
    ],
)
def test_405_names_every_method_the_path_has_in_allow(
    api: TestClient, method: str, path: str, allowed: str
) -> None:
    answer = api.request(method, path)
    assert answer.status_code == 405
    assert answer.headers["Allow"] == allowed
    assert answer.json() == {"status": "error", "message": "Method Not Allowed"}


def test_an_integer_may_be_sent_as_a_number_with_a_zero_fraction(
    api: TestClient, headers: dict[str, str]
) -> None:
    """JSON Schema counts 2.0 as an integer; so does the API. 2.5 is refused."""
    page = api.post("/query", json={"page": 2.0, "pageSize": 1.0, "since": 0.0}, headers=headers)
    assert page.status_code == 200, page.text
    assert (page.json()["page"], page.json()["pageSize"]) == (2, 1)
    refused = api.post("/query", json={"page": 2.5}, headers=headers)
    assert refused.status_code == 422


def _due_after_retention(body: Any) -> bool:
    """Whether a body emits an event due (about) at or after its retention ends."""
    # A minute's margin: the example is checked here a moment before the server sees it.
    soonest_ms = Settings().ttl_seconds * 1000 - 60_000
    events = body.get("events") if isinstance(body, dict) and "events" in body else [body]
    for event in events if isinstance(events, list) else []:
        if not isinstance(event, dict):
            continue
        delay, deliver_at = event.get("delay"), event.get("deliverAt")
        if isinstance(delay, int | float) and delay >= soonest_ms:
            return True
        if isinstance(deliver_at, int | float) and deliver_at >= time.time() * 1000 + soonest_ms:
            return True
    return False


# Last in the module: the tests above empty Redis, and the fuzzer's secret key must stay.
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure here is never luck
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(
    case: schemathesis.Case[Any], module_live_server: str, fuzz_credentials: str
) -> None:
    headers = {"X-Forwarded-For": next(_addresses)}
    # An event that would come due after its retention is refused (400): a bound that
    # moves with the clock, which no JSON Schema can state.
    excluded: list[CheckFunction] = (
        [positive_data_acceptance] if _due_after_retention(case.body) else []
    )
    answer = case.call_and_validate(
        base_url=module_live_server, headers=headers, excluded_checks=excluded
    )
    assert answer.status_code != 429, "the fuzzer was throttled: its examples tested nothing"
