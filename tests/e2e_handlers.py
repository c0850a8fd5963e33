"""Handlers that the end-to-end tests run in real Celery worker processes.

Each run is counted in Redis, so that a test can tell how often a handler really ran.
"""

import asyncio
import os
import time
from typing import Any

from pydantic import BaseModel
from redis_support import client

from tidings import Message, handler

counter = client(os.environ["REDIS_URL"], decode_responses=True)


def count_run(event: Message[Any]) -> int:
    return int(counter.incr(f"test:runs:{event.tx_key}:{event.event.key}"))


@handler("e2e.echo", tx_key="echo")
def echo(event: Message[Any]) -> dict[str, Any]:
    count_run(event)
    return {"echo": event.payload, "fullName": event.event.fullName}


@handler("e2e.fan", tx_key="fan-a")
def fan_a(event: Message[Any]) -> str:
    return "a"


@handler("e2e.fan", tx_key="fan-b")
def fan_b(event: Message[Any]) -> str:
    return "b"


@handler("e2e.fan", tx_key="fan-c")
async def fan_c(event: Message[Any]) -> str:
    await asyncio.sleep(0.01)
    return "c"


@handler("e2e.flaky", tx_key="flaky", max_retries=3, backoff=0.05)
def flaky(event: Message[Any]) -> dict[str, int]:
    count_run(event)
    if event.attempt < 3:
        raise RuntimeError(f"flaky attempt {event.attempt}")
    return {"attempt": event.attempt}


@handler("e2e.broken", tx_key="broken", max_retries=2, backoff=0.05)
def broken(event: Message[Any]) -> None:
    count_run(event)
    raise ValueError("always broken")


@handler("e2e.slow", tx_key="slow")
def slow(event: Message[Any]) -> dict[str, int]:
    """The first attempt hangs, so that a test can kill its worker mid-run."""
    count_run(event)
    if event.attempt == 1:
        counter.set(f"test:started:{event.event.key}", "1")
        time.sleep(120)
    return {"attempt": event.attempt}


class Order(BaseModel):
    id: int
    total: float


@handler("e2e.typed", tx_key="typed")
def typed(event: Message[Order]) -> dict[str, float]:
    return {"total": event.payload.total}


@handler("e2e.unserialisable", tx_key="unserialisable")
def unserialisable(event: Message[Any]) -> object:
    return object()


@handler("e2e.old", tx_key="backfill", since=0)
def backfill(event: Message[Any]) -> dict[str, bool]:
    return {"backfilled": True}


@handler("e2e.chain", tx_key="chain")
def chain(event: Message[Any]) -> str:
    import tidings

    return tidings.emit("e2e.echo", {"from": event.event.key})


@handler("e2e.chain-later", tx_key="chain-later")
def chain_later(event: Message[Any]) -> str:
    import tidings

    return tidings.emit("e2e.echo", {"from": event.event.key}, delay=event.payload["delay"])


@handler("e2e.toggle", tx_key="toggle", max_retries=0)
def toggle(event: Message[Any]) -> str:
    """Fails until a test switches its event on: something a re-run can mend."""
    if not counter.get(f"test:on:{event.event.key}"):
        raise RuntimeError("switched off")
    return "on"


@handler("e2e.long", tx_key="long")
def long(event: Message[Any]) -> str:
    """Runs longer than the tests' 3 s lease."""
    count_run(event)
    time.sleep(4.5)
    return "done"


# Flow control: each run records when it started and ended in Redis, on the machine's one
# clock (and its attempt and process), so that a test can check the limits from the
# handler's side.


def record_span(event: Message[Any], name: str, seconds: float = 0.0) -> None:
    started = time.time()
    time.sleep(seconds)
    span = f"{started} {time.time()} {event.attempt} {os.getpid()}"
    counter.rpush(f"test:spans:{name}", span)


@handler("e2e.rated", tx_key="rated", rate="10/s")
def rated(event: Message[Any]) -> None:
    record_span(event, "rated")


@handler("e2e.unrated", tx_key="unrated")
def unrated(event: Message[Any]) -> None:
    """The same without a rate: what the checks on `rated` would see with no limit."""
    record_span(event, "unrated")


class Shipment(BaseModel):
    customer: str


@handler("e2e.rated-per-customer", tx_key="rated-per-customer", rate="5/s", rate_key="customer")
def rated_per_customer(event: Message[Shipment]) -> None:
    record_span(event, f"rated-per-customer:{event.payload.customer}")


async def record_async_span(event: Message[Any], name: str, seconds: float) -> None:
    """An async run, so that one worker process runs many at once, as a limit must stop."""
    started = time.time()
    await asyncio.sleep(seconds)
    span = f"{started} {time.time()} {event.attempt} {os.getpid()}"
    counter.rpush(f"test:spans:{name}", span)


@handler("e2e.per-customer", tx_key="one-per-customer", concurrency=1, concurrency_key="customer")
async def one_per_customer(event: Message[Shipment]) -> None:
    await record_async_span(event, f"one-per-customer:{event.payload.customer}", 0.1)


@handler("e2e.per-customer", tx_key="any-per-customer")
async def any_per_customer(event: Message[Shipment]) -> None:
    """The same without a limit: what the checks on `one-per-customer` would see."""
    await record_async_span(event, f"any-per-customer:{event.payload.customer}", 0.1)


@handler("e2e.two-at-once", tx_key="two-at-once", concurrency=2)
async def two_at_once(event: Message[Any]) -> None:
    await record_async_span(event, "two-at-once", 0.1)


@handler("e2e.one-at-once-dies", tx_key="one-at-once-dies", concurrency=1)
def one_at_once_dies(event: Message[Any]) -> None:
    """The first run hangs, so that a test can kill its worker while it holds the slot."""
    if not counter.set("test:one-at-once-dies:hung", event.event.key, nx=True):
        record_span(event, "one-at-once-dies")
        return
    time.sleep(120)


# Delayed events and retries, from the due set: each run records when it started.


@handler("e2e.delayed", tx_key="delayed")
def delayed(event: Message[Any]) -> None:
    record_span(event, f"delayed:{event.event.key}")


@handler("e2e.retried-later", tx_key="retried-later", max_retries=1, backoff=4)
def retried_later(event: Message[Any]) -> None:
    """Its first attempt fails; the retry comes 2 to 4 s later."""
    record_span(event, f"retried-later:{event.event.key}")
    if event.attempt == 1:
        raise RuntimeError("the first attempt fails")


@handler("e2e.debounced", tx_key="debounced", debounce=1, debounce_key="customer", debounce_max=3)
def debounced(event: Message[Shipment]) -> str:
    record_span(event, f"debounced:{event.payload.customer}")
    return event.event.key


@handler("e2e.one-at-a-time", tx_key="one-at-a-time", concurrency=1, concurrency_key="customer")
async def one_at_a_time(event: Message[Any]) -> None:
    """Each run waits until a test lets them go: the runs behind it wait for its slot. (An
    async run, so that the worker gates the runs that came with it meanwhile.)"""
    counter.incr("test:one-at-a-time:started")
    while not counter.get("test:one-at-a-time:go"):
        await asyncio.sleep(0.02)
