"""What one /query costs, and whether that cost grows with the number of stored events.

The script fills two scopes of one Redis, with N events (default 100,000) and with N/10,
through the real ``Store.emit`` (batches of 1,000; four event names and two labels, so
filters differ in selectivity), and gives events a transaction on one txKey as a worker's
pool writes them (``Store.claim_many``, then ``Store.finish_many``, 64 at a time): 50%
finished, 5% failed, 2% processing, the rest none. It prints the fill rates.

Then, per query case and size, it times the very first call (``1st``: before store v2,
the first ``txState: does-not-exist`` query of a filter built an index, in O(N)) and then
the steady state at three levels, the six series (3 levels x 2 sizes) taking turns call by
call so that noise from the machine hits them alike, 200 calls each (median, p95, p99: of
200 calls, p99 is about the second slowest):

``base``   plain Redis doing the least one page needs: one HMGET of the page's records,
           their keys known beforehand;
``store``  ``Store.query``: the query script, then parsing the rows into models;
``http``   POST /query through the real FastAPI app in-process (httpx ASGITransport),
           started and stopped as a server does (its lifespan: among others, it takes what
           start-up built out of garbage collection): authentication, validation, the store
           and JSON serialisation.

``lua`` is the time Redis itself spends per query script call (INFO commandstats). Last
comes, per case, the N figure over the N/10 figure: ~1.0 means it does not grow with N.

Run it from the repository root::

    .venv/bin/python bench/query_cost.py [--events 100000] [--reps 200]

It starts its own embedded redis-server (in a temporary directory, without persistence)
and stops it at the end. With REDIS_URL set it uses database 15 of that server instead,
and flushes that database only.
"""

import argparse
import asyncio
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from redis.client import NEVER_DECODE

from tidings import models
from tidings.api import SECRET_HEADER, create_app
from tidings.clock import now_ms
from tidings.redis_server import EmbeddedRedis
from tidings.settings import Settings
from tidings.store import Store, keys
from tidings.work import Result, Scope, WorkItem

TTL_SECONDS = 30 * 24 * 3600
BATCH = 1000
TX_KEY = "bench-handler"
#: Event names with their share of events; labels go by batch, 3 "web" to 1 "mobile".
NAMES = {"user.created": 0.60, "order.paid": 0.30, "invoice.sent": 0.09, "refund.issued": 0.01}
LABELS = ["web", "web", "web", "mobile"]
#: Share of events whose TX_KEY transaction ends in each state (the rest have none).
TX_STATES = {"finished": 0.50, "failed": 0.05, "processing": 0.02}
#: Transactions claimed (and finished) in one round trip, as a worker's pool does.
TX_TOGETHER = 64
WARM_UP = 5
LEVELS = ("base", "store", "http")
Call = Callable[[], Awaitable[Any]]


def database_url(configured: str) -> str:
    """REDIS_URL pointed at database 15, so that flushing it touches nothing else."""
    return urlunsplit(urlsplit(configured)._replace(path="/15"))


def scope_of(n: int) -> Scope:
    return Scope(f"bench{n}", "test")


async def fill(store: Store, n: int) -> int:
    """Emit n events, then give them TX_KEY transactions; answer a `since` that selects the
    last ~10% of the events."""
    scope, rng = scope_of(n), random.Random(n)
    event_keys: list[str] = []
    since = 0
    started = time.perf_counter()
    for b in range(math.ceil(n / BATCH)):
        if b == int(0.9 * n / BATCH):
            since = now_ms()
        names = rng.choices(list(NAMES), list(NAMES.values()), k=min(BATCH, n - b * BATCH))
        events = [
            models.EmitRequest(event=name, payload={"n": b * BATCH + i, "items": [{"qty": 2}]})
            for i, name in enumerate(names)
        ]
        label = LABELS[b % len(LABELS)]
        emitted = await store.emit(
            scope, events, platform=models.CUSTOM_PLATFORM, label=label, actor=label
        )
        event_keys += [e.key for e in emitted]
    emit_s = time.perf_counter() - started

    plan = [(key, state) for key in event_keys if (state := pick_state(rng)) is not None]
    started = time.perf_counter()
    for i in range(0, len(plan), TX_TOGETHER):
        await transactions(store, scope, plan[i : i + TX_TOGETHER])
    tx_s = time.perf_counter() - started
    memory = (await store.redis.info("memory"))["used_memory_human"]
    print(
        f"N={n:>7,}: emit {n / emit_s:>6,.0f} events/s ({emit_s:4.1f} s), "
        f"claim+finish {len(plan) / tx_s:>5,.0f} transactions/s ({tx_s:4.1f} s), "
        f"redis used_memory now {memory}"
    )
    return since


def pick_state(rng: random.Random) -> str | None:
    r = rng.random()
    for state, share in TX_STATES.items():
        if r < share:
            return state
        r -= share
    return None


async def transactions(store: Store, scope: Scope, plan: list[tuple[str, str]]) -> None:
    """TX_KEY transactions in these states, written as a worker's pool writes them: the
    claims together, then the results together."""
    items = [WorkItem(scope.owner, scope.env, key, TX_KEY) for key, _ in plan]
    claims = await store.claim_many(items, actor="bench", lease_ms=TTL_SECONDS * 1000)
    results = [
        Result(item, claim, state, {"ok": True}, follow_ups=[])
        for item, claim, (_, state) in zip(items, claims, plan, strict=True)
        if claim is not None and state != "processing"
    ]
    await store.finish_many(results, actor="bench")


def cases(n: int, since: int) -> list[tuple[str, dict[str, Any]]]:
    """The /query bodies to time, by name."""
    pages = math.ceil(n / 10)
    return [
        ("no filter, p1", {}),
        ("eventName (30%)", {"eventName": "order.paid"}),
        ("eventName (1%)", {"eventName": "refund.issued"}),
        ("eventName+label", {"eventName": "order.paid", "label": "mobile"}),
        ("txKey finished", {"txKey": TX_KEY, "txState": "finished"}),
        ("txKey does-not-exist", {"txKey": TX_KEY, "txState": "does-not-exist"}),
        ("since (last 10%)", {"since": since}),
        ("middle page", {"page": pages // 2}),
        ("last page", {"page": pages}),
        ("pageSize 100", {"pageSize": 100}),
    ]


async def baseline(store: Store, scope: Scope, page: list[bytes]) -> None:
    """The least plain Redis can do for a page: one HMGET of its records."""
    if page:
        records = keys.records(scope, 0)
        await store.redis.execute_command("HMGET", records, *page, **{NEVER_DECODE: True})


async def post_query(client: httpx.AsyncClient, secret: str, body: dict[str, Any]) -> None:
    answer = await client.post("/query", json=body, headers={SECRET_HEADER: secret})
    answer.raise_for_status()


async def first_call(store: Store, scope: Scope, q: models.QueryRequest) -> dict[str, Any]:
    """The case's total, and ms of its first query (which may have to build an index)."""
    started = time.perf_counter()
    page = await store.query(scope, q)
    return {"total": page.total, "1st": (time.perf_counter() - started) * 1000}


async def lua_us(store: Store, scope: Scope, q: models.QueryRequest, calls: int = 100) -> float:
    """Microseconds Redis spends per query script call (delta of INFO commandstats)."""

    async def evalsha() -> tuple[int, int]:
        stat = (await store.redis.info("commandstats")).get("cmdstat_evalsha", {})
        return stat.get("calls", 0), stat.get("usec", 0)

    calls0, usec0 = await evalsha()
    for _ in range(calls):
        await store.query(scope, q)
    calls1, usec1 = await evalsha()
    return (usec1 - usec0) / (calls1 - calls0)


async def interleaved(calls: dict[Any, Call], reps: int) -> dict[Any, list[float]]:
    """Milliseconds per call of each callable, taking turns, after a few warm-up rounds."""
    times: dict[Any, list[float]] = {name: [] for name in calls}
    for rep in range(WARM_UP + reps):
        for name, call in calls.items():
            started = time.perf_counter()
            await call()
            if rep >= WARM_UP:
                times[name].append((time.perf_counter() - started) * 1000)
    return times


async def measure(
    store: Store, url: str, sizes: dict[int, int], reps: int
) -> dict[int, dict[str, Any]]:
    """Per size and case: total, 1st-call ms, lua µs, and (median, p95, p99) ms per level."""
    app = create_app(Settings(redis_url=url, ttl_seconds=TTL_SECONDS))
    results: dict[int, dict[str, Any]] = {n: {} for n in sizes}
    await store.query(Scope("warm-up", "test"), models.QueryRequest())  # loads the script
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
    ):
        secrets = {
            n: (await store.create_key("web", "test", scope_of(n).owner)).secret or ""
            for n in sizes
        }
        per_size = {n: cases(n, since) for n, since in sizes.items()}
        for i, (name, _) in enumerate(per_size[next(iter(sizes))]):
            calls: dict[tuple[int, str], Call] = {}
            queries = {}
            for n in sizes:
                scope, body = scope_of(n), per_size[n][i][1]
                queries[n] = q = models.QueryRequest(**body)
                results[n][name] = await first_call(store, scope, q)
                page = [bytes.fromhex(row.key) for row in (await store.query(scope, q)).rows]
                calls[n, "base"] = partial(baseline, store, scope, page)
                calls[n, "store"] = partial(store.query, scope, q)
                calls[n, "http"] = partial(post_query, client, secrets[n], body)
            for (n, level), times in (await interleaved(calls, reps)).items():
                results[n][name][level] = stats(times)
            for n, q in queries.items():
                results[n][name]["lua"] = await lua_us(store, scope_of(n), q)
    return results


def stats(times: list[float]) -> tuple[float, float, float]:
    """Median, p95 and p99."""
    percentiles = statistics.quantiles(times, n=100)
    return statistics.median(times), percentiles[94], percentiles[98]


def print_table(n: int, results: dict[str, Any]) -> None:
    print(f"\nN={n:,}: ms (lua: µs); 1st: the first call; base, store, http: median (p95, p99)")
    print(
        f"{'case':<21}{'rows':>8}{'1st':>7}{'lua':>5}{'base':>6}{'store':>7}{'p95':>6}{'p99':>6}"
        f"{'http':>6}{'p95':>6}{'p99':>6}{'store/base':>11}{'http/base':>10}"
    )
    for name, r in results.items():
        base, store, http = r["base"][0], r["store"], r["http"]
        print(
            f"{name:<21}{r['total']:>8,}{r['1st']:>7.1f}{r['lua']:>5.0f}{base:>6.2f}"
            f"{store[0]:>7.2f}{store[1]:>6.2f}{store[2]:>6.2f}"
            f"{http[0]:>6.2f}{http[1]:>6.2f}{http[2]:>6.2f}"
            f"{store[0] / base:>11.1f}{http[0] / base:>10.1f}"
        )


def print_growth(big: int, small: int, results: dict[int, dict[str, Any]]) -> None:
    print(f"\nN={big:,} over N={small:,} (medians; ~1.0: does not grow with N)")
    print(f"{'case':<21}{'1st':>7}{'lua':>7}{'base':>7}{'store':>7}{'http':>7}")
    for name, r in results[big].items():
        s = results[small][name]
        ratios = [r["1st"] / s["1st"], r["lua"] / s["lua"]]
        ratios += [r[level][0] / s[level][0] for level in LEVELS]
        print(f"{name:<21}" + "".join(f"{x:>7.2f}" for x in ratios))


async def bench(url: str, n: int, reps: int) -> None:
    store = Store.from_url(url, ttl_seconds=TTL_SECONDS)
    await store.redis.flushdb()
    big, small = n, max(n // 10, BATCH)
    sizes = {size: await fill(store, size) for size in (big, small)}
    results = await measure(store, url, sizes, reps)
    await store.close()
    for size in sizes:
        print_table(size, results[size])
    print_growth(big, small, results)


def run_on_redis(bench: Callable[[str], Awaitable[None]]) -> None:
    """Run a bench, given the URL of the Redis it may flush: database 15 of REDIS_URL, or
    else an embedded redis-server of its own, stopped at the end."""
    started = time.perf_counter()
    if os.environ.get("REDIS_URL"):
        asyncio.run(bench(database_url(os.environ["REDIS_URL"])))
    else:
        with tempfile.TemporaryDirectory(prefix="tidings-bench-") as data_dir:
            server = EmbeddedRedis(data_dir, persist=False)
            try:
                asyncio.run(bench(server.start()))
            finally:
                server.stop()  # terminates the redis-server child by its PID
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="N (default 100,000)")
    parser.add_argument("--reps", type=int, default=200, help="timed calls per case and level")
    args = parser.parse_args()
    run_on_redis(partial(bench, n=args.events, reps=args.reps))


if __name__ == "__main__":
    main()
