"""Hands stored events to the workers: the API's side of the broker.

Publishing one Celery message per event would cap /emit at the broker's publish rate, so
the dispatcher lingers a moment (``dispatch_linger_ms``) to put the transactions of many
events into one message. It publishes after the events are durable in Redis, so a crash
in between loses nothing: recovery hands out what was never published.
"""

import asyncio
import logging

from celery import Celery

from tidings.celery_app import create_celery, publish
from tidings.settings import Settings
from tidings.store import Caller, Emitted, WorkItem

log = logging.getLogger("tidings.dispatch")


class Dispatcher:
    def __init__(self, app: Celery, *, linger_ms: float, batch: int) -> None:
        self.app = app
        self.linger = linger_ms / 1000
        self.batch = batch
        self._pending: list[tuple[WorkItem, str]] = []
        self._flush_soon: asyncio.TimerHandle | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Dispatcher":
        app = create_celery(settings, import_handlers=False)
        return cls(app, linger_ms=settings.dispatch_linger_ms, batch=settings.dispatch_batch)

    async def __call__(self, caller: Caller, emitted: list[Emitted]) -> None:
        for event in emitted:
            for tx_key, queue in event.routes:
                self._pending.append((WorkItem(caller.owner, caller.env, event.key, tx_key), queue))
        if len(self._pending) >= self.batch or not self.linger:
            self.flush()
        elif self._pending and self._flush_soon is None:
            self._flush_soon = asyncio.get_running_loop().call_later(self.linger, self.flush)

    def flush(self) -> None:
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            publish(self.app, pending, batch=self.batch)
        except Exception:
            # The events are stored and outstanding: recovery dispatches them later.
            log.exception("could not publish %d transactions; recovery will", len(pending))
