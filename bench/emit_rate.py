"""How many POST /emit a second tidings serves, against a bare FastAPI endpoint doing the same
Redis writes.

Three servers, each under uvicorn with 2 worker processes and uvicorn's defaults (access log
on), all on one embedded redis-server (no persistence):

  tidings         ``tidings serve --workers 2``: authentication, validation, the emit script,
                  then dispatch (a handler is subscribed, so every event is published to
                  Celery; events emitted while a publish is in flight share the next message)
  bare            bench/bare_app.py: the same emit script through ``Store.emit`` for a fixed
                  scope and label, without key lookup, validation or dispatch
  bare+publish    the same plus one Celery message per request, as tidings would send it

No worker runs: the subscription is registered in Redis as a worker's start-up would, and the
published messages pile up in the broker's queue, counted (``events/msg``) and dropped after
each run. The database is emptied between runs (the secret key and subscription are put back),
so that every run starts alike.

The load is wrk (``apt-get install wrk``): 256 connections on 127.0.0.1, one event per
request, --seconds per run; the servers take turns, --rounds times each, after a warm-up,
and the table shows the means. ``2xx/s`` counts successful answers only; ``5xx %`` is the
share of failed ones, whose exceptions are read from the server logs and printed below the
table. ``cpu:server`` and ``cpu:redis`` are the CPU µs the server's processes and
redis-server used per stored event. Run it from the repository root::

    .venv/bin/python bench/emit_rate.py [--seconds 10] [--rounds 2] [--connections 256]
"""

import argparse
import asyncio
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any

import redis
from harness import Harness, cpu_seconds, stored_events

from tidings import models
from tidings.store import Store

QUEUE = "tidings.test"  # the Celery queue of the subscribed handler, in the test environment
BODY = '{"event": "bench.noop", "payload": {"user": "ada@example.com", "plan": "pro", "seats": 3}}'
UVICORN = [sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", "bench"]
SERVERS: dict[str, tuple[list[str], dict[str, str]]] = {
    "tidings": ([sys.executable, "-m", "tidings.cli", "serve"], {}),
    "bare": (UVICORN, {"BARE_PUBLISH": "0"}),
    "bare+publish": (UVICORN, {"BARE_PUBLISH": "1"}),
}


async def setup(url: str) -> str:
    """A secret key, and a handler subscribed to the event the load emits; answers the secret."""
    store = Store.from_url(url, ttl_seconds=30 * 24 * 3600)
    created = await store.create_key("bench", "test")
    noop = models.Subscription(txKey="noop", eventName="bench.noop", queue="tidings")
    await store.subscribe([noop], ["test"])
    await store.close()
    return created.secret or ""


def ms(value: str, unit: str) -> float:
    """A wrk duration ("1.25", "ms") in milliseconds."""
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def wrk(url: str, script: str, seconds: int, connections: int) -> dict[str, Any]:
    """One wrk run; non-2xx answers are counted apart, not in the rate."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout

    def find(pattern: str) -> re.Match[str]:
        found = re.search(pattern, out)
        if found is None:
            raise RuntimeError(f"no {pattern!r} in the output of wrk:\n{out}")
        return found

    done = find(r"(\d+) requests in ([\d.]+)(us|ms|s)")
    requests, took = int(done[1]), ms(done[2], done[3]) / 1000
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    ok = requests - (int(failed[1]) if failed else 0)
    latency = {q: ms(*find(rf"{q}%\s+([\d.]+)(us|ms|s)").groups()) for q in ("50", "99")}
    return {"ok": ok, "rate": ok / took, "failed": 100 * (requests - ok) / requests, **latency}


def redis_cpu(rdb: redis.Redis) -> float:
    info = rdb.info("cpu")
    return float(info["used_cpu_user"] + info["used_cpu_sys"])


def settle(rdb: redis.Redis) -> int:
    """Wait for the requests still in flight when wrk stopped; answers the events stored."""
    last = -1
    while (stored := stored_events(rdb)) != last:
        last = stored
        time.sleep(0.3)
    return stored


def measure(h: Harness, args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    rdb = redis.Redis.from_url(h.redis_url)
    secret = asyncio.run(setup(h.redis_url))
    saved = {key: rdb.dump(key) for key in rdb.scan_iter()}
    script = h.dir / "emit.lua"
    script.write_text(
        f"wrk.method = 'POST'\nwrk.body = '{BODY}'\n"
        "wrk.headers['Content-Type'] = 'application/json'\n"
        f"wrk.headers['X-Buildable-Secret'] = '{secret}'\n"
    )
    servers = {}
    for name, (command, env) in SERVERS.items():
        servers[name] = h.serve(name, [*command, "--port", "{port}", "--workers", "2"], **env)
        wrk(servers[name][1] + "/emit", str(script), 2, args.connections)  # warm-up
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SERVERS}
    for i in range(args.rounds):
        for name in list(SERVERS)[:: 1 if i % 2 == 0 else -1]:
            pid, base = servers[name]
            rdb.flushdb()
            for key, value in saved.items():
                rdb.restore(key, 0, value, replace=True)  # a server may have written it again
            cpu = cpu_seconds(pid), redis_cpu(rdb)
            run = wrk(base + "/emit", str(script), args.seconds, args.connections)
            stored, messages = settle(rdb), rdb.llen(QUEUE)
            server, redis_used = cpu_seconds(pid) - cpu[0], redis_cpu(rdb) - cpu[1]
            assert stored >= run["ok"], f"{name}: {stored} events stored, {run['ok']} answered"
            run["server"], run["redis"] = server * 1e6 / stored, redis_used * 1e6 / stored
            run["per_msg"] = stored / messages if messages else float("nan")
            runs[name].append(run)
    rdb.close()
    return runs


def failures(h: Harness) -> str:
    """The exceptions in the servers' logs, for the 5xx answers."""
    found = []
    for name in SERVERS:
        log = (h.dir / f"{name}.log").read_text(errors="replace")
        errors = sorted(set(re.findall(r"^[\w.]+(?:Error|Exception): .*$", log, re.MULTILINE)))
        found += [f"{name}: {error}" for error in errors]
    return "; ".join(found)


def report(args: argparse.Namespace, runs: dict[str, list[dict[str, Any]]], failures: str) -> None:
    mean = {
        name: {k: statistics.mean(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()
    }
    print(
        f"\nPOST /emit, one event per request: wrk, {args.connections} connections, "
        f"{args.seconds:g} s per run, mean of {args.rounds} runs; 2 uvicorn workers per server"
    )
    print(
        f"{'':<14}{'2xx/s':>7}{'5xx %':>7}{'p50 ms':>8}{'p99 ms':>8}{'events/msg':>11}"
        f"{'tidings/x':>10}{'cpu:server':>11}{'cpu:redis':>10}"
    )
    for name, r in mean.items():
        ratio = f"{mean['tidings']['rate'] / r['rate']:.2f}x" if name != "tidings" else ""
        per_msg = "-" if math.isnan(r["per_msg"]) else f"{r['per_msg']:.1f}"
        print(
            f"{name:<14}{r['rate']:>7,.0f}{r['failed']:>7.1f}{r['50']:>8.1f}{r['99']:>8.1f}"
            f"{per_msg:>11}{ratio:>10}{r['server']:>11.0f}{r['redis']:>10.0f}"
        )
    print("cpu:* = CPU µs per stored event: the server's processes, redis-server")
    if failures:
        print(f"5xx: {failures}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each server")
    parser.add_argument("--connections", type=int, default=256)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    started, load = time.perf_counter(), os.getloadavg()[0]
    with Harness() as h:
        runs = measure(h, args)
        errors = failures(h)
    print(f"{os.cpu_count()} CPUs; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")
    report(args, runs, errors)
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
