"""Scheduled handlers for tests/test_schedules.py, in a module of their own so that their
ticks stay out of the other tests' events."""

import os

import redis

from tidings import Message, Tick, handler

counter = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)


def record_tick(event: Message[Tick]) -> int:
    counter.rpush(f"test:ticks:{event.tx_key}", f"{event.payload.tick} {os.getpid()}")
    return event.payload.tick


@handler("e2e.every-minute", tx_key="every-minute", schedule="* * * * *")
def every_minute(event: Message[Tick]) -> int:
    return record_tick(event)


@handler("e2e.new-year", tx_key="new-year", schedule="0 0 1 1 *", timezone="Europe/Paris")
def new_year(event: Message[Tick]) -> int:
    return record_tick(event)


@handler(
    "e2e.new-year-skipped", tx_key="new-year-skipped", schedule="0 0 1 1 *", missed_ticks="skip"
)
def new_year_skipped(event: Message[Tick]) -> int:
    return record_tick(event)
