"""/health names the handlers that no live worker runs, even where their queue is consumed.

The workers here are heartbeat records written as a worker of other code would write them
(a rolling deploy: an older worker consumes the queue but lacks a new handler); the
real-process tests of /health are in test_deploy_order.py and test_canary.py.
"""

import asyncio

from fastapi.testclient import TestClient

from tidings import models
from tidings.clock import now_ms
from tidings.settings import Settings
from tidings.store import Store


def subscription(tx_key: str) -> models.Subscription:
    return models.Subscription(
        txKey=tx_key, eventName="order.paid", platform="custom", queue="tidings"
    )


def record(settings: Settings, *handlers: str) -> None:
    """Subscribe ship-order and bill-order, and a live worker on tidings.test running these."""
    now = now_ms()
    beat = models.WorkerBeat(
        name="older-code:1",
        startedAt=now,
        lastSeen=now,
        heartbeatMs=2000,
        environments=["test"],
        owners=None,
        handlers=list(handlers),
        queues={"tidings.test": models.QueueReceipts(receivedAt=now)},
        directQueue="tidings.worker.older-code:1",
    )

    async def go() -> None:
        store = Store.from_settings(settings)
        await store.subscribe([subscription("ship-order"), subscription("bill-order")], ["test"])
        await store.heartbeat(beat)
        await store.close()

    asyncio.run(go())


def test_a_handler_no_live_worker_runs_makes_health_fail(
    api: TestClient, settings: Settings
) -> None:
    record(settings, "ship-order")
    answer = api.get("/health")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"]
    report = answer.json()
    [queue] = [q for q in report["queues"] if q["environment"] == "test"]
    assert queue["served"] is True
    assert queue["handlersWithoutWorker"] == ["bill-order"]
    assert "runs bill-order" in report["message"]


def test_health_is_ok_once_a_live_worker_runs_every_handler(
    api: TestClient, settings: Settings
) -> None:
    record(settings, "ship-order", "bill-order")
    answer = api.get("/health")
    assert answer.status_code == 200, answer.text
    [queue] = answer.json()["queues"]
    assert queue["handlersWithoutWorker"] == []
