"""Hands stored events to the workers: the API's side of the broker.

A broker message costs far more than storing an event, so events do not each get a
message. The dispatcher publishes at once when it is idle; whatever is emitted while a
publish is in flight goes into the next message. At low load an event leaves at once; under
load one message carries many.

On a Redis broker it publishes from the event loop itself: one LPUSH a message, of the
message Celery's own publish would write (``tidings.celery_app.redis_message``), with no
thread hand-off and a third of ``send_task``'s CPU. LPUSH answers the queue's length, which
tells when the workers are behind: a message of ours found another waiting that no worker
had taken. Then the dispatcher holds what is emitted next until the queue is empty (it
checks the queue's length, more and more seldom, for up to HOLD_SECONDS), and publishes it
all as one message: events emitted while messages wait would wait behind them anyway, and
fewer, larger messages cost the workers less per event, so that they catch up. Other
brokers get Celery's publish, in a thread.

It publishes after the events are durable in Redis, so a crash in between loses nothing:
recovery hands out what was never published.
"""

import asyncio
import logging
from collections.abc import Iterable
from typing import Protocol

import redis.asyncio as aioredis
from celery import Celery

from tidings.auth import Caller
from tidings.celery_app import create_celery, message_rows, publish, redis_message
from tidings.settings import Settings
from tidings.work import Emitted, WorkItem

log = logging.getLogger("tidings.dispatch")

#: The longest the dispatcher holds events back while messages wait in their queue.
HOLD_SECONDS = 0.02
#: How soon it first checks whether the queue is empty again; each next check waits twice
#: as long, so that a long wait costs a few checks.
FIRST_CHECK_SECONDS = 0.001
#: Broker URL schemes published to straight from the event loop.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

Items = list[tuple[WorkItem, str]]


class Broker(Protocol):
    async def publish(self, items: Items) -> bool:
        """Publish work items; answer whether other messages were waiting in their queue."""
        ...

    async def waiting(self) -> bool:
        """Whether messages still wait in the queues of the last publish that found some."""
        ...

    async def close(self) -> None: ...


class RedisBroker:
    """Publishes onto the lists kombu's Redis transport consumes, from the event loop."""

    def __init__(self, url: str, *, batch: int) -> None:
        self.redis = aioredis.Redis.from_url(url)
        self.batch = batch
        #: The queues in which the last publish found messages waiting.
        self._behind: list[str] = []

    async def publish(self, items: Items) -> bool:
        messages = message_rows(items, self.batch)
        async with self.redis.pipeline(transaction=False) as pipe:
            for queue, rows in messages:
                pipe.lpush(queue, redis_message(rows, queue))
            lengths: list[int] = await pipe.execute()
        pushed: dict[str, int] = {}
        for queue, _ in messages:
            pushed[queue] = pushed.get(queue, 0) + 1
        # A list's last answer counts what was there before plus what this pipeline pushed.
        last = {queue: length for (queue, _), length in zip(messages, lengths, strict=True)}
        self._behind = [queue for queue in pushed if last[queue] > pushed[queue]]
        return bool(self._behind)

    async def waiting(self) -> bool:
        async with self.redis.pipeline(transaction=False) as pipe:
            for queue in self._behind:
                pipe.llen(queue)
            lengths: list[int] = await pipe.execute()
        return any(lengths)

    async def close(self) -> None:
        await self.redis.aclose()


class CeleryBroker:
    """Celery's own publish (any broker), in a thread so that the event loop goes on serving."""

    def __init__(self, app: Celery, *, batch: int) -> None:
        self.app = app
        self.batch = batch

    async def publish(self, items: Items) -> bool:
        await asyncio.to_thread(publish, self.app, items, batch=self.batch)
        return False  # its queues' lengths are not known

    async def waiting(self) -> bool:
        return False

    async def close(self) -> None:
        return None


class Dispatcher:
    def __init__(self, broker: Broker, *, hold: float = HOLD_SECONDS) -> None:
        self.broker = broker
        #: The longest it holds events back while messages wait in their queue.
        self.hold = hold
        self._pending: Items = []
        self._publishing: asyncio.Task[None] | None = None
        self._behind = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "Dispatcher":
        if settings.broker.startswith(REDIS_SCHEMES):
            return cls(RedisBroker(settings.broker, batch=settings.dispatch_batch))
        app = create_celery(settings, import_handlers=False)
        return cls(CeleryBroker(app, batch=settings.dispatch_batch))

    async def __call__(self, caller: Caller, emitted: list[Emitted]) -> None:
        """Hand out the transactions of stored events."""
        self.send(
            (WorkItem(caller.owner, caller.env, event.key, tx_key), queue)
            for event in emitted
            for tx_key, queue in event.routes
        )

    def send(self, items: Iterable[tuple[WorkItem, str]]) -> None:
        """Hand out work items (with their queues)."""
        self._pending.extend(items)
        if self._pending and self._publishing is None:
            self._publishing = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._pending:
                if self._behind:
                    await self._hold()
                pending, self._pending = self._pending, []
                try:
                    self._behind = await self.broker.publish(pending)
                except Exception:
                    # The events are stored and outstanding: recovery dispatches them later.
                    log.exception("could not publish %d transactions; recovery will", len(pending))
        finally:
            self._publishing = None

    async def _hold(self) -> None:
        """Let events gather while messages wait in their queue (at most ``hold``)."""
        loop = asyncio.get_running_loop()
        deadline, pause = loop.time() + self.hold, FIRST_CHECK_SECONDS
        while True:
            await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
            try:
                if loop.time() >= deadline or not await self.broker.waiting():
                    return
            except Exception:  # the broker is away: the publish will say so
                return
            pause *= 2

    async def wait(self) -> None:
        """Until everything sent so far has been published (or failed to be)."""
        while self._publishing is not None:
            await self._publishing

    async def close(self) -> None:
        """Publish what is pending before the process stops."""
        await self.wait()
        await self.broker.close()
