"""The API's dispatcher on a real Redis broker: the messages it writes, and when it batches."""

import asyncio
import base64
import json
from typing import Any

import redis

from tidings.celery_app import create_celery, publish
from tidings.dispatch import Dispatcher, RedisBroker
from tidings.settings import Settings
from tidings.work import WorkItem

QUEUE = "default.test"  # the "default" queue in the test environment


def item(key: str, attempt: int = 0) -> tuple[WorkItem, str]:
    return WorkItem("default", "test", key, "h", attempt), "default"


def decoded(raw: str) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(raw)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    return message


def dispatch(settings: Settings, *batches: list[tuple[WorkItem, str]], hold: float = 0.5) -> None:
    """Send each batch to a new dispatcher in turn, a moment apart, then wait until all are out."""

    async def run() -> None:
        dispatcher = Dispatcher(RedisBroker(settings.broker, batch=100), hold=hold)
        for batch in batches:
            dispatcher.send(batch)
            await asyncio.sleep(0.05)
        await dispatcher.close()

    asyncio.run(run())


def messages(redis_client: redis.Redis) -> list[list[str]]:
    """The event keys each message in the queue carries, oldest message first."""
    raw = reversed(redis_client.lrange(QUEUE, 0, -1))
    return [[row[2] for row in decoded(m)["body"][0][0]] for m in raw]


def test_a_message_from_the_dispatcher_is_the_one_celery_would_write(settings, redis_client):
    items = [item("k1"), item("k2", attempt=1)]
    publish(create_celery(settings, import_handlers=False), items)
    dispatch(settings, items)
    celery, ours = (decoded(m) for m in reversed(redis_client.lrange(QUEUE, 0, -1)))

    assert ours["body"] == celery["body"]
    assert ours["body"][0] == [
        [["default", "test", "k1", "h", 0], ["default", "test", "k2", "h", 1]]
    ]
    assert ours.keys() == celery.keys()
    assert ours["headers"].keys() == celery["headers"].keys()
    assert ours["properties"].keys() == celery["properties"].keys()
    per_message = {"id", "root_id", "argsrepr", "origin", "ignore_result"}
    for field in celery["headers"].keys() - per_message:
        assert ours["headers"][field] == celery["headers"][field], field
    assert ours["headers"]["id"] == ours["headers"]["root_id"] != celery["headers"]["id"]
    for field in ("delivery_mode", "delivery_info", "priority", "body_encoding"):
        assert ours["properties"][field] == celery["properties"][field], field
    assert ours["properties"]["correlation_id"] == ours["headers"]["id"]
    for field in ("content-type", "content-encoding"):
        assert ours[field] == celery[field]


def test_an_event_goes_out_at_once_while_the_workers_keep_up(settings, redis_client):
    # Each publish finds the queue empty (a worker took the last message): nothing is held
    # back, so each event has its own message even with a hold far longer than the run.
    async def run() -> None:
        dispatcher = Dispatcher(RedisBroker(settings.broker, batch=100), hold=60)
        for key in ("a", "b", "c"):
            dispatcher.send([item(key)])
            await asyncio.wait_for(dispatcher.wait(), timeout=30)
            [message] = redis_client.rpop(QUEUE, 1)  # the worker takes it
            assert [row[2] for row in decoded(message)["body"][0][0]] == [key]
        await dispatcher.close()

    asyncio.run(run())


def test_while_messages_wait_the_dispatcher_holds_events_until_the_queue_empties(
    settings, redis_client
):
    async def run() -> list[list[str]]:
        dispatcher = Dispatcher(RedisBroker(settings.broker, batch=100), hold=60)
        for key in ("a", "b"):  # b finds a waiting: the workers are behind
            dispatcher.send([item(key)])
            await dispatcher.wait()
        for key in ("c", "d"):
            dispatcher.send([item(key)])
            await asyncio.sleep(0.1)
        held = messages(redis_client)
        redis_client.delete(QUEUE)  # the workers take a and b
        await asyncio.wait_for(dispatcher.wait(), timeout=30)
        await dispatcher.close()
        return held

    held = asyncio.run(run())
    assert held == [["a"], ["b"]]  # c and d wait while a and b do
    assert messages(redis_client) == [["c", "d"]]  # then go together, once the queue is empty


def test_events_are_held_back_no_longer_than_the_hold(settings, redis_client):
    # No worker takes anything: c is held (d, 50 ms later, joins it), and both go once the
    # hold is over, however full the queue.
    dispatch(settings, [item("a")], [item("b")], [item("c")], [item("d")], hold=0.3)
    assert messages(redis_client) == [["a"], ["b"], ["c", "d"]]


def test_rows_beyond_the_batch_size_go_in_further_messages(settings, redis_client):
    async def run() -> None:
        dispatcher = Dispatcher(RedisBroker(settings.broker, batch=2))
        dispatcher.send([item(key) for key in "abcde"])
        await dispatcher.close()

    asyncio.run(run())
    assert messages(redis_client) == [["a", "b"], ["c", "d"], ["e"]]
