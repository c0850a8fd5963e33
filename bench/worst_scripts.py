"""How long single Lua scripts (and commands) hold Redis at N stored events, against the
goal that none holds it for more than 10 ms (Redis runs one at a time: every other client
waits).

The script fills one scope with N events (default 1,000,000) through ``fill`` of
bench/query_cost.py (the real ``Store.emit``, then transactions on one txKey), then runs,
through the real Store, the biggest script calls the service makes:

``query 1000``     a /query page of 1,000 rows (events.query, then the HMGET of its
                   records), for each of query_cost's filters (pages scaled to 1,000
                   rows), ``--reps`` calls each;
``emit x100``      an emit of 100 events, which is one script (EVENTS_PER_SCRIPT), each
                   routed to a subscribed handler and with an idempotency key;
``claim``          a worker's claim of one of those transactions (transactions.claim)...
``claim x64``      ...and 64 claims in one script, as a worker's pool sends them together;
``cleanup 1000``   forgetting 1,000 expired events (events.cleanup, CLEANUP_BUDGET), as
                   recovery runs it (``Store.recover`` of a store whose retention is 1 s,
                   so that every stored event has expired; its scan for work to hand out
                   again, subscriptions.recover, is a command of the call too).

Timing: Redis's own, from SLOWLOG (read after each call), so the round trip and the client
are not counted: per call, what its longest command held Redis. Redis logs the commands a
script runs as well, and logging thousands of them makes the script slower: only commands
of more than 10 µs are logged (LOGGED_OVER_US), and a script run under that counts as
10 µs. It prints p50, p99 and the max per kind, in ms.

Run it from the repository root::

    .venv/bin/python bench/worst_scripts.py [--events 1000000] [--reps 20]

Redis as in query_cost.py: its own embedded redis-server, or database 15 of REDIS_URL
(flushed), whose SLOWLOG settings are restored at the end (its log is reset).
"""

import argparse
import math
import statistics
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import redis.asyncio as aioredis
from query_cost import TTL_SECONDS, cases, fill, run_on_redis, scope_of

from tidings import models
from tidings.store import Store
from tidings.store.events import EVENTS_PER_SCRIPT
from tidings.store.subscriptions import CLEANUP_BUDGET
from tidings.work import NewEvent, Scope, WorkItem

GOAL_MS = 10
PAGE = 1000
EMITS = 100
SINGLE_CLAIMS = 500
CLAIMS_TOGETHER = 64
CLEANUPS = 100
LEASE_MS = 60_000
HANDLER = models.Subscription(txKey="bench-worst", eventName="order.paid", queue="bench")
#: Redis logs the commands a script runs too, and logging thousands of them slowed a
#: cleanup by ~30%: SLOWLOG logs only commands of more than this. A script run that is not
#: logged counts as this long.
LOGGED_OVER_US = 10
#: Entries SLOWLOG keeps: more than any one call below logs.
SLOWLOG_LEN = 10_000
Call = Callable[[], Awaitable[Any]]


async def held_ms(raw: aioredis.Redis, calls: list[Call]) -> list[float]:
    """Make the calls one by one; the ms the longest command of each held Redis (SLOWLOG):
    its script, or a large page's read of its records after its script."""
    held = []
    for call in calls:
        await raw.slowlog_reset()
        await call()
        if await raw.slowlog_len() >= SLOWLOG_LEN:
            raise RuntimeError("SLOWLOG overflowed: raise SLOWLOG_LEN")
        entries = await raw.slowlog_get(SLOWLOG_LEN)
        runs = [e["duration"] for e in entries if not e["command"].startswith(b"SLOWLOG")]
        held.append(max(runs, default=LOGGED_OVER_US) / 1000)
    return held


def query_cases(n: int, since: int) -> list[tuple[str, models.QueryRequest]]:
    """query_cost's filters, for pages of PAGE rows (its page numbers are of 10 rows)."""
    found = []
    for name, body in cases(n, since):
        if "pageSize" in body:
            continue
        if "page" in body:
            body = {**body, "page": max(math.ceil(body["page"] * 10 / PAGE), 1)}
        found.append((name, models.QueryRequest(**body, pageSize=PAGE)))
    return found


async def emit(store: Store, scope: Scope, batch: int, emitted: list[str]) -> None:
    """One script's worth of events, routed to HANDLER; their keys go to `emitted`."""
    events = [
        NewEvent(HANDLER.eventName, {"n": i}, idempotency_key=f"worst-{batch}-{i}")
        for i in range(EVENTS_PER_SCRIPT)
    ]
    done = await store.emit(
        scope, events, platform=models.CUSTOM_PLATFORM, label="web", actor="bench"
    )
    emitted += [e.key for e in done]


async def bench(url: str, n: int, reps: int) -> None:
    store = Store.from_url(url, ttl_seconds=TTL_SECONDS)
    expired = Store.from_url(url, ttl_seconds=1)  # every event stored has expired for it
    raw = aioredis.Redis.from_url(url)  # SLOWLOG holds the scripts' binary arguments
    await store.redis.flushdb()
    since = await fill(store, n)
    scope = scope_of(n)
    held: dict[str, list[float]] = {}
    kept = await store.redis.config_get("slowlog-*")
    await store.redis.config_set("slowlog-log-slower-than", LOGGED_OVER_US)
    await store.redis.config_set("slowlog-max-len", SLOWLOG_LEN)
    try:
        for name, q in query_cases(n, since):
            calls = [partial(store.query, scope, q)] * reps
            held[f"query {PAGE}: {name}"] = await held_ms(raw, calls)
        await store.subscribe([HANDLER], [scope.env])
        emitted: list[str] = []
        calls = [partial(emit, store, scope, b, emitted) for b in range(EMITS)]
        held[f"emit x{EVENTS_PER_SCRIPT}"] = await held_ms(raw, calls)
        items = [WorkItem(scope.owner, scope.env, key, HANDLER.txKey) for key in emitted]
        claim = partial(store.claim_many, actor="bench", lease_ms=LEASE_MS)
        calls = [partial(claim, [item]) for item in items[:SINGLE_CLAIMS]]
        held["claim"] = await held_ms(raw, calls)
        together = range(SINGLE_CLAIMS, len(items), CLAIMS_TOGETHER)
        calls = [partial(claim, items[i : i + CLAIMS_TOGETHER]) for i in together]
        held[f"claim x{CLAIMS_TOGETHER}"] = await held_ms(raw, calls)
        cleanups = min(CLEANUPS, n // CLEANUP_BUDGET // 2)
        calls = [partial(expired.recover, [scope.env], lease_ms=LEASE_MS)] * cleanups
        held[f"cleanup {CLEANUP_BUDGET}"] = await held_ms(raw, calls)
    finally:
        for name, value in kept.items():
            await store.redis.config_set(name, value)
        await raw.slowlog_reset()
        await raw.aclose()
        await expired.close()
        await store.close()
    print_table(n, held)


def print_table(n: int, held: dict[str, list[float]]) -> None:
    print(f"\nN={n:,}: ms the longest command of a call held Redis (SLOWLOG)")
    print(f"the goal: none over {GOAL_MS} ms")
    print(f"{'script':<40}{'calls':>6}{'p50':>8}{'p99':>8}{'max':>8}")
    for name, times in held.items():
        p99 = statistics.quantiles(times, n=100, method="inclusive")[98]
        print(
            f"{name:<40}{len(times):>6}{statistics.median(times):>8.2f}{p99:>8.2f}"
            f"{max(times):>8.2f}"
        )
    over = [name for name, times in held.items() if max(times) > GOAL_MS]
    print(f"over {GOAL_MS} ms: {', '.join(over) if over else 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="N (default 1,000,000)")
    parser.add_argument("--reps", type=int, default=20, help="calls per query filter")
    args = parser.parse_args()
    run_on_redis(partial(bench, n=args.events, reps=args.reps))


if __name__ == "__main__":
    main()
