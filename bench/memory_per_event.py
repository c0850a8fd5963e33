"""What one event costs Redis in tidings' store: memory, commands and redis-server CPU,
against the two floors issue 9 names, measured in the same Redis and the same run.

tidings  N events (default 10,000) with a ~110-byte JSON payload, stored and handled the
         way the API and a worker store them, but driving them in-process, which is much
         faster than running a worker and writes the same: a secret key and one no-op
         handler subscribed as a worker subscribes it (``Store.subscribe``), the events
         emitted with the secret key in batches of --batch (``Store.emit_with_secret``, as
         POST /emit/batch does), then each event's work item run by the worker's own
         ``Runner`` (claim, call the handler, finish), 64 at a time. The handler returns a
         small output, so each event ends with one finished transaction (a two-entry
         history) and the event's own history.
stream   the same payloads as Redis Stream entries (XADD ``* payload {json}``).
celery   the record a Celery user keeps per task: the ``celery-task-meta-{id}`` JSON that
         Celery's Redis result backend stores for a task that returned the same output,
         built by Celery's own code and given Celery's default expiry (one day). Its
         commands and CPU are those of writing the record alone (one SET EX each): Celery
         itself also sends a GET, MULTI, PUBLISH and EXEC per task.

For each: bytes per event (``used_memory`` after minus before, less the client buffers
MEMORY STATS counts, so that connections do not count as data), Redis commands per event
(INFO commandstats after minus before, where commands a Lua script runs count as well as
its EVALSHA; INFO itself and connection set-up are left out), and redis-server CPU µs per
event (INFO cpu, used_cpu_user + used_cpu_sys). Redis CPU here leaves out the broker
traffic a real worker adds, so it is below bench/end_to_end.py's figure. Each reading waits
until Redis has finished rehashing its key tables, and the baselines run first, so that
each side pays for the table growth its own keys cause.

Then tidings' bytes by key family: every key of the bench's scope (one partition, the
default) measured with ``MEMORY USAGE key SAMPLES 0``; the rest of the delta is the
keyspace's own tables (dict buckets) and the allocator.

It starts its own embedded redis-server (no persistence) and stops it at the end. Run it
from the repository root::

    .venv/bin/python bench/memory_per_event.py [--events 10000] [--batch 1000]
"""

import argparse
import asyncio
import re
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery, states
from celery.utils import uuid

from tidings import models
from tidings.handlers import Handler, Message
from tidings.redis_server import EmbeddedRedis
from tidings.store import Store, keys
from tidings.store.records import dump
from tidings.work import Scope, WorkItem
from tidings.worker import Runner

TTL_SECONDS = 30 * 24 * 3600
LEASE_MS = 300_000
OWNER, ENV, LABEL = "default", "test", "web"
WARM_UP_OWNER = "warm-up"
EVENT_NAME = "order.paid"
TX_KEY = "noop"
OUTPUT = {"sent": True}
#: Runs in flight at once, as a worker's pool would have them.
CONCURRENCY = 64
STREAM = "bench:stream"
PIPELINE = 1000
TARGET_BYTES, AIM_BYTES = 1024, 512
#: Commands that are not the work being measured: the measuring itself, connection set-up.
NOT_WORK = {"info", "client", "hello", "select", "ping", "memory", "debug"}
MAX_SETTLE_SECONDS = 10


def payload(i: int) -> dict[str, Any]:
    """About 110 bytes of JSON, different for every event."""
    return {
        "orderId": f"ord_{i:08d}",
        "customer": {"id": f"cus_{i % 9973:06d}", "country": "DE"},
        "total": round(19.99 + i % 500, 2),
        "currency": "EUR",
        "items": 1 + i % 5,
    }


def noop(event: Message[Any]) -> dict[str, bool]:
    return OUTPUT


HANDLER = Handler(fn=noop, options=models.HandlerOptions(tx_key=TX_KEY, event_name=EVENT_NAME))


@dataclass(frozen=True)
class Reading:
    memory: int
    cpu: float
    commands: Counter[str]


@dataclass(frozen=True)
class Cost:
    """What a phase cost Redis, per event."""

    bytes: float
    commands: float
    scripts: float
    cpu_us: float
    seconds: float
    by_command: dict[str, float]


def settle(r: redis.Redis) -> None:
    """Wait until Redis has finished growing its key tables (it rehashes them in the
    background), so that one phase is not credited with freeing the last one's old table."""
    deadline = time.monotonic() + MAX_SETTLE_SECONDS
    while "rehashing target" in r.execute_command("DEBUG", "HTSTATS", "0"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"Redis still rehashing after {MAX_SETTLE_SECONDS} s")
        time.sleep(0.05)


def read(r: redis.Redis) -> Reading:
    settle(r)
    stats = r.memory_stats()
    memory, cpu = r.info("memory"), r.info("cpu")
    calls = Counter(
        {
            name.removeprefix("cmdstat_"): stat["calls"]
            for name, stat in r.info("commandstats").items()
            if name.removeprefix("cmdstat_").split("|")[0] not in NOT_WORK
        }
    )
    data = memory["used_memory"] - stats["clients.normal"]
    return Reading(data, cpu["used_cpu_user"] + cpu["used_cpu_sys"], calls)


def cost(r: redis.Redis, n: int, phase: Callable[[], Any]) -> Cost:
    before, started = read(r), time.perf_counter()
    phase()
    seconds, after = time.perf_counter() - started, read(r)
    commands = after.commands - before.commands
    return Cost(
        bytes=(after.memory - before.memory) / n,
        commands=commands.total() / n,
        scripts=commands["evalsha"] / n,
        cpu_us=(after.cpu - before.cpu) * 1e6 / n,
        seconds=seconds,
        by_command={name: calls / n for name, calls in commands.most_common()},
    )


# tidings


async def subscribe_and_key(store: Store, owner: str) -> str:
    await store.subscribe([HANDLER.subscription], [ENV])
    secret = (await store.create_key(LABEL, ENV, owner)).secret
    assert secret is not None
    return secret


async def emit(store: Store, secret: str, n: int, batch: int) -> list[WorkItem]:
    """Store n events as /emit/batch does; the work items the dispatcher would publish."""
    items = []
    for first in range(0, n, batch):
        events = [
            models.EmitRequest(event=EVENT_NAME, payload=payload(i))
            for i in range(first, min(first + batch, n))
        ]
        caller, emitted = await store.emit_with_secret(secret, events)
        items += [
            WorkItem(caller.owner, caller.env, e.key, tx_key)
            for e in emitted
            for tx_key, _ in e.routes
        ]
    assert len(items) == n, f"{len(items)} work items for {n} events: is the handler subscribed?"
    return items


async def handle(store: Store, items: list[WorkItem]) -> None:
    """Each item run by the worker's Runner, CONCURRENCY at a time."""
    runner = Runner(store, "bench-worker", LEASE_MS, publish=no_publish)
    for first in range(0, len(items), CONCURRENCY):
        chunk = items[first : first + CONCURRENCY]
        outcomes = await asyncio.gather(*(runner.run(item, HANDLER) for item in chunk))
        assert set(outcomes) == {"finished"}, f"outcomes: {Counter(outcomes)}"


def no_publish(items: list[tuple[WorkItem, str]]) -> None:
    assert not items, "the no-op handler emits no follow-up events"


class Tidings:
    """The store on its own event loop, so that its phases can be called like the others."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = Store.from_url(url, ttl_seconds=TTL_SECONDS)

    def run(self, work: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(work)

    def warm_up(self, batch: int) -> None:
        """Load the scripts and open the connections the measured run will use."""
        secret = self.run(subscribe_and_key(self.store, WARM_UP_OWNER))
        self.run(handle(self.store, self.run(emit(self.store, secret, CONCURRENCY, batch))))

    def close(self) -> None:
        self.run(self.store.close())
        self.loop.close()


# Baselines


def xadd(r: redis.Redis, n: int) -> None:
    for first in range(0, n, PIPELINE):
        with r.pipeline(transaction=False) as pipe:
            for i in range(first, min(first + PIPELINE, n)):
                pipe.xadd(STREAM, {"payload": dump(payload(i))})
            pipe.execute()


def celery_results(app: Celery, r: redis.Redis, n: int) -> None:
    """The result records Celery's Redis backend writes for n successful tasks, built by
    Celery's own code and written with its expiry; pipelined, where Celery sends one task's
    GET, MULTI, SETEX, PUBLISH and EXEC at a time (only the record is compared here)."""
    backend = app.backend
    for first in range(0, n, PIPELINE):
        with r.pipeline(transaction=False) as pipe:
            for _ in range(first, min(first + PIPELINE, n)):
                task_id = uuid()
                meta = backend._get_result_meta(OUTPUT, states.SUCCESS, None, None)
                meta["task_id"] = task_id
                record = backend.encode(meta)
                pipe.set(backend.get_key_for_task(task_id), record, ex=backend.expires)
            pipe.execute()


# Where tidings' bytes go

FAMILIES = [
    ("rec (events, transactions)", r":rec$"),
    ("log:{chunk}", r":log:\d+$"),
    ("c:{combo}:{chunk}", r":c:"),
    ("a:{txKey}|{combo}:{chunk}", r":a:"),
    ("s:{state}|{txKey}|{name}:{chunk}", r":s:"),
    ("outstanding, leases, recovered", r":(outstanding|leases|recovered)$"),
    ("meta, lists, txnames", r":(meta|lists|txnames:.*)$"),
]
#: How to count the entries of a key of each type (a string: one).
ENTRIES = {"hash": "hlen", "zset": "zcard", "set": "scard", "stream": "xlen"}


def family(key: str) -> str:
    for name, pattern in FAMILIES:
        if re.search(pattern, key):
            return name
    return "other"


def breakdown(r: redis.Redis, scope: Scope) -> dict[str, dict[str, Any]]:
    """Per key family: keys, entries (members, fields), MEMORY USAGE bytes, encodings."""
    names = list(r.scan_iter(f"{keys.partition(scope, 0)}:*", count=PIPELINE))
    found: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"keys": 0, "entries": 0, "bytes": 0, "encodings": Counter()}
    )
    for first in range(0, len(names), PIPELINE):
        chunk = names[first : first + PIPELINE]
        with r.pipeline(transaction=False) as pipe:
            for name in chunk:
                pipe.memory_usage(name, samples=0)
                pipe.type(name)
                pipe.object("encoding", name)
            answers = pipe.execute()
        types = answers[1::3]
        with r.pipeline(transaction=False) as pipe:
            for name, kind in zip(chunk, types, strict=True):
                getattr(pipe, ENTRIES.get(kind, "exists"))(name)
            entries = pipe.execute()
        for name, size, encoding, count in zip(
            chunk, answers[::3], answers[2::3], entries, strict=True
        ):
            f = found[family(name)]
            f["keys"] += 1
            f["bytes"] += size
            f["entries"] += count
            f["encodings"][encoding] += 1
    return dict(sorted(found.items(), key=lambda kv: -kv[1]["bytes"]))


# Report


def print_costs(n: int, costs: dict[str, Cost]) -> None:
    print(f"\nPer event (N={n:,}):")
    print(f"{'':<18}{'bytes':>8}{'commands':>10}{'(scripts)':>10}{'redis CPU µs':>14}{'wall s':>8}")
    for name, c in costs.items():
        print(
            f"{name:<18}{c.bytes:>8,.0f}{c.commands:>10.1f}{c.scripts:>10.3g}{c.cpu_us:>14.1f}"
            f"{c.seconds:>8.1f}"
        )
    total, stream, celery = costs["tidings total"], costs["stream (XADD)"], costs["celery result"]
    print(
        f"\ntidings / stream {total.bytes / stream.bytes:.1f}x, "
        f"tidings / celery {total.bytes / celery.bytes:.1f}x, "
        f"tidings / target {TARGET_BYTES:,} B {total.bytes / TARGET_BYTES:.1f}x "
        f"(/ aim {AIM_BYTES} B {total.bytes / AIM_BYTES:.1f}x)"
    )
    for name in ("tidings emit", "tidings handle"):
        calls = ", ".join(f"{cmd} {k:.3g}" for cmd, k in costs[name].by_command.items())
        print(f"{name} commands per event: {calls}")


def print_breakdown(n: int, total_bytes: float, found: dict[str, dict[str, Any]]) -> None:
    print(f"\ntidings' bytes by key family (MEMORY USAGE ... SAMPLES 0), per event (N={n:,}):")
    print(f"{'family':<32}{'keys':>8}{'entries/ev':>11}{'bytes/ev':>10}{'share':>7}  encoding")
    for name, f in found.items():
        encodings = ", ".join(f"{e} {k:,}" for e, k in f["encodings"].most_common())
        print(
            f"{name:<32}{f['keys']:>8,}{f['entries'] / n:>11.1f}{f['bytes'] / n:>10,.0f}"
            f"{f['bytes'] / n / total_bytes:>7.0%}  {encodings}"
        )
    rest = total_bytes - sum(f["bytes"] for f in found.values()) / n
    print(f"{'(keyspace tables, allocator)':<32}{'':>19}{rest:>10,.0f}{rest / total_bytes:>7.0%}")


def bench(url: str, n: int, batch: int) -> None:
    r = redis.Redis.from_url(url, decode_responses=True)
    # The baselines go first, so that each side pays for growing Redis' key tables to fit
    # its own keys.
    baselines = {
        "stream (XADD)": cost(r, n, lambda: xadd(r, n)),
        "celery result": cost(r, n, lambda: celery_results(Celery("bench", backend=url), r, n)),
    }
    tidings = Tidings(url)
    tidings.warm_up(batch)
    secret = tidings.run(subscribe_and_key(tidings.store, OWNER))
    items: list[WorkItem] = []

    def emit_phase() -> None:
        items.extend(tidings.run(emit(tidings.store, secret, n, batch)))

    emitted = cost(r, n, emit_phase)
    handled = cost(r, n, lambda: tidings.run(handle(tidings.store, items)))
    total = Cost(
        bytes=emitted.bytes + handled.bytes,
        commands=emitted.commands + handled.commands,
        scripts=emitted.scripts + handled.scripts,
        cpu_us=emitted.cpu_us + handled.cpu_us,
        seconds=emitted.seconds + handled.seconds,
        by_command={},
    )
    query = models.QueryRequest(txKey=TX_KEY, txState="finished", pageSize=1)
    finished = tidings.run(tidings.store.query(Scope(OWNER, ENV), query))
    assert finished.total == n, f"{finished.total} finished transactions for {n} events"
    found = breakdown(r, Scope(OWNER, ENV))
    celery_key = next(r.scan_iter("celery-task-meta-*"))
    print(f"payload {len(dump(payload(0)))} B of JSON, output {dump(OUTPUT)}, batch {batch}")
    print(f"celery record: {r.strlen(celery_key)} B of JSON, expiring in {r.ttl(celery_key)} s")
    costs = {"tidings emit": emitted, "tidings handle": handled, "tidings total": total}
    print_costs(n, {**costs, **baselines})
    print_breakdown(n, total.bytes, found)
    tidings.close()
    r.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="N (default 10,000)")
    parser.add_argument("--batch", type=int, default=1000, help="events per emit (max 1,000)")
    args = parser.parse_args()
    if not 1 <= args.batch <= models.MAX_PAGE_SIZE:
        parser.error(f"--batch must be 1 to {models.MAX_PAGE_SIZE}, as /emit/batch takes")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tidings-bench-") as data_dir:
        server = EmbeddedRedis(data_dir, persist=False)
        try:
            bench(server.start(), args.events, args.batch)
        finally:
            server.stop()  # terminates the redis-server child by its PID
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
