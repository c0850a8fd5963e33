"""Steady load: does tidings keep up with single POST /emit at a fixed rate?

Run it from the repository root (--seconds of load, 3 minutes by default, plus set-up)::

    .venv/bin/python bench/steady_load.py [--rate 300] [--seconds 180] [--work-ms 2]

The API (``tidings serve``, one process) and one worker (``celery -A workers worker -c 2``,
prefork) on an embedded redis-server without persistence, all on this machine with the load
generator. The handler (``bench.work`` in bench/bench_handlers.py) takes 2 ms, sleeping as one
waiting on I/O would. The load is open-loop: --rate POST /emit a second, each one event, sent
on a fixed schedule over up to CONNECTIONS keep-alive connections (bench/http_load.py, so
that the load generator itself costs little CPU); an answer other than 200 stops the run.

Every second it samples the backlog: events answered 200 by /emit whose transaction has not
finished yet (Redis' index of finished ``work`` transactions, one ZCARD). It prints the
backlog's maximum and 95th percentile over the run, the rate handled against the rate
offered, how long the backlog took to drain after the load stopped, and the CPU each part
used. The worker also counts the messages it received, so that the table shows how many
events a message carried. It holds when the backlog stays under 2 seconds of load (--rate
x 2 events) at every sample.
"""

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import sys
import time
from typing import Any

import redis
from harness import WORKER_ARGS, Harness, cpu_seconds, cpu_split, finished, wait_until
from http_load import HttpClient, open_loop

from tidings.store import keys

SECRET_HEADER = "X-Buildable-Secret"
#: How many keep-alive connections the load generator may have open at once.
CONNECTIONS = 32
#: The worker's counts of messages and rows received (bench/bench_handlers.py).
MESSAGES_KEY, ROWS_KEY = "bench:messages", "bench:rows"
#: The load holds when the backlog stays under this many seconds of it.
HOLDS_SECONDS = 2
#: How long the backlog may take to drain after the load, before the run gives up.
DRAIN_TIMEOUT = 600


def cpu(api: int, worker: int, rdb: redis.Redis) -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    main, pool = cpu_split(worker)
    server = rdb.info("cpu")
    return {
        "load": usage.ru_utime + usage.ru_stime,
        "api": cpu_seconds(api),
        "main": main,
        "pool": pool,
        "redis": server["used_cpu_user"] + server["used_cpu_sys"],
    }


async def measure(url: str, port: int, secret: str, args: argparse.Namespace) -> dict[str, Any]:
    rdb = redis.Redis.from_url(url)
    client = HttpClient(port, {SECRET_HEADER: secret}, connections=CONNECTIONS)
    samples: list[int] = []
    answered = 0

    async def emit(i: int) -> None:
        nonlocal answered
        body = json.dumps({"event": "bench.work", "payload": {"i": i}})
        await client.post("/emit", body.encode())
        answered += 1

    async def sample() -> None:
        while True:
            await asyncio.sleep(1)
            samples.append(answered - finished(rdb, "work"))

    sampler = asyncio.create_task(sample())
    started = time.monotonic()
    try:
        late = await open_loop(args.rate, int(args.rate * args.seconds), emit)
    finally:
        sampler.cancel()
        client.close()
    loaded = time.monotonic() - started
    finished_in_load = finished(rdb, "work")
    while finished(rdb, "work") < answered:
        if time.monotonic() - started - loaded > DRAIN_TIMEOUT:
            raise RuntimeError("the backlog did not drain")
        await asyncio.sleep(0.05)
    drained = time.monotonic() - started - loaded
    rdb.close()
    return {
        "answered": answered,
        "loaded": loaded,
        "handled_rate": finished_in_load / loaded,
        "samples": samples,
        "drained": drained,
        "late": late,
    }


def secret_for(base: str) -> str:
    import httpx

    key = {"name": "bench", "env": "test"}
    answer = httpx.post(f"{base}/admin/keys", json=key, headers={"Authorization": "Bearer b"})
    return str(answer.raise_for_status().json()["secret"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=300, help="POST /emit a second")
    parser.add_argument("--seconds", type=float, default=180, help="how long the load lasts")
    parser.add_argument("--work-ms", type=float, default=2, help="the handler's time, in ms")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with Harness() as h:
        api, base = h.serve(
            "serve",
            [sys.executable, "-m", "tidings.cli", "serve", "--port", "{port}"],
            TIDINGS_ADMIN_TOKEN="b",
        )
        worker = h.start(
            "worker",
            [sys.executable, "-m", "celery", "-A", "workers", "worker", *WORKER_ARGS],
            TIDINGS_HANDLERS="bench_handlers",
            BENCH_WORK_SECONDS=str(args.work_ms / 1000),
            BENCH_COUNT_MESSAGES="1",
        )
        rdb = redis.Redis.from_url(h.redis_url)
        name = f"{socket.gethostname()}:{worker}"
        wait_until(lambda: rdb.zscore(keys.WORKERS, name) is not None, 30, "worker")
        secret = secret_for(base)
        port = int(base.rsplit(":", 1)[1])
        before = cpu(api, worker, rdb)
        r = asyncio.run(measure(h.redis_url, port, secret, args))
        after = cpu(api, worker, rdb)
        h.stop(worker)  # it writes its message counts as it shuts down
        messages, rows = [int(x or 0) for x in rdb.mget(MESSAGES_KEY, ROWS_KEY)]
        rdb.close()
    used = {part: (after[part] - before[part]) * 1e6 / r["answered"] for part in after}
    backlog = r["samples"]
    p95 = (
        statistics.quantiles(backlog, n=20, method="inclusive")[18]
        if len(backlog) > 1
        else backlog[0]
    )
    late = statistics.quantiles(r["late"], n=100, method="inclusive")[98] * 1000
    after_load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs; load average {load_before:.1f} before, {after_load:.1f} after")
    print(
        f"\nSteady load: {args.rate:g} POST /emit a second for {args.seconds:g} s, handler "
        f"{args.work_ms:g} ms, one worker {' '.join(WORKER_ARGS)}"
    )
    print(f"offered   {args.rate:>8.1f} events/s   (sends p99 {late:.1f} ms behind schedule)")
    print(f"answered  {r['answered'] / r['loaded']:>8.1f} events/s   ({r['answered']:,} events)")
    print(f"handled   {r['handled_rate']:>8.1f} events/s   (finished while the load lasted)")
    print(
        f"backlog   max {max(backlog):,}  p95 {p95:,.0f}  last {backlog[-1]:,}  "
        f"(events answered, not yet finished; sampled every second, {len(backlog)} samples)"
    )
    print(f"drained   {r['drained']:.1f} s after the load stopped")
    limit = int(args.rate * HOLDS_SECONDS)
    verdict = "holds" if max(backlog) < limit else "falls behind"
    print(f"verdict   {verdict}: backlog under {HOLDS_SECONDS} s of load ({limit:,}) throughout")
    print(f"messages  {messages:,}, {rows / max(messages, 1):.2f} events each")
    print("CPU µs per event: " + ", ".join(f"{part} {v:.0f}" for part, v in used.items()))
    print("(load: this process; main/pool: the worker's main process and pool processes)")


if __name__ == "__main__":
    main()
