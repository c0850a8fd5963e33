"""The handlers the benchmarks run in a tidings worker (TIDINGS_HANDLERS=bench_handlers,
PYTHONPATH=bench), and the worker's bench-only hooks:

- BENCH_TIMELINE=1: the timeline (bench/timeline.py): received by the main process, begun in
  a pool process, claimed (Store.claim_many), started and ended (Store.finish_many).
- BENCH_COUNT_MESSAGES=1: the main process counts the tidings.run messages it receives and the
  events they carry, and writes the counts to Redis when the worker shuts down.
"""

import os
import time
from functools import wraps
from typing import Any

import redis
import timeline
from celery import signals

from tidings import Message, handler
from tidings.celery_app import RUN_TASK
from tidings.store import Store

LATENCY_LIST = "bench:latency:tidings"
LATENESS_LIST = "bench:lateness:tidings"
MESSAGES_KEY, ROWS_KEY = "bench:messages", "bench:rows"
#: How long the steady-load handler works, in seconds.
WORK_SECONDS = float(os.environ.get("BENCH_WORK_SECONDS", "0.002"))

client = redis.Redis.from_url(os.environ["REDIS_URL"])


@handler("bench.noop", tx_key="noop")
def noop(event: Message[Any]) -> None:
    return None


@handler("bench.latency", tx_key="latency")
def latency(event: Message[Any]) -> None:
    """Seconds from the client's send (time.time_ns() in the payload) to this handler's start."""
    started = time.time_ns()
    timeline.mark("started", [event.event.key], at=started)
    client.rpush(LATENCY_LIST, (started - event.payload["sent"]) / 1e9)


@handler("bench.delayed", tx_key="delayed")
def delayed(event: Message[Any]) -> None:
    """Milliseconds from the due time (epoch ms in the payload) to this handler's start."""
    client.rpush(LATENESS_LIST, time.time() * 1000 - event.payload["due"])


@handler("bench.work", tx_key="work")
def work(event: Message[Any]) -> None:
    """A handler that takes WORK_SECONDS (sleeping, as one waiting on I/O would)."""
    time.sleep(WORK_SECONDS)


def install_timeline() -> None:
    @signals.task_received.connect(weak=False)
    def received(request: Any = None, **kwargs: Any) -> None:
        """In the worker's main process."""
        if request is not None and request.name == RUN_TASK:
            timeline.mark("received", timeline.row_keys(request.args[0]))
            flush_due()

    @signals.task_prerun.connect(weak=False)
    def in_pool(task: Any = None, args: Any = None, **kwargs: Any) -> None:
        if task is not None and task.name == RUN_TASK:
            timeline.mark("pool", timeline.row_keys(args[0]))

    @signals.task_postrun.connect(weak=False)
    def after_run(**kwargs: Any) -> None:
        """In a pool process, once a message's rows have all run."""
        flush_due()

    def flush_due() -> None:
        marks = timeline.due()
        if marks:
            timeline.flush(client, marks)

    claim_many, finish_many = Store.claim_many, Store.finish_many

    @wraps(claim_many)
    async def traced_claim_many(self: Store, items: Any, **kwargs: Any) -> Any:
        found = await claim_many(self, items, **kwargs)
        timeline.mark("claimed", [item.key for item in items])
        return found

    @wraps(finish_many)
    async def traced_finish_many(self: Store, results: Any, *args: Any) -> Any:
        found = await finish_many(self, results, *args)
        timeline.mark("ended", [result.item.key for result in results])
        return found

    Store.claim_many = traced_claim_many  # type: ignore[method-assign]
    Store.finish_many = traced_finish_many  # type: ignore[method-assign]


def install_message_count() -> None:
    counts = {MESSAGES_KEY: 0, ROWS_KEY: 0}

    @signals.task_received.connect(weak=False)
    def received(request: Any = None, **kwargs: Any) -> None:
        if request is not None and request.name == RUN_TASK:
            counts[MESSAGES_KEY] += 1
            counts[ROWS_KEY] += len(request.args[0])

    @signals.worker_shutdown.connect(weak=False)
    def write(**kwargs: Any) -> None:
        client.mset(counts)


if os.environ.get("BENCH_TIMELINE") == "1":
    install_timeline()
if os.environ.get("BENCH_COUNT_MESSAGES") == "1":
    install_message_count()
