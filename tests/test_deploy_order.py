"""Deploy order: a handler acts on every event emitted after it was first registered,
whichever process (`tidings serve`, `tidings subscribe`, a worker) started first."""

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from conftest import serving
from prometheus_client.parser import text_string_to_metric_families
from worker_support import ROOT, Worker, wait_until

from tidings import models
from tidings.settings import Settings
from tidings.store import Store, keys
from tidings.work import Scope

ADMIN = {"Authorization": "Bearer admin-secret"}
#: The example handlers of this repository (handlers/), as the Procfile runs them.
PROJECT_ENV = {"TIDINGS_HANDLERS": "handlers", "PYTHONPATH": str(ROOT)}


@pytest.fixture
def workers(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


def start_worker(started: list[Worker], redis_url: str, log_path: Path, **env: str) -> Worker:
    worker = Worker(redis_url, log_path, env)
    started.append(worker)
    return worker.start()


@contextmanager
def client(base_url: str, env: str = "test") -> Iterator[httpx.Client]:
    """An HTTP client with a new secret key of the environment."""
    with httpx.Client(base_url=base_url, timeout=10) as http:
        created = http.post("/admin/keys", json={"name": "signup", "env": env}, headers=ADMIN)
        http.headers["X-Buildable-Secret"] = created.json()["secret"]
        yield http


def emit_users(http: httpx.Client, count: int) -> list[str]:
    keys = []
    for n in range(count):
        payload = {"email": f"user{n}@example.com"}
        answer = http.post("/emit", json={"event": "user.created", "payload": payload})
        assert answer.status_code == 200, answer.text
        keys.append(answer.json()["key"])
    return keys


def welcomed(http: httpx.Client, key: str) -> bool:
    event = http.get(f"/events/{key}").json()
    return any(
        t["txKey"] == "send-welcome-email" and t["state"] == "finished"
        for t in event["transactions"]
    )


def handler_view(http: httpx.Client, tx_key: str) -> dict[str, Any]:
    [view] = [v for v in http.get("/handlers").json() if v["txKey"] == tx_key]
    return view


def test_events_emitted_after_serve_started_and_before_any_worker_are_all_handled(
    redis_url: str, workers: list[Worker], tmp_path: Path
) -> None:
    # The order: `tidings serve` on a fresh Redis, five user.created, then a worker.
    with (
        serving(redis_url, tmp_path / "serve.log", **PROJECT_ENV) as base_url,
        client(base_url) as http,
    ):
        keys = emit_users(http, 5)
        event = http.get(f"/events/{keys[0]}").json()
        assert event["processing"]["hasFutureTransactions"] is True
        waiting = handler_view(http, "send-welcome-email")
        assert (waiting["counts"]["waiting"], waiting["served"]) == (5, False)
        assert waiting["oldestWaiting"]["key"] == keys[0]
        health = httpx.get(f"{base_url}/health")
        assert health.status_code == 503
        [test_queue] = [q for q in health.json()["queues"] if q["brokerQueue"] == "tidings.test"]
        assert test_queue["served"] is False and test_queue["workers"] == []
        assert "send-welcome-email" in test_queue["handlers"]
        assert test_queue["oldestWaitingSeconds"] > 0
        assert "tidings.test" in health.json()["message"]

        worker = start_worker(workers, redis_url, tmp_path / "worker.log", **PROJECT_ENV)
        for key in keys:
            wait_until(partial(welcomed, http, key), f"event {key} to be handled")
        wait_until(lambda: httpx.get(f"{base_url}/health").status_code == 200, "health 200")
        served = handler_view(http, "send-welcome-email")
        assert served["counts"]["waiting"] == 0 and served["served"] is True
        assert [w["name"] for w in served["workers"]] == [worker.name]


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidings.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_tidings_subscribe_registers_the_handlers_for_a_release_phase(
    redis_url: str, live_server: str, workers: list[Worker], tmp_path: Path
) -> None:
    done = run_cli("subscribe", REDIS_URL=redis_url, **PROJECT_ENV)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "handlers.billing.record_payment\tinvoice.paid\ttidings",
        "send-welcome-email\tuser.created\ttidings",
        "count-sent-emails\temail.sent\ttidings",
    ]
    assert "3 handler(s) subscribed in test, live" in done.stderr
    # The web process here does not import the handlers: the release phase did it for it.
    with client(live_server, env="live") as http:
        keys = emit_users(http, 3)
        assert handler_view(http, "send-welcome-email")["counts"]["waiting"] == 3
        start_worker(workers, redis_url, tmp_path / "worker.log", **PROJECT_ENV)
        for key in keys:
            wait_until(partial(welcomed, http, key), f"event {key} to be handled")


def test_tidings_subscribe_says_which_handler_module_cannot_be_imported(
    redis_url: str, redis_client: redis.Redis
) -> None:
    done = run_cli("subscribe", REDIS_URL=redis_url, TIDINGS_HANDLERS="no_such_handlers")
    assert done.returncode == 1
    assert "TIDINGS_HANDLERS='no_such_handlers': No module named 'no_such_handlers'" in done.stderr
    assert redis_client.keys(keys.environment("*") + ":*") == []


def test_a_subscription_catches_up_since_its_first_registration_when_it_changes(
    settings: Settings,
) -> None:
    scope = Scope("default", "test")

    async def emit(store: Store, label: str) -> str:
        [event] = await store.emit(
            scope,
            [models.EmitRequest(event="order.paid")],
            platform="custom",
            label=label,
            actor=label,
        )
        return event.key

    async def scenario() -> tuple[list[Any], list[Any], list[Any], str]:
        store = Store.from_settings(settings)
        try:
            await store.create_key("billing", "test")
            await emit(store, "billing")  # before the handler was ever registered
            await asyncio.sleep(0.002)  # not in the millisecond it is registered in, which counts
            shop_only = models.Subscription(
                txKey="ship", eventName="order.paid", label="shop", queue="tidings"
            )
            first = await store.subscribe([shop_only], ["test"])
            missed = await emit(store, "billing")  # not the label it subscribed to then
            unchanged = await store.subscribe([shop_only], ["test"])
            any_label = shop_only.model_copy(update={"label": None})
            widened = await store.subscribe([any_label], ["test"])
            return first, unchanged, widened, missed
        finally:
            await store.close()

    first, unchanged, widened, missed = asyncio.run(scenario())
    assert first == [] and unchanged == []
    assert [(item.key, item.tx_key, queue) for item, queue in widened] == [
        (missed, "ship", "tidings")
    ]


def metric_samples(base_url: str) -> dict[str, float]:
    """Sample (name and labels, as written) -> value."""
    samples = {}
    for family in text_string_to_metric_families(httpx.get(f"{base_url}/metrics").text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def test_one_scrape_of_the_api_sees_what_the_workers_did(
    redis_url: str, workers: list[Worker], tmp_path: Path
) -> None:
    """Workers are other processes: their counts reach /metrics through Redis."""
    start_worker(workers, redis_url, tmp_path / "worker.log", **PROJECT_ENV)
    with (
        serving(redis_url, tmp_path / "serve.log", **PROJECT_ENV) as base_url,
        client(base_url) as http,
    ):
        keys = emit_users(http, 4)
        for key in keys:
            wait_until(partial(welcomed, http, key), f"event {key} to be handled")
        runs = "tidings_handler_runs_total{outcome=finished,tx_key=send-welcome-email}"
        # Each welcome emitted an email.sent, whose handler ran too: 8 transactions in all,
        # counted in broker messages by the workers that ran them.
        transactions = "tidings_dispatch_batch_size_sum{}"
        # Flushed every couple of seconds by each process.
        samples = wait_until(
            lambda: (
                (found := metric_samples(base_url)).get(runs) == 4
                and found.get(transactions) == 8
                and found
            ),
            "the runs",
        )
        welcome = "{tx_key=send-welcome-email}"
        assert samples[f"tidings_handler_duration_seconds_count{welcome}"] == 4
        assert samples[f"tidings_emit_to_start_seconds_count{welcome}"] == 4
        emitted = "tidings_events_emitted_total{environment=test,event_name=user.created}"
        assert samples[emitted] == 4
        waiting = "tidings_events_waiting{environment=test,owner=default,tx_key=send-welcome-email}"
        assert samples[waiting] == 0
