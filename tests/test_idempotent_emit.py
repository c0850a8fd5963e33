"""Idempotent emit: an Idempotency-Key on /emit, an idempotencyKey per event of /emit/batch.
The same key within 24 hours answers the first event's key and stores nothing new."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from tidings import Client
from tidings.models import IDEMPOTENCY_SECONDS, MAX_IDEMPOTENCY_KEY
from tidings.settings import Settings
from tidings.store import keys
from tidings.work import Scope

CONCURRENT_EMITS = 50


def events_stored(http: httpx.Client, name: str) -> list[dict[str, object]]:
    page = http.post("/query", json={"eventName": name, "pageSize": 100}).json()
    rows: list[dict[str, object]] = page["rows"]
    return rows


def test_fifty_concurrent_identical_emits_with_one_key_store_one_event(
    http: httpx.Client, live_server: str
) -> None:
    secret = http.headers["X-Buildable-Secret"]
    body = {"event": "order.paid", "payload": {"order": 7}}

    def emit(_: int) -> httpx.Response:
        # A client (a connection) each, so that the requests really are concurrent.
        with httpx.Client(base_url=live_server, timeout=30) as client:
            headers = {"X-Buildable-Secret": secret, "Idempotency-Key": "order-7-paid"}
            return client.post("/emit", json=body, headers=headers)

    with ThreadPoolExecutor(CONCURRENT_EMITS) as pool:
        answers = list(pool.map(emit, range(CONCURRENT_EMITS)))

    assert [a.status_code for a in answers] == [200] * CONCURRENT_EMITS
    assert len({a.json()["key"] for a in answers}) == 1
    [stored] = events_stored(http, "order.paid")
    assert stored["key"] == answers[0].json()["key"]
    replayed = [a.headers.get("Idempotent-Replayed") for a in answers]
    assert replayed.count(None) == 1 and replayed.count("true") == CONCURRENT_EMITS - 1


def test_without_a_key_the_same_emits_are_each_stored(http: httpx.Client) -> None:
    """The check above can fail: the same requests without the header store one each."""
    for _ in range(3):
        assert http.post("/emit", json={"event": "order.paid"}).status_code == 200
    assert len(events_stored(http, "order.paid")) == 3


def test_a_key_stands_for_24_hours_in_its_owner_and_environment(
    api: TestClient,
    headers: dict[str, str],
    new_secret: Callable[..., str],
    redis_client: redis.Redis,
    settings: Settings,
) -> None:
    first = api.post("/emit", json={"event": "a"}, headers={**headers, "Idempotency-Key": "k1"})
    # Another key of the same owner and environment shares the idempotency keys...
    same_scope = {"X-Buildable-Secret": new_secret("other"), "Idempotency-Key": "k1"}
    again = api.post("/emit", json={"event": "b"}, headers=same_scope)
    assert again.json()["key"] == first.json()["key"]
    # ...another environment has its own.
    live = {"X-Buildable-Secret": new_secret("billing", env="live"), "Idempotency-Key": "k1"}
    elsewhere = api.post("/emit", json={"event": "a"}, headers=live)
    assert elsewhere.json()["key"] != first.json()["key"]
    p = keys.idempotency_partition("emit:k1", settings.partitions)
    ttl = redis_client.ttl(keys.idempotency(Scope("default", "test"), p, "emit:k1"))
    assert IDEMPOTENCY_SECONDS - 60 < ttl <= IDEMPOTENCY_SECONDS


def test_a_batch_stores_each_idempotency_key_once(api: TestClient, headers: dict[str, str]) -> None:
    first = api.post("/emit", json={"event": "a"}, headers={**headers, "Idempotency-Key": "x"})
    events = [
        {"event": "a", "idempotencyKey": "x"},  # emitted before, by /emit
        {"event": "a", "idempotencyKey": "y"},
        {"event": "a", "idempotencyKey": "y"},  # the same as the one before it
        {"event": "a"},
    ]
    batch = api.post("/emit/batch", json={"events": events}, headers=headers)
    assert batch.status_code == 200, batch.text
    x, y1, y2, plain = batch.json()["keys"]
    assert x == first.json()["key"]
    assert y1 == y2 and len({x, y1, plain}) == 3
    page = api.post("/query", json={"eventName": "a"}, headers=headers).json()
    assert sorted(row["key"] for row in page["rows"]) == sorted([x, y1, plain])


@pytest.mark.parametrize(
    "bad_key",
    ["", "x" * (MAX_IDEMPOTENCY_KEY + 1), "has space", "é"],
    ids=["empty", "too-long", "space", "not-ascii"],
)
def test_a_bad_idempotency_key_is_refused_and_writes_nothing(
    api: TestClient,
    headers: dict[str, str],
    snapshot: Callable[[], dict[str, object]],
    bad_key: str,
) -> None:
    before = snapshot()
    # httpx sends header values as ASCII: bytes carry the non-ASCII one as UTF-8.
    header = {"Idempotency-Key": bad_key.encode()}
    one = api.post("/emit", json={"event": "a"}, headers={**headers, **header})
    assert one.status_code == 400, one.text
    assert "Idempotency-Key" in one.json()["message"]
    batch = api.post(
        "/emit/batch", json={"events": [{"event": "a", "idempotencyKey": bad_key}]}, headers=headers
    )
    assert batch.status_code == 422, batch.text
    assert snapshot() == before


def test_the_longest_key_is_taken(api: TestClient, headers: dict[str, str]) -> None:
    key = "k" * MAX_IDEMPOTENCY_KEY
    answers = [
        api.post("/emit", json={"event": "a"}, headers={**headers, "Idempotency-Key": key})
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json()["key"] == answers[1].json()["key"]


def test_the_client_sends_idempotency_keys(http: httpx.Client, live_server: str) -> None:
    with Client(http.headers["X-Buildable-Secret"], live_server) as client:
        first = client.emit("order.paid", {"n": 1}, idempotency_key="pay-1")
        assert client.emit("order.paid", {"n": 1}, idempotency_key="pay-1") == first
        assert client.emit("order.paid", {"n": 1}) != first
        keys_ = client.emit_batch(
            [("order.paid", {"n": 1}), ("order.paid", {"n": 2})],
            idempotency_keys=["pay-1", None],
        )
        assert keys_[0] == first and keys_[1] != first
    assert len(events_stored(http, "order.paid")) == 3
