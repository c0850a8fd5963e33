"""Transactions: a handler's run on an event, from its claim to its result.

Over HTTP (/init, /transact, /update) and for workers: a leased claim, its renewal, a
retry's wait, and the result stored with the events its handler emitted.
"""

from typing import Any

from tidings import models
from tidings.clock import now_ms
from tidings.errors import Conflict, NotFound
from tidings.ids import new_id, new_record_id
from tidings.store import keys, records
from tidings.store.connection import StorePart
from tidings.store.events import event_args
from tidings.store.records import dump
from tidings.work import Claim, Emitted, Result, Scope, WorkItem


class Transactions(StorePart):
    """Claims, leases and results of transactions."""

    async def init(self, scope: Scope, key: str, tx_key: str, *, actor: str) -> models.Transaction:
        """Claim (key, tx_key) for good: a Conflict if it exists already."""
        answer = await self._answer(
            "transactions.init",
            keys.scope_prefix(scope),
            key,
            tx_key,
            now_ms(),
            actor,
            new_record_id(),
            new_id(),
        )
        if answer["status"] == "not_found":
            raise NotFound(f"no event with key {key!r}")
        if answer["status"] == "conflict":
            raise Conflict(
                f"transaction {tx_key!r} on event {key!r} exists already ({answer['state']})"
            )
        return records.transaction(records.fields(answer["transaction"]))

    async def transact(
        self, scope: Scope, key: str, tx_key: str, state: str, output: Any, *, actor: str
    ) -> models.Transaction:
        answer = await self._answer(
            "transactions.transact",
            keys.scope_prefix(scope),
            key,
            tx_key,
            state,
            dump(output),
            now_ms(),
            actor,
        )
        if answer["status"] == "not_found":
            raise NotFound(f"no transaction {tx_key!r} on event {key!r}: claim it with /init first")
        if answer["status"] == "conflict":
            raise Conflict(
                f"transaction {tx_key!r} on event {key!r} has already ended ({answer['why']})"
            )
        return records.transaction(records.fields(answer["transaction"]))

    async def update(
        self, scope: Scope, key: str, event_name: str, tx_key: str, state: str, *, actor: str
    ) -> models.Event:
        answer = await self._answer(
            "transactions.update",
            keys.scope_prefix(scope),
            key,
            event_name,
            tx_key,
            state,
            now_ms(),
            actor,
            new_record_id(),
            new_id(),
        )
        if answer["status"] == "not_found":
            what = (
                "no event with key"
                if answer["what"] == "event"
                else f"no {event_name!r} event with key"
            )
            raise NotFound(f"{what} {key!r}")
        return records.event(scope, records.fields(answer["event"]))

    async def claim(self, item: WorkItem, *, actor: str, lease_ms: int) -> Claim | None:
        """A worker's leased claim; None when the transaction is not this worker's to run."""
        [claim] = await self.claim_many([item], actor=actor, lease_ms=lease_ms)
        return claim

    async def claim_many(
        self, items: list[WorkItem], *, actor: str, lease_ms: int
    ) -> list[Claim | None]:
        """``claim`` for several transactions, in one round trip."""
        tokens = [new_id() for _ in items]
        calls = [
            [
                keys.scope_prefix(item.scope),
                item.key,
                item.tx_key,
                now_ms(),
                actor,
                new_record_id(),
                new_id(),
                lease_ms,
                item.attempt,
                token,
            ]
            for item, token in zip(items, tokens, strict=True)
        ]
        answers = await self._run_many("transactions.claim", calls)
        return [records.claim(answer, token) for answer, token in zip(answers, tokens, strict=True)]

    async def extend_leases(self, items: list[WorkItem], lease_ms: int) -> None:
        """Renew the leases of transactions still running (none that has ended since)."""
        if items:
            until = now_ms() + lease_ms
            async with self.redis.pipeline(transaction=False) as pipe:
                for i in items:
                    member = keys.lease_member(i.owner, i.env, i.key, i.tx_key)
                    pipe.zadd(keys.leases(i.env), {member: until}, xx=True)
                await pipe.execute()

    async def finish(
        self,
        item: WorkItem,
        claim: "Claim",
        state: str,
        output: Any,
        *,
        actor: str,
        follow_ups: list[tuple[str, models.EmitRequest]],
    ) -> list[Emitted] | None:
        """A worker's transact: the result, and the events its handler emitted, stored in one
        step while its claim stands; None (nothing stored) once another worker holds it."""
        [emitted] = await self.finish_many([Result(item, claim, state, output, follow_ups)], actor)
        return emitted

    async def finish_many(self, results: list["Result"], actor: str) -> list[list[Emitted] | None]:
        """``finish`` for several results, in one round trip."""
        calls = []
        for r in results:
            event_keys = [key for key, _ in r.follow_ups]
            requests = [request for _, request in r.follow_ups]
            calls.append(
                [
                    keys.scope_prefix(r.item.scope),
                    r.item.key,
                    r.item.tx_key,
                    r.state,
                    dump(r.output),
                    now_ms(),
                    actor,
                    r.claim.token,
                    r.claim.label,
                    self.ttl_seconds,
                    self.grace_ms,
                    *event_args(event_keys, requests),
                ]
            )
        answers = await self._run_many("transactions.transact", calls)
        return [
            records.emitted([key for key, _ in r.follow_ups], answer["stored"])
            if answer["status"] == "ok"
            else None
            for r, answer in zip(results, map(records.fields, answers), strict=True)
        ]

    async def retry_later(
        self, item: WorkItem, claim: "Claim", *, actor: str, reason: str, lease_until: int
    ) -> bool:
        """Record a failed attempt and hold the lease until its retry is due."""
        return bool(
            await self._run(
                "transactions.retry_later",
                keys.scope_prefix(item.scope),
                item.key,
                item.tx_key,
                now_ms(),
                actor,
                reason,
                lease_until,
                claim.token,
            )
        )
