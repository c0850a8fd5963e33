"""Secret keys (who may emit, in which scope) and the dashboard's sessions.

A dashboard session is a random id in a cookie that stands for a secret key, which stays
here; every request of the session checks the key again.
"""

import hashlib
import secrets
from typing import Any

from tidings import models
from tidings.auth import MISSING_SECRET, NO_SESSION, REVOKED_SECRET, UNKNOWN_SECRET, Caller, Session
from tidings.clock import now_ms
from tidings.errors import Conflict, NotFound, Unauthorized
from tidings.ids import new_id
from tidings.store import keys, records
from tidings.store.connection import Guard, StorePart
from tidings.work import Scope

#: Random bytes in a secret (48 hex digits after its "sk_{env}_" prefix).
SECRET_BYTES = 24
#: Random bytes in a session id.
SESSION_ID_BYTES = 32
#: How many keys' holders a process remembers before it forgets them all.
MAX_HOLDERS = 10_000


class SecretKeys(StorePart):
    """Secret keys and sessions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Who holds each valid key seen (by digest). That never changes, only whether the
        #: key is still valid: see `still_valid`.
        self._holders: dict[str, Caller] = {}

    async def create_key(self, name: str, env: str, owner: str = "default") -> models.SecretKey:
        key = models.SecretKey(name=name, env=env, owner=owner, createdAt=now_ms())
        secret = f"sk_{env}_{secrets.token_hex(SECRET_BYTES)}"
        digest = hash_secret(secret)
        record = key.model_dump(exclude_none=True, exclude={"secret"})
        fields = [part for pair in record.items() for part in pair]
        slot = f"{owner}/{env}/{name}"
        if not await self._run("secret_keys.create", keys.SECRETS, slot, digest, *fields):
            raise Conflict(f"a {env} key named {name!r} already exists for owner {owner!r}")
        return key.model_copy(update={"secret": secret})

    async def list_keys(self, owner: str | None = None) -> list[models.SecretKey]:
        digests: dict[str, str] = await self.redis.hgetall(keys.SECRETS)
        async with self.redis.pipeline(transaction=False) as pipe:
            for digest in digests.values():
                pipe.hgetall(keys.secret(digest))
            found = await pipe.execute()
        secret_keys = [records.secret_key(r) for r in found if r]
        return sorted(
            (k for k in secret_keys if owner is None or k.owner == owner),
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
        return records.secret_key(record)

    async def authenticate(self, secret: str | None) -> Caller:
        if not secret:
            raise Unauthorized(MISSING_SECRET)
        return await self._caller(hash_secret(secret))

    async def _caller(self, digest: str) -> Caller:
        caller = self._caller_of(await self.redis.hgetall(keys.secret(digest)))
        self._remember(digest, caller)
        return caller

    def _remember(self, digest: str, holder: Caller) -> None:
        if len(self._holders) >= MAX_HOLDERS:
            self._holders.clear()
        self._holders[digest] = holder

    def holder(self, secret: str) -> Caller | None:
        """Who holds a secret key, if it was valid when this process last read it."""
        return self._holders.get(hash_secret(secret))

    def still_valid(self, secret: str, holder: Caller) -> Guard:
        """A guard that a secret key is still valid, and `holder`'s, for a read of what it
        may see in the same round trip."""
        digest = hash_secret(secret)

        def check(record: dict[str, str]) -> None:
            if self._caller_of(record) != holder:  # raises if revoked or gone
                self._holders.pop(digest, None)  # replaced behind tidings' back: read afresh
                raise Unauthorized(UNKNOWN_SECRET)

        return Guard(("HGETALL", keys.secret(digest)), check)

    @staticmethod
    def _caller_of(record: dict[str, str]) -> Caller:
        """Who holds a secret key, from its record (empty if there is none)."""
        if not record:
            raise Unauthorized(UNKNOWN_SECRET)
        if record.get("revokedAt"):
            raise Unauthorized(REVOKED_SECRET)
        return Caller(name=record["name"], env=record["env"], owner=record["owner"])

    async def scopes(self) -> list[Scope]:
        """Every (owner, environment) that has a secret key or events."""
        names: list[str] = await self.redis.hkeys(keys.SECRETS)
        with_events: set[str] = await self.redis.smembers(keys.SCOPES)
        found = {Scope(*name.split("/")[:2]) for name in names}
        found |= {Scope(*member.split("|")) for member in with_events}
        return sorted(found, key=lambda scope: (scope.owner, scope.env))

    async def open_session(self, secret: str | None, *, ttl_seconds: int) -> Session:
        """Sign in with a secret key: a new session, with its own CSRF token."""
        if not secret:
            raise Unauthorized(MISSING_SECRET)
        digest = hash_secret(secret)
        session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
        session = Session(session_id, await self._caller(digest), new_id())
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


def hash_secret(secret: str) -> str:
    """What Redis keeps of a secret: its SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()
