"""The Event API contract (../shared/spec/SEMANTICS.md), over FastAPI's test client and a real
Redis. Every failing request is also checked to have written nothing."""

import asyncio
import json
import math
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tidings.api import create_app
from tidings.models import QueryPage, Subscription
from tidings.redis_server import free_port
from tidings.settings import Settings
from tidings.store import Store

HEX32 = re.compile(r"[0-9a-f]{32}")
ADMIN = {"Authorization": "Bearer admin-secret"}
EVENT_FIELDS = {
    "_id",
    "key",
    "eventName",
    "environment",
    "payload",
    "query",
    "headers",
    "createdAt",
    "state",
    "history",
    "ttl",
    "v",
    "ownership",
    "processing",
}
TRANSACTION_FIELDS = {
    "_id",
    "key",
    "txn",
    "event",
    "createdAt",
    "ttl",
    "state",
    "history",
    "startedAt",
    "txKey",
    "endedAt",
    "output",
}
PROCESSING_FLAGS = {
    "hasTransactions": bool,
    "totalTransactions": int,
    "hasFutureTransactions": bool,
    "isCompleted": bool,
}
#: What the original clients send for the filters they do not use.
BLANK_FILTERS = {"eventName": "", "txKey": "", "since": None, "platform": "", "label": ""}


class Caller:
    """One secret key's view of the API."""

    def __init__(self, http: TestClient, secret: str) -> None:
        self.http = http
        self.headers = {"X-Buildable-Secret": secret}

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.http.post(path, json=body, headers=self.headers)

    def ok(self, path: str, body: Any) -> Any:
        answer = self.post(path, body)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def emit(self, event: str = "order.paid", payload: Any = None) -> str:
        key: str = self.ok("/emit", {"event": event, "payload": payload})["key"]
        time.sleep(0.002)  # so that events emitted one after the other differ in createdAt
        return key

    def query(self, **body: Any) -> dict[str, Any]:
        page: dict[str, Any] = self.ok("/query", body)
        return page

    def keys(self, **body: Any) -> list[str]:
        """The keys of every matching event, in the order /query lists them."""
        return [row["key"] for row in self.query(pageSize=1000, **body)["rows"]]

    def get(self, key: str) -> httpx.Response:
        return self.http.get(f"/events/{key}", headers=self.headers)

    def event(self, key: str) -> dict[str, Any]:
        answer = self.get(key)
        assert answer.status_code == 200, answer.text
        event: dict[str, Any] = answer.json()
        return event

    def transaction(self, key: str, tx_key: str) -> dict[str, Any]:
        [tx] = [t for t in self.event(key)["transactions"] if t["txKey"] == tx_key]
        return tx

    def init(self, key: str, tx_key: str = "t") -> httpx.Response:
        return self.post("/init", {"key": key, "txKey": tx_key})

    def transact(
        self, key: str, tx_key: str = "t", state: str = "finished", output: Any = None
    ) -> httpx.Response:
        return self.post(
            "/transact", {"key": key, "txKey": tx_key, "state": state, "output": output}
        )

    def update(
        self, key: str, tx_key: str, state: str, event_name: str = "order.paid"
    ) -> httpx.Response:
        body = {"key": key, "eventName": event_name, "txKey": tx_key, "txState": state}
        return self.post("/update", body)


@pytest.fixture(scope="module")
def module_api(redis_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(redis_url=redis_url, admin_token="admin-secret"))) as api:
        yield api


@pytest.fixture
def api(module_api: TestClient, redis_client: object) -> TestClient:
    """Overrides conftest's `api`: one app for the module (the app keeps nothing but what is
    in Redis, and `redis_client` empties Redis before every test)."""
    return module_api


@pytest.fixture
def caller(api: TestClient, secret: str) -> Caller:
    """The "billing" key, environment test, owner "default"."""
    return Caller(api, secret)


@pytest.fixture
def make_caller(api: TestClient, new_secret: Callable[..., str]) -> Callable[..., Caller]:
    return lambda name, env="test", owner="default": Caller(api, new_secret(name, env, owner))


@pytest.fixture
def api_with(settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """Another app on the same Redis, with some settings changed."""
    with ExitStack() as stack:

        def make(raise_server_exceptions: bool = True, **changes: Any) -> TestClient:
            app = create_app(settings.model_copy(update=changes))
            client = TestClient(app, raise_server_exceptions=raise_server_exceptions)
            return stack.enter_context(client)

        yield make


def assert_error(answer: httpx.Response, *statuses: int) -> None:
    assert answer.status_code in statuses, answer.text
    body = answer.json()
    assert body["status"] == "error"
    assert isinstance(body["message"], str) and body["message"]


@pytest.fixture
def fails_cleanly(snapshot: Callable[[], dict[str, object]]) -> Callable[..., None]:
    """fails_cleanly(send, *statuses): send() answers an error and the database is unchanged."""

    def check(send: Callable[[], httpx.Response], *statuses: int) -> None:
        before = snapshot()
        assert_error(send(), *statuses)
        assert snapshot() == before

    return check


def assert_history(history: list[dict[str, Any]], *states: str, by: str = "billing") -> None:
    """history moved through `states`, in order, each entry typed as the contract says."""
    assert [h["enterState"] for h in history] == list(states)
    assert [h["exitState"] for h in history] == [None, *states[:-1]]
    assert all(type(h["timestamp"]) is int for h in history)
    assert [h["timestamp"] for h in history] == sorted(h["timestamp"] for h in history)
    assert all(h["updatedBy"] == by for h in history)


def assert_event_shape(event: dict[str, Any]) -> None:
    assert event.keys() >= EVENT_FIELDS
    assert HEX32.fullmatch(event["key"])
    for field in ("_id", "eventName", "environment", "state"):
        assert type(event[field]) is str, field
    for field in ("createdAt", "ttl", "v"):
        assert type(event[field]) is int, field
    assert event["environment"] in ("test", "live")
    assert {type(v) for v in event["ownership"].values()} == {str}
    assert event["ownership"].keys() >= {"buildableId", "userId", "clientId"}
    flags = event["processing"]
    assert {k: type(flags.get(k)) for k in PROCESSING_FLAGS} == PROCESSING_FLAGS
    for entry in event["history"]:
        assert entry.keys() >= {"enterState", "exitState", "timestamp", "updatedBy"}


def assert_transaction_shape(tx: dict[str, Any]) -> None:
    assert tx.keys() >= TRANSACTION_FIELDS
    for field in ("_id", "key", "txn", "state", "txKey"):
        assert type(tx[field]) is str, field
    for field in ("createdAt", "ttl", "startedAt"):
        assert type(tx[field]) is int, field
    assert tx["endedAt"] is None or type(tx["endedAt"]) is int
    assert tx["event"].keys() >= {"_id", "eventName"}


# Records


def test_emit_answers_success_and_a_32_hex_key(caller: Caller) -> None:
    answer = caller.ok("/emit", {"event": "order.paid", "payload": {}})
    assert answer["status"] == "success"
    assert HEX32.fullmatch(answer["key"])


def test_emitted_event_has_every_field_of_the_contract(caller: Caller, settings: Settings) -> None:
    before = int(time.time() * 1000)
    key = caller.emit("order.paid", {"amount": 5})
    after = int(time.time() * 1000)
    [row] = caller.query()["rows"]
    assert row == {k: v for k, v in caller.event(key).items() if k != "transactions"}
    assert_event_shape(row)
    assert row["key"] == key
    assert row["eventName"] == "order.paid"
    assert row["environment"] == "test"
    assert (row["payload"], row["query"], row["headers"]) == ({"amount": 5}, {}, {})
    assert before <= row["createdAt"] <= after
    assert row["ttl"] == settings.ttl_seconds
    assert row["v"] in (0, 1)
    assert row["ownership"]["clientId"] == "billing"
    assert row["processing"] == {
        "hasTransactions": False,
        "totalTransactions": 0,
        "hasFutureTransactions": False,
        "isCompleted": False,
    }
    assert row["history"][0]["exitState"] is None
    assert row["history"][0]["updatedBy"] == "billing"
    assert caller.event(key)["transactions"] == []


def test_init_answers_the_new_transaction(caller: Caller, settings: Settings) -> None:
    key = caller.emit()
    event = caller.event(key)
    answer = caller.init(key, "send-receipt")
    assert answer.status_code == 200, answer.text
    tx = answer.json()
    assert_transaction_shape(tx)
    assert tx["key"] == key
    assert tx["txKey"] == "send-receipt"
    assert tx["event"]["_id"] == event["_id"]
    assert tx["event"]["eventName"] == "order.paid"
    assert tx["state"] == "processing"
    assert tx["endedAt"] is None
    assert tx["output"] is None
    assert tx["ttl"] == settings.ttl_seconds
    assert event["createdAt"] <= tx["createdAt"] <= tx["startedAt"]
    assert_history(tx["history"], "processing")
    assert caller.transaction(key, "send-receipt") == tx


PAYLOADS = {
    "nested": {"a": {"b": {"c": [1, {"d": None}]}}, "e": []},
    "unicode": {"name": "Zoë 東京 🎉", "escaped": 'quote " backslash \\ nl \n'},
    "big integers": {"big": 12345678901234567890, "neg": -98765432109876543210},
    "floats": {"f": 0.1, "g": 1.5e-300, "h": 1e300, "whole": 2.0, "int": 2},
    "null": None,
    "array": [1, "two", [3.0], {"four": 4}, None, True, False],
    "string": "just a string",
    "number": 42,
    "empty object": {},
}


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_payload_and_output_json_is_preserved_exactly(caller: Caller, payload: Any) -> None:
    def exact(value: Any) -> str:  # tells 2 from 2.0, which == does not
        return json.dumps(value, sort_keys=True)

    key = caller.emit("order.paid", payload)
    assert exact(caller.event(key)["payload"]) == exact(payload)
    assert exact(caller.query()["rows"][0]["payload"]) == exact(payload)
    caller.init(key)
    assert exact(caller.transact(key, output=payload).json()["output"]) == exact(payload)
    assert exact(caller.transaction(key, "t")["output"]) == exact(payload)


def test_query_answers_exactly_the_json_of_its_models(caller: Caller) -> None:
    """/query makes its JSON straight from the records, without building models
    (records.event_fields): byte for byte what its models would answer."""
    finished = caller.emit("order.paid", {"n": 1.5, "s": "ü", "none": None})
    assert caller.init(finished).status_code == 200
    assert caller.transact(finished, output={"ok": True}).status_code == 200
    caller.emit("order.shipped")
    caller.ok("/emit", {"event": "order.later", "payload": {}, "delay": 60_000})
    answer = caller.post("/query", {})
    assert answer.status_code == 200 and len(answer.json()["rows"]) == 3
    page = QueryPage.model_validate_json(answer.content)
    assert "deliverAt" in answer.json()["rows"][2]
    assert answer.content == page.model_dump_json().encode()


# Authentication


ENDPOINTS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "emit": ("/emit", {"event": "order.paid", "payload": {}}),
    "emit batch": ("/emit/batch", {"events": [{"event": "order.paid", "payload": {}}]}),
    "query": ("/query", {}),
    "update": (
        "/update",
        {"key": "{key}", "eventName": "order.paid", "txKey": "t2", "txState": "failed"},
    ),
    "init": ("/init", {"key": "{key}", "txKey": "t2"}),
    "transact": ("/transact", {"key": "{key}", "txKey": "t", "state": "failed", "output": 1}),
    "full name": ("/get-full-event-name", {"eventName": "order.paid"}),
    "get event": ("/events/{key}", None),
}


def send(http: TestClient, endpoint: str, key: str, headers: dict[str, str]) -> httpx.Response:
    """Sends a valid request to `endpoint`, about the event `key`."""
    path, body = ENDPOINTS[endpoint]
    path = path.replace("{key}", key)
    if body is None:
        return http.get(path, headers=headers)
    body = {k: key if v == "{key}" else v for k, v in body.items()}
    return http.post(path, json=body, headers=headers)


@pytest.fixture
def claimed(caller: Caller) -> str:
    """An event with transaction "t" claimed."""
    key = caller.emit()
    assert caller.init(key, "t").status_code == 200
    return key


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_endpoint_answers_with_a_valid_secret(
    caller: Caller, claimed: str, endpoint: str
) -> None:
    answer = send(caller.http, endpoint, claimed, caller.headers)
    assert answer.status_code == 200, answer.text


#: Every endpoint that takes a JSON body, with a valid one.
JSON_BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    **{name: (path, body) for name, (path, body) in ENDPOINTS.items() if body is not None},
    "rerun failed": ("/rerun", {"txKey": "receipt"}),
    "rerun one": ("/events/{failed}/rerun", {"txKey": "receipt"}),
}


@pytest.mark.parametrize(
    "content_type",
    [None, "application/x-www-form-urlencoded", "text/plain", "application/json; charset=utf-8"],
    ids=["none", "form (curl -d)", "text", "json"],
)
@pytest.mark.parametrize("endpoint", JSON_BODIES)
def test_every_json_endpoint_reads_its_body_as_json_whatever_the_content_type(
    caller: Caller, claimed: str, redis_url: str, endpoint: str, content_type: str | None
) -> None:
    subscribe(redis_url, "order.paid", "receipt")
    failed = caller.emit()  # with a failed "receipt" transaction, to re-run
    assert caller.init(failed, "receipt").status_code == 200
    assert caller.transact(failed, "receipt", "failed").status_code == 200
    path, body = JSON_BODIES[endpoint]
    body = {k: claimed if v == "{key}" else v for k, v in body.items()}
    headers = {**caller.headers, **({"Content-Type": content_type} if content_type else {})}
    path = path.replace("{key}", claimed).replace("{failed}", failed)
    answer = caller.http.post(path, content=json.dumps(body), headers=headers)
    assert answer.status_code == 200, answer.text


def test_the_admin_api_reads_its_body_as_json_whatever_the_content_type(api: TestClient) -> None:
    headers = {**ADMIN, "Content-Type": "application/x-www-form-urlencoded"}
    body = json.dumps({"name": "ops", "env": "live"})
    answer = api.post("/admin/keys", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["secret"].startswith("sk_live_")


def revoke(api: TestClient, name: str, env: str = "test", owner: str = "default") -> Any:
    body = {"name": name, "env": env, "owner": owner}
    answer = api.post("/admin/keys/revoke", json=body, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.parametrize("credentials", ["missing", "empty", "unknown", "revoked"])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_endpoint_refuses_a_bad_secret_and_writes_nothing(
    api: TestClient,
    claimed: str,
    new_secret: Callable[..., str],
    fails_cleanly: Callable[..., None],
    endpoint: str,
    credentials: str,
) -> None:
    secret = {"missing": None, "empty": "", "unknown": "sk_test_" + "0" * 48}.get(credentials)
    if credentials == "revoked":
        secret = new_secret("old")
        revoke(api, "old")
    headers = {} if secret is None else {"X-Buildable-Secret": secret}
    fails_cleanly(lambda: send(api, endpoint, claimed, headers), 401)


def test_query_tells_a_wrong_key_first_and_a_revoked_one_at_once(
    api: TestClient, new_secret: Callable[..., str]
) -> None:
    """/query reads the key in the same round trip as the page once the process knows who
    holds it: a key revoked since is refused from the next request on, whatever its body,
    and a wrong key is told before a wrong query, as on the other routes."""
    unknown = Caller(api, "sk_test_" + "0" * 48)
    assert unknown.post("/query", {"page": 0}).json()["message"] == "unknown secret key"
    caller = Caller(api, new_secret("soon-revoked"))
    assert caller.post("/query", {}).status_code == 200
    revoke(api, "soon-revoked")
    for body in ({}, {"page": 0}, {"txState": "finished"}, None):
        answer = caller.post("/query", body)
        assert_error(answer, 401)
        assert answer.json()["message"] == "this secret key has been revoked"


def test_emit_refuses_a_key_revoked_since_its_last_emit_and_stores_nothing(
    api: TestClient, new_secret: Callable[..., str], fails_cleanly: Callable[..., None]
) -> None:
    """Once the process knows who holds a key, /emit checks it in the script that stores
    the events: a key revoked since stores nothing from the next request on."""
    caller = Caller(api, new_secret("soon-revoked"))
    for _ in range(2):
        assert caller.post("/emit", {"event": "order.paid"}).status_code == 200
    revoke(api, "soon-revoked")
    fails_cleanly(lambda: caller.post("/emit", {"event": "order.paid"}), 401)
    assert caller.post("/emit", {"event": "order.paid"}).json()["message"] == (
        "this secret key has been revoked"
    )


@pytest.mark.parametrize("name", ["x-buildable-secret", "X-BUILDABLE-SECRET", "x-Buildable-SECRET"])
def test_secret_header_name_is_case_insensitive(api: TestClient, secret: str, name: str) -> None:
    answer = api.post("/emit", json={"event": "order.paid", "payload": {}}, headers={name: secret})
    assert answer.status_code == 200, answer.text


# Health


def test_health_needs_no_secret_and_reports_redis(api: TestClient) -> None:
    answer = api.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "redis": "ok", "queues": []}


def test_health_answers_503_when_redis_is_unreachable(api_with: Callable[..., TestClient]) -> None:
    down = api_with(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    answer = down.get("/health")
    assert_error(answer, 503)
    assert answer.json()["redis"] == "down"


# Admin keys

ADMIN_CALLS = {
    "create": ("POST", "/admin/keys", {"name": "ops", "env": "live"}),
    "list": ("GET", "/admin/keys", None),
    "revoke": ("POST", "/admin/keys/revoke", {"name": "billing", "env": "test"}),
}


def admin_call(http: TestClient, call: str, headers: dict[str, str]) -> httpx.Response:
    method, path, body = ADMIN_CALLS[call]
    return http.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("call", ADMIN_CALLS)
def test_admin_api_is_404_without_an_admin_token(
    api_with: Callable[..., TestClient],
    secret: str,
    fails_cleanly: Callable[..., None],
    call: str,
) -> None:
    disabled = api_with(admin_token=None)
    fails_cleanly(lambda: admin_call(disabled, call, ADMIN), 404)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "admin-secret"},
        {"X-Buildable-Secret": "admin-secret"},
    ],
    ids=["missing", "wrong token", "no Bearer", "as a secret key"],
)
@pytest.mark.parametrize("call", ADMIN_CALLS)
def test_admin_api_refuses_a_wrong_token(
    api: TestClient,
    secret: str,
    fails_cleanly: Callable[..., None],
    call: str,
    headers: dict[str, str],
) -> None:
    fails_cleanly(lambda: admin_call(api, call, headers), 401)


def test_admin_creates_lists_and_revokes_keys(
    api: TestClient, snapshot: Callable[[], dict[str, object]]
) -> None:
    before = int(time.time() * 1000)
    created = api.post(
        "/admin/keys", json={"name": "ops", "env": "live", "owner": "acme"}, headers=ADMIN
    )
    assert created.status_code == 200, created.text
    key = created.json()
    assert (key["name"], key["env"], key["owner"]) == ("ops", "live", "acme")
    assert type(key["createdAt"]) is int and key["createdAt"] >= before
    secret = key["secret"]
    assert isinstance(secret, str) and len(secret) >= 32
    assert secret not in json.dumps(snapshot(), default=str), "the plaintext secret is stored"

    ops = Caller(api, secret)
    assert ops.event(ops.emit())["environment"] == "live"

    listed = api.get("/admin/keys", headers=ADMIN).json()
    assert [(k["owner"], k["env"], k["name"]) for k in listed] == [("acme", "live", "ops")]
    assert listed[0].get("secret") is None
    assert listed[0].get("revokedAt") is None
    assert api.get("/admin/keys", params={"owner": "someone"}, headers=ADMIN).json() == []

    revoked = revoke(api, "ops", "live", "acme")
    assert type(revoked["revokedAt"]) is int and revoked.get("secret") is None
    assert_error(ops.post("/query", {}), 401)
    [listed_again] = api.get("/admin/keys", headers=ADMIN).json()
    assert listed_again["revokedAt"] == revoked["revokedAt"]


def test_admin_refuses_a_duplicate_key_and_keeps_the_first(
    api: TestClient, caller: Caller, fails_cleanly: Callable[..., None]
) -> None:
    again = {"name": "billing", "env": "test"}
    fails_cleanly(lambda: api.post("/admin/keys", json=again, headers=ADMIN), 409)
    assert caller.post("/query", {}).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "env": "prod"},
        {"env": "test"},
        {"name": "has space", "env": "test"},
        {"name": 1, "env": "test"},
    ],
    ids=["unknown env", "no name", "bad name", "name not a string"],
)
def test_admin_refuses_an_invalid_key(
    api: TestClient, fails_cleanly: Callable[..., None], body: dict[str, Any]
) -> None:
    fails_cleanly(lambda: api.post("/admin/keys", json=body, headers=ADMIN), 400, 422)


def test_admin_revoke_of_an_unknown_key_is_404(
    api: TestClient, fails_cleanly: Callable[..., None]
) -> None:
    body = {"name": "nobody", "env": "test"}
    fails_cleanly(lambda: api.post("/admin/keys/revoke", json=body, headers=ADMIN), 404)


# Malformed requests

NOT_JSON = b'{"event": "order.paid",'
BAD_REQUESTS = {
    "emit: not JSON": ("/emit", NOT_JSON),
    "emit: not an object": ("/emit", b"[1, 2]"),
    "emit: no name": ("/emit", {"payload": {}}),
    "emit: name not a string": ("/emit", {"event": 5, "payload": {}}),
    "batch: not JSON": ("/emit/batch", NOT_JSON),
    "batch: events not a list": ("/emit/batch", {"events": {"event": "order.paid"}}),
    "batch: no events": ("/emit/batch", {}),
    "query: not JSON": ("/query", NOT_JSON),
    "query: pageSize a string": ("/query", {"pageSize": "10"}),
    "query: page a string": ("/query", {"page": "1"}),
    "query: page a float": ("/query", {"page": 1.5}),
    "query: since a string": ("/query", {"since": "0"}),
    "query: eventName a number": ("/query", {"eventName": 7}),
    "query: unknown txState": ("/query", {"txKey": "t", "txState": "done"}),
    "query: page 0": ("/query", {"page": 0}),
    "query: pageSize 0": ("/query", {"pageSize": 0}),
    "query: pageSize 1001": ("/query", {"pageSize": 1001}),
    "update: not JSON": ("/update", NOT_JSON),
    "update: no eventName": ("/update", {"key": "{key}", "txKey": "t", "txState": "failed"}),
    "update: unknown txState": (
        "/update",
        {"key": "{key}", "eventName": "order.paid", "txKey": "t", "txState": "done"},
    ),
    "update: txKey a number": (
        "/update",
        {"key": "{key}", "eventName": "order.paid", "txKey": 1, "txState": "failed"},
    ),
    "init: not JSON": ("/init", NOT_JSON),
    "init: no txKey": ("/init", {"key": "{key}"}),
    "init: no key": ("/init", {"txKey": "t2"}),
    "init: key a list": ("/init", {"key": ["{key}"], "txKey": "t2"}),
    "transact: not JSON": ("/transact", NOT_JSON),
    "transact: no state": ("/transact", {"key": "{key}", "txKey": "t", "output": 1}),
    "transact: to processing": ("/transact", {"key": "{key}", "txKey": "t", "state": "processing"}),
    "full name: not JSON": ("/get-full-event-name", NOT_JSON),
    "full name: no eventName": ("/get-full-event-name", {"platform": "stripe"}),
    "full name: eventName a list": ("/get-full-event-name", {"eventName": ["order.paid"]}),
}


@pytest.mark.parametrize("path, body", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_malformed_requests_are_refused_and_write_nothing(
    caller: Caller, claimed: str, fails_cleanly: Callable[..., None], path: str, body: Any
) -> None:
    if isinstance(body, bytes):

        def post() -> httpx.Response:
            headers = {**caller.headers, "Content-Type": "application/json"}
            return caller.http.post(path, content=body, headers=headers)
    else:
        body = {
            k: (claimed if v == "{key}" else [claimed] if v == ["{key}"] else v)
            for k, v in body.items()
        }

        def post() -> httpx.Response:
            return caller.post(path, body)

    fails_cleanly(post, 400, 422)


@pytest.mark.parametrize("state", ["processing", "finished", "failed", "does-not-exist"])
def test_query_by_tx_state_without_tx_key_is_400(caller: Caller, claimed: str, state: str) -> None:
    assert_error(caller.post("/query", {"txState": state}), 400)
    assert_error(caller.post("/query", {**BLANK_FILTERS, "txState": state}), 400)


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_body_over_the_limit_is_413_and_writes_nothing(
    api_with: Callable[..., TestClient],
    secret: str,
    fails_cleanly: Callable[..., None],
    transfer: str,
) -> None:
    small = api_with(max_body_bytes=200)
    headers = {"X-Buildable-Secret": secret, "Content-Type": "application/json"}
    fits = json.dumps({"event": "order.paid", "payload": "x" * 100}).encode()
    too_big = json.dumps({"event": "order.paid", "payload": "x" * 200}).encode()

    def content(body: bytes) -> Any:
        if transfer == "content-length":
            return body
        return iter([body[:50], body[50:]])  # no Content-Length: sent chunked

    assert small.post("/emit", content=content(fits), headers=headers).status_code == 200
    fails_cleanly(lambda: small.post("/emit", content=content(too_big), headers=headers), 413)


# /emit/batch


def test_batch_of_1000_is_stored_with_keys_in_order(caller: Caller) -> None:
    events = [{"event": "order.paid", "payload": {"n": n}} for n in range(1000)]
    keys = caller.ok("/emit/batch", {"events": events})["keys"]
    assert len(keys) == len(set(keys)) == 1000
    assert all(HEX32.fullmatch(k) for k in keys)
    page = caller.query(pageSize=1000)
    assert page["total"] == 1000
    payload_of = {row["key"]: row["payload"] for row in page["rows"]}
    assert [payload_of[k] for k in keys] == [e["payload"] for e in events]


def test_query_lists_a_batch_in_the_order_it_was_emitted(caller: Caller) -> None:
    events = [{"event": "order.paid", "payload": n} for n in range(20)]
    keys = caller.ok("/emit/batch", {"events": events})["keys"]
    assert caller.keys() == keys


@pytest.mark.parametrize(
    "events",
    [
        [{"event": "order.paid", "payload": n} for n in range(1001)],
        [{"event": "order.paid"}, {"event": 5}, {"event": "order.paid"}],
        [{"event": "order.paid"}, {"payload": {}}, {"event": "order.paid"}],
        [{"event": "order.paid"}, "order.paid"],
    ],
    ids=["1001 events", "a name of the wrong type", "a missing name", "not an object"],
)
def test_batch_is_all_or_nothing(
    caller: Caller, fails_cleanly: Callable[..., None], events: list[Any]
) -> None:
    fails_cleanly(lambda: caller.post("/emit/batch", {"events": events}), 400, 422)
    assert caller.query()["total"] == 0


# /query


def test_query_with_nothing_stored_is_an_empty_page(caller: Caller) -> None:
    assert caller.query() == {"rows": [], "total": 0, "page": 1, "pageSize": 10, "totalPages": 0}


def test_query_lists_oldest_first_ten_to_a_page_by_default(caller: Caller) -> None:
    keys = [caller.emit() for _ in range(12)]
    first, second = caller.query(), caller.query(page=2)
    assert [r["key"] for r in first["rows"] + second["rows"]] == keys
    assert (first["total"], first["pageSize"], first["totalPages"]) == (12, 10, 2)
    created = [r["createdAt"] for r in first["rows"] + second["rows"]]
    assert created == sorted(created)


@pytest.mark.parametrize(
    "total, page_size",
    [(5, 2), (4, 2), (3, 3), (1, 1), (7, 1000), (3, 1)],
    ids=[
        "partial last page",
        "exact last page",
        "one full page",
        "one",
        "big pages",
        "pages of one",
    ],
)
def test_pagination_covers_every_event_once(caller: Caller, total: int, page_size: int) -> None:
    keys = [caller.emit() for _ in range(total)]
    pages = math.ceil(total / page_size)
    seen = []
    for page in range(1, pages + 2):  # and one page past the end
        answer = caller.query(page=page, pageSize=page_size)
        assert (answer["total"], answer["page"], answer["pageSize"]) == (total, page, page_size)
        assert answer["totalPages"] == pages
        expected = keys[(page - 1) * page_size : page * page_size]
        assert [row["key"] for row in answer["rows"]] == expected
        seen += expected
    assert seen == keys


def test_large_pages_show_the_rows_small_pages_show(caller: Caller) -> None:
    # A page of more than ROWS_IN_SCRIPT rows reads its records after its script.
    events = [{"event": "order.paid", "payload": {"n": n}} for n in range(250)]
    caller.ok("/emit/batch", {"events": events})
    for newest_first in (False, True):
        small = [
            row
            for page in range(1, 26)
            for row in caller.query(page=page, pageSize=10, newestFirst=newest_first)["rows"]
        ]
        large = [
            row
            for page in range(1, 4)
            for row in caller.query(page=page, pageSize=101, newestFirst=newest_first)["rows"]
        ]
        assert len(small) == 250 and large == small
        assert [row["payload"]["n"] for row in small] == sorted(range(250), reverse=newest_first)


@pytest.mark.parametrize("page_size", [1, 1000])
def test_page_size_bounds_are_inclusive(caller: Caller, page_size: int) -> None:
    caller.emit()
    assert caller.query(pageSize=page_size)["pageSize"] == page_size


@pytest.mark.parametrize("page", [10**6, 10**15, 2**63])
def test_a_page_far_past_the_end_is_empty_or_refused_never_a_crash(
    caller: Caller, page: int
) -> None:
    caller.emit()
    answer = caller.post("/query", {"page": page, "pageSize": 1000})
    if answer.status_code == 200:
        assert (answer.json()["rows"], answer.json()["total"]) == ([], 1)
    else:
        assert_error(answer, 400, 422)


@pytest.fixture
def four_events(caller: Caller, make_caller: Callable[..., Caller]) -> list[dict[str, Any]]:
    """billing and shipping (one owner, one environment) each emit order.paid and order.shipped."""
    shipping = make_caller("shipping")
    emitted = [
        (caller, "order.paid"),
        (caller, "order.shipped"),
        (shipping, "order.paid"),
        (shipping, "order.shipped"),
    ]
    return [who.event(who.emit(name)) for who, name in emitted]


NAME_FILTERS = {
    "none": ({}, [0, 1, 2, 3]),
    "eventName": ({"eventName": "order.paid"}, [0, 2]),
    "label": ({"label": "billing"}, [0, 1]),
    "platform": ({"platform": "custom"}, [0, 1, 2, 3]),
    "other platform": ({"platform": "stripe"}, []),
    "unknown eventName": ({"eventName": "order.refunded"}, []),
    "label and eventName": ({"label": "billing", "eventName": "order.shipped"}, [1]),
    "all three": ({"platform": "custom", "label": "shipping", "eventName": "order.paid"}, [2]),
    "all three, one off": (
        {"platform": "stripe", "label": "shipping", "eventName": "order.paid"},
        [],
    ),
}


@pytest.mark.parametrize("blanks", [False, True], ids=["absent", "blank"])
@pytest.mark.parametrize("filters, expected", NAME_FILTERS.values(), ids=NAME_FILTERS.keys())
def test_query_filters_on_the_parts_of_the_full_name(
    caller: Caller,
    four_events: list[dict[str, Any]],
    filters: dict[str, str],
    expected: list[int],
    blanks: bool,
) -> None:
    body = {**BLANK_FILTERS, "txState": "", **filters} if blanks else filters
    page = caller.query(**body)
    assert [row["key"] for row in page["rows"]] == [four_events[i]["key"] for i in expected]
    assert page["total"] == len(expected)


@pytest.mark.parametrize(
    "since_event, plus_ms, filters, expected",
    [
        (0, 0, {}, [0, 1, 2, 3]),
        (1, 0, {}, [1, 2, 3]),
        (1, 1, {}, [2, 3]),
        (3, 0, {}, [3]),
        (3, 1, {}, []),
        (1, 0, {"eventName": "order.paid"}, [2]),
        (1, 0, {"label": "billing"}, [1]),
        (1, 0, {"txKey": "t", "txState": "does-not-exist"}, [1, 3]),
        (1, 0, {"txKey": "t", "txState": "processing"}, [2]),
        (1, 0, {"txKey": "t"}, [2]),
    ],
)
def test_since_selects_created_at_at_or_after_it_and_with_other_filters(
    caller: Caller,
    four_events: list[dict[str, Any]],
    since_event: int,
    plus_ms: int,
    filters: dict[str, str],
    expected: list[int],
) -> None:
    """since = the createdAt of four_events[since_event], plus plus_ms; events 0 and 2 have
    transaction "t" claimed."""
    for event in four_events[::2]:
        assert caller.init(event["key"]).status_code == 200
    created = [e["createdAt"] for e in four_events]
    assert created == sorted(set(created)), "events need distinct createdAt for this test"
    since = created[since_event] + plus_ms
    assert caller.keys(since=since, **filters) == [four_events[i]["key"] for i in expected]


def matches(event: dict[str, Any], filters: dict[str, str]) -> bool:
    return all(event[part] == value for part, value in filters.items())


TX_FILTERS = [
    {},
    {"eventName": "order.paid"},
    {"label": "shipping"},
    {"platform": "custom", "label": "billing", "eventName": "order.paid"},
]


@pytest.mark.parametrize("first_query", ["before any write", "after most writes"])
def test_tx_state_filters_follow_every_write(
    caller: Caller, make_caller: Callable[..., Caller], first_query: str
) -> None:
    """Checks every txState filter against a model of the writes, after each write or only
    at the end: the "does-not-exist" index is built by the first query that needs it, then
    kept up to date by every emit, /init, /update and /transact."""
    billing, shipping = caller, make_caller("shipping")
    events: dict[str, dict[str, str]] = {}
    states: dict[tuple[str, str], str] = {}

    def emit(who: Caller, name: str) -> str:
        key = who.emit(name)
        label = "billing" if who is billing else "shipping"
        events[key] = {"eventName": name, "label": label, "platform": "custom"}
        return key

    def claim(key: str, tx_key: str) -> None:
        assert billing.init(key, tx_key).status_code == 200
        states[key, tx_key] = "processing"

    def finish(key: str, tx_key: str, state: str) -> None:
        assert billing.transact(key, tx_key, state).status_code == 200
        states[key, tx_key] = state

    def update(key: str, tx_key: str, state: str) -> None:
        answer = billing.update(key, tx_key, state, events[key]["eventName"])
        assert answer.status_code == 200, answer.text
        states[key, tx_key] = state

    def check() -> None:
        for filters in TX_FILTERS:
            selected = [k for k in events if matches(events[k], filters)]
            for tx_key in ("t", "u"):
                expected = {
                    "does-not-exist": [k for k in selected if (k, tx_key) not in states],
                    "": [k for k in selected if (k, tx_key) in states],
                    **{
                        s: [k for k in selected if states.get((k, tx_key)) == s]
                        for s in ("processing", "finished", "failed")
                    },
                }
                for state, keys in expected.items():
                    found = billing.keys(**filters, txKey=tx_key, txState=state)
                    assert found == keys, (filters, tx_key, state)

    a = emit(billing, "order.paid")
    b = emit(billing, "order.shipped")
    c = emit(shipping, "order.paid")
    steps: list[Callable[[], Any]] = [
        lambda: claim(a, "t"),
        lambda: emit(shipping, "order.shipped"),
        lambda: finish(a, "t", "finished"),
        lambda: update(b, "t", "failed"),
        lambda: claim(c, "u"),
        lambda: update(c, "t", "processing"),
        lambda: finish(c, "t", "failed"),
        lambda: emit(billing, "order.paid"),
        lambda: update(a, "t", "processing"),
        lambda: claim(b, "u"),
        lambda: emit(shipping, "order.paid"),
    ]
    check_from = 0 if first_query == "before any write" else len(steps) - 3
    if check_from == 0:
        check()
    for n, step in enumerate(steps):
        step()
        if n >= check_from:
            check()


# /init, /transact, /update


def test_second_init_is_409_and_changes_nothing(
    caller: Caller, claimed: str, fails_cleanly: Callable[..., None]
) -> None:
    fails_cleanly(lambda: caller.init(claimed, "t"), 409)
    assert caller.init(claimed, "another-handler").status_code == 200


def test_init_on_an_ended_transaction_is_409(
    caller: Caller, claimed: str, fails_cleanly: Callable[..., None]
) -> None:
    assert caller.transact(claimed).status_code == 200
    fails_cleanly(lambda: caller.init(claimed, "t"), 409)


@pytest.mark.parametrize(
    "request_",
    [
        lambda c, key: c.init("0" * 32),
        lambda c, key: c.init("not-a-key"),
        lambda c, key: c.transact("0" * 32),
        lambda c, key: c.transact(key, "never-claimed"),
        lambda c, key: c.update("0" * 32, "t", "finished"),
        lambda c, key: c.update(key, "t", "finished", event_name="order.refunded"),
        lambda c, key: c.update(key, "t2", "processing", event_name="order"),
        lambda c, key: c.get("0" * 32),
    ],
    ids=[
        "init unknown key",
        "init malformed key",
        "transact unknown key",
        "transact never claimed",
        "update unknown key",
        "update other eventName",
        "update eventName prefix",
        "get unknown key",
    ],
)
def test_unknown_events_and_transactions_are_404(
    caller: Caller,
    claimed: str,
    fails_cleanly: Callable[..., None],
    request_: Callable[[Caller, str], httpx.Response],
) -> None:
    fails_cleanly(lambda: request_(caller, claimed), 404)


@pytest.mark.parametrize("state", ["finished", "failed"])
def test_transact_ends_the_transaction_and_the_event(
    caller: Caller, claimed: str, state: str
) -> None:
    started = caller.transaction(claimed, "t")
    answer = caller.transact(claimed, "t", state, output={"sent": True})
    assert answer.status_code == 200, answer.text
    tx = answer.json()
    assert_transaction_shape(tx)
    assert (tx["state"], tx["output"], tx["txKey"]) == (state, {"sent": True}, "t")
    assert tx["startedAt"] == started["startedAt"] <= tx["endedAt"]
    assert tx["history"][0] == started["history"][0]
    assert_history(tx["history"], "processing", state)
    assert tx["history"][-1]["timestamp"] == tx["endedAt"]
    assert caller.transaction(claimed, "t") == tx
    event = caller.event(claimed)
    assert event["state"] == state
    assert event["processing"] == {
        "hasTransactions": True,
        "totalTransactions": 1,
        "hasFutureTransactions": False,
        "isCompleted": True,
    }


@pytest.mark.parametrize("first", ["finished", "failed"])
@pytest.mark.parametrize("second", ["finished", "failed"])
def test_transact_on_an_ended_transaction_is_409_and_keeps_its_output(
    caller: Caller, claimed: str, fails_cleanly: Callable[..., None], first: str, second: str
) -> None:
    ended = caller.transact(claimed, "t", first, output="first").json()
    fails_cleanly(lambda: caller.transact(claimed, "t", second, output="second"), 409)
    assert caller.transaction(claimed, "t") == ended


def test_init_moves_the_event_to_processing(caller: Caller) -> None:
    key = caller.emit()
    assert caller.init(key).status_code == 200
    event = caller.event(key)
    assert event["state"] == "processing"
    assert event["processing"] == {
        "hasTransactions": True,
        "totalTransactions": 1,
        "hasFutureTransactions": False,
        "isCompleted": False,
    }
    assert [h["enterState"] for h in event["history"]][-1] == "processing"


@pytest.mark.parametrize("state", ["processing", "finished", "failed"])
def test_update_creates_a_missing_transaction(caller: Caller, state: str) -> None:
    key = caller.emit()
    answer = caller.update(key, "t", state)
    assert answer.status_code == 200, answer.text
    event = answer.json()
    assert_event_shape(event)
    assert event["key"] == key
    assert event["processing"]["hasTransactions"] is True
    assert event["processing"]["totalTransactions"] == 1
    assert event["processing"]["isCompleted"] is (state != "processing")
    assert event == {k: v for k, v in caller.event(key).items() if k != "transactions"}
    tx = caller.transaction(key, "t")
    assert_transaction_shape(tx)
    assert tx["state"] == state
    assert_history(tx["history"], state)
    assert (tx["endedAt"] is None) is (state == "processing")


@pytest.mark.parametrize("state", ["processing", "finished", "failed"])
def test_update_appends_to_the_history_of_an_existing_transaction(
    caller: Caller, claimed: str, state: str
) -> None:
    answer = caller.update(claimed, "t", state)
    assert answer.status_code == 200, answer.text
    tx = caller.transaction(claimed, "t")
    assert tx["state"] == state
    assert_history(tx["history"], "processing", state)
    if state == "processing":
        assert tx["endedAt"] is None
    else:
        assert tx["endedAt"] == tx["history"][-1]["timestamp"]
    assert answer.json()["processing"]["isCompleted"] is (state != "processing")


def test_update_then_transact_follows_the_updated_state(caller: Caller, claimed: str) -> None:
    assert caller.update(claimed, "t", "failed").status_code == 200
    assert_error(caller.transact(claimed, "t"), 409)
    assert caller.update(claimed, "t", "processing").status_code == 200
    assert caller.transact(claimed, "t", output=1).json()["state"] == "finished"
    assert_history(
        caller.transaction(claimed, "t")["history"],
        "processing",
        "failed",
        "processing",
        "finished",
    )


def test_event_counts_its_transactions_and_completes_when_none_runs(caller: Caller) -> None:
    key = caller.emit()
    caller.init(key, "a")
    caller.init(key, "b")
    assert caller.event(key)["processing"]["totalTransactions"] == 2
    caller.transact(key, "a", "failed")
    assert caller.event(key)["processing"]["isCompleted"] is False
    caller.transact(key, "b")
    event = caller.event(key)
    assert event["processing"]["isCompleted"] is True
    assert {t["txKey"]: t["state"] for t in event["transactions"]} == {
        "a": "failed",
        "b": "finished",
    }


def subscribe(redis_url: str, event_name: str, *tx_keys: str) -> None:
    """Registers handlers for `event_name` in the test environment, as a worker does."""

    async def register() -> None:
        store = Store.from_settings(Settings(redis_url=redis_url, ttl_seconds=60))
        try:
            subs = [Subscription(txKey=t, eventName=event_name, queue="q") for t in tx_keys]
            await store.subscribe(subs, ["test"])
        finally:
            await store.close()

    asyncio.run(register())


def test_processing_flags_wait_for_every_subscribed_handler(caller: Caller, redis_url: str) -> None:
    subscribe(redis_url, "order.paid", "receipt", "audit")
    key = caller.emit("order.paid")

    def flags() -> tuple[bool, int, bool, bool]:
        p = caller.event(key)["processing"]
        return (
            p["hasTransactions"],
            p["totalTransactions"],
            p["hasFutureTransactions"],
            p["isCompleted"],
        )

    assert flags() == (False, 0, True, False)
    caller.init(key, "receipt")
    assert flags() == (True, 1, True, False)
    caller.transact(key, "receipt")
    assert flags() == (True, 1, True, False)  # "audit" has not ended a transaction yet
    caller.update(key, "audit", "failed")
    assert flags() == (True, 2, False, True)
    unsubscribed = caller.emit("order.shipped")
    assert caller.event(unsubscribed)["processing"]["hasFutureTransactions"] is False


def test_an_emit_the_broker_cannot_take_succeeds_or_writes_nothing(
    api_with: Callable[..., TestClient], caller: Caller, redis_url: str
) -> None:
    """With a subscribed handler and the broker down, /emit may answer success (the event is
    durable; recovery hands it to the workers later) or an error, but not both at once."""
    subscribe(redis_url, "order.paid", "receipt")
    broker_down = {"broker_url": f"redis://127.0.0.1:{free_port()}/0", "dispatch_batch": 1}
    app = api_with(raise_server_exceptions=False, **broker_down)
    answer = app.post("/emit", json={"event": "order.paid"}, headers=caller.headers)
    stored = caller.query()["total"]
    if answer.status_code == 200:
        assert stored == 1
    else:
        assert stored == 0, f"answered {answer.status_code} {answer.text!r}, yet stored the event"
        assert_error(answer, 500, 502, 503)


def test_v_grows_by_one_with_each_change_to_the_event(caller: Caller) -> None:
    key = caller.emit()
    versions = [caller.event(key)["v"]]
    caller.init(key, "t")  # pending -> processing
    versions.append(caller.event(key)["v"])
    caller.transact(key, "t")  # processing -> finished
    versions.append(caller.event(key)["v"])
    versions.append(caller.update(key, "u", "processing").json()["v"])  # a second transaction
    assert versions[0] in (0, 1)
    assert versions == list(range(versions[0], versions[0] + 4))


# /get-full-event-name


@pytest.mark.parametrize(
    "body, full_name",
    [
        ({"eventName": "order.paid"}, "custom.billing.order.paid"),
        ({"eventName": "order.paid", "platform": "", "label": ""}, "custom.billing.order.paid"),
        ({"eventName": "charge", "platform": "stripe"}, "stripe.billing.charge"),
        ({"eventName": "charge", "platform": "stripe", "label": "shop"}, "stripe.shop.charge"),
        ({"eventName": "order.paid", "label": "shipping"}, "custom.shipping.order.paid"),
    ],
)
def test_full_event_name_defaults_to_custom_and_the_key_name(
    caller: Caller, body: dict[str, str], full_name: str
) -> None:
    assert caller.ok("/get-full-event-name", body) == {"fullName": full_name}


# GET /events/{key}


def test_get_event_includes_every_transaction_with_its_output(caller: Caller, claimed: str) -> None:
    caller.transact(claimed, "t", output=[1, 2])
    caller.update(claimed, "u", "processing")
    event = caller.event(claimed)
    assert_event_shape(event)
    by_tx = {t["txKey"]: t for t in event["transactions"]}
    assert by_tx.keys() == {"t", "u"}
    assert (by_tx["t"]["output"], by_tx["u"]["state"]) == ([1, 2], "processing")
    for tx in by_tx.values():
        assert_transaction_shape(tx)
        assert tx["event"]["_id"] == event["_id"]


# Isolation


@pytest.mark.parametrize(
    "other",
    [{"owner": "acme", "env": "test"}, {"owner": "default", "env": "live"}],
    ids=["another owner", "live environment"],
)
def test_keys_see_nothing_of_another_scope(
    caller: Caller,
    make_caller: Callable[..., Caller],
    fails_cleanly: Callable[..., None],
    other: dict[str, str],
) -> None:
    """Both keys are named "billing", emit the same event name and claim the same txKey."""
    theirs = make_caller("billing", **other)
    sides = [(caller, "test"), (theirs, other["env"])]
    keys = [who.emit("order.paid", {"env": env}) for who, env in sides]
    for (who, _), key in zip(sides, keys, strict=True):
        assert who.init(key, "t").status_code == 200
    for (me, env), mine, not_mine in zip(sides, keys, keys[::-1], strict=True):
        for filters in (
            {},
            {"platform": "custom", "label": "billing", "eventName": "order.paid"},
            {"txKey": "t", "txState": "processing"},
            {"txKey": "u", "txState": "does-not-exist"},
        ):
            assert me.keys(**filters) == [mine]
        assert me.keys(txKey="t", txState="does-not-exist") == []
        assert me.event(mine)["environment"] == env
        fails_cleanly(lambda me=me, key=not_mine: me.get(key), 404)
        fails_cleanly(lambda me=me, key=not_mine: me.init(key, "u"), 404)
        fails_cleanly(lambda me=me, key=not_mine: me.transact(key, "t"), 404)
        fails_cleanly(lambda me=me, key=not_mine: me.update(key, "t", "failed"), 404)


# Retention


def test_events_are_gone_once_their_ttl_has_passed(
    api_with: Callable[..., TestClient], secret: str
) -> None:
    """ttl 1 s: `old` is emitted at 0 s and `new` at 0.7 s; at 1.3 s only `new` is left, and
    at 2.1 s neither."""
    short = Caller(api_with(ttl_seconds=1), secret)
    start = time.monotonic()
    old = short.emit()
    short.init(old, "t")
    assert short.event(old)["ttl"] == 1
    time.sleep(0.7)
    new = short.emit()
    time.sleep(max(0.0, 1.3 - (time.monotonic() - start)))
    assert_error(short.get(old), 404)
    assert_error(short.init(old, "u"), 404)
    assert short.event(new)["ttl"] == 1
    assert short.query()["total"] == 1
    assert short.keys() == short.keys(txKey="t", txState="does-not-exist") == [new]
    assert short.keys(txKey="t") == []
    time.sleep(max(0.0, 2.1 - (time.monotonic() - start)))
    assert_error(short.get(new), 404)
    assert short.query() == {"rows": [], "total": 0, "page": 1, "pageSize": 10, "totalPages": 0}
    assert short.keys(txKey="t", txState="does-not-exist") == []


# Beyond the original: a time window and newest-first order (what the dashboard lists).


def test_until_and_newest_first_page_through_a_window(caller: Caller) -> None:
    keys = [caller.emit() for _ in range(7)]
    created = [caller.event(k)["createdAt"] for k in keys]
    window = {"since": created[1], "until": created[6]}  # keys[1:6]
    assert caller.keys(**window) == keys[1:6]
    newest = [caller.query(**window, newestFirst=True, page=p, pageSize=2) for p in (1, 2, 3, 4)]
    assert [[r["key"] for r in page["rows"]] for page in newest] == [
        [keys[5], keys[4]],
        [keys[3], keys[2]],
        [keys[1]],
        [],
    ]
    assert {page["total"] for page in newest} == {5}
    assert caller.query(until=created[0])["total"] == 0
