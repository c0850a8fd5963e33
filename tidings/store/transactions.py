"""Transactions: a handler's run on an event, from its claim to its result.

Over HTTP (/init, /transact, /update) and for workers: a leased claim, its renewal, a
retry's wait, and the result stored with the events its handler emitted (whose keys are in
the event's partition: ``ids.new_event_key(beside=...)``).
"""

from typing import Any

from tidings import models
from tidings.clock import now_ms
from tidings.errors import Conflict, NotFound
from tidings.store import keys, records
from tidings.store.events import Events, event_args, is_delayed
from tidings.store.records import dump, text
from tidings.work import Claim, Emitted, NewEvent, Result, Scope, WorkItem


class Transactions(Events):
    """Claims, leases and results of transactions."""

    def _where(self, scope: Scope, key: str) -> tuple[str, bytes] | None:
        """The meta key of an event's partition and the event's key in Redis."""
        key16 = records.event_key_bytes(key)
        if key16 is None:
            return None
        return keys.meta(scope, keys.partition_of(key, self.partitions)), key16

    async def init(self, scope: Scope, key: str, tx_key: str, *, actor: str) -> models.Transaction:
        """Claim (key, tx_key) for good: a Conflict if it exists already."""
        where = self._where(scope, key)
        answer = where and await self._answer(
            "transactions.init", *where, tx_key, now_ms(), actor, self.ttl_ms
        )
        if not answer or text(answer["status"]) == "not_found":
            raise NotFound(f"no event with key {key!r}")
        if text(answer["status"]) == "conflict":
            raise Conflict(
                f"transaction {tx_key!r} on event {key!r} exists already ({text(answer['state'])})"
            )
        return self._transaction(key, tx_key, answer)

    def _transaction(self, key: str, tx_key: str, answer: dict[str, Any]) -> models.Transaction:
        stored = records.stored(key, answer["record"])
        return records.transaction(stored, tx_key, self.ttl_seconds)

    async def transact(
        self, scope: Scope, key: str, tx_key: str, state: str, output: Any, *, actor: str
    ) -> models.Transaction:
        where = self._where(scope, key)
        answer = where and await self._answer(
            "transactions.transact",
            *where,
            tx_key,
            state,
            dump(output),
            now_ms(),
            actor,
            self.ttl_ms,
        )
        if not answer or text(answer["status"]) == "not_found":
            raise NotFound(f"no transaction {tx_key!r} on event {key!r}: claim it with /init first")
        if text(answer["status"]) == "conflict":
            raise Conflict(
                f"transaction {tx_key!r} on event {key!r} has already ended ({text(answer['why'])})"
            )
        return self._transaction(key, tx_key, answer)

    async def update(
        self, scope: Scope, key: str, event_name: str, tx_key: str, state: str, *, actor: str
    ) -> models.Event:
        where = self._where(scope, key)
        answer = where and await self._answer(
            "transactions.update",
            *where,
            event_name,
            tx_key,
            state,
            now_ms(),
            actor,
            self.ttl_ms,
        )
        if not answer or text(answer["status"]) == "not_found":
            what = (
                "no event with key"
                if not answer or text(answer["what"]) == "event"
                else f"no {event_name!r} event with key"
            )
            raise NotFound(f"{what} {key!r}")
        return records.event(scope, records.stored(key, answer["record"]), self.ttl_seconds)

    async def claim(self, item: WorkItem, *, actor: str, lease_ms: int) -> Claim | None:
        """A worker's leased claim; None when the transaction is not this worker's to run."""
        [claim] = await self.claim_many([item], actor=actor, lease_ms=lease_ms)
        return claim

    async def claim_many(
        self, items: list[WorkItem], *, actor: str, lease_ms: int
    ) -> list[Claim | None]:
        """``claim`` for several transactions, in one round trip: one script a partition."""
        claims: list[Claim | None] = [None] * len(items)
        by_meta: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            if where := self._where(item.scope, item.key):
                by_meta.setdefault(where[0], []).append(i)
        calls = []
        for meta, indexes in by_meta.items():
            args: list[Any] = [meta, now_ms(), actor, lease_ms, self.ttl_ms]
            for i in indexes:
                key16 = records.event_key_bytes(items[i].key)
                args += [key16, items[i].tx_key, items[i].attempt]
            calls.append(args)
        answers = await self._run_many("transactions.claim", calls) if calls else []
        for indexes, answer in zip(by_meta.values(), answers, strict=True):
            for i, one in zip(indexes, answer, strict=True):
                claims[i] = records.claim(items[i].key, one)
        return claims

    async def extend_leases(self, items: list[WorkItem], lease_ms: int) -> None:
        """Renew the leases of transactions still running (none that has ended since)."""
        if items:
            until = now_ms() + lease_ms
            async with self.redis.pipeline(transaction=False) as pipe:
                for i in items:
                    p = keys.partition_of(i.key, self.partitions)
                    member = keys.lease_member(i.key, i.tx_key)
                    pipe.zadd(keys.leases(i.scope, p), {member: until}, xx=True)
                await pipe.execute()

    async def finish(
        self,
        item: WorkItem,
        claim: Claim,
        state: str,
        output: Any,
        *,
        actor: str,
        follow_ups: list[tuple[str, NewEvent]],
    ) -> list[Emitted] | None:
        """A worker's transact: the result, and the events its handler emitted, stored in one
        step while its claim stands; None (nothing stored) once another worker holds it."""
        [emitted] = await self.finish_many([Result(item, claim, state, output, follow_ups)], actor)
        return emitted

    async def finish_many(self, results: list[Result], actor: str) -> list[list[Emitted] | None]:
        """``finish`` for several results, in one round trip, one script a partition (and
        one more for those whose follow-ups met newer subscriptions)."""
        emitted: list[list[Emitted] | None] = [None] * len(results)
        pending = list(range(len(results)))
        while pending:
            now = now_ms()
            by_meta: dict[str, list[int]] = {}
            routes_of: dict[int, list[list[tuple[str, str]]]] = {}
            args_of: dict[str, list[Any]] = {}
            for i in pending:
                r = results[i]
                where = self._where(r.item.scope, r.item.key)
                assert where is not None, r.item.key
                routes_of[i] = await self._follow_up_routes(r)
                meta = where[0]
                if meta not in args_of:
                    args_of[meta] = [meta, now, actor, self.ttl_ms, self.grace_ms, 0]
                if r.follow_ups:  # the oldest subscriptions its follow-ups were routed by
                    routed = self._routing[r.item.env].version
                    args_of[meta][5] = min(args_of[meta][5] or routed, routed)
                by_meta.setdefault(meta, []).append(i)
                args_of[meta] += [
                    where[1],
                    r.item.tx_key,
                    r.state,
                    dump(r.output),
                    r.claim.token,
                    len(r.follow_ups),
                ]
                for (key, event), route in zip(r.follow_ups, routes_of[i], strict=True):
                    args_of[meta] += event_args(
                        key, event, models.CUSTOM_PLATFORM, r.claim.label, route
                    )
            answers = await self._run_many("transactions.finish", list(args_of.values()))
            pending = []
            for indexes, answer in zip(by_meta.values(), answers, strict=True):
                for i, one in zip(indexes, map(records.fields, answer), strict=True):
                    status = text(one["status"])
                    if status == "ok":
                        follow_ups = results[i].follow_ups
                        emitted[i] = [
                            Emitted(key, route, delayed=is_delayed(event, now))
                            for (key, event), route in zip(follow_ups, routes_of[i], strict=True)
                        ]
                    elif status == "stale":
                        pending.append(i)
                        self._routing.pop(results[i].item.env, None)
        return emitted

    async def _follow_up_routes(self, r: Result) -> list[list[tuple[str, str]]]:
        """The handlers of each event a handler emitted; they are stored in its partition."""
        scope = r.item.scope
        for key, _ in r.follow_ups:
            if keys.partition_of(key, self.partitions) != keys.partition_of(
                r.item.key, self.partitions
            ):
                raise ValueError(f"follow-up {key} is not in the partition of {r.item.key}")
        if not r.follow_ups:
            return []
        await self._register(scope)
        routing = await self._routing_for(scope.env, {e.event for _, e in r.follow_ups}, None)
        return [
            self._routes(routing, scope, models.CUSTOM_PLATFORM, r.claim.label, e.event)
            for _, e in r.follow_ups
        ]

    async def retry_later(
        self, item: WorkItem, claim: Claim, *, actor: str, reason: str, due: int, lease_ms: int
    ) -> bool:
        """Record a failed attempt, to be retried at ``due`` (epoch ms), and hold the lease
        until ``lease_ms`` after that."""
        where = self._where(item.scope, item.key)
        return bool(
            where
            and await self._run(
                "transactions.retry_later",
                *where,
                item.tx_key,
                now_ms(),
                actor,
                reason,
                due,
                due + lease_ms,
                claim.token,
                self.ttl_ms,
            )
        )
