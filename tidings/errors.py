"""Errors are types with an HTTP status and a message.

They are raised where they happen (store, auth, validation) and turned into the
contract's error body, ``{"status": "error", "message": ...}``, in one place: the API.
The Python client raises the same ``TidingsError`` with the status it received.
"""

import redis.exceptions

#: What a client is told to wait before trying again while Redis is unreachable.
UNAVAILABLE_RETRY_AFTER_SECONDS = 2

#: What redis-py raises when Redis cannot be reached (a refused or dropped connection, a
#: timeout, a pool with no free connection, a server still loading its data; a cluster
#: none of whose nodes answers, or that has lost slots).
REDIS_UNREACHABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.RedisClusterException,
    redis.exceptions.ClusterDownError,
)


class TidingsError(Exception):
    status_code = 500
    #: Sent as Retry-After: when trying again may succeed.
    retry_after_seconds: int | None = None

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        *,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        if retry_after_seconds is not None:
            self.retry_after_seconds = retry_after_seconds

    def __str__(self) -> str:
        return f"{self.status_code}: {self.message}"


class BadRequest(TidingsError):
    status_code = 400


class Unauthorized(TidingsError):
    status_code = 401


class Forbidden(TidingsError):
    status_code = 403


class NotFound(TidingsError):
    status_code = 404


class Conflict(TidingsError):
    status_code = 409


class Gone(TidingsError):
    status_code = 410


class Unprocessable(TidingsError):
    status_code = 422


class TooManyRequests(TidingsError):
    status_code = 429


class Unavailable(TidingsError):
    status_code = 503
    retry_after_seconds = UNAVAILABLE_RETRY_AFTER_SECONDS


def redis_unreachable() -> Unavailable:
    """The answer to a request that could not reach Redis."""
    return Unavailable("the store (Redis) is unreachable: try again shortly")
