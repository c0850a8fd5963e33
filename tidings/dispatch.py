"""Hands stored events to the workers: the API's side of the broker.

A broker message costs far more than storing an event, so events do not each get a
message when the workers are behind. The dispatcher publishes at once when it is idle,
before the request that emitted the event writes its answer; whatever is emitted while a
publish is in flight goes into the next message. At low load an event leaves at once;
under load one message carries many. Nothing is ever held back to wait for more.

On a Redis broker it publishes from the event loop itself: an LPUSH of the message Celery's
own publish would write (``tidings.celery_app.redis_message``), with no thread hand-off and
a third of ``send_task``'s CPU. While the workers are behind (the message this dispatcher
pushed last still waits in its queue, with others to be taken before it), a script
(``JOIN_OR_PUSH``) adds the new rows to that message instead: events that would wait behind
the other messages anyway travel together, and fewer, larger messages cost the workers less
per event, so that they catch up. Other brokers get Celery's publish, in a thread.

Where the broker is the store's own Redis, an idle dispatcher lets /emit's script push the
message itself as it stores the event, if the queue is empty (``publishing_with_store``):
one round trip from request to queue while the workers keep up.

It publishes after the events are durable in Redis, so a crash in between loses nothing:
recovery hands out what was never published.
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

import redis.asyncio as aioredis
from celery import Celery

from tidings.auth import Caller
from tidings.celery_app import create_celery, message_rows, publish, redis_message
from tidings.settings import Settings
from tidings.work import Emitted, Messages, WorkItem

log = logging.getLogger("tidings.dispatch")

#: Broker URL schemes published to straight from the event loop.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
#: The longest a publish to a Redis broker may take before it counts as failed (and
#: recovery hands its events out later).
PUBLISH_TIMEOUT_SECONDS = 5

#: KEYS[1] the queue (kombu's list: LPUSH at the head, BRPOP from the tail). ARGV[1] the
#: id of the message this dispatcher pushed there last, ARGV[2] that message with the new
#: rows added, ARGV[3..] the new rows' own messages, oldest first. While that last message
#: is among the newest few and others wait behind it, it becomes ARGV[2] (the newest few: the
#: API's other processes push onto the same queue); otherwise ARGV[3..] are pushed. Answers
#: {1 if joined else 0, the queue's length}.
JOIN_OR_PUSH = """
local length = redis.call('LLEN', KEYS[1])
for i, message in ipairs(redis.call('LRANGE', KEYS[1], 0, 3)) do
  if i < length and string.find(message, ARGV[1], 1, true) then
    redis.call('LSET', KEYS[1], i - 1, ARGV[2])
    return {1, length}
  end
end
return {0, redis.call('LPUSH', KEYS[1], unpack(ARGV, 3))}
"""

Items = list[tuple[WorkItem, str]]


class Broker(Protocol):
    async def publish(self, items: Items) -> None:
        """Publish work items."""
        ...

    async def close(self) -> None: ...


@dataclass
class _Pushed:
    """The last message a dispatcher pushed onto a queue."""

    task_id: str
    rows: list[Any]
    #: Whether other messages waited in the queue once it was pushed.
    behind: bool


class RedisBroker:
    """Publishes onto the lists kombu's Redis transport consumes, from the event loop."""

    def __init__(self, url: str, *, batch: int) -> None:
        # No socket timeout: redis-py's wraps every send in a task of its own (wait_for),
        # an extra turn of the event loop for each; PUBLISH_TIMEOUT_SECONDS bounds a publish.
        self.redis = aioredis.Redis.from_url(url, socket_timeout=None)
        self.batch = batch
        self._join_or_push = self.redis.register_script(JOIN_OR_PUSH)
        self._last: dict[str, _Pushed] = {}

    async def publish(self, items: Items) -> None:
        by_queue: dict[str, list[list[Any]]] = {}
        for queue, rows in message_rows(items, self.batch):
            by_queue.setdefault(queue, []).append(rows)
        async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
            for queue, messages in by_queue.items():
                await self._publish(queue, messages)

    async def _publish(self, queue: str, messages: list[list[Any]]) -> None:
        """Push one queue's new messages, or let their rows join the last one pushed there."""
        last = self._last.get(queue)
        new = [_Pushed(str(uuid.uuid4()), rows, behind=False) for rows in messages]
        pushed = [redis_message(m.rows, queue, m.task_id) for m in new]
        if (
            last
            and last.behind
            and len(messages) == 1
            and len(last.rows) + len(new[0].rows) <= self.batch
        ):
            rows = last.rows + new[0].rows
            joined = redis_message(rows, queue, last.task_id)
            did_join, length = await self._join_or_push(
                keys=[queue], args=[last.task_id, joined, *pushed]
            )
            if did_join:
                self._last[queue] = replace(last, rows=rows)
                return
        else:  # nothing to join: a plain LPUSH costs Redis a fifth of the script
            length = await self.redis.lpush(queue, *pushed)
        self._last[queue] = replace(new[-1], behind=length > len(new))

    def messages(self, items: Items) -> list[tuple[str, bytes]]:
        """The messages `publish` would push for these items, for a script to push them."""
        return [
            (queue, redis_message(rows, queue, str(uuid.uuid4())))
            for queue, rows in message_rows(items, self.batch)
        ]

    async def close(self) -> None:
        await self.redis.aclose()


class CeleryBroker:
    """Celery's own publish (any broker), in a thread so that the event loop goes on serving."""

    def __init__(self, app: Celery, *, batch: int) -> None:
        self.app = app
        self.batch = batch

    async def publish(self, items: Items) -> None:
        await asyncio.to_thread(publish, self.app, items, batch=self.batch)

    async def close(self) -> None:
        return None


class Dispatcher:
    def __init__(self, broker: Broker, *, broker_is_store: bool = False) -> None:
        self.broker = broker
        #: The broker, where it is the store's Redis too: the store's scripts may push
        #: its messages.
        self._store_broker = broker if broker_is_store and isinstance(broker, RedisBroker) else None
        self._pending: Items = []
        self._publishing: asyncio.Future[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Dispatcher":
        if settings.broker.startswith(REDIS_SCHEMES):
            broker = RedisBroker(settings.broker, batch=settings.dispatch_batch)
            return cls(broker, broker_is_store=settings.broker == settings.store_url)
        app = create_celery(settings, import_handlers=False)
        return cls(CeleryBroker(app, batch=settings.dispatch_batch))

    @contextlib.contextmanager
    def publishing_with_store(self) -> Iterator[Messages | None]:
        """While events are stored: how to make their messages, for the store to push them
        in the same round trip; None when it may not (another broker, or a publish in
        flight, which the events then follow, as any do). Until the store answers, this
        counts as a publish in flight: events emitted meanwhile go out together after it."""
        if self._store_broker is None or self._publishing is not None:
            yield None
            return
        self._publishing = done = asyncio.get_running_loop().create_future()
        try:
            yield self._store_broker.messages
        finally:
            done.set_result(None)
            self._publishing = None
            self.send([])  # what was emitted meanwhile

    async def __call__(self, caller: Caller, emitted: list[Emitted]) -> None:
        """Hand out the transactions of stored events."""
        idle = self._publishing is None
        self.send(item for event in emitted for item in event.work(caller.scope))
        if idle and self._publishing is not None:
            # One turn of the event loop: the publish just begun writes its message now,
            # rather than after this request has written its answer.
            await asyncio.sleep(0)

    def send(self, items: Iterable[tuple[WorkItem, str]]) -> None:
        """Hand out work items (with their queues)."""
        self._pending.extend(items)
        if self._pending and self._publishing is None:
            self._publishing = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._pending:
                pending, self._pending = self._pending, []
                try:
                    await self.broker.publish(pending)
                except Exception:
                    # The events are stored and outstanding: recovery dispatches them later.
                    log.exception("could not publish %d transactions; recovery will", len(pending))
        finally:
            self._publishing = None

    async def wait(self) -> None:
        """Until everything sent so far has been published (or failed to be)."""
        while self._publishing is not None:
            await self._publishing

    async def close(self) -> None:
        """Publish what is pending before the process stops."""
        await self.wait()
        await self.broker.close()
