"""The handlers bench/end_to_end.py runs in a tidings worker (TIDINGS_HANDLERS=bench_handlers,
PYTHONPATH=bench): a no-op, and one that records how long after its emit it started."""

import os
import time
from typing import Any

import redis

from tidings import Message, handler

LATENCY_LIST = "bench:latency:tidings"

client = redis.Redis.from_url(os.environ["REDIS_URL"])


@handler("bench.noop", tx_key="noop")
def noop(event: Message[Any]) -> None:
    return None


@handler("bench.latency", tx_key="latency")
def latency(event: Message[Any]) -> None:
    """Seconds from the client's send (time.time() in the payload) to this handler's start."""
    client.rpush(LATENCY_LIST, time.time() - event.payload["sent"])
