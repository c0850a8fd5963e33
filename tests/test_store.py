"""The store under races and abuse, driven directly (no broker, no HTTP)."""

import asyncio
import time
from collections.abc import Callable

import pytest
import redis

from tidings import models
from tidings.settings import Settings
from tidings.store import Store, keys
from tidings.store.subscriptions import CLEANUP_BUDGET
from tidings.work import Claim, Emitted, NewEvent, Scope, WorkItem

SCOPE = Scope("default", "test")
SHIP = models.Subscription(txKey="ship", eventName="order.paid", queue="tidings")


async def emit_paid(store: Store, scope: Scope = SCOPE, count: int = 1) -> list[Emitted]:
    paid = [models.EmitRequest(event="order.paid")] * count
    return await store.emit(scope, paid, platform="custom", label="shop", actor="shop")


def test_a_stale_worker_cannot_end_a_transaction_another_worker_took_over(
    settings: Settings,
) -> None:
    async def scenario() -> tuple[object, object, models.EventWithTransactions, int]:
        store = Store.from_settings(settings)
        try:
            [event] = await emit_paid(store)
            item = WorkItem(SCOPE.owner, SCOPE.env, event.key, "ship")
            slow = await store.claim(item, actor="worker-a", lease_ms=1)
            time.sleep(0.01)  # worker A's lease lapses
            taker = await store.claim(item, actor="worker-b", lease_ms=60_000)
            assert slow is not None and taker is not None
            follow_up = [("f" * 32, NewEvent("order.shipped", {}))]
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


def test_recovery_of_one_environment_is_not_hidden_by_another_backlog(settings: Settings) -> None:
    async def scenario() -> list[tuple[WorkItem, str]]:
        store = Store(Store.from_settings(settings).redis, ttl_seconds=3600, grace_ms=0)
        try:
            sub = models.Subscription(txKey="ship", eventName="order.paid", queue="tidings")
            await store.subscribe([sub], ["test", "live"])
            await emit_paid(store, count=5)  # no test worker runs: these wait
            [live] = await emit_paid(store, Scope("default", "live"))
            found = await store.recover(["live"], lease_ms=60_000, limit=2)
            assert [(item.key, item.env) for item, _ in found] == [(live.key, "live")]
            return found
        finally:
            await store.close()

    assert asyncio.run(scenario())[0][1] == "tidings"


def test_a_lapsed_lease_handed_out_by_recovery_is_claimed_again(settings: Settings) -> None:
    async def scenario() -> models.Transaction:
        store = Store.from_settings(settings)
        try:
            sub = models.Subscription(txKey="ship", eventName="order.paid", queue="tidings")
            await store.subscribe([sub], ["test"])
            [event] = await emit_paid(store)
            item = WorkItem(SCOPE.owner, SCOPE.env, event.key, "ship")
            assert await store.claim(item, actor="dead-worker", lease_ms=1) is not None
            time.sleep(0.01)
            [(handed_out, queue)] = await store.recover(["test"], lease_ms=60_000)
            assert (handed_out, queue) == (item, "tidings")
            assert await store.recover(["test"], lease_ms=60_000) == []  # once a period
            taker = await store.claim(handed_out, actor="worker-b", lease_ms=60_000)
            assert taker is not None and taker.attempt == 2
            [tx] = (await store.get_event(SCOPE, event.key)).transactions
            return tx
        finally:
            await store.close()

    tx = asyncio.run(scenario())
    assert tx.history[-1].reason == "lease expired: claimed again"


def test_concurrent_creates_of_a_revoked_name_make_one_key(settings: Settings) -> None:
    async def scenario() -> tuple[int, list[models.SecretKey]]:
        store = Store.from_settings(settings)
        try:
            await store.create_key("billing", "live")
            await store.revoke_key("billing", "live")
            results = await asyncio.gather(
                *(store.create_key("billing", "live") for _ in range(20)), return_exceptions=True
            )
            made = [r for r in results if isinstance(r, models.SecretKey)]
            for secret in (r.secret for r in made):
                assert secret is not None
                await store.authenticate(secret)
            return len(made), await store.list_keys()
        finally:
            await store.close()

    made, listed = asyncio.run(scenario())
    assert made == 1
    assert [(k.name, k.revokedAt is None) for k in listed] == [("billing", True)]


def test_does_not_exist_queries_are_answered_without_building_anything(
    settings: Settings,
) -> None:
    async def fill() -> None:
        store = Store.from_settings(settings)
        try:
            [event, *_] = await emit_paid(store, count=3)
            await store.init(SCOPE, event.key, "tx7", actor="shop")
        finally:
            await store.close()

    async def query() -> list[int]:
        store = Store.from_settings(settings)
        try:
            totals = []
            for n in range(260):
                q = models.QueryRequest(txKey=f"tx{n}", txState="does-not-exist")
                totals.append((await store.query(SCOPE, q)).total)
            return totals
        finally:
            await store.close()

    client = redis.Redis.from_url(settings.store_url)
    asyncio.run(fill())
    written = {key: client.dump(key) for key in client.scan_iter()}
    assert asyncio.run(query()) == [3] * 7 + [2] + [3] * 252
    assert {key: client.dump(key) for key in client.scan_iter()} == written


def test_an_unsubscribed_handler_is_no_longer_expected(settings: Settings) -> None:
    async def scenario() -> tuple[list[str], list[Emitted], list[Emitted], list[str]]:
        store = Store.from_settings(settings)
        try:
            sub = models.Subscription(txKey="ship", eventName="order.paid", queue="tidings")
            await store.subscribe([sub], ["test", "live"])
            before = await emit_paid(store)
            forgotten = await store.unsubscribe("ship", ["test", "live"])
            after = await emit_paid(store)
            views = [view.txKey for view in await store.handlers(SCOPE)]
            return forgotten, before, after, views
        finally:
            await store.close()

    forgotten, before, after, views = asyncio.run(scenario())
    assert forgotten == ["test", "live"]
    assert [e.routes for e in before] == [[("ship", "tidings")]]
    assert [e.routes for e in after] == [[]]
    assert views == []


def test_an_event_keeps_its_own_headers_and_query_and_its_handler_gets_them(
    settings: Settings,
) -> None:
    paid = NewEvent(
        "invoice.paid",
        {"id": "in_1"},
        headers={"stripe-signature": "t=1,v1=ab"},
        query={"source": "cli", "tag": ["a", "b"]},
    )

    async def scenario() -> tuple[models.EventWithTransactions, Claim | None]:
        store = Store.from_settings(settings)
        try:
            plain = models.EmitRequest(event="invoice.paid")
            [event, other] = await store.emit(
                SCOPE, [paid, plain], platform="stripe", label="payments", actor="webhook"
            )
            claim = await store.claim(
                WorkItem(SCOPE.owner, SCOPE.env, event.key, "book"), actor="w", lease_ms=60_000
            )
            assert (await store.get_event(SCOPE, other.key)).headers == {}
            return await store.get_event(SCOPE, event.key), claim
        finally:
            await store.close()

    stored, claim = asyncio.run(scenario())
    assert (stored.platform, stored.label, stored.fullName) == (
        "stripe",
        "payments",
        "stripe.payments.invoice.paid",
    )
    assert (stored.headers, stored.query) == (paid.headers, paid.query)
    assert claim is not None and (claim.headers, claim.query) == (paid.headers, paid.query)


def test_an_idempotency_key_seen_before_answers_the_first_event_and_stores_nothing(
    settings: Settings, snapshot: Callable[[], dict[str, object]]
) -> None:
    def delivery(n: int, key: str = "evt_1") -> NewEvent:
        return NewEvent("invoice.paid", {"attempt": n}, idempotency_key=key)

    async def emit(store: Store, *events: NewEvent) -> list[Emitted]:
        return await store.emit(SCOPE, events, platform="stripe", label="payments", actor="webhook")

    async def scenario() -> None:
        store = Store.from_settings(settings)
        try:
            [first] = await emit(store, delivery(1))
            before = snapshot()
            assert await emit(store, delivery(2)) == [Emitted(first.key, [], duplicate=True)]
            assert snapshot() == before
            # Within one batch, and among concurrent emits, the key counts once as well.
            batch = await emit(store, delivery(1, "evt_2"), delivery(2, "evt_2"), delivery(3))
            assert [e.duplicate for e in batch] == [False, True, True]
            assert batch[1].key == batch[0].key and batch[2].key == first.key
            racing = await asyncio.gather(*(emit(store, delivery(n, "evt_3")) for n in range(50)))
            assert len({e.key for [e] in racing}) == 1
            assert sum(not e.duplicate for [e] in racing) == 1
            # Without a key, or with another one, events are stored as ever.
            assert not any(e.duplicate for e in await emit(store, delivery(4, "evt_4")))
            assert not any(e.duplicate for e in await emit(store, NewEvent("invoice.paid")))
        finally:
            await store.close()

    asyncio.run(scenario())
    client = redis.Redis.from_url(settings.store_url, decode_responses=True)
    # evt_1, evt_2, evt_3, evt_4 and the one without a key
    assert client.hlen(keys.records(SCOPE, 0)) == 5
    assert 0 < client.ttl(keys.idempotency(SCOPE, 0, "evt_1")) <= settings.ttl_seconds


def test_an_idempotency_key_lasts_its_time_and_never_past_the_retention(
    settings: Settings,
) -> None:
    async def scenario() -> None:
        store = Store(Store.from_settings(settings).redis, ttl_seconds=600)
        try:
            for key, seconds in (("short", 60), ("long", 86_400)):
                await store.emit(
                    SCOPE,
                    [NewEvent("invoice.paid", idempotency_key=key)],
                    platform="stripe",
                    label="payments",
                    actor="webhook",
                    idempotency_seconds=seconds,
                )
        finally:
            await store.close()

    asyncio.run(scenario())
    client = redis.Redis.from_url(settings.store_url, decode_responses=True)
    assert 0 < client.ttl(keys.idempotency(SCOPE, 0, "short")) <= 60
    assert 60 < client.ttl(keys.idempotency(SCOPE, 0, "long")) <= 600


@pytest.mark.parametrize("with_secret", [False, True], ids=["emit", "emit_with_secret"])
def test_an_emit_after_a_subscription_elsewhere_is_routed_to_it(
    settings: Settings, with_secret: bool
) -> None:
    """A process caches the subscriptions it routes by; one that changed them in another
    process is seen by its next emit (the version read with it, or the partition's; /emit's
    one round trip, once the process knows the key's holder, checks it in its script)."""

    async def scenario() -> tuple[list[Emitted], list[Emitted], list[Emitted]]:
        api, worker = Store.from_settings(settings), Store.from_settings(settings)
        secret = (await api.create_key("shop", "test")).secret

        async def emit() -> list[Emitted]:
            if not with_secret:
                return await emit_paid(api)
            _, emitted = await api.emit_with_secret(secret, [NewEvent("order.paid")])
            return emitted

        try:
            before = await emit()  # caches "no handler for order.paid"
            await worker.subscribe([SHIP], ["test"])
            after = await emit()
            await worker.unsubscribe("ship", ["test"])
            gone = await emit()
            return before, after, gone
        finally:
            await api.close()
            await worker.close()

    before, after, gone = asyncio.run(scenario())
    assert [e.routes for e in before] == [[]]
    assert [e.routes for e in after] == [[("ship", "tidings")]]
    assert [e.routes for e in gone] == [[]]


def test_retention_forgets_expired_events_a_budget_at_a_time_and_whole_chunks_once_passed(
    settings: Settings, redis_client: redis.Redis
) -> None:
    scope, events = Scope("default", "retention"), keys.CHUNK + 1500

    async def scenario() -> tuple[list[int], str]:
        store = Store.from_settings(settings)
        expired = Store(store.redis, ttl_seconds=1, partitions=1)  # its events are 1 s old
        try:
            for done in range(0, events, 1000):
                await emit_paid(store, scope, count=min(1000, events - done))
            time.sleep(1.1)
            [fresh] = await emit_paid(store, scope)
            kept = []
            for _ in range(events // CLEANUP_BUDGET + 2):
                await expired.recover([scope.env], lease_ms=60_000)
                kept.append(redis_client.hlen(keys.records(scope, 0)))
            return kept, (await store.get_event(scope, fresh.key)).key
        finally:
            await expired.close()

    kept, fresh = asyncio.run(scenario())
    assert kept[:2] == [events + 1 - CLEANUP_BUDGET, events + 1 - 2 * CLEANUP_BUDGET]
    assert kept[-1] == 1 and fresh  # the event emitted since stays
    assert redis_client.hget(keys.meta(scope, 0), "low") == str(events)
    assert not redis_client.exists(keys.log(scope, 0, 0))  # chunk 0 passed: its log...
    lists = redis_client.smembers(keys.lists(scope, 0))
    assert lists and not any(redis_client.exists(keys.list_chunk(scope, 0, n, 0)) for n in lists)
    assert redis_client.exists(keys.log(scope, 0, 1))  # ...chunk 1 holds the fresh event
