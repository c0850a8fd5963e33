"""`Client.wait`: the event once its transactions have ended, against `tidings serve` as a
real process, a real Redis and, where a handler runs, a real Celery worker."""

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from worker_support import Worker

from tidings import Client
from tidings.models import Subscription
from tidings.store import Store


@pytest.fixture
def client(module_live_server: str, redis_client: redis.Redis) -> Iterator[Client]:
    answer = httpx.post(
        f"{module_live_server}/admin/keys",
        json={"name": "shop", "env": "test"},
        headers={"Authorization": "Bearer admin-secret"},
    )
    assert answer.status_code == 200, answer.text
    with Client(answer.json()["secret"], module_live_server) as client:
        yield client


def subscribe_without_a_worker(redis_url: str, event_name: str, tx_key: str) -> None:
    """A handler subscribed as a worker registers it, with no worker to run it."""

    async def go() -> None:
        store = Store.from_url(redis_url, ttl_seconds=3600)
        try:
            sub = Subscription(txKey=tx_key, eventName=event_name, queue="nobody-listens")
            await store.subscribe([sub], ["test"])
        finally:
            await store.close()

    asyncio.run(go())


def test_wait_returns_once_a_worker_has_handled_the_event(
    client: Client, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    worker = Worker(redis_url, tmp_path / "worker.log", {}).start()
    try:
        key = client.emit("e2e.echo", {"n": 1})
        event = client.wait(key, timeout=30)
    finally:
        worker.kill()
    [tx] = event.transactions
    assert (tx.txKey, tx.state, tx.output["echo"]) == ("echo", "finished", {"n": 1})
    assert event.processing.isCompleted and not event.processing.hasFutureTransactions


def test_wait_returns_at_once_for_an_event_no_handler_subscribes_to(client: Client) -> None:
    key = client.emit("nobody.listens")
    event = client.wait(key, timeout=0)
    assert event.key == key and event.transactions == []


def test_wait_follows_a_transaction_until_it_ends(client: Client) -> None:
    key = client.emit("order.paid")
    client.init(key, "ship")
    finisher = threading.Timer(0.3, lambda: client.transact(key, "ship", {"shipped": True}))
    finisher.start()
    try:
        event = client.wait(key, timeout=30)
    finally:
        finisher.join()
    [tx] = event.transactions
    assert (tx.state, tx.output) == ("finished", {"shipped": True})


def test_wait_times_out_on_a_transaction_that_stays_processing(client: Client) -> None:
    key = client.emit("order.paid")
    client.init(key, "ship")
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=f"event {key}: .* after 0.3 s .*processing: ship"):
        client.wait(key, timeout=0.3)
    assert time.monotonic() - started >= 0.3
    assert client.get_event(key).transactions[0].state == "processing"


def test_wait_times_out_on_a_subscribed_handler_that_never_starts(
    client: Client, redis_url: str
) -> None:
    subscribe_without_a_worker(redis_url, "order.paid", "ship")
    key = client.emit("order.paid")
    with pytest.raises(TimeoutError, match="a subscribed handler has not ended a transaction"):
        client.wait(key, timeout=0.2)
