"""Events: storing them (emit) and reading them back (one event, or a /query page)."""

import math
from collections.abc import Sequence
from typing import Any

from tidings import models
from tidings.auth import MISSING_SECRET, REVOKED_SECRET, UNKNOWN_SECRET, Caller
from tidings.clock import now_ms
from tidings.errors import BadRequest, NotFound, Unauthorized
from tidings.ids import new_event_key, new_record_id
from tidings.store import keys, records
from tidings.store.connection import StorePart
from tidings.store.records import dump
from tidings.store.secret_keys import hash_secret
from tidings.work import Emitted, NewEvent, Scope


class Events(StorePart):
    """Storing events and reading them back."""

    async def emit(
        self,
        scope: Scope,
        events: Sequence[models.EmitRequest | NewEvent],
        *,
        platform: str,
        label: str,
        actor: str,
        event_keys: list[str] | None = None,
        idempotency_seconds: int | None = None,
    ) -> list[Emitted]:
        """Store events all or nothing; answer their keys and the handlers subscribed to each.

        An event whose idempotency key came with an event stored less than
        ``idempotency_seconds`` ago (default and at most: the retention) is not stored, and
        answered as that event (``duplicate``)."""
        _, emitted = await self._emit(
            ["scope", keys.scope_prefix(scope), platform, label, actor],
            events,
            event_keys,
            idempotency_seconds,
        )
        return emitted

    async def emit_with_secret(
        self,
        secret: str | None,
        events: Sequence[models.EmitRequest | NewEvent],
        *,
        idempotency_seconds: int | None = None,
    ) -> tuple[Caller, list[Emitted]]:
        """`emit` for the holder of a secret key, checked in the same round trip."""
        if not secret:
            raise Unauthorized(MISSING_SECRET)
        return await self._emit(
            ["secret", hash_secret(secret), models.CUSTOM_PLATFORM, "", ""],
            events,
            idempotency_seconds=idempotency_seconds,
        )

    async def _emit(
        self,
        who: list[str],
        events: Sequence[models.EmitRequest | NewEvent],
        event_keys: list[str] | None = None,
        idempotency_seconds: int | None = None,
    ) -> tuple[Caller, list[Emitted]]:
        event_keys = event_keys or [new_event_key() for _ in events]
        args = [
            *who,
            now_ms(),
            self.ttl_seconds,
            self.grace_ms,
            "" if idempotency_seconds is None else idempotency_seconds,
            *event_args(event_keys, events),
        ]
        answer = await self._answer("events.emit", *args)
        if answer["status"] != "ok":
            raise Unauthorized(REVOKED_SECRET if answer["status"] == "revoked" else UNKNOWN_SECRET)
        caller = Caller(name=answer["label"], env=answer["env"], owner=answer["owner"])
        return caller, records.emitted(event_keys, answer["stored"])

    async def get_event(self, scope: Scope, key: str) -> models.EventWithTransactions:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.event(scope, key))
            pipe.hkeys(keys.event_txs(scope, key))
            fields, tx_keys = await pipe.execute()
        if not fields:
            raise NotFound(f"no event with key {key!r}")
        async with self.redis.pipeline(transaction=False) as pipe:
            for tx_key in sorted(tx_keys):
                pipe.hgetall(keys.transaction(scope, key, tx_key))
            txs = [records.transaction(f) for f in await pipe.execute() if f]
        event = records.event(scope, fields)
        return models.EventWithTransactions(**dict(event), transactions=txs)

    async def query(self, scope: Scope, q: models.QueryRequest) -> models.QueryPage:
        combo = keys.combo(q.platform, q.label, q.eventName)
        missing: list[str] = []
        if q.txKey is None:
            if q.txState is not None:
                raise BadRequest("txState filters on a txKey: give txKey too")
            index = keys.index(scope, combo)
        elif q.txState == "does-not-exist":
            index = keys.missing_index(scope, q.txKey, combo)
            missing = [q.txKey, combo]
        else:
            index = keys.tx_index(scope, q.txState or "any", q.txKey, combo)
        offset = (q.page - 1) * q.pageSize
        answer = await self._answer(
            "events.query",
            keys.scope_prefix(scope),
            index,
            "" if q.since is None else q.since,
            "" if q.until is None else q.until,
            "desc" if q.newestFirst else "asc",
            offset,
            q.pageSize,
            now_ms(),
            self.ttl_seconds,
            *missing,
        )
        total, rows = answer["total"], answer["rows"]
        return models.QueryPage(
            rows=[records.event(scope, records.fields(row)) for row in rows],
            total=total,
            page=q.page,
            pageSize=q.pageSize,
            totalPages=math.ceil(total / q.pageSize),
        )


def event_args(event_keys: list[str], events: Sequence[models.EmitRequest | NewEvent]) -> list[Any]:
    """Events as the scripts take them (store_events in events.lua)."""
    args: list[Any] = []
    for key, event in zip(event_keys, events, strict=True):
        new = event if isinstance(event, NewEvent) else NewEvent(event.event, event.payload)
        args += [
            key,
            new_record_id(),
            dump(new.payload),
            dump(new.headers),
            dump(new.query),
            new.event,
            new.idempotency_key or "",
        ]
    return args
