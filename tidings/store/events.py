"""Events: storing them (emit) and reading them back (one event, or a /query page).

An event goes to the partition its key names (``keys.partition_of``). The handlers it
awaits are read here from the subscriptions, cached per environment with their version:
an emit script refuses routes older than what its partition has seen (``subscribe`` tells
every partition before it backfills), and the emit is routed again.
"""

import heapq
import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.client import NEVER_DECODE

from tidings import models
from tidings.auth import MISSING_SECRET, Caller
from tidings.clock import now_ms
from tidings.errors import BadRequest, NotFound, Unauthorized
from tidings.ids import new_event_key
from tidings.store import keys, records
from tidings.store.connection import Guard
from tidings.store.records import text
from tidings.store.secret_keys import SecretKeys, hash_secret
from tidings.work import Emitted, Messages, NewEvent, Scope

#: The most events one emit script stores, so that no script holds Redis for long; a
#: larger batch is several scripts in one round trip.
EVENTS_PER_SCRIPT = 100
#: How many probe times each round of a deep page's search asks every partition about.
PROBES = 15
#: A deep page is read once its time window holds at most this many events in all.
WINDOW_EVENTS = 500
#: A page of up to this many rows is read with its selection, in one script; a larger
#: page's records are read just after it (HMGET), so that neither holds Redis long: 1,000
#: records read in a script took ~2.5 ms at a million events, outside it ~0.7 ms.
ROWS_IN_SCRIPT = 100


@dataclass
class Routing:
    """An environment's subscriptions as last read, with their version."""

    version: int = -1
    #: eventName -> the subscriptions to it
    by_name: dict[str, list[models.Subscription]] = field(default_factory=dict)


@dataclass
class Row:
    """An event of a query page; all partitions' events are in the order of (createdAt, key)."""

    created_at: int
    key16: bytes
    partition: int
    #: Its record, once read (None when the page's script did not read it).
    stored: records.Stored | None = None


@dataclass
class EmitBatch:
    """Events to store, with their routes, as the emit scripts' calls that store them."""

    events: list[tuple[str, NewEvent]]
    routes: list[list[tuple[str, str]]]
    #: Each call is its partition's meta, then its arguments.
    calls: list[list[Any]]
    #: The events' indexes in the order the calls hold them.
    placed: list[int]
    now: int

    def emitted(self, firsts: list[bytes]) -> list[Emitted]:
        """The stored events, in the order given, from the scripts' firsts (in the order of
        `placed`): an event with one was not stored, being a duplicate of that one."""
        emitted: list[Emitted] = [Emitted("", [])] * len(self.events)
        for i, first in zip(self.placed, firsts, strict=True):
            key, event = self.events[i]
            emitted[i] = (
                Emitted(first.hex(), [], duplicate=True)
                if first
                else Emitted(key, self.routes[i], delayed=is_delayed(event, self.now))
            )
        return emitted


class Events(SecretKeys):
    """Storing events and reading them back."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._routing: dict[str, Routing] = {}
        self._known_scopes: set[Scope] = set()

    async def emit(
        self,
        scope: Scope,
        events: Sequence[models.EmitRequest | NewEvent],
        *,
        platform: str,
        label: str,
        actor: str,
        idempotency_seconds: int | None = None,
    ) -> list[Emitted]:
        """Store events, all or nothing in each partition; answer their keys and the
        handlers subscribed to each.

        An event whose idempotency key came with an event stored less than
        ``idempotency_seconds`` ago (default and at most: the retention) is not stored, and
        answered as that event (``duplicate``)."""
        version = int(await self.redis.get(keys.subscriptions_version(scope.env)) or 0)
        new = [self._keyed(event) for event in events]
        return await self._store(scope, platform, label, actor, new, version, idempotency_seconds)

    def _keyed(self, event: models.EmitRequest | NewEvent) -> tuple[str, NewEvent]:
        """An event to store, with its new key: in the partition of its idempotency key,
        if it has one, so that the key is checked where the event is stored."""
        new = NewEvent.of(event)
        if new.idempotency_key is None:
            return new_event_key(), new
        p = keys.idempotency_partition(new.idempotency_key, self.partitions)
        return new_event_key(partition=(p, self.partitions)), new

    async def emit_with_secret(
        self,
        secret: str | None,
        events: Sequence[models.EmitRequest | NewEvent],
        *,
        idempotency_seconds: int | None = None,
        messages: Messages | None = None,
    ) -> tuple[Caller, list[Emitted]]:
        """`emit` for the holder of a secret key. With `messages`, the events' transactions
        may go to the workers in the same round trip (their `published`)."""
        if not secret:
            raise Unauthorized(MISSING_SECRET)
        digest = hash_secret(secret)
        holder = self._holders.get(digest)
        keyed = [self._keyed(event) for event in events]
        if holder is not None:
            emitted = await self._emit_checked(digest, holder, keyed, idempotency_seconds, messages)
            if emitted is not None:
                return holder, emitted
        # The subscriptions version of the key's environment in the same round trip: of the
        # one this process has seen the key in (that never changes), else of every one.
        envs = (holder.env,) if holder else typing.get_args(models.Environment)
        record, *versions = await self._round_trip(
            ("HGETALL", keys.secret(digest)),
            *[("GET", keys.subscriptions_version(env)) for env in envs],
        )
        caller = self._caller_of(record)
        self._remember(digest, caller)
        read = dict(zip(envs, versions, strict=True))
        # None, for _store to read it, if the key's environment changed behind tidings' back
        version = int(read[caller.env] or 0) if caller.env in read else None
        emitted = await self._store(
            caller.scope,
            models.CUSTOM_PLATFORM,
            caller.name,
            caller.name,
            keyed,
            version,
            idempotency_seconds,
        )
        return caller, emitted

    async def _emit_checked(
        self,
        digest: str,
        holder: Caller,
        keyed: list[tuple[str, NewEvent]],
        idempotency_seconds: int | None,
        messages: Messages | None,
    ) -> list[Emitted] | None:
        """/emit in one round trip (events.emit_checked.lua): on a single Redis, for a key
        and subscriptions this process has read before, the key is checked as the events
        are stored; with `messages`, their transactions are pushed to the workers there too
        when nothing else waits for them. None when it cannot be, or the key or the
        subscriptions changed since (nothing is stored): the caller goes the long way."""
        scope = holder.scope
        routing = self._routing.get(scope.env)
        if (
            isinstance(self.redis, RedisCluster)  # the keys live on several nodes
            or routing is None
            or scope not in self._known_scopes
            or any(event.event not in routing.by_name for _, event in keyed)
            or len(keyed) > EVENTS_PER_SCRIPT  # more than one script
            or len(self._by_partition([key for key, _ in keyed])) > 1
        ):
            return None
        now = now_ms()
        self._check_due_times([event for _, event in keyed], now)
        batch = self._batch(
            scope,
            models.CUSTOM_PLATFORM,
            holder.name,
            holder.name,
            keyed,
            routing,
            now,
            idempotency_seconds,
        )
        [(meta, *args)] = batch.calls
        queued: list[tuple[str, bytes]] = []
        if messages and all(event.idempotency_key is None for _, event in keyed):
            # None can be a duplicate: their transactions are known before they are stored.
            will_store = batch.emitted([b""] * len(keyed))
            queued = messages([item for e in will_store for item in e.work(scope)])
        answer = await self._run_many(
            "events.emit_checked",
            [
                [
                    meta,
                    keys.secret(digest),
                    *[queue for queue, _ in queued],
                    *args[:5],
                    holder.name,
                    holder.env,
                    holder.owner,
                    *args[5:],
                    *[message for _, message in queued],
                ]
            ],
            numkeys=2 + len(queued),
        )
        found = records.fields(answer[0])
        status = text(found["status"])
        if status == "secret":
            self._holders.pop(digest, None)  # revoked, or replaced behind tidings' back
        if status != "ok":
            return None
        emitted = batch.emitted(found["firsts"])
        if found["pushed"]:
            return [replace(e, published=True) for e in emitted]
        return emitted

    def _batch(
        self,
        scope: Scope,
        platform: str,
        label: str,
        actor: str,
        events: list[tuple[str, NewEvent]],
        routing: Routing,
        now: int,
        idempotency_seconds: int | None,
    ) -> EmitBatch:
        """Events routed by `routing`, as the emit scripts' calls that store them."""
        routes = [self._routes(routing, scope, platform, label, e.event) for _, e in events]
        idempotency = min(idempotency_seconds or self.ttl_seconds, self.ttl_seconds)
        calls, placed = [], []
        for p, indexes in self._by_partition([key for key, _ in events]).items():
            for first in range(0, len(indexes), EVENTS_PER_SCRIPT):
                args: list[Any] = [now, self.grace_ms, actor, idempotency, routing.version]
                for i in indexes[first : first + EVENTS_PER_SCRIPT]:
                    key, event = events[i]
                    args += event_args(key, event, platform, label, routes[i])
                    placed.append(i)
                calls.append([keys.meta(scope, p), *args])
        return EmitBatch(events, routes, calls, placed, now)

    async def _store(
        self,
        scope: Scope,
        platform: str,
        label: str,
        actor: str,
        events: list[tuple[str, NewEvent]],
        version: int | None,
        idempotency_seconds: int | None = None,
    ) -> list[Emitted]:
        """Store events with their keys, routed by the subscriptions of `version`, as read
        just before (None: read them)."""
        now = now_ms()  # one time for the whole batch, in every partition
        self._check_due_times([event for _, event in events], now)
        await self._register(scope)
        while True:
            routing = await self._routing_for(scope.env, {e.event for _, e in events}, version)
            batch = self._batch(
                scope, platform, label, actor, events, routing, now, idempotency_seconds
            )
            answers = [records.fields(a) for a in await self._run_many("events.emit", batch.calls)]
            if all(text(a["status"]) == "ok" for a in answers):
                break
            version = None  # a partition has seen newer subscriptions than these
        firsts = [first for answer in answers for first in answer["firsts"]]
        return batch.emitted(firsts)

    def _check_due_times(self, events: list[NewEvent], now: int) -> None:
        """An event must come due while it is kept: else nothing of the batch is stored."""
        for event in events:
            if why := past_retention(event, now, self.ttl_ms):
                raise BadRequest(why)

    async def _register(self, scope: Scope) -> None:
        """Note the scope among those with events (recovery walks them), once a process,
        before its first events: see Subscriptions.subscribe."""
        if scope not in self._known_scopes:
            await self.redis.sadd(keys.SCOPES, keys.scope_member(scope))
            self._routing.pop(scope.env, None)  # read after it: see Subscriptions.subscribe
            self._known_scopes.add(scope)

    def _by_partition(self, event_keys: list[str]) -> dict[int, list[int]]:
        """Indexes of the keys, by partition."""
        found: dict[int, list[int]] = {}
        for i, key in enumerate(event_keys):
            found.setdefault(keys.partition_of(key, self.partitions), []).append(i)
        return found

    async def _routing_for(self, env: str, names: set[str], version: int | None) -> Routing:
        """The subscriptions to these event names: cached while they are of `version`, the
        environment's as just read (None: read them all)."""
        if version is None:
            version = int(await self.redis.get(keys.subscriptions_version(env)) or 0)
        routing = self._routing.get(env) or Routing(version=version)
        if routing.version != version:
            routing = Routing(version=version)
        while missing := sorted(names - routing.by_name.keys()):
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.get(keys.subscriptions_version(env))
                for name in missing:
                    pipe.hvals(keys.subscriptions(env, name))
                read, *specs = await pipe.execute()
            if int(read or 0) != routing.version:
                # changed since: read it all again
                routing = Routing(version=int(read or 0))
                continue
            for name, found in zip(missing, specs, strict=True):
                routing.by_name[name] = [models.Subscription.model_validate_json(s) for s in found]
        self._routing[env] = routing
        return routing

    @staticmethod
    def _routes(
        routing: Routing, scope: Scope, platform: str, label: str, event_name: str
    ) -> list[tuple[str, str]]:
        """(txKey, queue) of the handlers that subscribe to such an event."""
        return sorted(
            (sub.txKey, sub.queue)
            for sub in routing.by_name.get(event_name, [])
            if sub.serves(scope.owner)
            and sub.platform in (None, platform)
            and sub.label in (None, label)
        )

    async def get_event(self, scope: Scope, key: str) -> models.EventWithTransactions:
        stored = await self._stored(scope, key)
        if stored is None:
            raise NotFound(f"no event with key {key!r}")
        event = records.event(scope, stored, self.ttl_seconds)
        return models.EventWithTransactions(
            **dict(event), transactions=records.transactions(stored, self.ttl_seconds)
        )

    async def _stored(self, scope: Scope, key: str) -> records.Stored | None:
        key16 = records.event_key_bytes(key)
        if key16 is None:
            return None
        p = keys.partition_of(key, self.partitions)
        blob = await self.redis.execute_command(
            "HGET", keys.records(scope, p), key16, **{NEVER_DECODE: True}
        )
        if blob is None:
            return None
        stored = records.stored(key16, blob)
        return stored if stored.created_at >= now_ms() - self.ttl_ms else None

    async def query(self, scope: Scope, q: models.QueryRequest) -> models.QueryPage:
        return models.QueryPage.model_validate(await self.query_fields(scope, q))

    async def query_fields(
        self, scope: Scope, q: models.QueryRequest, guard: Guard | None = None
    ) -> dict[str, Any]:
        """A page of events as models.QueryPage's JSON has it (records.event_fields); a
        guard is read in the same round trip as (the first of) the page's scripts."""
        if q.txKey is None and q.txState is not None:
            raise BadRequest("txState filters on a txKey: give txKey too")
        offset = (q.page - 1) * q.pageSize
        total, rows = await self._page(scope, q, offset, q.pageSize, guard)
        return {
            "rows": [records.event_fields(scope, stored, self.ttl_seconds) for stored in rows],
            "total": total,
            "page": q.page,
            "pageSize": q.pageSize,
            "totalPages": math.ceil(total / q.pageSize),
        }

    async def query_with_secret(self, secret: str, q: models.QueryRequest) -> dict[str, Any]:
        """`query_fields` for the holder of a secret key. The key is read in the same round
        trip as the page when this process knows its holder from an earlier request (a
        key's holder never changes), and before the page otherwise; either way afresh."""
        holder = self.holder(secret)
        if holder is None:
            return await self.query_fields((await self.authenticate(secret)).scope, q)
        return await self.query_fields(holder.scope, q, self.still_valid(secret, holder))

    async def count(self, scope: Scope, q: models.QueryRequest) -> int:
        """The total of a query, without its rows."""
        pages = await self._partition_pages(scope, q, q.since, q.until, 0, 0)
        return sum(total for total, _ in pages)

    def _query_args(
        self, q: models.QueryRequest, since: int | None, until: int | None, offset: int, count: int
    ) -> list[Any]:
        return [
            keys.combo(q.platform, q.label, q.eventName),
            q.txKey or "",
            q.txState or "",
            "" if since is None else since,
            "" if until is None else until,
            "desc" if q.newestFirst else "asc",
            offset,
            count,
            now_ms(),
            self.ttl_ms,
            "1" if count <= ROWS_IN_SCRIPT else "0",
        ]

    async def _page(
        self, scope: Scope, q: models.QueryRequest, offset: int, count: int, guard: Guard | None
    ) -> tuple[int, list[records.Stored]]:
        """The total, and `count` rows from the `offset`-th in the order of all partitions:
        createdAt, then key (reversed for newest first), which is each partition's order
        too (events.lua)."""
        # With one partition, its page; with more, each one's first page, which is all
        # that page 1 needs (and counts the total for a deeper one).
        skip = offset if self.partitions == 1 else 0
        per_partition = await self._partition_pages(scope, q, q.since, q.until, skip, count, guard)
        total = sum(n for n, _ in per_partition)
        if self.partitions == 1:
            rows = per_partition[0][1]
        elif offset == 0:
            rows = self._merged(per_partition, q.newestFirst)[:count]
        elif offset >= total:
            rows = []
        else:
            rows = await self._deep_page(scope, q, offset, count, total)
        return total, await self._records_of(scope, rows)

    async def _records_of(self, scope: Scope, rows: list[Row]) -> list[records.Stored]:
        """The rows' records, those their script did not read read in one round trip;
        without any whose event has just expired (its record is forgotten)."""
        unread: dict[int, list[Row]] = {}
        for row in rows:
            if row.stored is None:
                unread.setdefault(row.partition, []).append(row)
        if unread:
            async with self.redis.pipeline(transaction=False) as pipe:
                for p, of_p in unread.items():
                    key16s = [row.key16 for row in of_p]
                    pipe.execute_command(
                        "HMGET", keys.records(scope, p), *key16s, **{NEVER_DECODE: True}
                    )
                answers = await pipe.execute()
            for of_p, blobs in zip(unread.values(), answers, strict=True):
                for row, blob in zip(of_p, blobs, strict=True):
                    row.stored = blob and records.stored(row.key16, blob)
        return [row.stored for row in rows if row.stored]

    async def _partition_pages(
        self,
        scope: Scope,
        q: models.QueryRequest,
        since: int | None,
        until: int | None,
        offset: int,
        count: int,
        guard: Guard | None = None,
    ) -> list[tuple[int, list[Row]]]:
        """Per partition: its total in [since, until), and its rows from `offset` on."""
        args = self._query_args(q, since, until, offset, count)
        calls = [[keys.meta(scope, p), *args] for p in range(self.partitions)]
        pages = []
        for p, answer in enumerate(await self._run_many("events.query", calls, guard)):
            f = records.fields(answer)
            rows = [Row(*records.log_entry(entry), p) for entry in f["entries"]]
            if f["rows"]:  # the script read the records too
                for row, blob in zip(rows, f["rows"], strict=True):
                    row.stored = blob and records.stored(row.key16, blob)
            pages.append((int(f["total"]), rows))
        return pages

    @staticmethod
    def _merged(pages: list[tuple[int, list[Row]]], newest_first: bool) -> list[Row]:
        def position(row: Row) -> tuple[int, bytes]:
            return (row.created_at, row.key16)

        if newest_first:
            merged = heapq.merge(*(rows for _, rows in pages), key=position, reverse=True)
        else:
            merged = heapq.merge(*(rows for _, rows in pages), key=position)
        return list(merged)

    async def _deep_page(
        self, scope: Scope, q: models.QueryRequest, offset: int, count: int, total: int
    ) -> list[Row]:
        """A page past the first over several partitions: narrow a time window around its
        first row, PROBES times a round (one round trip to every partition), until the
        window holds few events; then merge the partitions' rows of that window."""
        # Oldest first, the page is the matches [start, start + want).
        start = offset if not q.newestFirst else max(total - offset - count, 0)
        want = min(count, total - offset)
        now = now_ms()
        lo = now - self.ttl_ms if q.since is None else q.since
        hi = now + 1 if q.until is None else q.until
        below, window = 0, total  # matches before lo, and in [lo, hi)
        while window > WINDOW_EVENTS and hi - lo > 1:
            step = max((hi - lo) // (PROBES + 1), 1)
            probes = [t for t in range(lo + step, hi, step)][:PROBES]
            counts = await self._count_below(scope, q, lo, probes)
            passed = 0  # matches in [lo, the new lo)
            new_lo = lo
            for t, n in zip(probes, counts, strict=True):
                if below + n <= start:
                    new_lo, passed = t, n
                else:
                    hi, window = t, n
                    break
            lo, below, window = new_lo, below + passed, window - passed
        ascending = q.model_copy(update={"newestFirst": False})
        pages = await self._partition_pages(scope, ascending, lo, hi, 0, start - below + want)
        page = self._merged(pages, False)[start - below : start - below + want]
        return page[::-1] if q.newestFirst else page

    async def _count_below(
        self, scope: Scope, q: models.QueryRequest, since: int, times: list[int]
    ) -> list[int]:
        """For each time, the matches created in [since, time), in all partitions."""
        calls = [
            [keys.meta(scope, p), *self._query_args(q, since, t, 0, 0)]
            for p in range(self.partitions)
            for t in times
        ]
        answers = await self._run_many("events.query", calls)
        totals = [int(records.fields(a)["total"]) for a in answers]
        return [sum(totals[i :: len(times)]) for i in range(len(times))]


def event_args(
    key: str,
    event: models.EmitRequest | NewEvent,
    platform: str,
    label: str,
    routes: list[tuple[str, str]],
) -> list[Any]:
    """An event as the scripts store it (store_events in events.lua)."""
    new = NewEvent.of(event)
    key16 = records.event_key_bytes(key)
    assert key16 is not None, key
    body = records.event_body(
        platform, label, new.event, new.payload, new.headers, new.query, new.deliver_at
    )
    return [
        key16,
        models.full_event_name(platform, label, new.event),
        body,
        ",".join(tx_key for tx_key, _ in routes),
        new.idempotency_key or "",
        new.deliver_at or 0,
    ]


def past_retention(event: NewEvent, now: int, ttl_ms: int) -> str | None:
    """Why an event cannot be stored now: it would come due after its retention; else None."""
    if event.deliver_at is None or event.deliver_at < now + ttl_ms:
        return None
    return (
        f"event {event.event!r} would come due after its retention of "
        f"{ttl_ms // 1000} s has passed: deliver it sooner"
    )


def is_delayed(event: NewEvent, now: int) -> bool:
    """Whether an event's handlers wait for its time (events.lua decides alike)."""
    return event.deliver_at is not None and event.deliver_at > now
