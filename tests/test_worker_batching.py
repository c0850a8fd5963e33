"""The rows of one message share round trips: claims and results go to Redis together."""

import asyncio
import time
from typing import Any

import pytest

from tidings import Message, handler, models
from tidings.celery_app import _run_batch
from tidings.handlers import REGISTRY
from tidings.settings import Settings
from tidings.store import Store
from tidings.work import Claim, Emitted, NewEvent, Result, Scope, WorkItem
from tidings.worker import Runner, Together

SCOPE = Scope("default", "test")


def test_calls_made_while_one_is_on_its_way_go_together_in_the_next() -> None:
    calls: list[list[int]] = []

    async def many(args: list[int]) -> list[int]:
        calls.append(args)
        await asyncio.sleep(0.05)
        return [arg * 10 for arg in args]

    async def scenario() -> list[int]:
        doubled = Together(many)
        first = asyncio.create_task(doubled(1))  # goes alone
        await asyncio.sleep(0.01)  # the first call is on its way
        rest = [asyncio.create_task(doubled(n)) for n in (2, 3, 4)]
        return [await first, *[await task for task in rest]]

    assert asyncio.run(scenario()) == [10, 20, 30, 40]
    assert calls == [[1], [2, 3, 4]]


def test_a_failed_call_fails_each_of_its_callers_and_not_the_next() -> None:
    async def many(args: list[int]) -> list[int]:
        await asyncio.sleep(0)
        if 0 in args:
            raise ConnectionError("Redis away")
        return args

    async def scenario() -> tuple[list[int | BaseException], int]:
        same = Together(many)
        failed = await asyncio.gather(same(0), same(1), return_exceptions=True)
        return list(failed), await same(2)

    failed, later = asyncio.run(scenario())
    assert [type(f) for f in failed] == [ConnectionError, ConnectionError]
    assert later == 2


def test_claims_and_results_of_several_rows_in_one_round_trip_each(settings: Settings) -> None:
    async def scenario() -> tuple[list[Claim | None], list[list[Emitted] | None], models.QueryPage]:
        store = Store.from_settings(settings)
        try:
            paid = [models.EmitRequest(event="order.paid")] * 3
            emitted = await store.emit(SCOPE, paid, platform="custom", label="shop", actor="shop")
            a, b, c = (WorkItem(SCOPE.owner, SCOPE.env, e.key, "ship") for e in emitted)
            assert await store.claim(b, actor="worker-b", lease_ms=60_000) is not None
            claims = await store.claim_many([a, b, c], actor="worker-a", lease_ms=1)
            time.sleep(0.01)  # worker A's lease on c lapses and another worker takes c over
            assert await store.claim(c, actor="worker-c", lease_ms=60_000) is not None
            claim_a, _, claim_c = claims
            assert claim_a is not None and claim_c is not None
            follow_up = [("f" * 32, NewEvent("order.shipped", {}))]
            results = [
                Result(a, claim_a, "finished", "a", follow_up),
                Result(c, claim_c, "finished", "c", []),
            ]
            recorded = await store.finish_many(results, "worker-a")
            shipped = await store.query(SCOPE, models.QueryRequest(eventName="order.shipped"))
            finished = await store.query(
                SCOPE, models.QueryRequest(txKey="ship", txState="finished")
            )
            assert [row.key for row in finished.rows] == [a.key]
            return claims, recorded, shipped
        finally:
            await store.close()

    claims, recorded, shipped = asyncio.run(scenario())
    # b was another worker's already: skipped, while a and c were claimed in the same trip
    assert [claim is None for claim in claims] == [False, True, False]
    # a's result and its follow-up are stored; c's claim had passed to another worker
    assert recorded[0] is not None and [e.key for e in recorded[0]] == ["f" * 32]
    assert recorded[1] is None
    assert shipped.total == 1


@pytest.mark.parametrize("count", [1, 40])
def test_a_message_of_many_rows_runs_each_once(settings: Settings, count: int) -> None:
    ran: list[str] = []

    tx_key = f"batching-row-{count}"

    @handler("batching.row", tx_key=tx_key)
    async def row(event: Message[Any]) -> str:
        ran.append(event.event.key)
        await asyncio.sleep(0.001)
        return event.event.key

    async def scenario() -> models.QueryPage:
        store = Store.from_settings(settings)
        try:
            await store.subscribe([REGISTRY[tx_key].subscription], [SCOPE.env])
            events = [models.EmitRequest(event="batching.row")] * count
            emitted = await store.emit(SCOPE, events, platform="custom", label="s", actor="s")
            runner = Runner(store, "w", 60_000, lambda _: None)
            rows = [[SCOPE.owner, SCOPE.env, e.key, tx_key, 0] for e in emitted]
            await _run_batch(runner, rows)
            await _run_batch(runner, rows)  # delivered again: nothing runs twice
            query = models.QueryRequest(txKey=tx_key, txState="finished", pageSize=100)
            return await store.query(SCOPE, query)
        finally:
            await store.close()

    finished = asyncio.run(scenario())
    assert finished.total == count
    assert sorted(ran) == sorted(r.key for r in finished.rows)
    assert all(r.processing.isCompleted for r in finished.rows)
