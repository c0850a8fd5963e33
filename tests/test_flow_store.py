"""Rate and concurrency limits in the store (tidings/store/flow.py), on a real Redis, with
the worker's gate (tidings/flow.py) around them."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import redis

from tidings.clock import now_ms
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
    assert redis_client.ttl(keys.flow_tat(limit)) > 3 * 3600 - 60


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


# Runs held back, as /handlers reads them: from the limits noted with runs waiting or
# booked, for one scope and its handlers.


def test_the_runs_held_back_are_read_per_handler_and_limit_of_the_scope(
    settings: Settings, redis_client: redis.Redis
) -> None:
    ada = keys.flow_limit("concurrency", SCOPE, "ship", '"ada"')
    bob = keys.flow_limit("concurrency", SCOPE, "ship", '"bob"')
    rated = keys.flow_limit("rate", SCOPE, "ship", "null")
    elsewhere = keys.flow_limit("concurrency", Scope("acme", "test"), "ship", '"ada"')
    other_handler = keys.flow_limit("rate", SCOPE, "audit", "null")

    async def wait_for_slots(store: Store, limit: str, runs: list[str]) -> None:
        for n, name in enumerate(runs):
            slot = await store.acquire(limit, name, f"t{n}", slots=1, lease_ms=LEASE_MS)
            if slot.status == "wait":
                await store.note_waiting(limit, keys.flow_limit_parts(limit)[2])

    async def scenario(store: Store) -> dict[str, Any]:
        await wait_for_slots(store, ada, [run(0), run(1), run(2)])  # one runs, two wait
        await wait_for_slots(store, bob, [run(3), run(4)])
        await wait_for_slots(store, elsewhere, [run(5), run(6)])
        for n in range(7, 10):  # an hour apart: the first starts, two are booked
            await store.rate(rated, run(n), 3_600_000, LEASE_MS)
        for n in range(10, 12):
            await store.rate(other_handler, run(n), 3_600_000, LEASE_MS)
        seen = {"held": await store.held_back(SCOPE, {"ship"})}
        await store.release(ada, "t0", slots=1, lease_ms=LEASE_MS)  # run(1) is promoted
        seen["after"] = await store.held_back(SCOPE, {"ship", "audit"})
        return seen

    started = now_ms()
    seen = with_store(settings, scenario)
    held = seen["held"]
    assert list(held) == ["ship"]  # neither another scope's limits nor another handler's
    by_reason = [(h.reason, h.keyValue, h.runs) for h in held["ship"]]
    assert by_reason == [
        ("concurrency", '"ada"', 2),
        ("rate", "null", 2),
        ("concurrency", '"bob"', 1),
    ]
    ada_held, booked, _ = held["ship"]
    assert started <= ada_held.waitingSince <= now_ms() and ada_held.nextStartAt is None
    assert booked.waitingSince is None
    assert started + 3_590_000 < booked.nextStartAt <= now_ms() + 3_600_000  # the first booked
    after = {
        tx_key: [(h.keyValue, h.runs) for h in found] for tx_key, found in seen["after"].items()
    }
    assert after == {
        "ship": [("null", 2), ('"ada"', 1), ('"bob"', 1)],
        "audit": [("null", 1)],
    }
    # The bookings are noted until they lapse: an hour, and the lease after it.
    lapses = redis_client.zscore(keys.FLOW_BOOKED, rated)
    assert started + 2 * 3_600_000 + LEASE_MS <= lapses <= now_ms() + 2 * 3_600_000 + LEASE_MS


def test_a_limit_whose_bookings_lapsed_is_forgotten_and_none_is_held_back(
    settings: Settings, redis_client: redis.Redis
) -> None:
    limit = keys.flow_limit("rate", SCOPE, "ship", "null")

    async def scenario(store: Store) -> list[Any]:
        for n in range(2):  # 50 ms apart, stale 10 ms after its time: lapses within 60 ms
            await store.rate(limit, run(n), 50, stale_ms=10)
        seen = [await store.held_back(SCOPE, {"ship"})]
        await asyncio.sleep(0.1)  # run(1) never came back
        seen.append(await store.held_back(SCOPE, {"ship"}))
        other = keys.flow_limit("rate", SCOPE, "ship", '"x"')
        for n in range(2):  # a booking elsewhere forgets the lapsed limit
            await store.rate(other, run(n), 3_600_000, LEASE_MS)
        return seen

    booked, lapsed = with_store(settings, scenario)
    assert [h.runs for h in booked["ship"]] == [1]
    assert lapsed == {}
    assert redis_client.zrange(keys.FLOW_BOOKED, 0, -1) == [
        keys.flow_limit("rate", SCOPE, "ship", '"x"')
    ]
