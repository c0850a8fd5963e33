"""Workers' heartbeats, and how each handler is doing: its workers, counts, backlog and
runs its limits hold back (/handlers, the dashboard, /health)."""

from dataclasses import dataclass

from tidings import models
from tidings.clock import now_ms
from tidings.store import keys
from tidings.store.events import Events
from tidings.store.flow import Flow
from tidings.store.subscriptions import Subscriptions
from tidings.work import Scope


@dataclass(frozen=True)
class Waiting:
    total: int
    oldest_due: models.Event | None


#: How many of the events waiting for a handler are looked at for the oldest that is due.
WAITING_LOOKED_AT = 50


class Workers(Events, Subscriptions, Flow):
    """Heartbeats and handler views."""

    async def heartbeat(self, beat: models.WorkerBeat) -> None:
        """Record that a worker is alive, and what it runs and consumes."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(
                keys.worker(beat.name),
                beat.model_dump_json(),
                ex=models.WORKER_FORGOTTEN_AFTER_SECONDS,
            )
            pipe.zadd(keys.WORKERS, {beat.name: beat.lastSeen})
            await pipe.execute()

    async def workers(self) -> list[models.WorkerBeat]:
        """The last heartbeat of every worker not yet forgotten, live or gone."""
        cutoff = now_ms() - models.WORKER_FORGOTTEN_AFTER_SECONDS * 1000
        names: list[str] = await self.redis.zrange(keys.WORKERS, cutoff, "+inf", byscore=True)
        if not names:
            return []
        records = await self.redis.mget([keys.worker(name) for name in names])
        return [models.WorkerBeat.model_validate_json(r) for r in records if r]

    async def forget_workers(self) -> list[str]:
        """Forget the workers not seen for WORKER_FORGOTTEN_AFTER_SECONDS; their names."""
        cutoff = now_ms() - models.WORKER_FORGOTTEN_AFTER_SECONDS * 1000
        names: list[str] = await self.redis.zrange(keys.WORKERS, "-inf", f"({cutoff}", byscore=True)
        if names:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrem(keys.WORKERS, *names)
                pipe.delete(*[keys.worker(name) for name in names])
                await pipe.execute()
        return names

    async def handlers(self, scope: Scope) -> list[models.HandlerView]:
        """Every handler subscribed in the scope's environment, with how it is doing there."""
        workers = await self.workers()
        subscribed = [
            (sub, subscribed_at)
            for sub, subscribed_at in await self.subscribed(scope.env)
            if sub.serves(scope.owner)
        ]
        held_back = await self.held_back(scope, {sub.txKey for sub, _ in subscribed})
        return [
            await self._handler_view(
                scope, sub, subscribed_at, workers, held_back.get(sub.txKey, [])
            )
            for sub, subscribed_at in subscribed
        ]

    async def _handler_view(
        self,
        scope: Scope,
        sub: models.Subscription,
        subscribed_at: int,
        workers: list[models.WorkerBeat],
        held_back: list[models.HeldBack],
    ) -> models.HandlerView:
        now = now_ms()
        processing, finished, failed = [
            await self.count(scope, _transactions_of(sub, txState=state))
            for state in ("processing", "finished", "failed")
        ]
        waiting = await self.waiting(scope, sub, subscribed_at)
        running = [w for w in workers if w.runs(sub.txKey, scope.env, scope.owner)]
        live = [models.WorkerSeen(name=w.name, lastSeen=w.lastSeen) for w in running if w.live(now)]
        gone = [
            models.WorkerSeen(name=w.name, lastSeen=w.lastSeen) for w in running if not w.live(now)
        ]
        return models.HandlerView(
            **sub.model_dump(),
            subscribedAt=subscribed_at,
            workers=live,
            goneWorkers=gone,
            served=bool(live),
            counts=models.HandlerCounts(
                processing=processing,
                finished=finished,
                failed=failed,
                waiting=waiting.total,
                waitingForSlot=sum(h.runs for h in held_back if h.reason == "concurrency"),
                waitingForRate=sum(h.runs for h in held_back if h.reason == "rate"),
            ),
            oldestWaiting=waiting.oldest_due,
            heldBack=held_back[: models.MAX_HELD_BACK],
        )

    async def waiting(
        self, scope: Scope, sub: models.Subscription, subscribed_at: int
    ) -> "Waiting":
        """The events a handler has yet to claim (no transaction of it): how many (delayed
        events not yet due among them), and the oldest that is due, looked for among the
        oldest WAITING_LOOKED_AT (only when the oldest of all is a delayed one: /health and
        /handlers ask for every handler)."""
        since = subscribed_at if sub.since is None else sub.since
        waiting = _transactions_of(sub, txState="does-not-exist", since=since, pageSize=1)
        page = await self.query(scope, waiting)
        now = now_ms()
        if page.rows and not _due(page.rows[0], now):
            page = await self.query(
                scope, waiting.model_copy(update={"pageSize": WAITING_LOOKED_AT})
            )
        return Waiting(page.total, next((e for e in page.rows if _due(e, now)), None))


def _due(event: models.Event, now: int) -> bool:
    return event.deliverAt is None or event.deliverAt <= now


def _transactions_of(sub: models.Subscription, **request: object) -> models.QueryRequest:
    """A query for the events a handler subscribes to, by the state of its transaction."""
    return models.QueryRequest(
        eventName=sub.eventName,
        platform=sub.platform,
        label=sub.label,
        txKey=sub.txKey,
        **request,  # type: ignore[arg-type]
    )
