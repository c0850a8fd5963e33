"""End to end: the API over HTTP, a real Redis, and real Celery worker processes."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from conftest import client_of, serving
from redis_support import on_cluster
from worker_support import Worker, wait_until

from tidings.celery_app import RUN_TASK, create_celery
from tidings.settings import Settings


@pytest.fixture(autouse=True)
def broker_of_the_cluster_run(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On `make test`'s cluster run, the broker is RabbitMQ (skipped, saying why, where it does
    not answer): the scale-out configuration as a whole."""
    if on_cluster():
        monkeypatch.setenv("TIDINGS_BROKER_URL", request.getfixturevalue("rabbitmq_url"))


@pytest.fixture
def start_worker(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def start(**env: str) -> Worker:
        log_path = tmp_path / f"worker{len(workers)}.log"
        worker = Worker(settings.store_url, log_path, env)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.kill()


def emit(http: httpx.Client, name: str, payload: Any = None) -> str:
    answer = http.post("/emit", json={"event": name, "payload": payload or {}})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["key"])


def wait_for(
    http: httpx.Client, key: str, done: Callable[[dict[str, Any]], bool], timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        event: dict[str, Any] = http.get(f"/events/{key}").json()
        if done(event):
            return event
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; the event is {event}")
        time.sleep(0.05)


def completed(event: dict[str, Any]) -> bool:
    return bool(event["processing"]["isCompleted"])


def tx(event: dict[str, Any], tx_key: str) -> dict[str, Any]:
    [found] = [t for t in event["transactions"] if t["txKey"] == tx_key]
    return found


def runs(redis_client: redis.Redis, tx_key: str, key: str) -> int:
    return int(redis_client.get(f"test:runs:{tx_key}:{key}") or 0)


def test_an_emitted_event_is_handled_and_its_transaction_recorded(http, start_worker, redis_client):
    start_worker()
    key = emit(http, "e2e.echo", {"n": 1})
    event = wait_for(http, key, completed)
    echo = tx(event, "echo")
    assert echo["state"] == "finished"
    assert echo["output"] == {"echo": {"n": 1}, "fullName": "custom.shop.e2e.echo"}
    assert [(h["enterState"], h["exitState"]) for h in echo["history"]] == [
        ("processing", None),
        ("finished", "processing"),
    ]
    assert echo["endedAt"] >= echo["startedAt"] >= event["createdAt"]
    assert event["state"] == "finished"
    assert event["processing"] == {
        "hasTransactions": True,
        "totalTransactions": 1,
        "hasFutureTransactions": False,
        "isCompleted": True,
    }
    assert runs(redis_client, "echo", key) == 1


def test_the_api_knows_a_subscribed_handler_before_it_runs(http, start_worker):
    worker = start_worker()
    worker.stop()
    key = emit(http, "e2e.echo")
    event = http.get(f"/events/{key}").json()
    assert event["processing"]["hasFutureTransactions"] is True
    assert event["processing"]["isCompleted"] is False
    assert event["state"] == "pending"


def test_a_worker_handles_only_its_environments(http, live_server, start_worker):
    start_worker(TIDINGS_ENVIRONMENTS="live")
    admin = {"Authorization": "Bearer admin-secret"}
    live = http.post("/admin/keys", json={"name": "shop", "env": "live"}, headers=admin).json()
    test_key = emit(http, "e2e.echo")
    with httpx.Client(base_url=live_server, headers={"X-Buildable-Secret": live["secret"]}) as prod:
        live_key = emit(prod, "e2e.echo")
        assert tx(wait_for(prod, live_key, completed), "echo")["state"] == "finished"
    test_event = http.get(f"/events/{test_key}").json()
    assert test_event["processing"]["hasFutureTransactions"] is False  # nobody subscribed in test
    assert test_event["transactions"] == []


def test_fan_out_gives_each_handler_its_own_transaction(http, start_worker):
    start_worker()
    key = emit(http, "e2e.fan")
    event = wait_for(http, key, completed)
    outputs = {t["txKey"]: (t["state"], t["output"]) for t in event["transactions"]}
    assert outputs == {
        "fan-a": ("finished", "a"),
        "fan-b": ("finished", "b"),
        "fan-c": ("finished", "c"),
    }


def test_a_handler_that_raises_twice_is_retried_until_it_succeeds(http, start_worker, redis_client):
    start_worker()
    key = emit(http, "e2e.flaky")
    flaky = tx(wait_for(http, key, completed), "flaky")
    assert flaky["state"] == "finished"
    assert flaky["output"] == {"attempt": 3}
    assert flaky["attempts"] == 3
    reasons = [h.get("reason") or "" for h in flaky["history"]]
    assert sum("attempt 1 failed: RuntimeError: flaky attempt 1" in r for r in reasons) == 1
    assert sum("attempt 2 failed: RuntimeError: flaky attempt 2" in r for r in reasons) == 1
    assert flaky["history"][-1]["enterState"] == "finished"
    assert runs(redis_client, "flaky", key) == 3


def test_a_handler_that_always_raises_ends_failed_with_the_error(http, start_worker, redis_client):
    start_worker()
    key = emit(http, "e2e.broken")
    event = wait_for(http, key, completed)
    broken = tx(event, "broken")
    assert broken["state"] == "failed"
    error = broken["output"]["error"]
    assert (error["type"], error["message"]) == ("ValueError", "always broken")
    assert "Traceback" in error["traceback"] and "e2e_handlers.py" in error["traceback"]
    assert runs(redis_client, "broken", key) == 3  # the first attempt and max_retries=2
    assert event["state"] == "failed"


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        ("e2e.typed", {"id": "not a number", "total": 1}, "the payload does not fit"),
        ("e2e.unserialisable", {}, "not JSON-serialisable"),
    ],
)
def test_bad_payloads_and_outputs_fail_at_once_without_retry(
    http, start_worker, name, payload, message
):
    start_worker()
    key = emit(http, name, payload)
    [failed] = wait_for(http, key, completed)["transactions"]
    assert failed["state"] == "failed"
    assert message in failed["output"]["error"]["message"]
    assert failed["attempts"] == 1


def test_a_typed_handler_gets_its_validated_payload(http, start_worker):
    start_worker()
    key = emit(http, "e2e.typed", {"id": 7, "total": 12.5})
    assert tx(wait_for(http, key, completed), "typed")["output"] == {"total": 12.5}


def test_a_handler_can_emit_a_follow_up_event(http, start_worker):
    start_worker()
    key = emit(http, "e2e.chain")
    follow_up_key = tx(wait_for(http, key, completed), "chain")["output"]
    follow_up = wait_for(http, follow_up_key, completed)
    assert follow_up["eventName"] == "e2e.echo"
    assert follow_up["label"] == "shop"
    assert tx(follow_up, "echo")["output"]["echo"] == {"from": key}


def test_a_handler_can_emit_a_follow_up_event_for_later(http, start_worker):
    start_worker()
    key = emit(http, "e2e.chain-later", {"delay": 1500})
    chained = wait_for(http, key, completed)
    follow_up = http.get(f"/events/{tx(chained, 'chain-later')['output']}").json()
    ended = tx(chained, "chain-later")["history"][-1]["timestamp"]
    assert ended <= follow_up["deliverAt"] <= ended + 1500  # due 1.5 s after it was emitted
    assert not completed(follow_up)  # stored at once, its handler waits for its time
    echoed = wait_for(http, follow_up["key"], completed)
    assert tx(echoed, "echo")["createdAt"] >= follow_up["deliverAt"]


def test_a_worker_killed_mid_handler_is_replaced_by_another(http, start_worker, redis_client):
    first = start_worker()
    key = emit(http, "e2e.slow")
    deadline = time.monotonic() + 20
    while not redis_client.get(f"test:started:{key}"):
        assert time.monotonic() < deadline, "the handler never started"
        time.sleep(0.05)
    first.kill()
    start_worker()
    slow = tx(wait_for(http, key, completed, timeout=30), "slow")
    assert slow["state"] == "finished"
    assert slow["output"] == {"attempt": 2}
    assert any(h.get("reason") == "lease expired: claimed again" for h in slow["history"])
    assert runs(redis_client, "slow", key) == 2


def test_a_redelivered_message_does_not_run_a_finished_handler_again(
    http, start_worker, redis_client, settings
):
    start_worker()
    key = emit(http, "e2e.echo")
    before = tx(wait_for(http, key, completed), "echo")
    # Deliver the same transaction again, followed by a fresh one in the same message:
    # once the fresh one has run, the duplicate has been seen.
    fresh = emit(http, "e2e.fan")
    celery = create_celery(settings, import_handlers=False)
    rows = [["default", "test", key, "echo", 0], ["default", "test", fresh, "fan-a", 0]]
    celery.send_task(RUN_TASK, args=[rows], queue="tidings.test")
    wait_for(http, fresh, completed)
    assert runs(redis_client, "echo", key) == 1
    assert tx(http.get(f"/events/{key}").json(), "echo") == before


def test_events_emitted_while_no_worker_runs_are_handled_when_one_starts(http, start_worker):
    start_worker().stop()  # its handlers are subscribed from now on
    keys = [emit(http, "e2e.echo", {"n": n}) for n in range(5)]
    time.sleep(0.5)
    assert not any(http.get(f"/events/{k}").json()["transactions"] for k in keys)
    start_worker()
    for n, key in enumerate(keys):
        assert tx(wait_for(http, key, completed), "echo")["output"]["echo"] == {"n": n}


def test_a_handler_with_since_backfills_events_from_before_it_existed(http, start_worker):
    keys = [emit(http, "e2e.old", {"n": n}) for n in range(3)]
    assert all(
        http.get(f"/events/{k}").json()["processing"]["hasFutureTransactions"] is False
        for k in keys
    )
    start_worker()
    for key in keys:
        assert tx(wait_for(http, key, completed), "backfill")["output"] == {"backfilled": True}


def test_a_lost_broker_message_is_recovered(settings, start_worker, tmp_path):
    """The message is taken off the broker's queue once it is there; recovery hands the
    event out again once the API's grace (1 s here) has passed."""
    start_worker().stop()
    app = create_celery(Settings(redis_url=settings.store_url), import_handlers=False)
    server = serving(settings.store_url, tmp_path / "serve.log", TIDINGS_GRACE_SECONDS="1")
    with server as base, client_of(base) as http:
        key = emit(http, "e2e.echo")
        with app.connection_for_write() as connection:
            purged = lambda: connection.default_channel.queue_purge("tidings.test")  # noqa: E731
            wait_until(purged, "the message to be in the queue, and then lost", timeout=10)
        start_worker()
        assert tx(wait_for(http, key, completed), "echo")["state"] == "finished"


@pytest.fixture
def rabbitmq(monkeypatch: pytest.MonkeyPatch) -> str:
    """RabbitMQ as the broker (API and workers), where one runs; Redis stays the store."""
    url = os.environ.get("TIDINGS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=0.5).close()
    except OSError:
        pytest.skip("no RabbitMQ on 127.0.0.1:5672 (set TIDINGS_TEST_AMQP_URL to test one)")
    monkeypatch.setenv("TIDINGS_BROKER_URL", url)
    return url


def test_rabbitmq_works_as_the_broker(rabbitmq, http, start_worker):
    worker = start_worker()
    keys = [emit(http, "e2e.flaky") for _ in range(3)]  # retries go through the broker too
    for key in keys:
        assert tx(wait_for(http, key, completed), "flaky")["output"] == {"attempt": 3}
    assert "transport:   amqp://guest:**@127.0.0.1:5672//" in worker.log_path.read_text()


def switch_on(redis_client: redis.Redis, *keys: str) -> None:
    for key in keys:
        redis_client.set(f"test:on:{key}", "1")


def test_a_failed_transaction_is_rerun_and_keeps_its_history(http, start_worker, redis_client):
    start_worker()
    key = emit(http, "e2e.toggle")
    assert tx(wait_for(http, key, completed), "toggle")["state"] == "failed"
    switch_on(redis_client, key)
    answer = http.post(f"/events/{key}/rerun", json={"txKey": "toggle"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["rerun"] == [[key, "toggle"]]
    toggled = tx(wait_for(http, key, completed), "toggle")
    assert (toggled["state"], toggled["output"]) == ("finished", "on")
    assert [(h["enterState"], h.get("reason")) for h in toggled["history"]] == [
        ("processing", None),
        ("failed", None),
        ("processing", "re-run"),
        ("processing", "attempt 1"),
        ("finished", None),
    ]
    again = http.post(f"/events/{key}/rerun", json={"txKey": "toggle"})
    assert again.status_code == 409 and "only a failed one" in again.json()["message"]


def test_all_failed_transactions_of_a_handler_are_rerun(http, start_worker, redis_client):
    start_worker()
    keys = [emit(http, "e2e.toggle") for _ in range(3)]
    untouched = emit(http, "e2e.toggle")
    for key in [*keys, untouched]:
        wait_for(http, key, completed)
    switch_on(redis_client, *keys, untouched)
    window = {"since": http.get(f"/events/{keys[0]}").json()["createdAt"]}
    window["until"] = http.get(f"/events/{untouched}").json()["createdAt"]
    answer = http.post("/rerun", json={"txKey": "toggle", "eventName": "e2e.toggle", **window})
    assert sorted(k for k, _ in answer.json()["rerun"]) == sorted(keys)
    for key in keys:
        assert tx(wait_for(http, key, completed), "toggle")["state"] == "finished"
    assert tx(http.get(f"/events/{untouched}").json(), "toggle")["state"] == "failed"


def test_the_handlers_view_shows_subscriptions_workers_and_counts(http, start_worker):
    worker = start_worker()
    done = emit(http, "e2e.echo")
    wait_for(http, done, completed)
    worker.stop()
    waiting = [emit(http, "e2e.echo") for _ in range(2)]
    views = {view["txKey"]: view for view in http.get("/handlers").json()}
    assert {"echo", "flaky", "fan-a", "backfill"} <= set(views)
    echo = views["echo"]
    assert (echo["eventName"], echo["platform"], echo["label"]) == ("e2e.echo", "custom", None)
    assert echo["counts"] == {
        "processing": 0,
        "finished": 1,
        "failed": 0,
        "waiting": 2,
        "waitingForSlot": 0,
        "waitingForRate": 0,
    }
    assert echo["heldBack"] == []
    assert echo["oldestWaiting"]["key"] == waiting[0]
    seen = echo["workers"] + echo["goneWorkers"]  # live or gone: it has just stopped
    assert [w["name"] for w in seen] == [worker.name]


@pytest.mark.parametrize("how", ["one", "all failed"])
def test_the_cli_reruns_failed_transactions(http, start_worker, redis_client, settings, how):
    start_worker()
    key = emit(http, "e2e.toggle")
    wait_for(http, key, completed)
    switch_on(redis_client, key)
    which = [key] if how == "one" else ["--failed", "--event-name", "e2e.toggle"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tidings.cli",
            "rerun",
            *which,
            "--tx-key",
            "toggle",
            "--env",
            "test",
        ],
        env={**os.environ, "REDIS_URL": settings.store_url},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [key, "toggle"]
    assert tx(wait_for(http, key, completed), "toggle")["state"] == "finished"


def test_a_handler_running_longer_than_its_lease_is_not_claimed_again(
    http, start_worker, redis_client
):
    start_worker()
    key = emit(http, "e2e.long")
    long = tx(wait_for(http, key, completed), "long")
    assert (long["state"], long["attempts"]) == ("finished", 1)
    assert runs(redis_client, "long", key) == 1
    assert not any(h.get("reason") for h in long["history"])


def test_a_worker_for_some_owners_leaves_the_others_events_alone(http, live_server, start_worker):
    start_worker(TIDINGS_OWNERS="default")
    admin = {"Authorization": "Bearer admin-secret"}
    body = {"name": "shop", "env": "test", "owner": "team-b"}
    other = http.post("/admin/keys", json=body, headers=admin).json()
    with httpx.Client(base_url=live_server, headers={"X-Buildable-Secret": other["secret"]}) as b:
        theirs = emit(b, "e2e.echo")
        mine = emit(http, "e2e.echo")
        assert tx(wait_for(http, mine, completed), "echo")["state"] == "finished"
        event = b.get(f"/events/{theirs}").json()
        assert event["processing"]["hasFutureTransactions"] is False
        assert event["transactions"] == []
        assert b.get("/handlers").json() == []  # team-b sees no handler of another team
    assert {v["txKey"] for v in http.get("/handlers").json()} >= {"echo"}
