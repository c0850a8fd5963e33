"""What every part of the store shares: one Redis client, the retention and grace period,
and the Lua scripts it runs.

The scripts live beside the module that runs them, named after it: ``events.emit.lua`` is
the emit script of ``events.py``. Shared pieces of Lua are files without a script's name
(``keys.lua``, ``indexes.lua``, ...). A file's first line may name the pieces it uses
(``-- uses: keys records``); a script is sent to Redis with those pieces, and the pieces
they use, before its own text, each once.
"""

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Self

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.client import NEVER_DECODE

from tidings.settings import Settings
from tidings.store import records, schema

DEFAULT_GRACE_MS = 30_000
MAX_CONNECTIONS = 64
#: How long a request waits for a free pooled connection under load.
POOL_TIMEOUT_SECONDS = 20
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


USES = re.compile(r"\A-- uses: ([\w ]+)\n")


def lua_file(name: str) -> str:
    return (resources.files("tidings.store") / f"{name}.lua").read_text()


def uses(name: str) -> list[str]:
    """The pieces a Lua file names on its first line."""
    found = USES.match(lua_file(name))
    return found.group(1).split() if found else []


@functools.cache
def script_source(name: str) -> str:
    """A script's Lua as Redis runs it: the pieces it uses, in order, then its own."""
    order: list[str] = []

    def add(piece: str) -> None:
        for used in uses(piece):
            if used not in order:
                add(used)
        order.append(piece)

    add(name)
    return "\n".join(lua_file(piece) for piece in order)


@dataclass(frozen=True)
class Guard:
    """A read sent ahead of scripts in their round trip, whose answer must pass `check` (it
    raises if not) before theirs are taken: a secret key, read with the page it may see."""

    command: tuple[Any, ...]
    check: Callable[[Any], None]


class StorePart:
    """The base of each part of the store (tidings.store.Store puts them together)."""

    def __init__(
        self,
        redis: Any,
        *,
        ttl_seconds: int,
        grace_ms: int = DEFAULT_GRACE_MS,
        partitions: int = 1,
    ) -> None:
        #: A Redis client (redis.asyncio.Redis, or RedisCluster) that decodes answers.
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.grace_ms = grace_ms
        #: How many partitions each scope's events are spread over (TIDINGS_PARTITIONS).
        self.partitions = partitions
        self._scripts: dict[str, Any] = {}
        self._loaded: set[str] = set()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        ttl_seconds: int,
        grace_ms: int = DEFAULT_GRACE_MS,
        partitions: int = 1,
        cluster: bool = False,
    ) -> Self:
        client: Any
        if cluster:
            client = RedisCluster.from_url(
                url,
                decode_responses=True,
                max_connections=MAX_CONNECTIONS,
                **CONNECTION_OPTIONS,
            )
        else:
            # A blocking pool makes a request wait for a free connection under load, where
            # the default pool would fail it with "Too many connections".
            pool = aioredis.BlockingConnectionPool.from_url(
                url,
                decode_responses=True,
                max_connections=MAX_CONNECTIONS,
                timeout=POOL_TIMEOUT_SECONDS,
                **CONNECTION_OPTIONS,
            )
            client = aioredis.Redis(connection_pool=pool)
        return cls(client, ttl_seconds=ttl_seconds, grace_ms=grace_ms, partitions=partitions)

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls.from_url(
            settings.store_url,
            ttl_seconds=settings.ttl_seconds,
            grace_ms=settings.grace_ms,
            partitions=settings.partitions,
            cluster=settings.redis_cluster,
        )

    @property
    def ttl_ms(self) -> int:
        return self.ttl_seconds * 1000

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def check_schema(self, *, record: bool = True) -> None:
        """SchemaMismatch on data of another schema than this tidings'; with ``record``,
        record this one where none is recorded yet (see schema.py)."""
        await schema.check(self.redis)
        if record:
            await schema.record(self.redis)

    async def record_schema(self) -> None:
        """Record this tidings' schema where none is recorded yet, once check_schema passed."""
        await schema.record(self.redis)

    def _script(self, name: str) -> Any:
        if name not in self._scripts:
            self._scripts[name] = self.redis.register_script(script_source(name))
        return self._scripts[name]

    async def _load(self, name: str) -> Any:
        """A script, loaded into Redis (every node of a cluster) once per process, so that
        pipelines may run it by its SHA."""
        script = self._script(name)
        if name not in self._loaded:
            await self.redis.script_load(script.script)
            self._loaded.add(name)
        return script

    async def _run(self, script: str, key: str, *args: Any) -> Any:
        """A script on the slot of `key`, its answer as Redis sent it (bytes)."""
        [answer] = await self._run_many(script, [[key, *args]])
        return answer

    async def _answer(self, script: str, key: str, *args: Any) -> dict[str, Any]:
        """A script's answer of field/value pairs, by name."""
        return records.fields(await self._run(script, key, *args))

    async def _run_many(
        self,
        script: str,
        calls: list[list[Any]],
        guard: Guard | None = None,
        *,
        numkeys: int = 1,
    ) -> list[Any]:
        """Several runs of a script in one round trip (a pipeline), in order; each call is
        its `numkeys` keys, then its arguments. Answers are not decoded: records are bytes.
        A guard's read goes first in the same round trip, and its check must pass."""
        for attempt in (1, 2):
            loaded = await self._load(script)
            try:
                if len(calls) == 1 and guard is None:  # a third less CPU than a pipeline of one
                    return [
                        await self.redis.execute_command(
                            "EVALSHA", loaded.sha, numkeys, *calls[0], **{NEVER_DECODE: True}
                        )
                    ]
                async with self.redis.pipeline(transaction=False) as pipe:
                    if guard is not None:
                        pipe.execute_command(*guard.command)
                    for call in calls:
                        pipe.execute_command(
                            "EVALSHA", loaded.sha, numkeys, *call, **{NEVER_DECODE: True}
                        )
                    answers: list[Any] = await pipe.execute()
                if guard is not None:
                    guard.check(answers.pop(0))
                return answers
            except redis.exceptions.NoScriptError:
                if attempt == 2:
                    raise
                self._loaded.clear()  # Redis restarted without its scripts: load them again
        raise AssertionError("unreachable")

    async def _round_trip(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Commands in one round trip, their answers in order, as a pipeline answers them.
        Sent on a pooled connection directly: redis-py's pipeline costs about twice the CPU
        of a single command (it hands its connection back to the pool in a task of its own,
        for one), and /emit reads its secret key this way on every request."""
        if isinstance(self.redis, RedisCluster):  # the keys may be on several nodes
            async with self.redis.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                return list(await pipe.execute())
        pool = self.redis.connection_pool
        connection = await pool.get_connection()

        async def send_and_read() -> list[Any]:
            await connection.send_packed_command(connection.pack_commands(commands))
            return [await self.redis.parse_response(connection, c[0]) for c in commands]

        try:  # a dropped connection is retried once on a new one, as for any command
            answers: list[Any] = await connection.retry.call_with_retry(
                send_and_read, lambda error: connection.disconnect()
            )
            return answers
        except BaseException:
            await connection.disconnect()  # answers may be left on it, unread
            raise
        finally:
            await pool.release(connection)
