"""The API's dispatcher on a real Redis broker: the messages it writes, and when it batches."""

import asyncio
import base64
import json
from typing import Any

import redis

from tidings import models
from tidings.celery_app import create_celery, publish
from tidings.dispatch import Dispatcher, RedisBroker
from tidings.settings import Settings
from tidings.store import Store
from tidings.work import NewEvent, WorkItem

QUEUE = "default.test"  # the "default" queue in the test environment
PAID = models.Subscription(txKey="h", eventName="order.paid", queue="default")


def item(key: str, attempt: int = 0) -> tuple[WorkItem, str]:
    return WorkItem("default", "test", key, "h", attempt), "default"


def decoded(raw: str) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(raw)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    return message


def dispatch(settings: Settings, *batches: list[tuple[WorkItem, str]]) -> None:
    """Send each batch to a new dispatcher in turn, each once the last is out."""

    async def run() -> None:
        dispatcher = Dispatcher(RedisBroker(settings.broker, batch=100))
        for batch in batches:
            dispatcher.send(batch)
            await dispatcher.wait()
        await dispatcher.close()

    asyncio.run(run())


def messages_in(redis_client: redis.Redis) -> list[list[str]]:
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
    # Each publish finds the queue empty (a worker took the last message): each event has
    # its own message, at once.
    async def run() -> None:
        dispatcher = Dispatcher(RedisBroker(settings.broker, batch=100))
        for key in ("a", "b", "c"):
            dispatcher.send([item(key)])
            await asyncio.wait_for(dispatcher.wait(), timeout=30)
            [message] = redis_client.rpop(QUEUE, 1)  # the worker takes it
            assert [row[2] for row in decoded(message)["body"][0][0]] == [key]
        await dispatcher.close()

    asyncio.run(run())


def test_while_messages_wait_new_events_join_the_last_one_pushed(settings, redis_client):
    # b finds a waiting: the workers are behind, and c and d join b (which would go after
    # a anyway) instead of waiting behind it in messages of their own.
    dispatch(settings, [item("a")], [item("b")], [item("c")], [item("d", attempt=2)])
    assert messages_in(redis_client) == [["a"], ["b", "c", "d"]]
    [_, joined] = (decoded(m) for m in reversed(redis_client.lrange(QUEUE, 0, -1)))
    assert joined["body"][0][0][2] == ["default", "test", "d", "h", 2]
    assert joined["headers"]["argsrepr"] == "[<3 transactions>]"


def test_an_event_does_not_join_a_message_a_worker_is_about_to_take(settings, redis_client):
    async def run() -> tuple[list[list[str]], list[list[str]]]:
        dispatcher = Dispatcher(RedisBroker(settings.broker, batch=100))
        for key in ("a", "b"):  # b finds a waiting: the workers are behind
            dispatcher.send([item(key)])
            await dispatcher.wait()
        redis_client.rpop(QUEUE, 1)  # a worker takes a: b waits alone, next to be taken
        dispatcher.send([item("c")])
        await dispatcher.wait()
        alone = messages_in(redis_client)
        redis_client.rpop(QUEUE, 2)  # the workers take b and c
        dispatcher.send([item("d")])
        await dispatcher.close()
        return alone, messages_in(redis_client)

    alone, taken = asyncio.run(run())
    assert alone == [["b"], ["c"]]
    assert taken == [["d"]]


def test_an_event_joins_the_last_message_pushed_even_behind_another_process_s(
    settings, redis_client
):
    # The API's other processes push onto the same queue: b is no longer the newest message
    # when c comes, but still waits behind a.
    async def run() -> None:
        dispatcher = Dispatcher(RedisBroker(settings.broker, batch=100))
        for key in ("a", "b"):
            dispatcher.send([item(key)])
            await dispatcher.wait()
        publish(create_celery(settings, import_handlers=False), [item("other")])
        dispatcher.send([item("c")])
        await dispatcher.close()

    asyncio.run(run())
    assert messages_in(redis_client) == [["a"], ["b", "c"], ["other"]]


def test_an_event_does_not_join_a_message_next_to_be_taken_behind_a_newer_one(
    settings, redis_client
):
    async def run() -> None:
        dispatcher = Dispatcher(RedisBroker(settings.broker, batch=100))
        for key in ("a", "b"):
            dispatcher.send([item(key)])
            await dispatcher.wait()
        redis_client.rpop(QUEUE, 1)  # a worker takes a
        publish(create_celery(settings, import_handlers=False), [item("other")])
        dispatcher.send([item("c")])  # b is next to be taken: c goes on its own
        await dispatcher.close()

    asyncio.run(run())
    assert messages_in(redis_client) == [["b"], ["other"], ["c"]]


def test_a_message_grows_no_larger_than_the_batch_size(settings, redis_client):
    async def run() -> None:
        dispatcher = Dispatcher(RedisBroker(settings.broker, batch=2))
        for key in "abcd":
            dispatcher.send([item(key)])
            await dispatcher.wait()
        await dispatcher.close()

    asyncio.run(run())
    assert messages_in(redis_client) == [["a"], ["b", "c"], ["d"]]


def test_rows_beyond_the_batch_size_go_in_further_messages(settings, redis_client):
    async def run() -> None:
        dispatcher = Dispatcher(RedisBroker(settings.broker, batch=2))
        dispatcher.send([item(key) for key in "abcde"])
        await dispatcher.close()

    asyncio.run(run())
    assert messages_in(redis_client) == [["a", "b"], ["c", "d"], ["e"]]


def test_the_emit_script_pushes_the_message_itself_only_while_the_queue_is_empty(
    settings, redis_client
):
    """/emit's one round trip (a single Redis that is the broker): once the process knows
    the key's holder, the script storing an event pushes its message too, unless messages
    wait in the queue (the workers are behind: the dispatcher's publish then lets events
    travel together). While a publish is in flight, the script pushes nothing either."""

    async def run() -> tuple[list[bool], list[str], list[list[str]], bool]:
        store = Store.from_settings(settings)
        dispatcher = Dispatcher(RedisBroker(settings.broker, batch=100), broker_is_store=True)
        try:
            await store.subscribe([PAID], ["test"])
            secret = (await store.create_key("shop", "test")).secret
            published, keys = [], []
            for _ in range(3):
                with dispatcher.publishing_with_store() as messages:
                    _, [emitted] = await store.emit_with_secret(
                        secret, [NewEvent("order.paid")], messages=messages
                    )
                published.append(emitted.published)
                keys.append(emitted.key)
            dispatcher.send([item("x")])  # a publish in flight
            with dispatcher.publishing_with_store() as messages:
                idle = messages is not None
            await dispatcher.wait()
            return published, keys, messages_in(redis_client), idle
        finally:
            await dispatcher.close()
            await store.close()

    published, keys, queued, idle = asyncio.run(run())
    # the first: the holder is read first; the third finds the second's message waiting
    assert published == [False, True, False]
    assert queued == [[keys[1]], ["x"]]
    assert not idle
