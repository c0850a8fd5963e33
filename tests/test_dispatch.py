"""The API's dispatcher on a real Redis broker: the messages it writes, and when it batches."""

import asyncio
import base64
import json
from typing import Any

import redis

from tidings.celery_app import create_celery, publish
from tidings.dispatch import Dispatcher, RedisBroker
from tidings.settings import Settings
from tidings.store import WorkItem

QUEUE = "default.test"  # the "default" queue in the test environment


def item(key: str, attempt: int = 0) -> tuple[WorkItem, str]:
    return WorkItem("default", "test", key, "h", attempt), "default"


def decoded(raw: str) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(raw)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    return message


def dispatch(settings: Settings, *batches: list[tuple[WorkItem, str]], linger: float = 0.5) -> None:
    """Send each batch to a new dispatcher in turn, a moment apart, then wait until all are out."""

    async def run() -> None:
        dispatcher = Dispatcher(RedisBroker(settings.broker, batch=100), linger=linger)
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
    # Each publish finds the queue empty (a worker took the last message): no lingering,
    # so each event has its own message even with a linger far longer than the run.
    async def run() -> None:
        dispatcher = Dispatcher(RedisBroker(settings.broker, batch=100), linger=60)
        for key in ("a", "b", "c"):
            dispatcher.send([item(key)])
            await asyncio.wait_for(dispatcher.wait(), timeout=30)
            [message] = redis_client.rpop(QUEUE, 1)  # the worker takes it
            assert [row[2] for row in decoded(message)["body"][0][0]] == [key]
        await dispatcher.close()

    asyncio.run(run())


def test_while_messages_wait_in_the_queue_the_dispatcher_gathers_events(settings, redis_client):
    # No worker takes anything: from the second message on, the queue is seen to hold
    # messages, so the dispatcher waits its linger and later events share a message.
    dispatch(settings, [item("a")], [item("b")], [item("c")], [item("d")], [item("e")], linger=1)

    # The first finds the queue empty and the second its own message: both go at once;
    # c waits its linger, and d and e come 50 and 100 ms later, within it.
    assert messages(redis_client) == [["a"], ["b"], ["c", "d", "e"]]


def test_rows_beyond_the_batch_size_go_in_further_messages(settings, redis_client):
    async def run() -> None:
        dispatcher = Dispatcher(RedisBroker(settings.broker, batch=2))
        dispatcher.send([item(key) for key in "abcde"])
        await dispatcher.close()

    asyncio.run(run())
    assert messages(redis_client) == [["a", "b"], ["c", "d"], ["e"]]
