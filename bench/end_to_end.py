"""End to end: tidings (emit over HTTP -> Redis -> Celery -> handler -> transaction recorded)
against plain Celery on the same broker, with the same worker settings, and against Dramatiq.

Run it from the repository root (about 2 minutes; ``--rounds 0`` measures latency only, in
about 30 s)::

    .venv/bin/python bench/end_to_end.py [--events 5000] [--rounds 3] [--rate 200] [--seconds 10]

One tidings worker, one plain Celery worker and one Dramatiq worker run side by side (an idle
worker costs next to nothing). The two Celery workers run ``--pool=prefork --concurrency=2
--without-mingle --without-gossip --loglevel=warning``, with acks_late, prefetch multiplier 1
and no results (tidings' app config, mirrored in bench/plain_celery.py). Dramatiq runs as its
users run it: 2 processes x 8 threads, its Redis broker and default middleware, no results
(bench/plain_dramatiq.py); when idle, its consumers poll Redis with a backoff of up to 1 s
(its worker timeout), so a run's wall time includes waking them. All use the one embedded
redis-server. The API is ``tidings serve --workers 1`` with the timeline hooks
(bench/traced_serve.py). The sides take turns, so that a noisy neighbour on the machine hits
them alike.

Throughput, N (default 5,000) per run, the median of --rounds runs of each side:
  tidings  N events for a no-op handler, POST /emit/batch 1,000 at a time; wall time from the
           first emit until Redis' index of finished ``noop`` transactions holds them all
           (polled every 5 ms; /query checks the total at the end).
  A        N plain Celery tasks that only INCR a counter, sent with apply_async; wall time
           from the first send until the counter reads N.
  B        the same with a task doing a recorded run's two writes: HSET a claim, then HSET
           the result and INCR the counter (two round trips, like tidings' claim and transact).
  D        N Dramatiq messages to a no-op actor that only INCRs a counter, sent with
           ``send``; wall time from the first send until the counter reads N.
  ``CPU µs/event`` is the CPU time each part used per event: this process (sending and
  polling), the API, the side's own worker (main process and pool children, or Dramatiq's
  main process and its worker processes), and redis-server (which serves every side, so its
  figure includes the idle workers' polling and tidings' periodic duties). Below the table,
  redis-server's CPU µs per handled event for each side, against the goal for tidings.

Latency: --rate events/s (default 200) for --seconds (default 10, in two turns of each side),
each a single POST /emit sent on a fixed schedule from a lean asyncio HTTP client
(bench/http_load.py) whose payload carries the client's time.time_ns() just before the
request is written; the handler RPUSHes its start time minus that to a Redis list. Plain
Celery: tasks at the same pace from 4 threads (so that one slow send does not hold back the
next), apply_async(time.time_ns()), task start minus send time. Both sides' figures include
their client's own cost of sending. Clock: time.time_ns() in every process, on one host: the
processes read the same clock, so differences across processes are true to well under the
0.01 ms the figures are given in.

Below the latency table: the CPU µs each part used per event during the latency turns (this
process, the API, the worker's main process, its pool processes, redis-server), how many
CPUs every other process on the machine used meanwhile (on a shared machine the figures
mean little without it), and the timeline (bench/timeline.py): per event, the ms between
sent, accepted, stored, published, received (worker main process), pool (a pool process
begins the message), claimed, started and ended, with percentiles for each step, and how
many events each message carried.

It starts its own embedded redis-server (no persistence), the API and the workers, and stops
them all by PID at the end.
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import redis
import timeline
from harness import (
    WORKER_ARGS,
    Harness,
    cpu_seconds,
    cpu_split,
    finished,
    machine_cpu_seconds,
    wait_until,
)
from http_load import HttpClient, open_loop

from tidings.store import keys

CELERY = [sys.executable, "-m", "celery"]
SECRET_HEADER = "X-Buildable-Secret"
WARM_UP = 200
NUDGES = 20
LANES = 4
CPU_PARTS = ("send", "api", "worker", "redis")
LATENCY_CPU_PARTS = ("send", "api", "main", "pool", "redis")
#: Issue 9's goal: redis-server CPU per event emitted and handled by tidings.
REDIS_CPU_GOAL_US = 150


def worker(app: str) -> list[str]:
    return [*CELERY, "-A", app, "worker", *WORKER_ARGS, "--loglevel=warning"]


class Bench:
    def __init__(self, h: Harness, args: argparse.Namespace) -> None:
        os.environ["REDIS_URL"] = h.redis_url  # read by bench_handlers and the baselines
        import plain_celery
        import plain_dramatiq

        self.plain = plain_celery
        self.dramatiq = plain_dramatiq
        self.args = args
        self.rdb = redis.Redis.from_url(h.redis_url)
        self.api, base = h.serve(
            "serve",
            [sys.executable, "bench/traced_serve.py", "--port", "{port}", "--workers", "1"],
            TIDINGS_ADMIN_TOKEN="bench",
        )
        self.workers = [
            h.start(
                "tidings-worker",
                worker("workers"),
                TIDINGS_HANDLERS="bench_handlers",
                BENCH_TIMELINE="1",
            ),
            h.start("plain-worker", worker("plain_celery")),
            h.start(
                "dramatiq-worker",
                [
                    *[sys.executable, "-m", "dramatiq", "plain_dramatiq"],
                    *["--processes", str(plain_dramatiq.PROCESSES)],
                    *["--threads", str(plain_dramatiq.THREADS)],
                ],
            ),
        ]
        name = f"{socket.gethostname()}:{self.workers[0]}"
        wait_until(lambda: self.rdb.zscore(keys.WORKERS, name) is not None, 30, "worker")
        wait_until(lambda: self.rdb.get(plain_celery.READY_KEY), 30, "plain Celery worker")
        processes = plain_dramatiq.PROCESSES
        ready = plain_dramatiq.READY_KEY
        wait_until(lambda: self.count(ready) >= processes, 30, "Dramatiq's worker processes")
        self.http = httpx.Client(base_url=base, timeout=30)
        self.port = int(base.rsplit(":", 1)[1])
        self.latency_keys: list[str] = []
        key, admin = {"name": "bench", "env": "test"}, {"Authorization": "Bearer bench"}
        created = self.http.post("/admin/keys", json=key, headers=admin)
        self.secret = created.raise_for_status().json()["secret"]
        self.http.headers[SECRET_HEADER] = self.secret

    def close(self) -> None:
        self.http.close()
        self.plain.app.pool.force_close_all()
        self.dramatiq.broker.client.close()
        self.rdb.close()

    def cpu(self, worker: int) -> dict[str, float]:
        """CPU seconds so far of the parts a throughput run uses, with one side's worker."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        server = self.rdb.info("cpu")
        return {
            "send": usage.ru_utime + usage.ru_stime,
            "api": cpu_seconds(self.api),
            "worker": cpu_seconds(worker),
            "redis": server["used_cpu_user"] + server["used_cpu_sys"],
        }

    def turn_cpu(self, worker: int) -> dict[str, float]:
        """CPU seconds so far of the parts a latency turn uses, with one worker's main
        process and pool apart."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        server = self.rdb.info("cpu")
        main, pool = cpu_split(worker)
        return {
            "send": usage.ru_utime + usage.ru_stime,
            "api": cpu_seconds(self.api),
            "main": main,
            "pool": pool,
            "redis": server["used_cpu_user"] + server["used_cpu_sys"],
            "machine": machine_cpu_seconds(),
            "wall": time.monotonic(),
        }

    # Throughput

    def count(self, key: str) -> int:
        return int(self.rdb.get(key) or 0)

    def timed(
        self, worker: int, send: Callable[[], None], done: Callable[[], bool], n: int
    ) -> dict[str, Any]:
        cpu, started = self.cpu(worker), time.perf_counter()
        send()
        sent = time.perf_counter()
        wait_until(done, 120, "the last run", every=0.005)
        wall, after = time.perf_counter() - started, self.cpu(worker)
        used = {part: (after[part] - cpu[part]) * 1e6 / n for part in CPU_PARTS}
        return {"rate": n / wall, "wall": wall, "send": sent - started, "cpu": used}

    def tidings(self, n: int) -> dict[str, Any]:
        target = finished(self.rdb, "noop") + n
        events = [{"event": "bench.noop", "payload": {"i": i}} for i in range(n)]

        def send() -> None:
            for i in range(0, n, 1000):
                batch = {"events": events[i : i + 1000]}
                self.http.post("/emit/batch", json=batch).raise_for_status()

        return self.timed(self.workers[0], send, lambda: finished(self.rdb, "noop") >= target, n)

    def celery(self, task: Any, n: int) -> dict[str, Any]:
        self.rdb.delete(self.plain.DONE_KEY)

        def send() -> None:
            for i in range(n):
                task.apply_async(args=[i])

        return self.timed(self.workers[1], send, lambda: self.count(self.plain.DONE_KEY) >= n, n)

    def dramatiq_noop(self, n: int) -> dict[str, Any]:
        self.rdb.delete(self.dramatiq.DONE_KEY)

        def send() -> None:
            for i in range(n):
                self.dramatiq.noop.send(i)

        done = self.dramatiq.DONE_KEY
        return self.timed(self.workers[2], send, lambda: self.count(done) >= n, n)

    # Latency

    def paced(self, seconds: float, send: Callable[[], Any]) -> list[float]:
        """send() at --rate per second, lane i of LANES sending calls i, i + LANES, ...;
        answers how long each call took, in ms."""
        rate, n = self.args.rate, int(self.args.rate * seconds)
        start = time.perf_counter() + 0.05

        def lane(first: int) -> list[float]:
            took = []
            for k in range(first, n, LANES):
                time.sleep(max(0.0, start + k / rate - time.perf_counter()))
                t0 = time.perf_counter()
                send()
                took.append((time.perf_counter() - t0) * 1000)
            return took

        with ThreadPoolExecutor(LANES) as pool:
            return [ms for took in pool.map(lane, range(LANES)) for ms in took]

    def emit_paced(self, seconds: float) -> list[float]:
        """POST /emit at --rate per second from a lean asyncio client (bench/http_load.py);
        answers how long each request took, in ms."""
        took: list[float] = []

        async def run() -> None:
            client = HttpClient(self.port, {SECRET_HEADER: self.secret})

            async def emit(i: int) -> None:
                sent = timeline.now_ns()
                body = json.dumps({"event": "bench.latency", "payload": {"sent": sent}})
                key = json.loads(await client.post("/emit", body.encode()))["key"]
                took.append((timeline.now_ns() - sent) / 1e6)
                timeline.mark("sent", [key], at=sent)
                self.latency_keys.append(key)

            try:
                await open_loop(self.args.rate, int(self.args.rate * seconds), emit)
            finally:
                client.close()

        asyncio.run(run())
        return took

    def nudge(self) -> None:
        """Emit no-op events for a while, so that every process marking the timeline passes a
        point where it writes its last marks."""
        for _ in range(NUDGES):
            self.http.post("/emit", json={"event": "bench.noop"}).raise_for_status()
            time.sleep(timeline.FLUSH_SECONDS / 4)

    def task_latency(self) -> None:
        self.plain.latency.apply_async(args=[time.time_ns()])

    def latencies(self, key: str, n: int) -> list[float]:
        wait_until(lambda: self.rdb.llen(key) >= n, 60, f"{n} entries in {key}")
        values = [float(x) * 1000 for x in self.rdb.lrange(key, 0, -1)]
        self.rdb.delete(key)
        return values


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate, with the CPU use averaged over all runs."""
    run = sorted(runs, key=lambda r: r["rate"])[len(runs) // 2]
    cpu = {part: statistics.mean(r["cpu"][part] for r in runs) for part in CPU_PARTS}
    return {**run, "cpu": cpu}


def pct(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": q[49], "p99": q[98], "max": max(values)}


def throughput(b: Bench, args: argparse.Namespace) -> dict[str, Any]:
    sides: dict[str, Callable[[int], dict[str, Any]]] = {
        "tidings": b.tidings,
        "A": lambda n: b.celery(b.plain.noop, n),
        "B": lambda n: b.celery(b.plain.record, n),
        "D": b.dramatiq_noop,
    }
    for side in sides.values():
        side(WARM_UP)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, side in sides.items():
            runs[name].append(side(args.events))
    query = {"txKey": "noop", "txState": "finished", "pageSize": 1}
    total = b.http.post("/query", json=query).json()["total"]
    assert total == WARM_UP + args.events * args.rounds, f"/query: {total} finished"
    return {name: median_run(r) for name, r in runs.items()}


def latency(b: Bench, args: argparse.Namespace) -> dict[str, Any]:
    from bench_handlers import LATENCY_LIST

    b.emit_paced(0.2)  # warm-up
    b.paced(0.2, b.task_latency)
    b.latencies(LATENCY_LIST, int(args.rate * 0.2))
    b.latencies(b.plain.LATENCY_LIST, int(args.rate * 0.2))
    b.latency_keys.clear()
    rtt: list[float] = []
    cpu = {side: dict.fromkeys(LATENCY_CPU_PARTS, 0.0) for side in ("tidings", "plain")}
    others = {"tidings": 0.0, "plain": 0.0}  # CPU seconds of every other process
    wall = {"tidings": 0.0, "plain": 0.0}
    for _ in range(2):  # in turns
        for side, worker, paced in [
            ("tidings", b.workers[0], b.emit_paced),
            ("plain", b.workers[1], lambda seconds: b.paced(seconds, b.task_latency)),
        ]:
            before = b.turn_cpu(worker)
            took = paced(args.seconds / 2)
            time.sleep(0.5)  # the last sends are handled
            after = b.turn_cpu(worker)
            used = {part: after[part] - before[part] for part in after}
            for part in LATENCY_CPU_PARTS:
                cpu[side][part] += used[part]
            others[side] += used["machine"] - sum(used[part] for part in LATENCY_CPU_PARTS)
            wall[side] += used["wall"]
            if side == "tidings":
                rtt += took
    n = 2 * int(args.rate * args.seconds / 2)
    result = {
        "tidings": pct(b.latencies(LATENCY_LIST, n)),
        "plain": pct(b.latencies(b.plain.LATENCY_LIST, n)),
        "rtt": pct(rtt),
        "cpu": {side: {p: v * 1e6 / n for p, v in parts.items()} for side, parts in cpu.items()},
        "others": {side: max(0.0, others[side]) / wall[side] for side in others},
    }
    timeline.flush(b.rdb)
    b.nudge()
    result["timeline"] = timeline.read(b.rdb, b.latency_keys)
    return result


def report_throughput(args: argparse.Namespace, r: dict[str, Any]) -> None:
    print(
        f"\nThroughput: {args.events:,} events or tasks per run, first send -> last done, "
        f"median of {args.rounds} runs"
    )
    cpu_head = "".join(f"{'cpu:' + part:>11}" for part in CPU_PARTS)
    print(f"{'':<38}{'per s':>7}{'wall s':>7}{'send s':>7}{'tidings/x':>10}{cpu_head}")
    rows = [
        ("tidings: /emit/batch -> noop handler", "tidings"),
        ("A  Celery: no-op task (INCR)", "A"),
        ("B  Celery: task with 2 writes", "B"),
        ("D  Dramatiq: no-op actor (INCR)", "D"),
    ]
    for label, name in rows:
        x = r[name]
        ratio = f"{r['tidings']['rate'] / x['rate']:.2f}x" if name != "tidings" else ""
        cpu = "".join(f"{x['cpu'][part]:>11.0f}" for part in CPU_PARTS)
        print(f"{label:<38}{x['rate']:>7,.0f}{x['wall']:>7.2f}{x['send']:>7.2f}{ratio:>10}{cpu}")
    print(
        "cpu:* = CPU µs per event: this process (sending, polling), the API, the worker "
        "(main + pool), redis-server"
    )
    redis_cpu = ", ".join(f"{name} {r[name]['cpu']['redis']:.0f}" for _, name in rows)
    print(
        f"redis-server CPU µs per handled event: {redis_cpu} "
        f"(goal for tidings: at most {REDIS_CPU_GOAL_US})"
    )


def report_latency(args: argparse.Namespace, lat: dict[str, Any]) -> None:
    n = 2 * int(args.rate * args.seconds / 2)
    print(f"\nLatency: {n:,} sends each at {args.rate:g}/s, send -> handler (task) start, ms")
    print(f"{'':<38}{'p50':>7}{'p99':>7}{'max':>7}")
    for label, name in [
        ("tidings: POST /emit -> handler", "tidings"),
        ("Celery: apply_async -> task", "plain"),
    ]:
        print(f"{label:<38}" + "".join(f"{lat[name][q]:>7.2f}" for q in ("p50", "p99", "max")))
    ratios = [lat["tidings"][q] / lat["plain"][q] for q in ("p50", "p99", "max")]
    print(f"{'tidings/Celery':<38}" + "".join(f"{x:>6.1f}x" for x in ratios))
    rtt = "".join(f"{lat['rtt'][q]:>7.2f}" for q in ("p50", "p99", "max"))
    print(f"{'(tidings: POST /emit round trip)':<38}{rtt}")
    print("\nCPU µs per event (task) in the latency runs")
    print(f"{'':<38}" + "".join(f"{part:>8}" for part in LATENCY_CPU_PARTS))
    for name in ("tidings", "plain"):
        print(f"{name:<38}" + "".join(f"{lat['cpu'][name][p]:>8.0f}" for p in LATENCY_CPU_PARTS))
    print("main/pool: the worker's main process and its pool processes; send: this process")
    busy = ", ".join(
        f"{lat['others'][name]:.2f} in the {name} turns" for name in ("tidings", "plain")
    )
    print(f"CPUs used by every other process on the machine, on average: {busy}")
    print()
    timeline.print_steps(lat["timeline"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="per throughput run")
    parser.add_argument(
        "--rounds", type=int, default=3, help="throughput runs of each side (0: latency only)"
    )
    parser.add_argument("--rate", type=float, default=200, help="latency: sends per second")
    parser.add_argument("--seconds", type=float, default=10, help="latency: seconds per side")
    args = parser.parse_args()
    started = time.perf_counter()
    load = os.getloadavg()[0]
    with Harness() as h:
        b = Bench(h, args)
        try:
            rates = throughput(b, args) if args.rounds else None
            latencies = latency(b, args)
        finally:
            b.close()
    print(f"{os.cpu_count()} CPUs; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")
    if rates:
        report_throughput(args, rates)
    report_latency(args, latencies)
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
