"""The store on a real Redis Cluster (tests/cluster_support.py), one scope's events spread
over six partitions: a query merges them in one order, page after page, with the totals
added; transactions, recovery and re-runs work in every partition."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from pydantic import ValidationError
from redis.cluster import RedisCluster

from tidings import models
from tidings.settings import Settings
from tidings.store import Store, keys
from tidings.work import Scope, WorkItem

PARTITIONS = 6
T = TypeVar("T")
SCOPE = Scope("default", "test")
SHIP = models.Subscription(txKey="ship", eventName="order.paid", queue="tidings")


@pytest.fixture
def cluster_settings(redis_cluster_url: str, redis_url: str) -> Iterator[Settings]:
    client = RedisCluster.from_url(redis_cluster_url)
    client.flushall(target_nodes=RedisCluster.PRIMARIES)
    yield Settings(
        redis_url=redis_cluster_url,
        redis_cluster=True,
        broker_url=redis_url,
        partitions=PARTITIONS,
        ttl_seconds=3600,
    )
    client.close()


def run(settings: Settings, scenario: Callable[[Store], Awaitable[T]]) -> T:
    async def main() -> T:
        store = Store.from_settings(settings)
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(main())


async def emit(store: Store, names: list[str]) -> list[str]:
    events = [models.EmitRequest(event=name, payload={"n": i}) for i, name in enumerate(names)]
    emitted = await store.emit(SCOPE, events, platform="custom", label="shop", actor="shop")
    return [e.key for e in emitted]


async def every_page(store: Store, size: int, **filters: object) -> tuple[int, list[str]]:
    q = models.QueryRequest(pageSize=size, **filters)  # type: ignore[arg-type]
    first = await store.query(SCOPE, q)
    keys_ = [row.key for row in first.rows]
    for page in range(2, first.totalPages + 1):
        rows = (await store.query(SCOPE, q.model_copy(update={"page": page}))).rows
        keys_ += [row.key for row in rows]
    return first.total, keys_


def test_a_query_merges_the_partitions_in_one_order_page_after_page(
    cluster_settings: Settings,
) -> None:
    names = ["order.paid" if i % 3 else "user.created" for i in range(240)]

    async def scenario(store: Store) -> dict[str, Any]:
        emitted: list[str] = []
        for first in range(0, len(names), 40):  # several batches, several milliseconds
            emitted += await emit(store, names[first : first + 40])
        stored = {e: (await store.get_event(SCOPE, e)) for e in emitted}
        order = sorted(emitted, key=lambda k: (stored[k].createdAt, k))
        assert order == emitted  # one process's batches, in the order emitted
        return {
            "order": order,
            "paid": [k for k in order if stored[k].eventName == "order.paid"],
            "oldest": await every_page(store, 7),
            "newest": await every_page(store, 9, newestFirst=True),
            "paid pages": await every_page(store, 5, eventName="order.paid"),
            "partitions": {keys.partition_of(k, PARTITIONS) for k in emitted},
        }

    found = run(cluster_settings, scenario)
    assert found["partitions"] == set(range(PARTITIONS))
    order = found["order"]
    assert found["oldest"] == (240, order)
    assert found["newest"] == (240, order[::-1])
    assert found["paid pages"] == (160, found["paid"])


def test_the_partitions_of_a_scope_live_on_several_nodes(cluster_settings: Settings) -> None:
    run(cluster_settings, lambda store: emit(store, ["order.paid"] * 60))
    cluster = RedisCluster.from_url(cluster_settings.store_url)
    try:
        nodes = {cluster.get_node_from_key(keys.meta(SCOPE, p)).name for p in range(PARTITIONS)}
        stored = sum(cluster.hlen(keys.records(SCOPE, p)) for p in range(PARTITIONS))
    finally:
        cluster.close()
    assert len(nodes) > 1
    assert stored == 60


def test_transactions_recovery_and_reruns_work_in_every_partition(
    cluster_settings: Settings,
) -> None:
    async def scenario(store: Store) -> dict[str, Any]:
        store.grace_ms = 0  # recovery looks at events at once
        await store.subscribe([SHIP], ["test"])
        emitted = await emit(store, ["order.paid"] * 30)
        items = [WorkItem(SCOPE.owner, SCOPE.env, key, "ship") for key in emitted]
        claims = await store.claim_many(items[:20], actor="w", lease_ms=60_000)
        lapsed = await store.claim_many(items[20:25], actor="dead", lease_ms=1)
        for item, claim in zip(items[:20], claims, strict=True):
            assert claim is not None
            state = "failed" if item.key in emitted[:4] else "finished"
            assert await store.finish(item, claim, state, {}, actor="w", follow_ups=[]) == []
        time.sleep(0.01)
        counts = {
            state: (
                await store.query(SCOPE, models.QueryRequest(txKey="ship", txState=state))
            ).total
            for state in ("processing", "finished", "failed", "does-not-exist")
        }
        recovered = await store.recover(["test"], lease_ms=60_000)
        rerun = await store.rerun_failed(
            SCOPE, models.RerunFailedRequest(txKey="ship"), actor="admin", lease_ms=60_000
        )
        return {
            "lapsed": all(claim is not None for claim in lapsed),
            "counts": counts,
            "recovered": sorted(item.key for item, _ in recovered),
            "expected recovered": sorted(emitted[20:]),
            "rerun": sorted(item.key for item, _ in rerun),
            "failed": sorted(emitted[:4]),
        }

    found = run(cluster_settings, scenario)
    assert found["lapsed"]
    assert found["counts"] == {"processing": 5, "finished": 16, "failed": 4, "does-not-exist": 5}
    # lapsed leases and events no worker claimed, from every partition
    assert found["recovered"] == found["expected recovered"]
    assert found["rerun"] == found["failed"]


def test_limits_on_several_nodes_hold_runs_back_and_handlers_show_them(
    cluster_settings: Settings,
) -> None:
    """Each limit's keys in one slot, the registries in another: the flow scripts and the
    read of the runs held back work across nodes."""
    values = [f'"customer-{n}"' for n in range(6)]
    waiting = [keys.flow_limit("concurrency", SCOPE, "ship", v) for v in values]
    rated = keys.flow_limit("rate", SCOPE, "ship", "null")

    async def scenario(store: Store) -> list[models.HandlerView]:
        await store.subscribe([SHIP], ["test"])
        for limit in waiting:
            for n in range(3):  # one runs, two wait
                run_ = f"default|test|{n:032x}|ship|0"
                slot = await store.acquire(limit, run_, f"t{n}", slots=1, lease_ms=60_000)
                if slot.status == "wait":
                    await store.note_waiting(limit, "ship")
        for n in range(3):
            await store.rate(rated, f"default|test|{n:032x}|ship|0", 3_600_000, 60_000)
        # The runs holding the slots run on: their leases are renewed.
        await store.renew_slots([(limit, "t0") for limit in waiting], 120_000)
        return await store.handlers(SCOPE)

    renewed = time.time() * 1000 + 110_000
    [view] = run(cluster_settings, scenario)
    cluster = RedisCluster.from_url(cluster_settings.store_url, decode_responses=True)
    try:
        nodes = {cluster.get_node_from_key(keys.flow_waiting(limit)).name for limit in waiting}
        leases = [cluster.zscore(keys.flow_slots(limit), "t0") for limit in waiting]
        lasts = [cluster.pttl(keys.flow_slots(limit)) for limit in waiting]
    finally:
        cluster.close()
    assert len(nodes) > 1
    assert all(lease > renewed for lease in leases) and min(lasts) > 110_000
    assert (view.counts.waitingForSlot, view.counts.waitingForRate) == (12, 2)
    assert sorted((h.reason, h.keyValue, h.runs) for h in view.heldBack) == [
        *(("concurrency", v, 2) for v in values),
        ("rate", "null", 2),
    ]


def test_a_cluster_without_a_broker_of_its_own_is_refused_saying_what_to_do(
    redis_cluster_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIDINGS_BROKER_URL", raising=False)
    with pytest.raises(ValidationError, match="needs TIDINGS_BROKER_URL: Celery's Redis"):
        Settings(redis_url=redis_cluster_url, redis_cluster=True)
