"""Per-event timelines for the benchmarks: when each event passed each stage on its way from
POST /emit to its handler's start.

Stages, in order (the process that marks each in brackets):
  sent       the client's time.time_ns() just before POST /emit          [bench]
  accepted   the API begins storing it (body read and parsed)            [API]
  stored     the emit script has answered                                [API]
  published  the Celery message carrying it has been handed to the broker [API]
  received   the worker's main process has the message (task_received)   [worker main]
  pool       a pool process begins the message's task (task_prerun)      [worker pool]
  claimed    the pool process has its leased claim                       [worker pool]
  started    its handler begins                                          [worker pool]
  ended      its result is recorded (after started: the service time)    [worker pool]

Each process marks time.time_ns(): one host, one clock, so times from different processes
compare directly (to well under the ms the figures are given in). A hook costs a clock read and
a list append; the marks go to Redis at most every FLUSH_SECONDS, written by the thread that
marks, where it is done with an event (after a pool process's task, between the worker's
receipts, from the API's event loop), so that no extra thread competes for the GIL.

The hooks are bench-only: ``bench/traced_serve.py`` installs the API's (wrapping
``Store.emit_with_secret`` and the dispatcher's publish), ``bench/bench_handlers.py`` the
worker's (Celery's task_received, task_prerun and task_postrun signals, and wrappers around
``Store.claim`` and ``Store.finish``).
"""

import statistics
import time
from collections.abc import Iterable
from typing import Any

import redis

STAGES = (
    "sent",
    "accepted",
    "stored",
    "published",
    "received",
    "pool",
    "claimed",
    "started",
    "ended",
)
PREFIX = "bench:timeline:"
FLUSH_SECONDS = 0.2

_marks: list[tuple[str, str, int]] = []
_last_flush = 0
now_ns = time.time_ns


def mark(stage: str, keys: Iterable[str], at: int | None = None) -> None:
    """Note that these events passed a stage now (or ``at``, a now_ns() taken earlier)."""
    ns = now_ns() if at is None else at
    _marks.extend((stage, key, ns) for key in keys)


def due() -> list[tuple[str, str, int]]:
    """The marks to write now, if FLUSH_SECONDS have passed since the last write."""
    global _last_flush
    now = now_ns()
    if not _marks or now - _last_flush < FLUSH_SECONDS * 1e9:
        return []
    _last_flush = now
    marks = _marks[:]
    del _marks[:]
    return marks


def flush(client: Any, marks: list[tuple[str, str, int]] | None = None) -> Any:
    """Write marks (by default all), with a redis.Redis or, awaited, a redis.asyncio.Redis."""
    if marks is None:
        marks, _marks[:] = _marks[:], []
    pipe = client.pipeline(transaction=False)
    for stage, key, ns in marks:
        pipe.hset(PREFIX + stage, key, ns)
    return pipe.execute()


def read(client: redis.Redis, keys: list[str]) -> dict[str, dict[str, int]]:
    """The marks of these events, stage -> key -> ns."""
    found: dict[str, dict[str, int]] = {}
    for stage in STAGES:
        values = client.hmget(PREFIX + stage, keys) if keys else []
        found[stage] = {k: int(v) for k, v in zip(keys, values, strict=True) if v is not None}
    return found


def clear(client: redis.Redis) -> None:
    client.delete(*(PREFIX + stage for stage in STAGES))


def steps(marks: dict[str, dict[str, int]]) -> dict[str, list[float]]:
    """ms spent between consecutive stages, and from sent to started, over the events that
    passed every stage."""
    complete = set.intersection(*(set(marks[s]) for s in STAGES))
    out: dict[str, list[float]] = {}
    for before, after in zip(STAGES, STAGES[1:], strict=False):
        out[f"{before} -> {after}"] = [(marks[after][k] - marks[before][k]) / 1e6 for k in complete]
    out["sent -> started"] = [(marks["started"][k] - marks["sent"][k]) / 1e6 for k in complete]
    out["pool -> ended"] = [(marks["ended"][k] - marks["pool"][k]) / 1e6 for k in complete]
    return out


def message_sizes(marks: dict[str, dict[str, int]]) -> list[int]:
    """How many of the events each message carried (those a pool process began together)."""
    sizes: dict[int, int] = {}
    for ns in marks["pool"].values():
        sizes[ns] = sizes.get(ns, 0) + 1
    return list(sizes.values())


def percentiles(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": q[49], "p90": q[89], "p99": q[98], "max": max(values)}


def print_steps(marks: dict[str, dict[str, int]]) -> None:
    table = steps(marks)
    n = len(next(iter(table.values())))
    print(f"timeline of {n:,} events, ms between stages (one host clock, time.time_ns)")
    print(f"{'':<26}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}")
    for name, values in table.items():
        if len(values) < 2:
            continue
        p = percentiles(values)
        print(f"{name:<26}" + "".join(f"{p[q]:>8.2f}" for q in ("p50", "p90", "p99", "max")))
    sizes = message_sizes(marks)
    print(
        f"{len(sizes):,} messages, {statistics.mean(sizes):.2f} events each on average, "
        f"at most {max(sizes)}"
    )


def row_keys(rows: Any) -> list[str]:
    """The event keys in a tidings.run message's rows (owner, env, key, txKey, attempt)."""
    return [row[2] for row in rows]
