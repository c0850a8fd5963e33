"""A worker's signs of life: its heartbeat, and canaries that show it still hears its queues.

A heartbeat alone misses a worker whose process lives on while its consumer receives
nothing (celery#8030, celery#8384). So, once a worker is ready, a thread of its main process
subscribes its handlers and then, every TIDINGS_CANARY_INTERVAL_SECONDS:

- sends a canary, a tiny ``tidings.canary`` task, to every queue it consumes, and to a
  queue that only it consumes (``tidings.worker.{name}``) (while its prefetch window is
  full, only to a queue where none of its canaries waits);
- subscribes its handlers again if Redis lost them (its data, say);
- records its heartbeat in Redis (``models.WorkerBeat``): its handlers, environments and
  queues, and when its consumer last received anything (a canary or work) from each, as
  the consumer notes on receiving each message (before the pool runs it, so that a busy
  pool is not mistaken for a deaf consumer; a canary never goes to the pool at all).

A canary sent to a shared queue may reach any of its workers: it shows that the queue is
consumed (``/health``). The worker's own queue shows that its own consumer hears. A worker
is deaf when a canary it sent stays unanswered for TIDINGS_CANARY_TIMEOUT_SECONDS while it
had room for more messages (its prefetch window was not full): on its own queue, it did
not receive it; on a shared queue, no worker took anything off that queue. A deaf worker
stops with exit code 1 (a warm shutdown: running handlers finish) for its supervisor (a
PaaS, systemd, Kubernetes) to start it again.

Once a worker's shutdown has begun, its consumer takes nothing more: it sends no more
canaries and judges nothing, and its heartbeat names no queue while its running handlers
finish.
"""

import asyncio
import functools
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from celery import Celery, signals
from celery.worker import state as worker_state
from kombu.entity import Exchange, Queue

from tidings import metrics, models
from tidings.clock import now_ms
from tidings.handlers import REGISTRY, subscriptions
from tidings.settings import Settings
from tidings.store import Store
from tidings.work import WorkItem

log = logging.getLogger("tidings.canary")

CANARY_TASK = "tidings.canary"
#: A worker's own queue is this prefix and its name.
DIRECT_QUEUE_PREFIX = "tidings.worker."
#: The exit code of a worker that stops because it is deaf.
EX_DEAF = 1

Publish = Callable[[list[tuple[WorkItem, str]]], None]


@functools.cache
def worker_name() -> str:
    """``host:pid`` of the worker's main process. Asked first in the main process, before
    its pool starts (worker_init), so that the pool processes forked from it answer the
    same name: the one /handlers shows is the one in a transaction's history."""
    return f"{socket.gethostname()}:{os.getpid()}"


def direct_queue(worker: str) -> str:
    return f"{DIRECT_QUEUE_PREFIX}{worker}"


def _direct_queue_entity(worker: str) -> Queue:
    """A worker's own queue, declared alike by the worker and by whoever deletes it."""
    name = direct_queue(worker)
    return Queue(name, Exchange(name, type="direct"), routing_key=name, auto_delete=True)


def install(app: Celery, settings: Settings, publish: Publish) -> None:
    """Give a worker's app the canary task and, once the worker is ready, its watch;
    ``publish`` hands out the work its handlers' subscription finds (a backfill)."""

    watches: list[Watch] = []

    def canary_strategy(task: Any, app: Any, consumer: Any, **kwargs: Any) -> Any:
        def on_canary(message: Any, body: Any, ack: Any, *args: Any, **kw: Any) -> None:
            ack(log, consumer.connection_errors)
            _, canary_kwargs, _ = message.payload
            queue = message.delivery_info["routing_key"]
            for watch in watches:
                watch.received(queue, canary_sent_at=canary_kwargs["sent_at"])

        return on_canary

    # A canary never reaches the pool: the consumer notes and acks it as it receives it, so
    # that it neither waits for a busy pool nor holds a place in the prefetch window.
    @app.task(name=CANARY_TASK, Strategy=staticmethod(canary_strategy))
    def canary(sender: str, sent_at: int) -> None:
        """Never run (see above)."""

    signals.worker_init.connect(lambda **_: worker_name(), weak=False)

    @signals.worker_ready.connect(weak=False)
    def on_ready(sender: Any = None, **kwargs: Any) -> None:
        watch = Watch(app, settings, sender, publish)
        watches.append(watch)
        watch.start()

    @signals.task_received.connect(weak=False)
    def on_received(sender: Any = None, request: Any = None, **kwargs: Any) -> None:
        for watch in watches:
            watch.received(request.delivery_info["routing_key"])

    @signals.worker_shutting_down.connect(weak=False)
    def on_shutting_down(sender: Any = None, **kwargs: Any) -> None:
        for watch in watches:
            watch.shutting_down()

    @signals.worker_shutdown.connect(weak=False)
    def on_shutdown(sender: Any = None, **kwargs: Any) -> None:
        for watch in watches:
            watch.stop()


class Watch:
    """One worker's heartbeat, canaries and deafness check (see the module's docstring)."""

    def __init__(self, app: Celery, settings: Settings, consumer: Any, publish: Publish) -> None:
        self.app = app
        self.settings = settings
        self.consumer = consumer
        self.publish = publish
        self.name = worker_name()
        self.direct_queue = direct_queue(self.name)
        shared: list[str] = [queue.name for queue in consumer.task_consumer.queues]
        self.queues = [*shared, self.direct_queue]
        self.started_at = now_ms()
        #: Queue -> when the consumer last received a message from it (written by the
        #: consumer's thread, read by the watch's: single assignments, safe under the GIL).
        self.last_received: dict[str, int] = {}
        #: Queue -> (sent, received) of the last canary received from it.
        self.last_canary: dict[str, tuple[int, int]] = {}
        #: Queue -> when the oldest canary sent to it since it was last consumed was sent.
        self.unanswered_since: dict[str, int] = {}
        #: Since when the consumer has had room for more messages (None: its prefetch
        #: window is full, so it fetches nothing, deaf or not).
        self.room_since: int | None = self.started_at
        self._stopping = threading.Event()
        #: Set once the worker's shutdown has begun: its consumer takes nothing more, while
        #: its running handlers may go on for long (a warm shutdown).
        self._shutting_down = threading.Event()

    def start(self) -> None:
        """Consume the worker's own queue, then watch from a thread of its own."""
        self.app.amqp.queues.add(_direct_queue_entity(self.name))
        self.consumer.add_task_queue(self.direct_queue)
        threading.Thread(target=self._main, name="tidings-canary", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        try:  # RabbitMQ deletes it by itself (auto_delete); Redis keeps it otherwise
            self._delete_queues([self.name])
        except Exception:
            log.exception("could not delete this worker's queue %s", self.direct_queue)

    def shutting_down(self) -> None:
        """The worker's shutdown has begun (called in a signal handler: only a flag): no more
        canaries nor deafness checks, and heartbeats that name no queue, so that /health
        does not count it as a consumer while its running handlers finish."""
        self._shutting_down.set()

    def received(self, queue: str, *, canary_sent_at: int | None = None) -> None:
        """Called by the consumer for every message it receives (from its routing key: the
        queue, as tidings publishes)."""
        now = now_ms()
        self.last_received[queue] = now
        if canary_sent_at is not None:
            self.last_canary[queue] = (canary_sent_at, now)
            # Each worker's own queue is one series for all, not a series per worker ever run.
            label = metrics.OWN_QUEUE if queue == self.direct_queue else queue
            trip = (now - canary_sent_at) / 1000
            metrics.METRICS.observe(metrics.CANARY_ROUND_TRIP, trip, label)

    def _main(self) -> None:
        try:
            asyncio.run(self._watch())
        except Exception:
            log.exception("the tidings canary stopped")

    async def _watch(self) -> None:
        store = Store.from_settings(self.settings)
        interval = self.settings.canary_interval_seconds
        try:
            while not await self._subscribe(store):  # Redis away at start: try again
                await asyncio.sleep(interval)
            while not self._stopping.is_set():
                try:  # a round that fails (Redis or the broker away) is tried again
                    if await self._beat(store):
                        return
                except Exception:
                    log.exception("tidings canary: this round failed")
                await asyncio.sleep(interval)
        finally:
            await store.close()

    async def _subscribe(self, store: Store) -> bool:
        """Register the handlers' subscriptions and hand out what they must catch up on."""
        try:
            items = await store.subscribe(
                subscriptions(self.settings.owner_list), self.settings.environment_list
            )
            self.publish(items)
        except Exception:
            log.exception("could not subscribe the handlers; trying again")
            return False
        envs = ", ".join(self.settings.environment_list)
        log.info("worker %s serves %d handler(s) in %s:", self.name, len(REGISTRY), envs)
        for handler in REGISTRY.values():
            sub = handler.subscription
            event = models.full_event_name(sub.platform or "*", sub.label or "*", sub.eventName)
            log.info("  %s on %s, queue %s", handler.tx_key, event, handler.queue)
        if not REGISTRY:
            log.warning("no handlers: TIDINGS_HANDLERS=%r defines none", self.settings.handlers)
        return True

    async def _beat(self, store: Store) -> bool:
        """One round: heartbeat, forget long-gone workers, check for deafness, send the
        next canaries (the last two not once the worker's shutdown has begun). True once
        the worker is found deaf and told to stop."""
        now = now_ms()
        await store.heartbeat(self._heartbeat(now))
        await metrics.METRICS.flush(store)  # the main process's: canaries and recoveries
        forgotten = await store.forget_workers()
        if forgotten:
            self._delete_queues(forgotten)
        if self._shutting_down.is_set():
            return False
        await self._subscribe_again_if_lost(store)
        deaf = self._deaf_queue(now, await store.workers())
        if deaf is not None and not self._shutting_down.is_set():
            self._stop_deaf(deaf, now)
            return True
        for queue in self.queues:
            # While the prefetch window is full, the canary already waiting in a queue is
            # enough: more would only pile up. With room, another goes out each round, so
            # that a canary lost on the way (its queue deleted or Redis emptied under it)
            # cannot make the worker seem deaf.
            if queue in self.unanswered_since and self.room_since is None:
                continue
            self.app.send_task(
                CANARY_TASK, kwargs={"sender": self.name, "sent_at": now_ms()}, queue=queue
            )
            self.unanswered_since.setdefault(queue, now)
        return False

    async def _subscribe_again_if_lost(self, store: Store) -> None:
        """Register the handlers again where Redis no longer has them (it lost its data, or
        `tidings unsubscribe` forgot a handler this worker still runs)."""
        tx_keys = [sub.txKey for sub in subscriptions(self.settings.owner_list)]
        if not tx_keys:
            return
        lost = await store.unsubscribed(tx_keys, self.settings.environment_list)
        if lost:
            log.warning("subscriptions lost in Redis (%s): subscribing again", ", ".join(lost))
            await self._subscribe(store)

    def _heartbeat(self, now: int) -> models.WorkerBeat:
        queues = {}
        # A worker shutting down consumes nothing any more.
        for queue in [] if self._shutting_down.is_set() else self.queues:
            sent, received = self.last_canary.get(queue, (None, None))
            queues[queue] = models.QueueReceipts(
                receivedAt=self.last_received.get(queue),
                canarySentAt=sent,
                canaryReceivedAt=received,
            )
        return models.WorkerBeat(
            name=self.name,
            startedAt=self.started_at,
            lastSeen=now,
            heartbeatMs=int(self.settings.canary_interval_seconds * 1000),
            environments=self.settings.environment_list,
            owners=self.settings.owner_list,
            handlers=sorted(REGISTRY),
            queues=queues,
            directQueue=self.direct_queue,
        )

    def _deaf_queue(self, now: int, workers: list[models.WorkerBeat]) -> str | None:
        """The queue whose canary has gone unanswered too long while this worker had room
        for more messages, if any."""
        if not self._has_room():
            self.room_since = None
        elif self.room_since is None:
            self.room_since = now
        timeout_ms = self.settings.canary_timeout_seconds * 1000
        for queue in self.queues:
            since = self.unanswered_since.get(queue)
            if since is None:
                continue
            if self._consumed_at(queue, now, workers) >= since:
                del self.unanswered_since[queue]
            elif self.room_since is not None and now - max(since, self.room_since) >= timeout_ms:
                return queue
        return None

    def _consumed_at(self, queue: str, now: int, workers: list[models.WorkerBeat]) -> int:
        """When something was last taken off a queue: by this worker, or, for a shared
        queue, by any live worker."""
        times = [self.last_received.get(queue, 0)]
        if queue != self.direct_queue:
            times += [
                w.queues[queue].receivedAt or 0
                for w in workers
                if w.name != self.name and w.live(now) and queue in w.queues
            ]
        return max(times)

    def _has_room(self) -> bool:
        """Whether the consumer may fetch more messages: its prefetch window is not full."""
        limit = self.consumer.qos.value
        held = len(worker_state.reserved_requests) + len(worker_state.scheduled_requests)
        return not limit or held < limit

    def _stop_deaf(self, queue: str, now: int) -> None:
        waited = (now - self.unanswered_since[queue]) / 1000
        log.error(
            "this worker is deaf: a canary sent to %s %.1f s ago is still unanswered, while "
            "the worker had room for more messages; stopping with exit code %d, for its "
            "supervisor to start it again",
            queue,
            waited,
            EX_DEAF,
        )
        # Read by the consumer's loop, which then shuts the worker down warmly (celery's
        # own flag for a requested shutdown; its value becomes the exit code).
        worker_state.should_stop = EX_DEAF

    def _delete_queues(self, workers: list[str]) -> None:
        with self.app.connection_for_write() as connection:
            for worker in workers:
                # Declared first: a virtual transport (Redis) deletes only what it knows.
                queue = _direct_queue_entity(worker)(connection.default_channel)
                queue.declare()
                queue.delete()
