"""The event store: events, transactions, their indexes and secret keys, in Redis.

Every write that touches more than one key is one Lua script (``lua/``), so it is atomic:
concurrent claims of one transaction let exactly one through, and a request that fails
writes nothing. Reads of a page are one script too, so a page and its total agree.
"""

import hashlib
import json
import math
import secrets
from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tidings import models
from tidings.auth import MISSING_SECRET, NO_SESSION, REVOKED_SECRET, UNKNOWN_SECRET, Caller, Session
from tidings.clock import now_ms
from tidings.errors import BadRequest, Conflict, NotFound, Unauthorized
from tidings.ids import new_event_key, new_id, new_record_id
from tidings.settings import Settings
from tidings.store import keys
from tidings.work import Claim, Emitted, NewEvent, Result, Scope, WorkItem

DEFAULT_GRACE_MS = 30_000
MAX_CONNECTIONS = 64
#: A pooled connection idle for longer is checked with a PING before it is used again.
HEALTH_CHECK_SECONDS = 10
#: How long connecting to Redis may take before the request fails (503 over HTTP).
CONNECT_TIMEOUT_SECONDS = 5
#: A command that fails on a dropped connection (a pooled one gone stale while Redis
#: restarted) is sent once more on a new one. Lua scripts stay correct if run twice: an
#: emit writes the same key, a claim that did go through answers 409.
CONNECTION_OPTIONS: dict[str, Any] = {
    "retry": Retry(NoBackoff(), retries=1),
    "retry_on_error": [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
    "health_check_interval": HEALTH_CHECK_SECONDS,
    "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
}
RERUN_PAGE = 500

SCRIPTS = (
    "emit",
    "init",
    "transact",
    "update",
    "query",
    "claim",
    "retry_later",
    "recover",
    "backfill",
    "rerun",
    "create_key",
)


def dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _load_script(name: str) -> str:
    lua = resources.files("tidings.store") / "lua"
    return (lua / "common.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()


def _claim(answer: list[Any], token: str) -> Claim | None:
    """A claim script's answer as a Claim, or None if it skipped."""
    if answer[0] != "ok":
        return None
    attempts, payload, headers, query, created_at, event_id, name, platform, label = answer[1:]
    return Claim(
        token=token,
        attempt=int(attempts),
        payload=json.loads(payload),
        headers=json.loads(headers),
        query=json.loads(query),
        created_at=int(created_at),
        event_id=event_id,
        event_name=name,
        platform=platform,
        label=label,
    )


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value else None


class Store:
    """All reads and writes of tidings' data. Methods that act for a caller take its scope."""

    def __init__(
        self, redis: aioredis.Redis, *, ttl_seconds: int, grace_ms: int = DEFAULT_GRACE_MS
    ) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.grace_ms = grace_ms
        self._scripts = {name: redis.register_script(_load_script(name)) for name in SCRIPTS}

    @classmethod
    def from_url(cls, url: str, *, ttl_seconds: int, grace_ms: int = DEFAULT_GRACE_MS) -> "Store":
        # A blocking pool makes a request wait for a free connection under load, where the
        # default pool would fail it with "Too many connections".
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            decode_responses=True,
            max_connections=MAX_CONNECTIONS,
            timeout=20,
            **CONNECTION_OPTIONS,
        )
        client = aioredis.Redis(connection_pool=pool)
        return cls(client, ttl_seconds=ttl_seconds, grace_ms=grace_ms)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Store":
        return cls.from_url(
            settings.store_url, ttl_seconds=settings.ttl_seconds, grace_ms=settings.grace_ms
        )

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def _run(self, script: str, *args: Any) -> Any:
        return await self._scripts[script](args=[str(a) for a in args])

    async def _run_many(self, script: str, calls: list[list[Any]]) -> list[Any]:
        """Several runs of a script in one round trip (a pipeline), in order."""
        if len(calls) == 1:
            return [await self._run(script, *calls[0])]
        async with self.redis.pipeline(transaction=False) as pipe:
            for args in calls:
                await self._scripts[script](args=[str(a) for a in args], client=pipe)
            answers: list[Any] = await pipe.execute()
        return answers

    # Secret keys

    async def create_key(self, name: str, env: str, owner: str = "default") -> models.SecretKey:
        key = models.SecretKey(name=name, env=env, owner=owner, createdAt=now_ms())
        secret = f"sk_{env}_{secrets.token_hex(24)}"
        digest = _hash(secret)
        record = key.model_dump(exclude_none=True, exclude={"secret"})
        fields = [part for pair in record.items() for part in pair]
        if not await self._run("create_key", f"{owner}/{env}/{name}", digest, *fields):
            raise Conflict(f"a {env} key named {name!r} already exists for owner {owner!r}")
        return key.model_copy(update={"secret": secret})

    async def list_keys(self, owner: str | None = None) -> list[models.SecretKey]:
        digests: dict[str, str] = await self.redis.hgetall(keys.SECRETS)
        async with self.redis.pipeline(transaction=False) as pipe:
            for digest in digests.values():
                pipe.hgetall(keys.secret(digest))
            records = await pipe.execute()
        found = [models.SecretKey.model_validate(_secret_fields(r)) for r in records if r]
        return sorted(
            (k for k in found if owner is None or k.owner == owner),
            key=lambda k: (k.owner, k.env, k.name),
        )

    async def revoke_key(self, name: str, env: str, owner: str = "default") -> models.SecretKey:
        digest: str | None = await self.redis.hget(keys.SECRETS, f"{owner}/{env}/{name}")
        record: dict[str, str] = await self.redis.hgetall(keys.secret(digest)) if digest else {}
        if not digest or not record:
            raise NotFound(f"no {env} key named {name!r} for owner {owner!r}")
        if not record.get("revokedAt"):
            record["revokedAt"] = str(now_ms())
            await self.redis.hset(keys.secret(digest), "revokedAt", record["revokedAt"])
        return models.SecretKey.model_validate(_secret_fields(record))

    async def authenticate(self, secret: str | None) -> Caller:
        if not secret:
            raise Unauthorized(MISSING_SECRET)
        return await self._caller(_hash(secret))

    async def _caller(self, digest: str) -> Caller:
        record: dict[str, str] = await self.redis.hgetall(keys.secret(digest))
        if not record:
            raise Unauthorized(UNKNOWN_SECRET)
        if record.get("revokedAt"):
            raise Unauthorized(REVOKED_SECRET)
        return Caller(name=record["name"], env=record["env"], owner=record["owner"])

    # Dashboard sessions: a random id in a cookie stands for a secret key, which stays here.

    async def open_session(self, secret: str | None, *, ttl_seconds: int) -> Session:
        """Sign in with a secret key: a new session, with its own CSRF token."""
        if not secret:
            raise Unauthorized(MISSING_SECRET)
        digest = _hash(secret)
        session = Session(secrets.token_urlsafe(32), await self._caller(digest), new_id())
        record = {"secret": digest, "csrf": session.csrf, "createdAt": now_ms()}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.session(session.id), mapping=record)
            pipe.expire(keys.session(session.id), ttl_seconds)
            await pipe.execute()
        return session

    async def session(self, session_id: str | None) -> Session:
        """A session that is still open, and whose secret key is still valid: the key is
        checked on every call, so that revoking it signs its sessions out at once."""
        record: dict[str, str] = (
            await self.redis.hgetall(keys.session(session_id)) if session_id else {}
        )
        if not session_id or not record:
            raise Unauthorized(NO_SESSION)
        try:
            caller = await self._caller(record["secret"])
        except Unauthorized:
            await self.close_session(session_id)
            raise
        return Session(session_id, caller, record["csrf"])

    async def close_session(self, session_id: str) -> None:
        await self.redis.delete(keys.session(session_id))

    # Events

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
        self, secret: str | None, events: Sequence[models.EmitRequest | NewEvent]
    ) -> tuple[Caller, list[Emitted]]:
        """`emit` for the holder of a secret key, checked in the same round trip."""
        if not secret:
            raise Unauthorized(MISSING_SECRET)
        return await self._emit(["secret", _hash(secret), models.CUSTOM_PLATFORM, "", ""], events)

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
            *_event_args(event_keys, events),
        ]
        answer = await self._run("emit", *args)
        if answer[0] != "ok":
            raise Unauthorized(REVOKED_SECRET if answer[0] == "revoked" else UNKNOWN_SECRET)
        _, owner, env, label, routes, firsts = answer
        emitted = [
            Emitted(first, [], duplicate=True) if first else stored
            for stored, first in zip(_emitted(event_keys, routes), firsts, strict=True)
        ]
        return Caller(name=label, env=env, owner=owner), emitted

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
            txs = [_transaction(f) for f in await pipe.execute() if f]
        event = _event(scope, fields)
        return models.EventWithTransactions(**dict(event), transactions=txs)

    async def query(self, scope: Scope, q: models.QueryRequest) -> models.QueryPage:
        combo = keys.combo(q.platform, q.label, q.eventName)
        missing: list[str] = []
        if q.txKey is None:
            if q.txState is not None:
                raise BadRequest("txState filters on a txKey: give txKey too")
            index = f"idx|{combo}"
        elif q.txState == "does-not-exist":
            index = f"miss|{q.txKey}|{combo}"
            missing = [q.txKey, combo]
        else:
            index = f"txidx|{q.txState or 'any'}|{q.txKey}|{combo}"
        offset = (q.page - 1) * q.pageSize
        total, rows = await self._run(
            "query",
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
        return models.QueryPage(
            rows=[_event(scope, _pairs(row)) for row in rows],
            total=total,
            page=q.page,
            pageSize=q.pageSize,
            totalPages=math.ceil(total / q.pageSize),
        )

    # Transactions

    async def init(self, scope: Scope, key: str, tx_key: str, *, actor: str) -> models.Transaction:
        """Claim (key, tx_key) for good: a Conflict if it exists already."""
        answer = await self._run(
            "init",
            keys.scope_prefix(scope),
            key,
            tx_key,
            now_ms(),
            actor,
            new_record_id(),
            new_id(),
        )
        if answer[0] == "not_found":
            raise NotFound(f"no event with key {key!r}")
        if answer[0] == "conflict":
            raise Conflict(f"transaction {tx_key!r} on event {key!r} exists already ({answer[1]})")
        return _transaction(_pairs(answer[1]))

    async def transact(
        self, scope: Scope, key: str, tx_key: str, state: str, output: Any, *, actor: str
    ) -> models.Transaction:
        answer = await self._run(
            "transact", keys.scope_prefix(scope), key, tx_key, state, dump(output), now_ms(), actor
        )
        if answer[0] == "not_found":
            raise NotFound(f"no transaction {tx_key!r} on event {key!r}: claim it with /init first")
        if answer[0] == "conflict":
            raise Conflict(
                f"transaction {tx_key!r} on event {key!r} has already ended ({answer[1]})"
            )
        return _transaction(_pairs(answer[1]))

    async def update(
        self, scope: Scope, key: str, event_name: str, tx_key: str, state: str, *, actor: str
    ) -> models.Event:
        answer = await self._run(
            "update",
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
        if answer[0] == "not_found":
            what = (
                "no event with key" if answer[1] == "event" else f"no {event_name!r} event with key"
            )
            raise NotFound(f"{what} {key!r}")
        return _event(scope, _pairs(answer[1]))

    # Workers

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
        answers = await self._run_many("claim", calls)
        return [_claim(answer, token) for answer, token in zip(answers, tokens, strict=True)]

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
                    *_event_args(event_keys, requests),
                ]
            )
        answers = await self._run_many("transact", calls)
        return [
            _emitted([key for key, _ in r.follow_ups], answer[2]) if answer[0] == "ok" else None
            for r, answer in zip(results, answers, strict=True)
        ]

    async def retry_later(
        self, item: WorkItem, claim: "Claim", *, actor: str, reason: str, lease_until: int
    ) -> bool:
        """Record a failed attempt and hold the lease until its retry is due."""
        return bool(
            await self._run(
                "retry_later",
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

    async def recover(
        self, environments: list[str], *, lease_ms: int, limit: int = 1000
    ) -> list[tuple[WorkItem, str]]:
        """Work to hand out again, with its queue: lapsed leases, and subscribed handlers
        with no transaction on an event older than the grace period."""
        found = await self._run("recover", now_ms(), lease_ms, self.grace_ms, limit, *environments)
        items = []
        for member in found:
            owner, env, key, tx_key, queue = member.split("|")
            items.append((WorkItem(owner, env, key, tx_key), queue))
        return items

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
            for sub, spec in zip(subscriptions, stored, strict=True):
                since = sub.since
                if since is None and spec != sub.model_dump_json():
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

    # Workers' heartbeats

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
        return [
            await self._handler_view(scope, sub, subscribed_at, workers)
            for sub, subscribed_at in await self.subscribed(scope.env)
            if sub.serves(scope.owner)
        ]

    async def _handler_view(
        self,
        scope: Scope,
        sub: models.Subscription,
        subscribed_at: int,
        workers: list[models.WorkerBeat],
    ) -> models.HandlerView:
        combo = keys.combo(sub.platform, sub.label, sub.eventName)
        now = now_ms()
        cutoff = now - self.ttl_seconds * 1000
        async with self.redis.pipeline(transaction=False) as pipe:
            for state in ("processing", "finished", "failed"):
                pipe.zcount(keys.tx_index(scope, state, sub.txKey, combo), cutoff, "+inf")
            processing, finished, failed = await pipe.execute()
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
                processing=processing, finished=finished, failed=failed, waiting=waiting.total
            ),
            oldestWaiting=waiting.rows[0] if waiting.rows else None,
        )

    async def waiting(
        self, scope: Scope, sub: models.Subscription, subscribed_at: int
    ) -> models.QueryPage:
        """The events a handler has yet to claim (no transaction of it), oldest first: its
        total, and the oldest."""
        return await self.query(
            scope,
            models.QueryRequest(
                eventName=sub.eventName,
                platform=sub.platform,
                label=sub.label,
                txKey=sub.txKey,
                txState="does-not-exist",
                since=subscribed_at if sub.since is None else sub.since,
                pageSize=1,
            ),
        )

    async def rerun(
        self, scope: Scope, key: str, tx_key: str, *, actor: str, lease_ms: int
    ) -> list[tuple[WorkItem, str]]:
        """Put a failed transaction back in the workers' hands; its work item and queue."""
        return await self._rerun(scope, actor, lease_ms, "one", key, tx_key)

    async def rerun_failed(
        self, scope: Scope, r: models.RerunFailedRequest, *, actor: str, lease_ms: int
    ) -> list[tuple[WorkItem, str]]:
        """Every failed transaction of a handler among a filter's events, re-run."""
        combo = keys.combo(r.platform, r.label, r.eventName)
        since = "-inf" if r.since is None else r.since
        until = "+inf" if r.until is None else r.until
        items: list[tuple[WorkItem, str]] = []
        while len(items) < models.MAX_RERUN:  # in pages, so that Redis serves others in between
            page = await self._rerun(
                scope, actor, lease_ms, "failed", r.txKey, combo, since, until, RERUN_PAGE
            )
            items += page
            if len(page) < RERUN_PAGE:
                break
        return items

    async def _rerun(
        self, scope: Scope, actor: str, lease_ms: int, *what: Any
    ) -> list[tuple[WorkItem, str]]:
        answer = await self._run(
            "rerun", keys.scope_prefix(scope), now_ms(), actor, lease_ms, *what
        )
        if answer[0] == "not_found":
            raise NotFound(f"no transaction {what[2]!r} on event {what[1]!r}")
        if answer[0] == "conflict":
            raise Conflict(
                f"cannot re-run transaction {what[2]!r} on event {what[1]!r}: {answer[1]}"
            )
        found = answer[1]
        return [
            (WorkItem(scope.owner, scope.env, key, tx_key, attempt=1), queue)
            for key, tx_key, queue in zip(found[::3], found[1::3], found[2::3], strict=True)
        ]

    async def scopes(self) -> list[Scope]:
        """Every (owner, environment) that has a secret key."""
        names: list[str] = await self.redis.hkeys(keys.SECRETS)
        return sorted({Scope(*name.split("/")[:2]) for name in names}, key=keys.scope_prefix)

    async def backfill(
        self, scope: Scope, sub: models.Subscription, since: int, *, page: int = 500
    ) -> list[str]:
        """Subscribe a handler to past events with no transaction of its own; their keys."""
        combo = keys.combo(sub.platform, sub.label, sub.eventName)
        found: list[str] = []
        offset: int | str = 0
        while offset != "":
            offset, *keys_ = await self._run(
                "backfill",
                keys.scope_prefix(scope),
                sub.txKey,
                combo,
                since,
                offset,
                page,
                now_ms(),
                self.grace_ms,
            )
            found += keys_
        return found


def _event_args(
    event_keys: list[str], events: Sequence[models.EmitRequest | NewEvent]
) -> list[Any]:
    """Events as the scripts take them (store_events in lua/common.lua)."""
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


def _emitted(event_keys: list[str], routes: list[list[str]]) -> list[Emitted]:
    return [
        Emitted(key, list(zip(r[::2], r[1::2], strict=True)))
        for key, r in zip(event_keys, routes, strict=True)
    ]


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _secret_fields(record: dict[str, str]) -> dict[str, Any]:
    return {
        **record,
        "createdAt": int(record["createdAt"]),
        "revokedAt": _int_or_none(record.get("revokedAt")),
    }


def _event(scope: Scope, f: dict[str, str]) -> models.Event:
    return models.Event(
        id=f["_id"],
        key=f["key"],
        eventName=f["eventName"],
        environment=scope.env,
        payload=json.loads(f["payload"]),
        query=json.loads(f["query"]),
        headers=json.loads(f["headers"]),
        createdAt=int(f["createdAt"]),
        state=f["state"],
        history=json.loads(f["history"]),
        ttl=int(f["ttl"]),
        v=int(f["v"]),
        ownership=models.Ownership(
            buildableId=scope.owner, userId=scope.owner, clientId=f["label"]
        ),
        processing=models.Processing(
            hasTransactions=f["hasTransactions"] == "1",
            totalTransactions=int(f["totalTransactions"]),
            hasFutureTransactions=f["hasFutureTransactions"] == "1",
            isCompleted=f["isCompleted"] == "1",
        ),
        platform=f["platform"],
        label=f["label"],
        fullName=models.full_event_name(f["platform"], f["label"], f["eventName"]),
    )


def _transaction(f: dict[str, str]) -> models.Transaction:
    return models.Transaction(
        id=f["_id"],
        key=f["key"],
        txn=f["txn"],
        event=models.EventRef(id=f["eventId"], eventName=f["eventName"]),
        createdAt=int(f["createdAt"]),
        ttl=int(f["ttl"]),
        state=f["state"],
        history=json.loads(f["history"]),
        startedAt=int(f["startedAt"]),
        txKey=f["txKey"],
        endedAt=_int_or_none(f.get("endedAt")),
        output=json.loads(f["output"]) if "output" in f else None,
        attempts=int(f["attempts"]),
        v=int(f["v"]),
    )
