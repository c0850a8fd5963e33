"""The Python client, `tidings.Client`, against `tidings serve` running as a real process."""

import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tidings import Client, TidingsError
from tidings.models import Event, EventWithTransactions, QueryPage, Transaction

HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def live_secret(module_live_server: str, redis_client: object) -> Callable[..., str]:
    """live_secret(name): a new secret key of that name (test environment), over HTTP."""

    def make(name: str = "billing") -> str:
        answer = httpx.post(
            f"{module_live_server}/admin/keys",
            json={"name": name, "env": "test"},
            headers={"Authorization": "Bearer admin-secret"},
        )
        assert answer.status_code == 200, answer.text
        secret: str = answer.json()["secret"]
        return secret

    return make


@pytest.fixture
def connect(module_live_server: str) -> Iterator[Callable[[str], Client]]:
    """connect(secret): a Client of the live server, closed after the test."""
    clients: list[Client] = []

    def make(secret: str) -> Client:
        clients.append(Client(secret, module_live_server))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(live_secret: Callable[..., str], connect: Callable[[str], Client]) -> Client:
    return connect(live_secret("billing"))


def test_emit_then_get_event(client: Client) -> None:
    payload = {"amount": 12345678901234567890, "note": "Zoë ✓", "items": [1.5, None]}
    key = client.emit("order.paid", payload)
    assert HEX32.fullmatch(key)
    event = client.get_event(key)
    assert isinstance(event, EventWithTransactions)
    assert (event.key, event.eventName, event.payload) == (key, "order.paid", payload)
    assert (event.environment, event.label, event.platform) == ("test", "billing", "custom")
    assert event.transactions == []


def test_emit_without_a_payload_sends_an_empty_object(client: Client) -> None:
    assert client.get_event(client.emit("order.paid")).payload == {}


def test_emit_batch_answers_keys_in_order(client: Client) -> None:
    keys = client.emit_batch([("order.paid", {"n": n}) for n in range(5)])
    assert len(set(keys)) == 5
    assert [client.get_event(k).payload for k in keys] == [{"n": n} for n in range(5)]


def test_query_passes_filters_and_pages(
    client: Client, live_secret: Callable[..., str], connect: Callable[[str], Client]
) -> None:
    shipping = connect(live_secret("shipping"))
    paid = client.emit("order.paid")
    shipping.emit("order.paid")
    client.emit("order.shipped")
    page = client.query(event_name="order.paid", label="billing", platform="custom")
    assert isinstance(page, QueryPage)
    assert [e.key for e in page.rows] == [paid]
    assert (page.total, page.page, page.pageSize, page.totalPages) == (1, 1, 10, 1)
    second = client.query(page=2, page_size=2)
    assert (second.total, second.page, second.pageSize, second.totalPages) == (3, 2, 2, 2)
    assert len(second.rows) == 1
    assert client.query(since=second.rows[0].createdAt + 1).total == 0


def test_iter_events_walks_every_page_oldest_first(client: Client) -> None:
    assert list(client.iter_events()) == []
    keys = client.emit_batch([("order.paid", n) for n in range(5)])
    found = list(client.iter_events(page_size=2))
    assert sorted(e.key for e in found) == sorted(keys)
    assert len(found) == 5
    assert [e.createdAt for e in found] == sorted(e.createdAt for e in found)


def test_init_transact_update_and_query_by_tx_state(client: Client) -> None:
    key = client.emit("order.paid", {"n": 1})
    claimed = client.init(key, "send-receipt")
    assert isinstance(claimed, Transaction)
    assert (claimed.state, claimed.endedAt, claimed.txKey) == ("processing", None, "send-receipt")
    assert [e.key for e in client.query(tx_key="send-receipt", tx_state="processing").rows] == [key]

    ended = client.transact(key, "send-receipt", output={"sent": True})
    assert (ended.state, ended.output) == ("finished", {"sent": True})
    assert ended.endedAt is not None and ended.endedAt >= ended.startedAt
    assert [h.enterState for h in ended.history] == ["processing", "finished"]

    event = client.update(key, "order.paid", "audit", "failed")
    assert isinstance(event, Event)
    assert event.processing.totalTransactions == 2
    assert event.state == "failed"
    assert client.query(tx_key="audit", tx_state="failed").total == 1
    assert client.query(tx_key="other", tx_state="does-not-exist").total == 1
    outputs = {t.txKey: t.output for t in client.get_event(key).transactions}
    assert outputs == {"audit": None, "send-receipt": {"sent": True}}


@pytest.mark.parametrize(
    "call, status",
    [
        (lambda c, key: c.init(key, "t"), 409),
        (lambda c, key: c.init("0" * 32, "t"), 404),
        (lambda c, key: c.transact(key, "never-claimed"), 404),
        (lambda c, key: c.update(key, "order.refunded", "t", "failed"), 404),
        (lambda c, key: c.get_event("0" * 32), 404),
        (lambda c, key: c.query(tx_state="failed"), 400),
        (lambda c, key: c.query(page_size=0), 422),
        (lambda c, key: c.transact(key, "t", state="processing"), 422),
    ],
    ids=[
        "init twice",
        "init unknown",
        "transact unclaimed",
        "update name mismatch",
        "get unknown",
        "txState alone",
        "pageSize 0",
        "transact to processing",
    ],
)
def test_error_answers_raise_tidings_error_with_their_status(
    client: Client, call: Callable[[Client, str], Any], status: int
) -> None:
    key = client.emit("order.paid")
    client.init(key, "t")
    with pytest.raises(TidingsError) as raised:
        call(client, key)
    assert raised.value.status_code == status
    assert raised.value.message and not raised.value.message.startswith("{")


def test_an_unknown_secret_raises_401(connect: Callable[[str], Client]) -> None:
    with pytest.raises(TidingsError) as raised:
        connect("sk_test_unknown").emit("order.paid")
    assert raised.value.status_code == 401


@pytest.mark.parametrize(
    "args, full_name",
    [
        (("order.paid",), "custom.billing.order.paid"),
        (("charge", "stripe"), "stripe.billing.charge"),
        (("charge", "stripe", "shop"), "stripe.shop.charge"),
    ],
)
def test_full_event_name(client: Client, args: tuple[str, ...], full_name: str) -> None:
    assert client.full_event_name(*args) == full_name


def test_concurrent_inits_let_exactly_one_through(client: Client) -> None:
    """100 claims of one (key, txKey) at once, from 100 threads over the client's pool."""
    key = client.emit("order.paid")
    start = threading.Barrier(100)

    def claim(_: int) -> int:
        start.wait()
        try:
            client.init(key, "send-receipt")
            return 200
        except TidingsError as exc:
            return exc.status_code

    with ThreadPoolExecutor(max_workers=100) as pool:
        statuses = list(pool.map(claim, range(100)))
    assert sorted(statuses) == [200] + [409] * 99
    event = client.get_event(key)
    [tx] = event.transactions
    assert (tx.state, len(tx.history)) == ("processing", 1)
    assert event.processing.totalTransactions == 1
