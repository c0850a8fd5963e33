"""Delayed events and retries wait in Redis's due sets, not in a worker: they start on time
(never early), once, across a worker's restart. Handlers record when they start
(tests/e2e_handlers.py), on the machine's one clock.

"On time" is within ON_TIME_SECONDS of the due time: well before the safety nets that would
also hand the work out in the end (a retry's lease lapses 3 s after its due time here, a
delayed event is looked at by recovery 30 s after), so the checks tell them apart.
"""

import asyncio
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from worker_support import Worker, handled, spans, wait_until

from tidings import models
from tidings.clock import now_ms
from tidings.settings import Settings
from tidings.store import Store
from tidings.work import Scope

ON_TIME_SECONDS = 1.5


def started_at(redis_client: redis.Redis, name: str) -> list[float]:
    return [started for started, _, _ in spans(redis_client, name)]


def test_a_delayed_event_is_stored_at_once_and_handled_when_due_across_a_restart(
    http: httpx.Client, start_workers: Callable[[int], list[Worker]], redis_client: redis.Redis
) -> None:
    [first] = start_workers(1)
    answer = http.post("/emit", json={"event": "e2e.delayed", "payload": {}, "delay": 8000})
    assert answer.status_code == 200, answer.text
    key = answer.json()["key"]

    event = http.get(f"/events/{key}").json()
    assert event["deliverAt"] == pytest.approx(event["createdAt"] + 8000, abs=1000)
    assert event["transactions"] == [] and event["processing"]["hasFutureTransactions"]
    page = http.post("/query", json={"eventName": "e2e.delayed"}).json()
    assert [row["key"] for row in page["rows"]] == [key]
    assert page["rows"][0]["deliverAt"] == event["deliverAt"]

    first.kill()  # no worker holds the delayed event: one started later handles it
    start_workers(1)
    handled(http, key, timeout=30)
    [started] = started_at(redis_client, f"delayed:{key}")
    due = event["deliverAt"] / 1000
    assert due <= started < due + ON_TIME_SECONDS


def test_a_batch_mixes_delayed_and_immediate_events(
    http: httpx.Client, start_workers: Callable[[int], list[Worker]], redis_client: redis.Redis
) -> None:
    start_workers(1)
    due = now_ms() + 3000
    events = [
        {"event": "e2e.delayed", "payload": {}},
        {"event": "e2e.delayed", "payload": {}, "deliverAt": due},
        {"event": "e2e.delayed", "payload": {}, "deliverAt": now_ms() - 60_000},  # due: at once
    ]
    answer = http.post("/emit/batch", json={"events": events})
    assert answer.status_code == 200, answer.text
    now, later, past = answer.json()["keys"]

    handled(http, now)
    handled(http, past)
    assert not http.get(f"/events/{later}").json()["transactions"]
    handled(http, later)
    [started] = started_at(redis_client, f"delayed:{later}")
    assert due / 1000 <= started < due / 1000 + ON_TIME_SECONDS
    assert len(started_at(redis_client, f"delayed:{now}")) == 1


def test_a_retry_comes_from_the_due_set_on_time_across_a_restart(
    http: httpx.Client, start_workers: Callable[[int], list[Worker]], redis_client: redis.Redis
) -> None:
    [first] = start_workers(1)
    key = http.post("/emit", json={"event": "e2e.retried-later", "payload": {}}).json()["key"]

    def failed_once() -> dict[str, Any] | None:
        [tx] = http.get(f"/events/{key}").json()["transactions"] or [None]
        return tx if tx and len(tx["history"]) == 2 else None

    tx = wait_until(failed_once, "the first attempt to fail")
    first.kill()  # during the backoff: the retry is in Redis, not in the killed worker
    start_workers(1)
    done = handled(http, key)

    failure = tx["history"][-1]
    backoff = float(re.search(r"retrying in ([\d.]+)s", failure["reason"]).group(1))  # type: ignore[union-attr]
    due = failure["timestamp"] / 1000 + backoff
    [tx] = done["transactions"]
    assert tx["state"] == "finished" and tx["attempts"] == 2
    first_run, retry = sorted(started_at(redis_client, f"retried-later:{key}"))
    assert due - 0.1 <= retry < due + ON_TIME_SECONDS  # 0.1: the reason rounds the backoff


@pytest.mark.parametrize(
    "event, why",
    [
        ({"delay": 1000, "deliverAt": 1}, "delay or deliverAt, not both"),
        ({"delay": -1}, "greater than or equal to 0"),
        ({"delay": "soon"}, "valid integer"),
        ({"delay": 40 * 24 * 3600 * 1000}, "after its retention"),
    ],
)
def test_a_due_time_that_cannot_work_is_refused_and_nothing_is_stored(
    http: httpx.Client, snapshot: Callable[[], dict[str, object]], event: dict[str, Any], why: str
) -> None:
    before = snapshot()
    for path, body in (
        ("/emit", {"event": "e2e.delayed", **event}),
        ("/emit/batch", {"events": [{"event": "e2e.delayed"}, {"event": "e2e.delayed", **event}]}),
    ):
        answer = http.post(path, json=body)
        assert answer.status_code in (400, 422), answer.text
        assert why in answer.text
    assert snapshot() == before


def test_what_comes_due_is_taken_once_among_many_takers(settings: Settings) -> None:
    """Workers take from the due sets concurrently: each item goes to one of them."""
    scope = Scope("default", "test")

    async def scenario() -> tuple[list[str], list[str], list[str]]:
        store = Store.from_settings(settings)
        try:
            subscription = models.Subscription(eventName="later", txKey="t", queue="q")
            await store.subscribe([subscription], ["test"])
            due = now_ms() + 300
            stored = await store.emit(
                scope,
                [models.EmitRequest(event="later", deliverAt=due) for _ in range(200)],
                platform="custom",
                label="shop",
                actor="test",
            )
            assert all(e.delayed and e.work(scope) == [] for e in stored)
            early = [item.key for item, _ in (await store.take_due(["test"])).items]
            await asyncio.sleep(max(0, due - now_ms()) / 1000)
            takers = [store.take_due(["test"], limit=30) for _ in range(8)]
            taken = [item.key for t in await asyncio.gather(*takers) for item, _ in t.items]
            while (more := await store.take_due(["test"])).items:
                taken += [item.key for item, _ in more.items]
            return early, taken, [e.key for e in stored]
        finally:
            await store.close()

    early, taken, stored = asyncio.run(scenario())
    assert early == []  # not yet due
    assert sorted(taken) == sorted(stored)


def test_a_delayed_event_waits_for_its_time_not_for_a_worker(
    api: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    """/handlers and /health count it as waiting, but not as the oldest due one."""

    async def subscribe() -> None:
        store = Store.from_settings(settings)
        try:
            sub = models.Subscription(eventName="later", txKey="t", queue="q")
            await store.subscribe([sub], ["test"])
        finally:
            await store.close()

    asyncio.run(subscribe())
    api.post("/emit", json={"event": "later", "delay": 3_600_000}, headers=headers)
    [view] = api.get("/handlers", headers=headers).json()
    assert view["counts"]["waiting"] == 1 and view["oldestWaiting"] is None
    [queue] = api.get("/health").json()["queues"]
    assert queue["oldestWaitingSeconds"] is None

    key = api.post("/emit", json={"event": "later"}, headers=headers).json()["key"]
    [view] = api.get("/handlers", headers=headers).json()
    assert view["counts"]["waiting"] == 2 and view["oldestWaiting"]["key"] == key
    [queue] = api.get("/health").json()["queues"]
    assert queue["oldestWaitingSeconds"] is not None
