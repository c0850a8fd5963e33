"""Celery at the edge: the app, its two thin tasks, and the worker's start-up.

``tidings.run`` carries a batch of transactions (one broker message for many events) and
runs each through ``tidings.worker.Runner``. Each worker's main process hands out what comes
due (delayed events, retries: tidings/store/due.py), what recovery finds every few seconds,
and the ticks of schedules; ``tidings.canary`` subscribes its handlers and keeps its
heartbeat and canaries.
"""

import asyncio
import base64
import gc
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from celery import Celery, signals
from kombu.entity import Queue
from pydantic_core import to_json

from tidings import beat, canary, flow, metrics
from tidings.clock import now_ms
from tidings.errors import REDIS_UNREACHABLE
from tidings.handlers import REGISTRY, discover
from tidings.settings import Settings
from tidings.store import Store
from tidings.store.schema import SchemaMismatch
from tidings.work import WorkItem
from tidings.worker import Runner
from tidings.worker_sigterm import let_running_handlers_finish

log = logging.getLogger("tidings.worker")

RUN_TASK = "tidings.run"
#: The exit code of a worker started on data of another schema.
EX_SCHEMA = 1
#: How often a starting worker tries again to check the schema while Redis is unreachable.
SCHEMA_RETRY_SECONDS = 1

CELERY_SETTINGS = {
    # A message is acknowledged once its rows have run, so a worker's death loses none.
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    # Results live in the transactions, not in a Celery result backend.
    "task_ignore_result": True,
    "task_serializer": "json",
    "accept_content": ["json"],
    # One message a pool process (and one more, see _room_for_one_more): a backlog waits in
    # the broker's queue, where the API's dispatcher sees it and gathers events into larger
    # messages, rather than in the worker's memory in messages of one event each.
    "worker_prefetch_multiplier": 1,
    "broker_connection_retry_on_startup": True,
    "worker_hijack_root_logger": False,
}


def queue_name(queue: str, env: str) -> str:
    """Each environment has its own queues, so staging and production can share a broker."""
    return f"{queue}.{env}"


def message_rows(items: Iterable[tuple[WorkItem, str]], batch: int) -> list[tuple[str, list[Any]]]:
    """Work items as (queue, rows) of the messages that carry them: one queue's items
    together, at most ``batch`` rows a message."""
    by_queue: dict[str, list[list[Any]]] = defaultdict(list)
    for item, queue in items:
        by_queue[queue_name(queue, item.env)].append(item.row)
    return [
        (queue, rows[start : start + batch])
        for queue, rows in by_queue.items()
        for start in range(0, len(rows), batch)
    ]


#: The body's third part (protocol 2): no callbacks, errbacks, chain or chord.
NO_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
ORIGIN = f"tidings@{socket.gethostname()}"


def redis_message(rows: list[Any], queue: str, task_id: str) -> bytes:
    """A tidings.run message as kombu's Redis transport keeps it in the queue's list: a
    Celery task message (protocol 2, docs.celeryq.dev internals/protocol) in kombu's JSON
    envelope, the body base64-encoded, with the fields ``app.send_task`` writes. Encoded by
    pydantic-core, three times as fast as the json module: the API builds one at each
    publish, up to ``dispatch_batch`` rows long."""
    body = to_json([[rows], {}, NO_EMBED])
    return to_json(
        {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {
                "lang": "py",
                "task": RUN_TASK,
                "id": task_id,
                "shadow": None,
                "eta": None,
                "expires": None,
                "group": None,
                "group_index": None,
                "retries": 0,
                "timelimit": [None, None],
                "root_id": task_id,
                "parent_id": None,
                "argsrepr": f"[<{len(rows)} transactions>]",
                "kwargsrepr": "{}",
                "origin": ORIGIN,
                "ignore_result": True,
                "replaced_task_nesting": 0,
                "stamped_headers": None,
                "stamps": {},
            },
            "properties": {
                "correlation_id": task_id,
                "reply_to": "",
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    )


def publish(
    app: Celery,
    items: Iterable[tuple[WorkItem, str]],
    *,
    batch: int = 100,
) -> None:
    """Send work items, as few messages as their queues and the batch size allow."""
    for queue, rows in message_rows(items, batch):
        app.send_task(RUN_TASK, args=[rows], queue=queue)


@dataclass
class WorkerProcess:
    """What one worker process needs: its event loop, store connection and runner."""

    loop: asyncio.AbstractEventLoop
    store: Store
    runner: Runner


_process: dict[tuple[int, int], WorkerProcess] = {}


def worker_process(app: Celery, settings: Settings) -> WorkerProcess:
    """Made once per process and thread: prefork children each get their own after the
    fork, and each thread of a threads pool its own event loop."""
    pid = os.getpid()
    slot = (pid, threading.get_ident())
    if slot not in _process:
        loop = asyncio.new_event_loop()
        store = Store.from_settings(settings)

        def publish_items(items: list[tuple[WorkItem, str]]) -> None:
            publish(app, items, batch=settings.dispatch_batch)

        runner = Runner(store, canary.worker_name(), settings.lease_ms, publish_items)
        _process[slot] = WorkerProcess(loop, store, runner)
        keeper = threading.Thread(target=_keep_leases, args=(runner, settings), daemon=True)
        keeper.start()
    return _process[slot]


def _keep_leases(runner: Runner, settings: Settings) -> None:
    """Renew the leases of what a runner is running, so that a handler that runs longer
    than the lease is not claimed again (a dead worker's leases still lapse); and add this
    process's metrics to Redis every few seconds."""

    async def keep() -> None:
        store = Store.from_settings(settings)
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(metrics.FLUSH_SECONDS)
            await _flush_metrics(store)
            if time.monotonic() - renewed < settings.lease_seconds / 3:
                continue
            renewed = time.monotonic()
            try:
                await store.extend_leases(list(runner.running), settings.lease_ms)
                held = [(h.limit, h.token) for h in list(runner.slots)]
                await store.renew_slots(held, settings.lease_ms)
            except Exception:  # Redis away for a moment: try again next round
                log.exception("could not renew leases")

    asyncio.run(keep())


def create_celery(settings: Settings | None = None, *, import_handlers: bool = True) -> Celery:
    """The Celery app; with ``import_handlers`` (workers), it also imports the handler
    modules and consumes their queues in the environments it handles."""
    settings = settings or Settings()
    app = Celery("tidings", broker=settings.broker, set_as_current=False)
    app.conf.update(CELERY_SETTINGS)
    if import_handlers:
        discover(settings.handler_modules)
        queues = {
            queue_name(h.queue, env) for h in REGISTRY.values() for env in settings.environment_list
        }
        app.conf.task_queues = [Queue(name) for name in sorted(queues)]

    @app.task(name=RUN_TASK)
    def run(rows: list[list[Any]]) -> None:
        process = worker_process(app, settings)
        process.loop.run_until_complete(_run_batch(process.runner, rows))

    if import_handlers:
        _start_worker_duties(app, settings)
        canary.install(
            app, settings, lambda items: publish(app, items, batch=settings.dispatch_batch)
        )
        let_running_handlers_finish()  # through a PaaS's SIGTERM to every process
        signals.worker_init.connect(lambda **kwargs: _check_schema(settings), weak=False)
        signals.worker_init.connect(_freeze_imports, weak=False)
        signals.worker_init.connect(_short_gil_turns, weak=False)
        signals.worker_ready.connect(_room_for_one_more, weak=False)
        signals.worker_process_shutdown.connect(_flush_on_exit, weak=False)
    return app


def _check_schema(settings: Settings) -> None:
    """Before the worker consumes anything: its Redis holds no data of another schema, or
    it stops (EX_SCHEMA), saying what to do. While Redis is unreachable it waits for it."""

    async def check() -> None:
        store = Store.from_settings(settings)
        try:
            await store.check_schema()
        finally:
            await store.close()

    while True:
        try:
            asyncio.run(check())
            return
        except SchemaMismatch as exc:
            log.error("tidings: %s", exc.message)
            raise SystemExit(EX_SCHEMA) from None
        except REDIS_UNREACHABLE:
            log.warning("Redis is unreachable: the worker checks its schema again shortly")
            time.sleep(SCHEMA_RETRY_SECONDS)


def _room_for_one_more(sender: Any = None, **kwargs: Any) -> None:
    """Let the consumer hold one message beyond one a pool process (its prefetch window):
    a worker whose every process is busy then still takes a canary off its queues
    (tidings.canary), while a backlog stays in the broker's queue, where the dispatcher
    sees it, rather than in the worker."""
    sender.qos.increment_eventually()
    sender.qos.update()


def _freeze_imports(**kwargs: Any) -> None:
    """Leave what the worker has loaded by now out of garbage collection, before the pool's
    processes fork: a full collection of it stalls a process ~30 ms (gc.collect() after
    ``import workers``, measured on this project's 2-core machine), on the main process's
    consumer or a handler's run alike."""
    gc.freeze()


#: How long a thread may run Python while another waits for the GIL (Python's default: 5 ms).
GIL_TURN_SECONDS = 0.001


def _short_gil_turns(**kwargs: Any) -> None:
    """Let a thread woken by its socket (the consumer, a handler's run) have the GIL within
    a millisecond while another runs Python: the canary's round takes 4-9 ms of CPU in the
    main process every few seconds, most of it in Celery's send_task, and the consumer
    waited for it in turns of up to 5 ms. Set before the pool's processes fork, for them
    too (their lease keeper thread)."""
    sys.setswitchinterval(GIL_TURN_SECONDS)


#: Rows of one message run together, so that one row's Redis round trips overlap another's.
ROWS_AT_ONCE = 16


async def _run_batch(runner: Runner, rows: list[list[Any]]) -> None:
    # Counted here, as the message is run: the API's dispatcher adds rows to a message
    # while it waits in its queue, so only its receiver knows how many it carried.
    metrics.METRICS.observe(metrics.DISPATCH_BATCH, len(rows))
    slots = asyncio.Semaphore(ROWS_AT_ONCE)

    async def run_row(owner: str, env: str, key: str, tx_key: str, attempt: int) -> None:
        handler = REGISTRY.get(tx_key)
        if handler is None:
            log.warning("no handler %r in this worker; recovery will hand it out again", tx_key)
            return
        async with slots:
            await runner.run(WorkItem(owner, env, key, tx_key, attempt), handler)

    if len(rows) == 1:  # nothing to run beside it: no task of its own, no turn of the loop
        await run_row(*rows[0])
        return
    results = await asyncio.gather(*(run_row(*row) for row in rows), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:  # e.g. Redis unreachable: the lease lapses and recovery hands the row out again
        raise errors[0]


async def _flush_metrics(store: Store) -> None:
    try:
        await metrics.METRICS.flush(store)
    except Exception:  # Redis away: the counts wait for the next flush
        log.warning("could not flush metrics to Redis", exc_info=True)


def _flush_on_exit(**kwargs: Any) -> None:
    """A pool process's last counts, as it exits."""
    for process in _process.values():
        if process.loop.is_closed() or process.loop.is_running():
            continue
        process.loop.run_until_complete(_flush_metrics(process.store))


#: The longest the main process waits before it looks again for what has come due (it
#: wakes sooner for what it knows comes due sooner): how late a delayed event emitted for
#: less than this ahead may start...
DUE_POLL_SECONDS = 0.05
#: ...and the shortest: what comes due meanwhile goes out together, in one message, rather
#: than in a message each (500 a second would cost a 2-core machine most of a core).
DUE_GATHER_SECONDS = 0.02


def _start_worker_duties(app: Celery, settings: Settings) -> None:
    """The worker's main process hands out what comes due, recovers every few seconds, and
    fires the ticks of its handlers' schedules that it claims (tidings.beat): no single
    scheduler process."""
    environments = settings.environment_list
    scopes = beat.scopes_of(environments, settings.owner_list)
    actor = canary.worker_name()

    def hand_out(items: list[tuple[WorkItem, str]]) -> None:
        if items:
            publish(app, items, batch=settings.dispatch_batch)

    async def due(store: Store) -> float:
        taken = await store.take_due(environments)
        hand_out(taken.items)
        if taken.more:
            return 0
        if taken.next_due is None:
            return DUE_POLL_SECONDS
        soonest = (taken.next_due - now_ms()) / 1000
        return min(DUE_POLL_SECONDS, max(DUE_GATHER_SECONDS, soonest))

    async def recover(store: Store) -> float:
        items = await store.recover(environments, lease_ms=settings.lease_ms)
        for item, _ in items:
            metrics.METRICS.inc(metrics.LEASE_RECOVERIES, item.env)
        if items:
            log.info("recovery hands out %d transactions again", len(items))
        hand_out(items)
        woken = await flow.wake(store, list(REGISTRY.values()), settings.lease_ms)
        if woken:
            log.info("%d runs take concurrency slots that lapsed", len(woken))
        hand_out(woken)
        return settings.recovery_interval_seconds

    async def ticks(store: Store) -> float:
        hand_out(await beat.beat(store, list(REGISTRY.values()), scopes, actor, now_ms()))
        return beat.BEAT_SECONDS

    _in_main_process("due", due, settings)
    _in_main_process("recovery", recover, settings)
    _in_main_process(
        "beat", ticks, settings, when=lambda: any(h.options.schedule for h in REGISTRY.values())
    )


def _in_main_process(
    name: str,
    duty: Callable[[Store], Awaitable[float]],
    settings: Settings,
    *,
    when: Callable[[], bool] = lambda: True,
) -> None:
    """Run ``duty`` round after round in a thread of the worker's main process, from when
    the worker is ready (if ``when``) until it shuts down; each round answers how long to
    wait before the next. A round that fails (Redis or the broker away) is tried again."""
    stop = threading.Event()

    async def rounds() -> None:
        store = Store.from_settings(settings)
        try:
            while not stop.is_set():
                wait: float = settings.recovery_interval_seconds
                try:
                    wait = await duty(store)
                except Exception:
                    log.exception("tidings worker's %s: this round failed", name)
                await asyncio.sleep(wait)
        finally:
            await store.close()

    def main() -> None:
        try:
            asyncio.run(rounds())
        except Exception:
            log.exception("tidings worker's %s stopped", name)

    @signals.worker_ready.connect(weak=False)
    def on_ready(sender: Any = None, **kwargs: Any) -> None:
        if when():
            threading.Thread(target=main, name=f"tidings-{name}", daemon=True).start()

    @signals.worker_shutdown.connect(weak=False)
    def on_shutdown(sender: Any = None, **kwargs: Any) -> None:
        stop.set()
