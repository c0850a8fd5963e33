"""A worker's canaries and subscriptions against what its broker and Redis go through: a
full prefetch window, and Redis losing its data. Real worker processes on a real Redis."""

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from worker_support import Worker, wait_until

from tidings import models
from tidings.canary import direct_queue
from tidings.celery_app import create_celery, publish
from tidings.settings import Settings
from tidings.store import Store, keys
from tidings.work import Scope, WorkItem

SCOPE = Scope("default", "test")
CANARY_ENV = {"TIDINGS_CANARY_INTERVAL_SECONDS": "0.5", "TIDINGS_CANARY_TIMEOUT_SECONDS": "2"}
#: The test workers' prefetch window: --concurrency=2 times worker_prefetch_multiplier 4.
PREFETCH_WINDOW = 8
#: Canary rounds watched while the window is full.
ROUNDS = 6


def in_store(settings: Settings, query: Callable[[Store], Any]) -> Any:
    async def run() -> Any:
        store = Store.from_settings(settings)
        try:
            return await query(store)
        finally:
            await store.close()

    return asyncio.run(run())


def emit(settings: Settings, event_name: str) -> str:
    """Emit an event and publish its work, one broker message of its own."""

    async def emit(store: Store) -> list[tuple[WorkItem, str]]:
        [event] = await store.emit(
            SCOPE, [models.EmitRequest(event=event_name)], platform="custom", label="t", actor="t"
        )
        return [(WorkItem(SCOPE.owner, SCOPE.env, event.key, tx), q) for tx, q in event.routes]

    items = in_store(settings, emit)
    assert items, f"no handler subscribed to {event_name}"
    publish(create_celery(settings, import_handlers=False), items)
    return str(items[0][0].key)


def state(settings: Settings, key: str) -> str:
    return str(in_store(settings, lambda store: store.get_event(SCOPE, key)).state)


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[Worker]:
    started = Worker(settings.store_url, tmp_path / "worker.log", CANARY_ENV).start()
    yield started
    started.kill()


def test_a_full_prefetch_window_holds_back_one_canary_a_queue_not_a_pile(
    settings: Settings, worker: Worker, redis_client: redis.Redis
) -> None:
    # Two run (4.5 s each) and the rest wait in the window: it is full for over 9 s.
    keys = [emit(settings, "e2e.long") for _ in range(PREFETCH_WINDOW + 2)]
    wait_until(lambda: redis_client.get(f"test:runs:long:{keys[0]}"), "the first handler")
    time.sleep(ROUNDS * float(CANARY_ENV["TIDINGS_CANARY_INTERVAL_SECONDS"]))
    assert redis_client.llen(direct_queue(worker.name)) == 1
    assert worker.process is not None and worker.process.poll() is None  # not taken for deaf


def test_a_worker_subscribes_its_handlers_again_once_redis_has_lost_them(
    settings: Settings, worker: Worker, redis_client: redis.Redis
) -> None:
    assert redis_client.hget(keys.subscribed("test"), "echo") == "e2e.echo"
    redis_client.flushdb()  # Redis loses its data: subscriptions, queues, heartbeats
    wait_until(
        lambda: redis_client.hget(keys.subscribed("test"), "echo") == "e2e.echo",
        "the subscriptions again",
    )
    assert "subscriptions lost in Redis (" in worker.log_path.read_text()
    key = emit(settings, "e2e.echo")
    wait_until(lambda: state(settings, key) == "finished", "the event handled")
    # Its canaries lost with the broker's queues did not get it taken for deaf.
    time.sleep(2 * float(CANARY_ENV["TIDINGS_CANARY_TIMEOUT_SECONDS"]))
    assert worker.process is not None and worker.process.poll() is None
    assert "deaf" not in worker.log_path.read_text()
