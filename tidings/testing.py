"""Test your handlers: run one event through a handler, synchronously and without a broker,
with the same claim/transact recording as a worker.

    from tidings.testing import run_handler

    def test_welcome_email():
        tx = run_handler(send_welcome_email, {"email": "ada@example.com"})
        assert tx.state == "finished" and tx.output["sent"]

The event is stored in Redis (REDIS_URL, or an embedded server started for the test
session) under owner and environment "testing", which no worker handles: no other handler
runs on it. Retries run at once, without backoff (in the due set, nobody takes them).
"""

import asyncio
import atexit
import tempfile
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tidings import models
from tidings.handlers import REGISTRY, Handler
from tidings.redis_server import EmbeddedRedis
from tidings.settings import Settings
from tidings.store import Store
from tidings.work import Scope, WorkItem
from tidings.worker import Runner

#: An environment no worker handles, so that no real handler ever runs on these events.
SCOPE = Scope("testing", "testing")
_embedded: list[str] = []


def run_handler(
    fn: Callable[..., Any],
    payload: Any = None,
    *,
    label: str = "testing",
    redis_url: str | None = None,
) -> models.Transaction:
    """Emit ``payload`` as the handler's event and run the handler on it until it ends."""
    handler = next((h for h in REGISTRY.values() if h.fn is fn), None)
    if handler is None:
        raise ValueError(f"{fn.__qualname__} is not decorated with @tidings.handler")
    url = redis_url or Settings().redis_url or _embedded_redis()
    return asyncio.run(_run(handler, payload, label, url))


async def _run(handler: Handler, payload: Any, label: str, url: str) -> models.Transaction:
    store = Store.from_settings(Settings().model_copy(update={"redis_url": url}))
    runner = Runner(
        store,
        worker_name="tidings.testing",
        lease_ms=60_000,
        publish=lambda items: None,  # follow-up events are stored, not run
    )
    try:
        await store.check_schema()
        request = models.EmitRequest(
            event=handler.event_name, payload={} if payload is None else payload
        )
        [event] = await store.emit(
            SCOPE,
            [request],
            platform=handler.options.platform or models.CUSTOM_PLATFORM,
            label=handler.options.label or label,
            actor="tidings.testing",
        )
        item = WorkItem(SCOPE.owner, SCOPE.env, event.key, handler.tx_key)
        outcome = await runner.run(item, handler)
        while outcome == "retrying":
            tx = await _transaction(store, item)
            outcome = await runner.run(replace(item, attempt=tx.attempts + 1), handler)
        return await _transaction(store, item)
    finally:
        await store.close()


async def _transaction(store: Store, item: WorkItem) -> models.Transaction:
    stored = await store.get_event(SCOPE, item.key)
    return next(tx for tx in stored.transactions if tx.txKey == item.tx_key)


def _embedded_redis() -> str:
    if not _embedded:
        server = EmbeddedRedis(tempfile.mkdtemp(prefix="tidings-test-"), persist=False)
        _embedded.append(server.start())
        atexit.register(server.stop)
    return _embedded[0]
