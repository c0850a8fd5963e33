"""Schedules: three real workers, each with its own beat, fire every tick once; ticks
missed while no worker ran follow the handler's missed_ticks."""

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis
from worker_support import Worker, wait_until

from tidings import schedules
from tidings.clock import now_ms
from tidings.settings import Settings
from tidings.store import keys
from tidings.work import Scope

SCOPE = Scope("default", "test")
WORKERS = 3
#: Beat rounds every worker has surely made after a tick, before its runs are counted.
SETTLE_SECONDS = 3


@pytest.fixture
def three_workers(settings: Settings, tmp_path: Path) -> Iterator[list[Worker]]:
    env = {"TIDINGS_HANDLERS": "e2e_schedules", "TIDINGS_ENVIRONMENTS": "test"}
    workers = [Worker(settings.store_url, tmp_path / f"worker{n}.log", env) for n in range(WORKERS)]
    yield workers
    for worker in workers:
        worker.kill()


def ticks(redis_client: redis.Redis, tx_key: str) -> list[int]:
    return [int(t.split()[0]) for t in redis_client.lrange(f"test:ticks:{tx_key}", 0, -1)]


def events(http: httpx.Client, name: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = http.post("/query", json={"eventName": name}).json()["rows"]
    return rows


def test_three_workers_fire_each_tick_once_and_follow_the_missed_tick_policy(
    http: httpx.Client, three_workers: list[Worker], redis_client: redis.Redis
) -> None:
    # A deployment that ran before, last on New Year's Day 2025: the next New Year passed
    # while no worker ran.
    last_new_year = int(datetime(2025, 1, 1, tzinfo=ZoneInfo("Europe/Paris")).timestamp() * 1000)
    for name in ("e2e.new-year", "e2e.new-year-skipped"):
        redis_client.set(keys.flow_tick(SCOPE, name), last_new_year)
    started_at = now_ms()
    for worker in three_workers:
        worker.start()

    # run-last: the latest missed tick runs once.
    missed = schedules.last_tick("0 0 1 1 *", "Europe/Paris", now_ms())
    assert missed is not None and missed > last_new_year
    wait_until(lambda: ticks(redis_client, "new-year"), "the missed New Year to run")
    # The every-minute schedule is new: it starts with its next tick, which all three wait for.
    wait_until(lambda: ticks(redis_client, "every-minute"), "a minute's tick", timeout=90)
    time.sleep(SETTLE_SECONDS)

    assert ticks(redis_client, "new-year") == [missed]
    [tick_event] = events(http, "e2e.new-year")
    assert tick_event["fullName"] == "schedule.cron.e2e.new-year"
    assert tick_event["payload"] == {
        "tick": missed,
        "schedule": "0 0 1 1 *",
        "timezone": "Europe/Paris",
    }
    # skip: the missed one was passed over, noted as passed.
    assert ticks(redis_client, "new-year-skipped") == []
    assert events(http, "e2e.new-year-skipped") == []
    passed = schedules.last_tick("0 0 1 1 *", "UTC", now_ms())  # this one's time zone
    assert int(redis_client.get(keys.flow_tick(SCOPE, "e2e.new-year-skipped"))) == passed

    fired = ticks(redis_client, "every-minute")
    assert len(fired) == len(set(fired))  # no tick ran twice
    assert all(t % 60_000 == 0 and t > started_at for t in fired)
    minute_events = events(http, "e2e.every-minute")
    assert sorted(e["payload"]["tick"] for e in minute_events) == sorted(fired)  # type: ignore[index]
