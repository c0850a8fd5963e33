"""Rate and concurrency limits in the store (tidings/store/flow.py), on a real Redis, with
the worker's gate (tidings/flow.py) around them."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import redis

from tidings.flow import key_value, run_name, run_of
from tidings.settings import Settings
from tidings.store import Store, keys
from tidings.work import Scope, WorkItem

SCOPE = Scope("default", "test")
LEASE_MS = 60_000


def with_store(settings: Settings, scenario: Callable[[Store], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        store = Store.from_settings(settings)
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(go())


def run(n: int, attempt: int = 0) -> str:
    return run_name(WorkItem("default", "test", f"{n:032x}", "ship", attempt))


def test_a_run_is_named_by_its_work_item_and_back() -> None:
    item = WorkItem("acme", "live", "k" * 32, "billing:invoice.v2", 3)
    assert run_of(run_name(item)) == item


def test_a_key_path_names_its_value_as_json() -> None:
    payload = {"customer": {"id": "cus_1", "tags": ["a", "b"]}, "n": 7}
    assert key_value(payload, "customer.id") == '"cus_1"'
    assert key_value(payload, "customer.tags.1") == '"b"'
    assert key_value(payload, "n") == "7"
    assert key_value(payload, "customer") == '{"id":"cus_1","tags":["a","b"]}'
    assert key_value(payload, "missing.path") == key_value(payload, None) == "null"


def test_runs_over_a_rate_are_booked_in_order_and_a_copy_is_turned_away(
    settings: Settings, redis_client: redis.Redis
) -> None:
    limit = keys.flow_limit("rate", SCOPE, "ship", "null")

    async def scenario(store: Store) -> list[Any]:
        # An hour between runs: every run after the first is booked, none comes due here.
        answers = [await store.rate(limit, run(n), 3_600_000, LEASE_MS) for n in range(3)]
        copy = await store.rate(limit, run(1), 3_600_000, LEASE_MS)
        return [*answers, copy]

    first, second, third, copy = with_store(settings, scenario)
    assert (first.status, first.wait_ms) == ("ok", 0)
    assert second.status == third.status == "wait"
    assert 3_590_000 < second.wait_ms <= 3_600_000 < third.wait_ms <= 7_200_000
    assert copy.status == "early" and copy.wait_ms <= second.wait_ms
    booked = redis_client.zrange(keys.flow_booked(limit), 0, -1)
    assert booked == [run(1), run(2)]
    assert redis_client.ttl(keys.flow_tat(limit)) > 3 * 3600 - 60  # type: ignore[operator]


def test_a_booked_run_that_comes_back_on_time_starts_once(
    settings: Settings, redis_client: redis.Redis
) -> None:
    limit = keys.flow_limit("rate", SCOPE, "ship", "null")

    async def scenario(store: Store) -> list[str]:
        statuses = [(await store.rate(limit, run(n), 30, LEASE_MS)).status for n in range(2)]
        while (back := await store.rate(limit, run(1), 30, LEASE_MS)).status == "early":
            await asyncio.sleep(0.005)
        again = await store.rate(limit, run(1), 30, LEASE_MS)  # a copy, later: a new booking
        return [*statuses, back.status, again.status]

    assert with_store(settings, scenario) == ["ok", "wait", "ok", "wait"]


def test_concurrency_slots_go_to_waiting_runs_in_the_order_they_came(
    settings: Settings, redis_client: redis.Redis
) -> None:
    limit = keys.flow_limit("concurrency", SCOPE, "ship", '"cus_1"')

    async def scenario(store: Store) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        take = [
            await store.acquire(limit, run(n), f"t{n}", slots=2, lease_ms=LEASE_MS)
            for n in range(5)
        ]
        seen["statuses"] = [a.status for a in take]
        again = await store.acquire(limit, run(3), "t3-copy", slots=2, lease_ms=LEASE_MS)
        seen["copy"] = again.status
        seen["waiting"] = redis_client.zrange(keys.flow_waiting(limit), 0, -1)
        seen["promoted"] = await store.release(limit, "t0", slots=2, lease_ms=LEASE_MS)
        # The promoted run comes back and takes the slot kept for it, under a new token.
        back = await store.acquire(limit, run(2), "t2-back", slots=2, lease_ms=LEASE_MS)
        seen["back"] = back.status
        seen["slots"] = redis_client.zrange(keys.flow_slots(limit), 0, -1)
        # A newcomer waits behind the runs that came before it, though none holds t1's slot
        # after its release.
        seen["next"] = await store.release(limit, "t1", slots=2, lease_ms=LEASE_MS)
        late = await store.acquire(limit, run(9), "t9", slots=2, lease_ms=LEASE_MS)
        seen["late"] = (late.status, late.promoted)
        return seen

    seen = with_store(settings, scenario)
    assert seen["statuses"] == ["ok", "ok", "wait", "wait", "wait"]
    assert seen["copy"] == "wait"
    assert seen["waiting"] == [run(2), run(3), run(4)]
    assert seen["promoted"] == [run(2)]
    assert seen["back"] == "ok"
    assert sorted(seen["slots"]) == ["t1", "t2-back"]
    assert seen["next"] == [run(3)]
    assert seen["late"] == ("wait", [])


def test_a_dead_runs_slot_lapses_and_wake_hands_it_to_the_first_in_line(
    settings: Settings, redis_client: redis.Redis
) -> None:
    limit = keys.flow_limit("concurrency", SCOPE, "ship", "null")

    async def scenario(store: Store) -> tuple[Any, ...]:
        dead = await store.acquire(limit, run(0), "t0", slots=1, lease_ms=1)
        await asyncio.sleep(0.01)  # its worker died: no release, its lease lapses
        # A run that came meanwhile waits behind nobody: it takes the lapsed slot at once.
        taker = await store.acquire(limit, run(1), "t1", slots=1, lease_ms=1000)
        waiter = await store.acquire(limit, run(2), "t2", slots=1, lease_ms=LEASE_MS)
        await store.note_waiting(limit, "ship")
        await asyncio.sleep(1.1)  # the taker's worker dies too
        woken = await store.wake({"ship": 1}, LEASE_MS)
        left = await store.wake({"ship": 1}, LEASE_MS)
        return dead.status, taker.status, waiter.status, woken, left

    dead, taker, waiter, woken, left = with_store(settings, scenario)
    assert (dead, taker, waiter) == ("ok", "ok", "wait")
    assert woken == [run(2)] and left == []
    assert not redis_client.exists(keys.FLOW_WAITING)
