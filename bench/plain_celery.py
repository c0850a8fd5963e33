"""The plain Celery baseline of bench/end_to_end.py: ``celery -A plain_celery worker`` with
PYTHONPATH=bench, on the broker in REDIS_URL and with the worker settings of
``tidings.celery_app.create_celery`` (acks_late, prefetch multiplier 1, no results, JSON)."""

import os
import time
from typing import Any

import redis
from celery import Celery, signals

from tidings.celery_app import CELERY_SETTINGS

QUEUE = "plain"
READY_KEY = "bench:plain:ready"
DONE_KEY = "bench:plain:done"
LATENCY_LIST = "bench:latency:plain"
LATENESS_LIST = "bench:lateness:plain"

client = redis.Redis.from_url(os.environ["REDIS_URL"])
app = Celery("plain", broker=os.environ["REDIS_URL"], set_as_current=False)
app.conf.update(CELERY_SETTINGS, task_default_queue=QUEUE)  # the same settings as tidings


@app.task(name="plain.noop")
def noop(n: int) -> None:
    """Baseline A: nothing but a counter, so that the benchmark sees it done."""
    client.incr(DONE_KEY)


@app.task(name="plain.record")
def record(n: int) -> None:
    """Baseline B: the two writes a recorded run needs, a claim before the work and its
    result after (two round trips, like tidings' claim and transact scripts)."""
    run = f"bench:plain:run:{n}"
    client.hset(run, mapping={"state": "processing", "startedAt": time.time_ns()})
    with client.pipeline(transaction=False) as pipe:
        pipe.hset(run, mapping={"state": "finished", "output": "null", "endedAt": time.time_ns()})
        pipe.incr(DONE_KEY)
        pipe.execute()


@app.task(name="plain.latency")
def latency(sent: int) -> None:
    """Seconds from the send (time.time_ns() in the arguments) to this task's start."""
    client.rpush(LATENCY_LIST, (time.time_ns() - sent) / 1e9)


@app.task(name="plain.delayed")
def delayed(due: float) -> None:
    """Milliseconds from the due time (its eta, epoch ms in the arguments) to this start."""
    client.rpush(LATENESS_LIST, time.time() * 1000 - due)


@signals.worker_ready.connect(weak=False)
def ready(sender: Any = None, **kwargs: Any) -> None:
    client.set(READY_KEY, os.getpid())
