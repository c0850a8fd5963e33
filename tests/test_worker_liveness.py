"""Live and gone workers: /handlers tells workers that heartbeat from ones that missed a
few heartbeats, and workers forget the ones gone for long, with their own queues."""

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from worker_support import Worker, handled, wait_until

from tidings import models
from tidings.clock import now_ms
from tidings.settings import Settings
from tidings.store import Store, keys

FAST_BEATS = {"TIDINGS_CANARY_INTERVAL_SECONDS": "0.5", "TIDINGS_CANARY_TIMEOUT_SECONDS": "3"}


@pytest.fixture
def start_worker(settings: Settings, tmp_path: Path) -> Iterator[Callable[[], Worker]]:
    workers: list[Worker] = []

    def start() -> Worker:
        worker = Worker(settings.store_url, tmp_path / f"worker{len(workers)}.log", FAST_BEATS)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.kill()


def echo_workers(http: httpx.Client) -> tuple[list[str], list[str], bool]:
    [echo] = [view for view in http.get("/handlers").json() if view["txKey"] == "echo"]
    live = [w["name"] for w in echo["workers"]]
    return live, sorted(w["name"] for w in echo["goneWorkers"]), echo["served"]


def test_handlers_tell_live_workers_from_gone_ones(
    http: httpx.Client, start_worker: Callable[[], Worker], redis_client: redis.Redis
) -> None:
    first = start_worker()
    first.stop()
    assert redis_client.keys(f"*tidings.worker.{first.name}*") == []  # its queue went with it
    second = start_worker()
    wait_until(
        lambda: echo_workers(http) == ([second.name], [first.name], True),
        "the first worker to be gone and the second live",
    )
    # A transaction's history names its worker as /handlers does (not a pool process).
    key = http.post("/emit", json={"event": "e2e.echo"}).json()["key"]
    [echo] = handled(http, key)["transactions"]
    assert {entry["updatedBy"] for entry in echo["history"]} == {second.name}
    second.kill()
    wait_until(
        lambda: echo_workers(http) == ([], sorted([first.name, second.name]), False),
        "both to be gone, and the handler unserved",
    )


def test_a_worker_forgets_workers_gone_for_long_and_their_queues(
    http: httpx.Client,
    start_worker: Callable[[], Worker],
    settings: Settings,
    redis_client: redis.Redis,
) -> None:
    long_ago = now_ms() - (models.WORKER_FORGOTTEN_AFTER_SECONDS + 60) * 1000
    ghost = models.WorkerBeat(
        name="ghost",
        startedAt=long_ago,
        lastSeen=long_ago,
        heartbeatMs=500,
        environments=["test"],
        owners=None,
        handlers=["echo"],
        queues={},
        directQueue="tidings.worker.ghost",
    )

    async def heartbeat() -> None:
        store = Store.from_settings(settings)
        await store.heartbeat(ghost)
        await store.close()

    asyncio.run(heartbeat())
    redis_client.rpush("tidings.worker.ghost", "a canary it never took")
    worker = start_worker()
    assert echo_workers(http) == ([worker.name], [], True)  # never listed, even as gone
    wait_until(lambda: not redis_client.keys("*tidings.worker.ghost*"), "its queue deleted")
    assert redis_client.zscore(keys.WORKERS, "ghost") is None
    assert not redis_client.exists(keys.worker("ghost"))
