"""Failed authentication is throttled per client address.

Once an address has failed ``MAX_AUTH_FAILURES`` times within ``AUTH_FAILURE_WINDOW_SECONDS``
(a fixed window counted in Redis, so every server process shares it), its requests that
present a credential answer 429 with Retry-After until the window ends, and the credential
is not checked: a guesser learns nothing more. Only failures are counted and only the
failing address is refused, so a valid key costs no extra round trip and another address
is never locked out.

Each process remembers the addresses it has seen go over the limit, and refuses them
without asking Redis; another process learns of one at that address's next failure there.
"""

import math
import time
from types import TracebackType

import redis.asyncio as aioredis
from fastapi import Request

from tidings.errors import TooManyRequests, Unauthorized
from tidings.store import keys

MAX_AUTH_FAILURES = 20
AUTH_FAILURE_WINDOW_SECONDS = 60
#: How many blocked addresses a process remembers before it forgets those whose window ended.
MAX_REMEMBERED = 10_000


def client_address(request: Request) -> str:
    """The client's address: uvicorn takes it from X-Forwarded-For when the peer is a proxy
    it trusts (FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else "unknown"


class AuthThrottle:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._blocked_until: dict[str, float] = {}

    def attempt(self, address: str) -> "Attempt":
        """``async with throttle.attempt(address):`` around checking a credential it sent."""
        return Attempt(self, address)

    def check(self, address: str) -> None:
        """Refuses an address that has failed too often in this window."""
        until = self._blocked_until.get(address)
        if until is None:
            return
        left = until - time.monotonic()
        if left <= 0:
            del self._blocked_until[address]
            return
        raise too_many(math.ceil(left))

    async def failed(self, address: str) -> None:
        """Counts a failed authentication; past the limit, refuses the address until its
        window ends."""
        counter = keys.auth_failures(address)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(counter, 0, ex=AUTH_FAILURE_WINDOW_SECONDS, nx=True)
            pipe.incr(counter)
            pipe.ttl(counter)
            _, failures, left = await pipe.execute()
        if failures < MAX_AUTH_FAILURES:
            return
        left = max(int(left), 1)
        self._remember(address, time.monotonic() + left)
        if failures > MAX_AUTH_FAILURES:
            raise too_many(left)

    def _remember(self, address: str, until: float) -> None:
        if len(self._blocked_until) >= MAX_REMEMBERED:
            now = time.monotonic()
            self._blocked_until = {a: u for a, u in self._blocked_until.items() if u > now}
        self._blocked_until[address] = until


def too_many(retry_after: int) -> TooManyRequests:
    return TooManyRequests(
        f"too many failed authentications from this address: try again in {retry_after} s",
        retry_after_seconds=retry_after,
    )


class Attempt:
    """Checking one credential: refused while its address is blocked, counted if it fails."""

    def __init__(self, throttle: AuthThrottle, address: str) -> None:
        self.throttle = throttle
        self.address = address

    async def __aenter__(self) -> None:
        self.throttle.check(self.address)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(error, Unauthorized):
            await self.throttle.failed(self.address)
