"""Each platform end to end, with real processes: `tidings serve`, its Redis and a Celery
worker running tests/webhook_handlers.py, shared by the whole module. Requests are signed as
the platforms sign them (tests/webhook_senders.py).

Tests share the server and the worker, so none empties Redis: each makes a connection of an
owner of its own, and looks only at that owner's keys.
"""

import itertools
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis
from conftest import stored_event_keys
from webhook_senders import SENDERS, Sender, Sent
from worker_support import Worker, wait_until

from tidings.store import keys
from tidings.work import Scope

ADMIN = {"Authorization": "Bearer admin-secret"}
PLATFORMS = list(SENDERS)
TIMESTAMPED = [name for name, sender in SENDERS.items() if sender.timestamped]
#: Sent with every request, and never stored: credentials and hop-by-hop headers.
UNSTORED = {
    "Authorization": "Bearer not-for-storage",
    "Cookie": "session=not-for-storage",
    "X-Buildable-Secret": "sk_test_not_for_storage",
    "Proxy-Authorization": "Basic bm90LWZvci1zdG9yYWdl",
    "Connection": "keep-alive, X-Hop",
    "X-Hop": "not-for-storage",
}
_owners = (f"wh{n}" for n in itertools.count())


@pytest.fixture(scope="module")
def worker(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    started = Worker(redis_url, log, {"TIDINGS_HANDLERS": "webhook_handlers"}).start()
    yield started
    started.kill()


@pytest.fixture(scope="module")
def server(module_live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=module_live_server, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def store(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


class Endpoint:
    """A connection of a new owner, and a secret key of that owner to read its events."""

    def __init__(self, server: httpx.Client, store: redis.Redis, sender: Sender) -> None:
        self.server = server
        self.store = store
        self.sender = sender
        self.owner = next(_owners)
        made = server.post(
            "/admin/connections",
            headers=ADMIN,
            json={
                "platform": sender.platform,
                "label": sender.label,
                "env": "test",
                "owner": self.owner,
                "signingSecret": sender.secret,
                **sender.options,
            },
        )
        assert made.status_code == 200, made.text
        self.connection = made.json()
        key = {"name": "reader", "env": "test", "owner": self.owner}
        secret = server.post("/admin/keys", headers=ADMIN, json=key).json()["secret"]
        self.reader = {"X-Buildable-Secret": secret}

    def post(self, sent: Sent, query: str = "", **headers: str) -> httpx.Response:
        url = f"/webhooks/{self.connection['id']}{query}"
        return self.server.post(url, content=sent.body, headers={**sent.headers, **headers})

    def stored(self) -> dict[str, str]:
        """The owner's keys in Redis, with their types: what its requests stored."""
        return {
            key: self.store.type(key)
            for key in self.store.scan_iter(f"{keys.ROOT}:{{{self.owner}|*")
        }

    def events(self) -> list[str]:
        return stored_event_keys(self.store, Scope(self.owner, "test"))

    def event(self, key: str) -> dict[str, Any]:
        answer = self.server.get(f"/events/{key}", headers=self.reader)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def handled(self, key: str) -> dict[str, Any]:
        """The event, once its handler's transaction has finished."""
        return wait_until(
            lambda: (e := self.event(key))["processing"]["isCompleted"] and e, "the handler"
        )

    def runs(self, key: str) -> int:
        return int(self.store.get(f"test:runs:{self.sender.platform}-seen:{key}") or 0)

    def rejections(self) -> list[dict[str, Any]]:
        found = self.store.lrange(keys.connection_rejections(self.connection["id"]), 0, -1)
        return [json.loads(r) for r in found]


@pytest.fixture(params=PLATFORMS)
def endpoint(
    request: pytest.FixtureRequest, server: httpx.Client, store: redis.Redis, worker: Worker
) -> Endpoint:
    return Endpoint(server, store, SENDERS[request.param])


def new_id() -> str:
    return f"delivery-{uuid.uuid4()}"


def test_a_signed_delivery_becomes_an_event_of_the_connection_that_a_worker_handles(
    endpoint: Endpoint,
) -> None:
    sent = endpoint.sender.send(new_id())
    answer = endpoint.post(sent, "?source=cli&tag=a&tag=b", **UNSTORED)
    assert answer.status_code == 200, answer.text
    assert answer.json()["duplicate"] is False
    event = endpoint.handled(answer.json()["key"])
    sender = endpoint.sender
    assert (event["platform"], event["label"], event["eventName"]) == (
        sender.platform,
        sender.label,
        sender.event_name,
    )
    assert event["fullName"] == f"{sender.platform}.{sender.label}.{sender.event_name}"
    assert event["payload"] == json.loads(sent.body)
    assert event["query"] == {"source": "cli", "tag": ["a", "b"]}
    headers = event["headers"]
    signature_headers = {"stripe-signature", "x-hub-signature-256", "x-hub-signature"}
    signature_headers |= {"x-shopify-hmac-sha256", "webhook-signature", "x-signature"}
    sent_names = {name.lower() for name in sent.headers}
    assert sent_names - signature_headers <= set(headers)
    assert not {name.lower() for name in UNSTORED} & set(headers)
    assert not signature_headers & set(headers)
    assert "not-for-storage" not in json.dumps(headers)
    [tx] = event["transactions"]
    assert (tx["txKey"], tx["state"]) == (f"{sender.platform}-seen", "finished")
    assert tx["output"] == {
        "fullName": event["fullName"],
        "payload": event["payload"],
        "headers": headers,
        "query": event["query"],
    }
    assert endpoint.runs(event["key"]) == 1


def test_a_wrong_signature_is_refused_and_stores_nothing(endpoint: Endpoint) -> None:
    forged = endpoint.sender.send(new_id(), secret=endpoint.sender.make_secret())
    answer = endpoint.post(forged)
    assert answer.status_code == 401, answer.text
    assert "signing secret" in answer.json()["message"]
    unsigned = endpoint.sender.send(new_id())
    answer = endpoint.post(Sent(unsigned.body, {"Content-Type": "application/json"}))
    assert answer.status_code == 401, answer.text
    assert "missing" in answer.json()["message"]
    assert endpoint.stored() == {}
    refused = endpoint.rejections()
    assert [r["status"] for r in refused] == [401, 401]
    assert endpoint.sender.secret not in json.dumps(refused)


@pytest.mark.parametrize("endpoint", TIMESTAMPED, indirect=True)
@pytest.mark.parametrize("seconds", [-301, -3600], ids=["past the tolerance", "an hour ago"])
def test_a_stale_timestamp_is_refused_and_stores_nothing(endpoint: Endpoint, seconds: int) -> None:
    stale = endpoint.sender.send(new_id(), timestamp=int(time.time()) + seconds)
    answer = endpoint.post(stale)
    assert answer.status_code == 401, answer.text
    assert "300 s" in answer.json()["message"]
    assert endpoint.stored() == {}


@pytest.mark.parametrize("endpoint", ["standard-webhooks"], indirect=True)
def test_a_timestamp_far_ahead_is_refused_too(endpoint: Endpoint) -> None:
    ahead = endpoint.sender.send(new_id(), timestamp=int(time.time()) + 301)
    assert endpoint.post(ahead).status_code == 401
    assert endpoint.stored() == {}


def test_a_request_replayed_with_its_id_is_answered_as_the_first_and_stores_nothing(
    endpoint: Endpoint,
) -> None:
    sent = endpoint.sender.send(new_id())
    first = endpoint.post(sent)
    assert first.status_code == 200, first.text
    key = first.json()["key"]
    endpoint.handled(key)
    stored = endpoint.stored()
    again = endpoint.post(sent)
    assert again.status_code == 200, again.text
    assert again.json() == {"status": "success", "key": key, "duplicate": True}
    assert endpoint.stored() == stored
    assert endpoint.events() == [key]
    assert endpoint.runs(key) == 1
    assert len(endpoint.event(key)["transactions"]) == 1


def test_a_delivery_repeated_at_once_is_stored_once(endpoint: Endpoint) -> None:
    """The platform's retries of one delivery, as it sends them (a new timestamp and
    signature where it signs one), all arriving together."""
    delivery_id = new_id()
    now = int(time.time())
    retries = [endpoint.sender.send(delivery_id, timestamp=now + n) for n in range(6)]
    with ThreadPoolExecutor(len(retries)) as pool:
        answers = list(pool.map(endpoint.post, retries))
    assert [a.status_code for a in answers] == [200] * len(retries), [a.text for a in answers]
    keys = {a.json()["key"] for a in answers}
    assert len(keys) == 1
    assert sorted(a.json()["duplicate"] for a in answers) == [False] + [True] * 5
    [key] = keys
    assert endpoint.events() == [key]
    endpoint.handled(key)
    assert endpoint.runs(key) == 1


def test_another_delivery_of_the_same_kind_is_another_event(endpoint: Endpoint) -> None:
    first = endpoint.post(endpoint.sender.send(new_id()))
    second = endpoint.post(endpoint.sender.send(new_id()))
    assert [first.status_code, second.status_code] == [200, 200]
    assert first.json()["key"] != second.json()["key"]
    assert sorted(endpoint.events()) == sorted([first.json()["key"], second.json()["key"]])
