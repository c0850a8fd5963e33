"""What waits for its time: delayed events, retries, and runs a rate limit put off.

Each partition has a due set (``keys.due``): an emit puts a delayed event in it, a failed
attempt its retry (transactions.retry_later.lua), a run over its handler's rate the start it
was booked (``put_off``). Every worker's main process takes what has come due (``take_due``)
and publishes it: no broker countdown, no message held in a worker's memory, so a worker's
restart loses no delay. What a worker took but never published (it died in between),
recovery still hands out: a retry's lease and a delayed event's outstanding entry both lapse
after its due time.
"""

import time
from dataclasses import dataclass

from tidings.clock import now_ms
from tidings.store import keys, records
from tidings.store.subscriptions import Subscriptions
from tidings.work import Scope, WorkItem

#: The most one partition hands out in one script, so that no script holds Redis for long.
TAKE_LIMIT = 500
#: How long the scopes with events, read for ``take_due``, are used before they are read
#: again: a scope's first events, if delayed, may start this much late.
SCOPES_MAX_AGE_SECONDS = 1.0


@dataclass(frozen=True)
class Taken:
    """What came due, with the queue of each, and when more does."""

    items: list[tuple[WorkItem, str]]
    #: Epoch ms of the earliest still waiting, None if nothing does...
    next_due: int | None
    #: ...though a partition had more due than it handed out at once.
    more: bool


class Due(Subscriptions):
    """The due sets of every partition."""

    _scopes_read: tuple[float, list[Scope]] = (-SCOPES_MAX_AGE_SECONDS, [])

    async def put_off(self, item: WorkItem, due_ms: int) -> None:
        """Hand a transaction out again at ``due_ms``: its next attempt, or its first."""
        p = keys.partition_of(item.key, self.partitions)
        member = keys.lease_member(item.key, item.tx_key)
        await self.redis.zadd(keys.due(item.scope, p), {member: due_ms})

    async def waiting_for_time(self, scope: Scope) -> int:
        """How much waits in the scope's due sets: delayed events, retries, runs put off."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for p in range(self.partitions):
                pipe.zcard(keys.due(scope, p))
            return sum(await pipe.execute())

    async def take_due(self, environments: list[str], *, limit: int = TAKE_LIMIT) -> Taken:
        """What has come due in the environments' partitions, taken out of their due sets."""
        read_at, scopes = self._scopes_read
        if time.monotonic() - read_at >= SCOPES_MAX_AGE_SECONDS:
            scopes = await self.scopes()
            self._scopes_read = (time.monotonic(), scopes)
        places = self._partitions_in(scopes, environments)
        if not places:
            return Taken([], None, more=False)
        now = now_ms()
        calls = [[keys.meta(scope, p), now, limit, self.ttl_ms] for scope, p in places]
        answers = [records.fields(a) for a in await self._run_many("due.take", calls)]
        items = await self._with_queues(
            [
                (scope, records.fields(work))
                for (scope, _), answer in zip(places, answers, strict=True)
                for work in answer["work"]
            ]
        )
        nexts = [int(float(a["next"])) for a in answers if a["next"]]
        return Taken(items, min(nexts, default=None), more=any(int(a["more"]) for a in answers))
