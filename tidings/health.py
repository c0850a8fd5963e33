"""What ``GET /health`` reports: Redis, and for every queue that has subscribed handlers,
in each environment, whether a live worker consumes it and how far behind it is.

A queue is served when a live worker took something off it (a canary or work, see
``tidings.canary``) within TIDINGS_CANARY_TIMEOUT_SECONDS; the report is an error (503)
while Redis is unreachable or any such queue is unserved: its events wait.
"""

import logging
from collections import defaultdict
from typing import get_args

from tidings import models
from tidings.celery_app import queue_name
from tidings.clock import now_ms
from tidings.settings import Settings
from tidings.store import Store
from tidings.work import Scope

log = logging.getLogger("tidings.health")


async def report(store: Store, settings: Settings) -> models.Health:
    try:
        await store.ping()
    except Exception as exc:  # any failure to reach Redis is what this reports
        log.warning("/health: Redis is unreachable: %s", exc)
        return models.Health(status="error", redis="down", message="Redis is unreachable")
    now = now_ms()
    workers = [w for w in await store.workers() if w.live(now)]
    scopes = await store.scopes()
    queues = []
    for env in get_args(models.Environment):
        on_queue: dict[str, list[tuple[models.Subscription, int]]] = defaultdict(list)
        for sub, subscribed_at in await store.subscribed(env):
            on_queue[sub.queue].append((sub, subscribed_at))
        for queue, subs in sorted(on_queue.items()):
            in_env = [s for s in scopes if s.env == env]
            queues.append(await _queue(store, settings, env, queue, subs, workers, in_env, now))
    problems = [f"no live worker consumes {q.brokerQueue}" for q in queues if not q.served]
    problems += [
        f"no live worker on {q.brokerQueue} runs {', '.join(q.handlersWithoutWorker)}"
        for q in queues
        if q.served and q.handlersWithoutWorker
    ]
    if problems:
        message = "; ".join(problems) + ": their events wait"
        return models.Health(status="error", redis="ok", message=message, queues=queues)
    return models.Health(status="ok", redis="ok", queues=queues)


async def _queue(
    store: Store,
    settings: Settings,
    env: str,
    queue: str,
    subs: list[tuple[models.Subscription, int]],
    workers: list[models.WorkerBeat],
    scopes: list[Scope],
    now: int,
) -> models.QueueHealth:
    broker_queue = queue_name(queue, env)
    consuming = [w for w in workers if broker_queue in w.queues]
    consumers = [_queue_worker(w, w.queues[broker_queue], now) for w in consuming]
    timeout = settings.canary_timeout_seconds
    oldest = await _oldest_waiting(store, subs, scopes)
    return models.QueueHealth(
        queue=queue,
        environment=env,
        brokerQueue=broker_queue,
        handlers=[sub.txKey for sub, _ in subs],
        # A worker of older or other code may consume the queue without running them all.
        handlersWithoutWorker=[
            sub.txKey
            for sub, _ in subs
            if not any(sub.txKey in w.handlers and env in w.environments for w in consuming)
        ],
        workers=consumers,
        served=any(
            c.lastReceivedSeconds is not None and c.lastReceivedSeconds <= timeout
            for c in consumers
        ),
        oldestWaitingSeconds=_age(oldest, now),
    )


async def _oldest_waiting(
    store: Store, subs: list[tuple[models.Subscription, int]], scopes: list[Scope]
) -> int | None:
    """Since when the oldest event still waiting for one of these handlers has been due:
    since it was emitted, or since its deliverAt if it was delayed."""
    oldest = None
    for scope in scopes:
        for sub, subscribed_at in subs:
            if sub.serves(scope.owner):
                event = (await store.waiting(scope, sub, subscribed_at)).oldest_due
                if event is not None:
                    since = max(event.createdAt, event.deliverAt or 0)
                    oldest = since if oldest is None else min(oldest, since)
    return oldest


def _queue_worker(
    worker: models.WorkerBeat, receipts: models.QueueReceipts, now: int
) -> models.QueueWorker:
    sent, received = receipts.canarySentAt, receipts.canaryReceivedAt
    return models.QueueWorker(
        name=worker.name,
        lastSeenSeconds=_seconds(now - worker.lastSeen),
        lastReceivedSeconds=_age(receipts.receivedAt, now),
        canaryAgeSeconds=_age(received, now),
        canaryRoundTripMs=received - sent if received is not None and sent is not None else None,
    )


def _age(ms: int | None, now: int) -> float | None:
    return None if ms is None else _seconds(now - ms)


def _seconds(ms: int) -> float:
    return round(max(ms, 0) / 1000, 3)
