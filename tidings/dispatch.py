"""Hands stored events to the workers: the API's side of the broker.

A Celery publish costs far more than storing an event, so events do not each get a
message. The dispatcher publishes at once when it is idle, in a thread so that the event
loop goes on serving; whatever is emitted while a publish is in flight goes into the next
message. At low load an event leaves at once; under load one message carries many.

It publishes after the events are durable in Redis, so a crash in between loses nothing:
recovery hands out what was never published.
"""

import asyncio
import logging
from collections.abc import Iterable

from celery import Celery

from tidings.celery_app import create_celery, publish
from tidings.settings import Settings
from tidings.store import Caller, Emitted, WorkItem

log = logging.getLogger("tidings.dispatch")


class Dispatcher:
    def __init__(self, app: Celery, *, batch: int) -> None:
        self.app = app
        self.batch = batch
        self._pending: list[tuple[WorkItem, str]] = []
        self._publishing: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Dispatcher":
        return cls(create_celery(settings, import_handlers=False), batch=settings.dispatch_batch)

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
                pending, self._pending = self._pending, []
                try:
                    await asyncio.to_thread(publish, self.app, pending, batch=self.batch)
                except Exception:
                    # The events are stored and outstanding: recovery dispatches them later.
                    log.exception("could not publish %d transactions; recovery will", len(pending))
        finally:
            self._publishing = None

    async def close(self) -> None:
        """Publish what is pending before the process stops."""
        if self._publishing is not None:
            await self._publishing
        await self._drain()
