"""``tidings serve`` with the API's timeline hooks (bench/timeline.py): marks when each event
is accepted, stored and published (with stored, where the emit script pushed its message).
For the benchmarks only::

    PYTHONPATH=bench REDIS_URL=... python bench/traced_serve.py --port 8000
"""

import asyncio
import os
import sys
from functools import wraps
from typing import Any

import redis.asyncio as aioredis
import timeline

import tidings.dispatch
from tidings import cli
from tidings.store import Store

_emit_with_secret = Store.emit_with_secret
_writes: set[asyncio.Task[Any]] = set()
client = aioredis.Redis.from_url(os.environ["REDIS_URL"])


@wraps(_emit_with_secret)
async def emit_with_secret(self: Store, secret: Any, events: Any, **options: Any) -> Any:
    accepted = timeline.now_ns()
    caller, emitted = await _emit_with_secret(self, secret, events, **options)
    keys = [e.key for e in emitted]
    timeline.mark("accepted", keys, at=accepted)
    timeline.mark("stored", keys)
    # pushed by the emit script itself (tidings.dispatch.Dispatcher.publishing_with_store)
    timeline.mark("published", [e.key for e in emitted if e.published])
    flush_due()
    return caller, emitted


def traced(publish: Any) -> Any:
    @wraps(publish)
    async def traced_publish(self: Any, items: Any) -> None:
        await publish(self, items)
        timeline.mark("published", [item.key for item, _ in items])
        flush_due()

    return traced_publish


def flush_due() -> None:
    """Write the marks that are due, in the background, on this event loop."""
    marks = timeline.due()
    if marks:
        task = asyncio.create_task(timeline.flush(client, marks))
        _writes.add(task)
        task.add_done_callback(_writes.discard)


Store.emit_with_secret = emit_with_secret  # type: ignore[method-assign]
for broker in (tidings.dispatch.RedisBroker, tidings.dispatch.CeleryBroker):
    broker.publish = traced(broker.publish)  # type: ignore[method-assign]

if __name__ == "__main__":
    cli.main(["serve", *sys.argv[1:]])
