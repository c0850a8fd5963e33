"""Connections in Redis: made, listed, revoked, given their signing secret; and the log of
the requests each endpoint took and refused."""

import json
import secrets
from typing import Annotated, Any

import redis.asyncio as aioredis
from pydantic import AfterValidator, ConfigDict, WithJsonSchema
from pydantic.config import JsonDict

from tidings.clock import now_ms
from tidings.errors import Conflict, Gone, NotFound, Unprocessable
from tidings.models import Environment, Part
from tidings.settings import Settings
from tidings.store import keys
from tidings.webhooks import PREFIX
from tidings.webhooks.models import Connection, ConnectionOptions, DeliveryRecord, Secret
from tidings.webhooks.platforms import PLATFORMS
from tidings.webhooks.platforms.base import Platform

#: 128 random bits: an endpoint's address cannot be guessed.
ID_BYTES = 16
#: How many of its last deliveries, and of its last rejections, a connection's log keeps.
LOG_SIZE = 20
#: Where the command line says endpoints are when TIDINGS_PUBLIC_URL is unset.
LOCAL_URL = "http://localhost:8000"


def known_platform(name: str) -> str:
    if name not in PLATFORMS:
        raise ValueError(f"unknown platform {name!r}: one of {', '.join(PLATFORMS)}")
    return name


PlatformName = Annotated[
    str, AfterValidator(known_platform), WithJsonSchema({"type": "string", "enum": list(PLATFORMS)})
]


def rules() -> JsonDict:
    """Each platform's rules, for the request that names it."""
    return {
        "allOf": [
            {
                "if": {"required": ["platform"], "properties": {"platform": {"const": name}}},
                "then": platform.rules(),
            }
            for name, platform in PLATFORMS.items()
        ]
    }


class CreateConnectionRequest(ConnectionOptions):
    """A new connection. It lives beside the platforms, whose rules its schema states."""

    model_config = ConfigDict(json_schema_extra=rules())

    platform: PlatformName
    label: Part
    env: Environment
    owner: Part = "default"
    signingSecret: Secret | None = None


def public_url(settings: Settings, asked: str | None = None) -> str:
    """Where senders reach this API: TIDINGS_PUBLIC_URL, or the address a request came to."""
    return settings.public_url or asked or LOCAL_URL


def endpoint(base_url: str, connection_id: str) -> str:
    return f"{base_url.rstrip('/')}{PREFIX}/{connection_id}"


def platform_of(name: str) -> Platform:
    try:
        return PLATFORMS[known_platform(name)]
    except ValueError as exc:
        raise Unprocessable(str(exc)) from None


def awaiting_secret(connection: Connection) -> bool:
    """Whether it refuses everything until it is given its signing secret."""
    return not connection.hasSigningSecret and platform_of(connection.platform).needs_secret(
        connection
    )


def check(platform: Platform, options: ConnectionOptions, secret: str | None) -> None:
    """Refuses options the platform does not take, or that cannot work."""
    given = options.model_dump(exclude_none=True)
    foreign = sorted(set(given) - platform.options)
    if foreign:
        raise Unprocessable(f"{', '.join(foreign)}: only for the custom platform")
    try:
        platform.check(options, secret)
    except ValueError as exc:
        raise Unprocessable(f"{platform.name}: {exc}") from None


class Connections:
    """The connections of a deployment; their URLs start with ``base_url``."""

    def __init__(self, redis: aioredis.Redis, base_url: str) -> None:
        self.redis = redis
        self.base_url = base_url

    async def create(self, request: CreateConnectionRequest) -> Connection:
        options = ConnectionOptions.model_validate(
            request.model_dump(include=set(ConnectionOptions.model_fields))
        )
        check(platform_of(request.platform), options, request.signingSecret)
        connection_id = secrets.token_hex(ID_BYTES)
        record: dict[str, Any] = {
            "platform": request.platform,
            "label": request.label,
            "env": request.env,
            "owner": request.owner,
            "createdAt": now_ms(),
            "options": options.model_dump_json(exclude_none=True),
        }
        if request.signingSecret is not None:
            record["signingSecret"] = request.signingSecret
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.connection(connection_id), mapping=record)
            pipe.sadd(keys.CONNECTIONS, connection_id)
            await pipe.execute()
        connection, _ = self._connection(connection_id, record)
        return connection

    async def get(self, connection_id: str) -> tuple[Connection, str | None]:
        """A connection and its signing secret."""
        record: dict[str, str] = await self.redis.hgetall(keys.connection(connection_id))
        if not record:
            raise NotFound(f"no connection {connection_id!r}")
        return self._connection(connection_id, record)

    async def receiving(self, connection_id: str) -> tuple[Connection, str | None]:
        """A connection that takes requests, and its signing secret."""
        connection, secret = await self.get(connection_id)
        if connection.revokedAt is not None:
            raise Gone(f"connection {connection_id!r} has been revoked")
        return connection, secret

    async def find(self, owner: str | None = None, env: str | None = None) -> list[Connection]:
        """Every connection, or one owner's, or those of one environment."""
        ids: set[str] = await self.redis.smembers(keys.CONNECTIONS)
        found = []
        async with self.redis.pipeline(transaction=False) as pipe:
            for connection_id in sorted(ids):
                pipe.hgetall(keys.connection(connection_id))
            records = await pipe.execute()
        for connection_id, record in zip(sorted(ids), records, strict=True):
            if record:
                connection, _ = self._connection(connection_id, record)
                if owner in (None, connection.owner) and env in (None, connection.env):
                    found.append(connection)
        return sorted(found, key=lambda c: (c.owner, c.env, c.createdAt, c.id))

    async def revoke(self, connection_id: str) -> Connection:
        """From now on its endpoint answers 410 Gone, which tells senders to stop."""
        connection, _ = await self.get(connection_id)
        if connection.revokedAt is None:
            revoked_at = now_ms()
            await self.redis.hset(keys.connection(connection_id), "revokedAt", revoked_at)
            connection = connection.model_copy(update={"revokedAt": revoked_at})
        return connection

    async def set_secret(self, connection_id: str, secret: str) -> Connection:
        """Give a connection its signing secret, or a new one."""
        connection, _ = await self.get(connection_id)
        if connection.revokedAt is not None:
            raise Conflict(f"connection {connection_id!r} has been revoked")
        check(platform_of(connection.platform), connection.options, secret)
        await self.redis.hset(keys.connection(connection_id), "signingSecret", secret)
        return connection.model_copy(update={"hasSigningSecret": True})

    async def log(self, connection_id: str, record: DeliveryRecord) -> None:
        """Keep a request in the connection's log: taken (2xx), or refused."""
        log = keys.connection_deliveries if record.status < 300 else keys.connection_rejections
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(log(connection_id), record.model_dump_json(exclude_none=True))
            pipe.ltrim(log(connection_id), 0, LOG_SIZE - 1)
            await pipe.execute()

    async def logs(self, connection_id: str) -> tuple[list[DeliveryRecord], list[DeliveryRecord]]:
        """Its last deliveries and its last rejections, newest first."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.lrange(keys.connection_deliveries(connection_id), 0, -1)
            pipe.lrange(keys.connection_rejections(connection_id), 0, -1)
            taken, refused = await pipe.execute()
        return (
            [DeliveryRecord.model_validate_json(r) for r in taken],
            [DeliveryRecord.model_validate_json(r) for r in refused],
        )

    def _connection(
        self, connection_id: str, record: dict[str, Any]
    ) -> tuple[Connection, str | None]:
        revoked_at = record.get("revokedAt")
        connection = Connection(
            id=connection_id,
            platform=record["platform"],
            label=record["label"],
            env=record["env"],
            owner=record["owner"],
            createdAt=int(record["createdAt"]),
            revokedAt=int(revoked_at) if revoked_at else None,
            hasSigningSecret="signingSecret" in record,
            url=endpoint(self.base_url, connection_id),
            **json.loads(record["options"]),
        )
        return connection, record.get("signingSecret")
