"""A worker's result counts only while its claim stands: the store's side, without a broker."""

import asyncio
import time

from tidings import models
from tidings.settings import Settings
from tidings.store import Store, WorkItem
from tidings.store.keys import Scope

SCOPE = Scope("default", "test")


def test_a_stale_worker_cannot_end_a_transaction_another_worker_took_over(
    settings: Settings,
) -> None:
    async def scenario() -> tuple[object, object, models.EventWithTransactions, int]:
        store = Store.from_settings(settings)
        try:
            [event] = await store.emit(
                SCOPE,
                [models.EmitRequest(event="order.paid")],
                platform="custom",
                label="shop",
                actor="shop",
            )
            item = WorkItem(SCOPE.owner, SCOPE.env, event.key, "ship")
            slow = await store.claim(item, actor="worker-a", lease_ms=1)
            time.sleep(0.01)  # worker A's lease lapses
            taker = await store.claim(item, actor="worker-b", lease_ms=60_000)
            assert slow is not None and taker is not None
            follow_up = [("f" * 32, models.EmitRequest(event="order.shipped"))]
            stale = await store.finish(
                item, slow, "finished", "by a", actor="worker-a", follow_ups=follow_up
            )
            fresh = await store.finish(
                item, taker, "finished", "by b", actor="worker-b", follow_ups=[]
            )
            shipped = await store.query(SCOPE, models.QueryRequest(eventName="order.shipped"))
            return stale, fresh, await store.get_event(SCOPE, event.key), shipped.total
        finally:
            await store.close()

    stale, fresh, event, shipped = asyncio.run(scenario())
    assert stale is None  # nothing stored for the stale worker: no result, no follow-up
    assert fresh == []
    [tx] = event.transactions
    assert (tx.state, tx.output, tx.attempts) == ("finished", "by b", 2)
    assert shipped == 0
