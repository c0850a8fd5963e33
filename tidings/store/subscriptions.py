"""Which handlers subscribe to which events, the past events a new handler catches up on
(backfill), and recovery: the work that lost its worker or its broker message.

A change of subscriptions counts up the environment's subscriptions version and tells
every partition of the environment before backfilling: an emit routed by older
subscriptions is then either refused by its partition (and routed again) or stored before
the backfill looks at that partition.
"""

from typing import Any

from tidings import models
from tidings.clock import now_ms
from tidings.store import keys, records
from tidings.store.records import text
from tidings.store.secret_keys import SecretKeys
from tidings.work import Scope, WorkItem

#: Events a backfill script looks at, at most.
BACKFILL_PAGE = 200
#: Expired events one cleanup script forgets, at most.
CLEANUP_BUDGET = 1000


class Subscriptions(SecretKeys):
    """Subscriptions, backfill and recovery (they walk every scope with keys or events)."""

    async def subscribe(
        self, subscriptions: list[models.Subscription], environments: list[str]
    ) -> list[tuple[WorkItem, str]]:
        """Register handlers, so that emits route events to them. Answers the work that
        emits could not route, now handed to the handlers (a backfill), with its queue:
        the events since a handler's ``since``, or, by default, for a handler new or changed
        here, the events since any process first registered it."""
        items: list[tuple[WorkItem, str]] = []
        for env in environments:
            now = now_ms()
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(keys.subscribed(env))
                for sub in subscriptions:
                    pipe.hget(keys.subscriptions(env, sub.eventName), sub.txKey)
                event_names, *stored = await pipe.execute()
            async with self.redis.pipeline(transaction=True) as pipe:
                for sub in subscriptions:
                    old_name = event_names.get(sub.txKey)
                    if old_name not in (None, sub.eventName):  # it subscribes to another event now
                        pipe.hdel(keys.subscriptions(env, old_name), sub.txKey)
                    pipe.hset(
                        keys.subscriptions(env, sub.eventName), sub.txKey, sub.model_dump_json()
                    )
                    pipe.hset(keys.subscribed(env), sub.txKey, sub.eventName)
                    pipe.hsetnx(keys.subscribed_at(env), sub.txKey, now)
                pipe.hgetall(keys.subscribed_at(env))
                *_, first_seen = await pipe.execute()
            await self._new_version(env)
            for sub, spec in zip(subscriptions, stored, strict=True):
                since = sub.since
                if since is None and not _routes_alike(spec, sub):
                    # Events that the earlier subscription (or none) did not route.
                    since = int(first_seen[sub.txKey])
                if since is not None:
                    items += await self._backfill_scopes(env, sub, since)
        return items

    async def _backfill_scopes(
        self, env: str, sub: models.Subscription, since: int
    ) -> list[tuple[WorkItem, str]]:
        items = []
        for scope in await self.scopes():
            if scope.env == env and sub.serves(scope.owner):
                keys_ = await self.backfill(scope, sub, since)
                items += [(WorkItem(scope.owner, env, k, sub.txKey), sub.queue) for k in keys_]
        return items

    async def _new_version(self, env: str) -> None:
        """The environment's subscriptions have changed: a new version, which every
        partition of the environment learns."""
        version = await self._run(
            "subscriptions.version", keys.subscriptions_version(env), now_ms()
        )
        calls = [
            [keys.meta(scope, p), version]
            for scope in await self.scopes()
            if scope.env == env
            for p in range(self.partitions)
        ]
        if calls:
            await self._run_many("subscriptions.seen", calls)

    async def backfill(
        self, scope: Scope, sub: models.Subscription, since: int, *, page: int = BACKFILL_PAGE
    ) -> list[str]:
        """Subscribe a handler to past events with no transaction of its own; their keys."""
        combo = keys.combo(sub.platform, sub.label, sub.eventName)
        found: list[str] = []
        for p in range(self.partitions):
            offset: Any = 0
            while offset != "":
                answer = await self._answer(
                    "subscriptions.backfill",
                    keys.meta(scope, p),
                    sub.txKey,
                    combo,
                    since,
                    offset,
                    page,
                    now_ms(),
                    self.grace_ms,
                    self.ttl_ms,
                )
                offset = text(answer["offset"])
                found += [key.hex() for key in answer["keys"]]
        return found

    async def unsubscribe(self, tx_key: str, environments: list[str]) -> list[str]:
        """Forget a handler removed from the code: events emitted from now on do not expect
        it. Answers the environments it was subscribed in."""
        forgotten = []
        for env in environments:
            event_name = await self.redis.hget(keys.subscribed(env), tx_key)
            if event_name is None:
                continue
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hdel(keys.subscriptions(env, event_name), tx_key)
                pipe.hdel(keys.subscribed(env), tx_key)
                pipe.hdel(keys.subscribed_at(env), tx_key)
                await pipe.execute()
            await self._new_version(env)
            forgotten.append(env)
        return forgotten

    async def unsubscribed(self, tx_keys: list[str], environments: list[str]) -> list[str]:
        """Which of these handlers some environment lacks (say, Redis lost its data), as
        ``env/txKey``: one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for env in environments:
                pipe.hmget(keys.subscribed(env), tx_keys)
            found = await pipe.execute()
        return [
            f"{env}/{tx_key}"
            for env, event_names in zip(environments, found, strict=True)
            for tx_key, event_name in zip(tx_keys, event_names, strict=True)
            if event_name is None
        ]

    async def subscribed(self, env: str) -> list[tuple[models.Subscription, int]]:
        """Every handler subscribed in an environment, with when it was first registered."""
        event_names: dict[str, str] = await self.redis.hgetall(keys.subscribed(env))
        first_seen: dict[str, str] = await self.redis.hgetall(keys.subscribed_at(env))
        async with self.redis.pipeline(transaction=False) as pipe:
            for tx_key, event_name in sorted(event_names.items()):
                pipe.hget(keys.subscriptions(env, event_name), tx_key)
            specs = await pipe.execute()
        return [
            (models.Subscription.model_validate_json(spec), int(first_seen.get(tx_key, 0)))
            for tx_key, spec in zip(sorted(event_names), specs, strict=True)
            if spec is not None
        ]

    async def recover(
        self, environments: list[str], *, lease_ms: int, limit: int = 1000
    ) -> list[tuple[WorkItem, str]]:
        """Work to hand out again, with its queue: lapsed leases, and subscribed handlers
        with no transaction on an event older than the grace period. It walks every
        partition of the environments, and forgets there what retention has passed."""
        now = now_ms()
        places = self._partitions_in(await self.scopes(), environments)
        if not places:
            return []
        metas = [keys.meta(scope, p) for scope, p in places]
        await self._run_many(
            "events.cleanup", [[meta, now, self.ttl_ms, CLEANUP_BUDGET] for meta in metas]
        )
        answers = await self._run_many(
            "subscriptions.recover",
            [[meta, now, lease_ms, self.grace_ms, limit, self.ttl_ms] for meta in metas],
        )
        return await self._with_queues(
            [
                (scope, records.fields(work))
                for (scope, _), works in zip(places, answers, strict=True)
                for work in works
            ]
        )

    def _partitions_in(
        self, scopes: list[Scope], environments: list[str]
    ) -> list[tuple[Scope, int]]:
        """Every partition of the scopes in these environments."""
        return [
            (scope, p)
            for scope in scopes
            if scope.env in environments
            for p in range(self.partitions)
        ]

    async def _with_queues(
        self, found: list[tuple[Scope, dict[str, Any]]]
    ) -> list[tuple[WorkItem, str]]:
        """Work a script found (key, txKey, eventName, and attempt if not the first) as work
        items with the queue of each handler; a handler no longer subscribed gets none."""
        if not found:
            return []
        handlers = sorted({(s.env, text(w["eventName"]), text(w["txKey"])) for s, w in found})
        async with self.redis.pipeline(transaction=False) as pipe:
            for env, event_name, tx_key in handlers:
                pipe.hget(keys.subscriptions(env, event_name), tx_key)
            specs = await pipe.execute()
        queues = {
            handler: models.Subscription.model_validate_json(spec).queue
            for handler, spec in zip(handlers, specs, strict=True)
            if spec is not None
        }
        items = []
        for scope, work in found:
            tx_key = text(work["txKey"])
            queue = queues.get((scope.env, text(work["eventName"]), tx_key))
            if queue is not None:
                attempt = int(work.get("attempt", 0))
                key = work["key"].hex()
                items.append((WorkItem(scope.owner, scope.env, key, tx_key, attempt), queue))
        return items


def _routes_alike(spec: str | None, sub: models.Subscription) -> bool:
    """A subscription as stored routes the same events as ``sub`` (a change of its other
    options, a rate say, needs no backfill)."""
    if spec is None:
        return False
    return models.Subscription.model_validate_json(spec).routing() == sub.routing()
