"""The version of the store's layout in Redis (its schema), recorded in ``tidings:schema``.

Every process that writes checks it as it starts (``tidings serve`` and ``dev``, the other
commands, the API, a worker): on data of another version it refuses to start, saying what
to do (there is no migration before 1.0); otherwise it records SCHEMA_VERSION where none is
recorded yet (a command once it has acted, so that a refused one writes nothing). Tidings
data without a recorded version is version 1, the layout of the releases that did not
record it.
"""

import redis.asyncio as aioredis

from tidings.errors import TidingsError
from tidings.store import keys

#: The layout this tidings reads and writes (2: partitions, keys.py).
SCHEMA_VERSION = 2
#: The layout of tidings data that has no recorded version.
UNRECORDED_VERSION = 1
#: Keys a SCAN step looks at while looking for tidings data in a database without a version.
SCAN_COUNT = 1000


class SchemaMismatch(TidingsError):
    """The database holds tidings data of a schema this tidings does not read."""


#: Key names that schema 2 shares with schema 1; every other name of schema 2 carries a
#: hash tag right after the root ("tidings:{...}").
SHARED_NAMES = (keys.SCHEMA, keys.SCOPES, keys.session(""), keys.auth_failures(""))


def of_schema_1(key: str) -> bool:
    return not key.startswith((f"{keys.ROOT}:{{", *SHARED_NAMES))


async def stored_version(redis: aioredis.Redis) -> str | None:
    """The schema of the tidings data in this database, or None if it holds none of
    another schema than this one (data of this one whose record was flushed away counts
    as none)."""
    version: str | None = await redis.get(keys.SCHEMA)
    if version is not None:
        return version
    async for key in redis.scan_iter(match=f"{keys.ROOT}:*", count=SCAN_COUNT):
        if of_schema_1(key):  # (on a cluster, every node is scanned)
            return str(UNRECORDED_VERSION)
    return None


async def check(redis: aioredis.Redis, *, needs: int = SCHEMA_VERSION) -> None:
    """Refuse data of another schema than ``needs`` (SchemaMismatch); write nothing."""
    found = await stored_version(redis)
    if found not in (None, str(needs)):
        raise SchemaMismatch(
            f"this Redis holds tidings data of schema {found}; this tidings needs schema "
            f"{needs}: flush it (FLUSHDB, which deletes that data) or point REDIS_URL at an "
            "empty database"
        )


async def record(redis: aioredis.Redis, *, version: int = SCHEMA_VERSION) -> None:
    """Record the schema of the data, where none is recorded yet. Call it once ``check``
    has passed, before or after writing: data without a recorded schema counts as
    UNRECORDED_VERSION."""
    await redis.set(keys.SCHEMA, version, nx=True)
