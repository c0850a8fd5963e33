"""The Dramatiq baseline of bench/end_to_end.py: ``python -m dramatiq plain_dramatiq --processes 2
--threads 8`` with PYTHONPATH=bench, its Redis broker on the Redis in REDIS_URL, with Dramatiq's
default settings and middleware (no results)."""

import os
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

PROCESSES = 2
THREADS = 8
READY_KEY = "bench:dramatiq:ready"
DONE_KEY = "bench:dramatiq:done"

client = redis.Redis.from_url(os.environ["REDIS_URL"])


class Ready(Middleware):
    """Counts the worker processes that have started consuming, so that the bench waits for
    them all."""

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        client.incr(READY_KEY)


broker = RedisBroker(url=os.environ["REDIS_URL"])
broker.add_middleware(Ready())
dramatiq.set_broker(broker)


@dramatiq.actor
def noop(n: int) -> None:
    """Nothing but a counter, so that the benchmark sees it done (like plain Celery's A)."""
    client.incr(DONE_KEY)
