"""A worker that lives on while its consumer receives nothing: its canaries tell, /health
answers 503, the worker exits with code 1, and a replacement handles what waited."""

import json
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from celery import Celery
from conftest import serving
from worker_support import ROOT, Worker, wait_until

from tidings.store import keys

ADMIN = {"Authorization": "Bearer admin-secret"}
CANARY_ENV = {"TIDINGS_CANARY_INTERVAL_SECONDS": "0.5", "TIDINGS_CANARY_TIMEOUT_SECONDS": "6"}
#: The API judges a queue unserved sooner than a worker judges itself deaf, so that the
#: test sees /health turn 503 while the deaf worker still runs and heartbeats.
API_ENV = {
    "TIDINGS_HANDLERS": "e2e_handlers",
    "PYTHONPATH": str(ROOT / "tests"),
    "TIDINGS_CANARY_INTERVAL_SECONDS": "0.5",
    "TIDINGS_CANARY_TIMEOUT_SECONDS": "2",
}


@pytest.fixture
def api_url(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Iterator[str]:
    with serving(redis_url, tmp_path / "serve.log", **API_ENV) as base_url:
        yield base_url


@pytest.fixture
def http(api_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=10) as client:
        created = client.post("/admin/keys", json={"name": "shop", "env": "test"}, headers=ADMIN)
        client.headers["X-Buildable-Secret"] = created.json()["secret"]
        yield client


@pytest.fixture
def workers(redis_url: str) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


def queue_of(health: httpx.Response) -> dict[str, Any]:
    [queue] = [q for q in health.json()["queues"] if q["brokerQueue"] == "tidings.test"]
    return queue


def deafen(redis_client: redis.Redis, redis_url: str, worker: Worker) -> None:
    """Cancel every queue the worker consumes, its own included, through Celery's remote
    control: the process, its broker connection and its heartbeats go on; its consumer
    receives nothing."""
    beat = json.loads(redis_client.get(keys.worker(worker.name)) or "{}")
    control = Celery(broker=redis_url, set_as_current=False).control
    for queue in beat["queues"]:
        [reply] = control.cancel_consumer(queue, destination=[worker.node], reply=True)
        assert reply[worker.node] == {"ok": f"no longer consuming from {queue}"}


def finished(http: httpx.Client, key: str) -> bool:
    event = http.get(f"/events/{key}").json()
    return [(t["txKey"], t["state"]) for t in event["transactions"]] == [("echo", "finished")]


def event_finished(http: httpx.Client, key: str) -> bool:
    """Whether the event ``key`` is finished, whichever transactions it ran."""
    return bool(http.get(f"/events/{key}").json()["state"] == "finished")


def test_a_deaf_worker_turns_health_503_and_exits_and_its_replacement_handles_the_events(
    api_url: str,
    http: httpx.Client,
    workers: list[Worker],
    redis_client: redis.Redis,
    redis_url: str,
    tmp_path: Path,
) -> None:
    deaf = Worker(redis_url, tmp_path / "deaf.log", CANARY_ENV).start()
    workers.append(deaf)
    healthy = wait_until(
        lambda: (h := httpx.get(f"{api_url}/health")).status_code == 200 and h, "health 200"
    )
    [consumer] = queue_of(healthy)["workers"]
    assert consumer["name"] == deaf.name and consumer["canaryRoundTripMs"] is not None

    deafen(redis_client, redis_url, deaf)
    keys = [http.post("/emit", json={"event": "e2e.echo"}).json()["key"] for _ in range(3)]
    unhealthy = wait_until(
        lambda: (h := httpx.get(f"{api_url}/health")).status_code == 503 and h, "health 503"
    )
    assert deaf.process is not None and deaf.process.poll() is None  # alive, heartbeating...
    queue = queue_of(unhealthy)
    assert queue["served"] is False and "tidings.test" in unhealthy.json()["message"]
    [consumer] = queue["workers"]  # ...and so still a live worker of the queue
    assert consumer["name"] == deaf.name and consumer["lastSeenSeconds"] < 1.5
    assert consumer["lastReceivedSeconds"] > 2
    assert queue["oldestWaitingSeconds"] is not None
    assert not any(http.get(f"/events/{key}").json()["transactions"] for key in keys)

    assert deaf.process.wait(timeout=30) == 1
    assert "this worker is deaf" in deaf.log_path.read_text()
    # As a supervisor would: start it again.
    workers.append(Worker(redis_url, tmp_path / "replacement.log", CANARY_ENV).start())
    for key in keys:
        wait_until(partial(finished, http, key), f"event {key} to be handled")
    wait_until(lambda: httpx.get(f"{api_url}/health").status_code == 200, "health 200 again")


def test_a_worker_with_every_pool_process_busy_is_not_taken_for_deaf(
    api_url: str,
    http: httpx.Client,
    workers: list[Worker],
    redis_client: redis.Redis,
    redis_url: str,
    tmp_path: Path,
) -> None:
    # e2e.long runs 4.5 s, beyond the 2 s timeout: both pool processes are busy, but the
    # consumer still receives (its prefetch window has room), so canaries come back.
    worker = Worker(redis_url, tmp_path / "busy.log", CANARY_ENV).start()
    workers.append(worker)
    keys = [http.post("/emit", json={"event": "e2e.long"}).json()["key"] for _ in range(2)]
    wait_until(
        lambda: all(redis_client.get(f"test:runs:long:{key}") for key in keys), "both running"
    )
    time.sleep(3)
    health = httpx.get(f"{api_url}/health")
    assert health.status_code == 200, health.text
    assert queue_of(health)["workers"][0]["lastReceivedSeconds"] < 2
    for key in keys:
        wait_until(
            partial(event_finished, http, key),
            f"event {key} to be handled",
        )
    assert worker.process is not None and worker.process.poll() is None
