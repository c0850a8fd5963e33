"""Every error becomes the contract's error body, ``{"status": "error", "message": ...}``,
here and nowhere else, and no error closes the client's connection."""

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.errors import REDIS_UNREACHABLE, TidingsError, redis_unreachable

log = logging.getLogger("tidings.api.errors")

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def error_response(
    status: int, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"status": "error", "message": message, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def validation_message(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    if any(e["type"] == "json_invalid" for e in errors):
        return 400, "malformed JSON in the request body"
    if any(e["type"] == "model_attributes_type" and tuple(e["loc"]) == ("body",) for e in errors):
        return 400, "the body must be a JSON object"
    parts = []
    for e in errors:
        where = ".".join(str(p) for p in e["loc"] if p != "body") or "body"
        parts.append(f"{where}: {e['msg']}")
    return 422, "invalid request: " + "; ".join(parts)


async def tidings_error(request: Request, exc: TidingsError) -> JSONResponse:
    wait = exc.retry_after_seconds
    headers = {"Retry-After": str(wait)} if wait is not None else None
    return error_response(exc.status_code, exc.message, headers=headers)


async def redis_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning("Redis unreachable answering %s %s: %s", request.method, request.url.path, exc)
    return await tidings_error(request, redis_unreachable())


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    status, message = validation_message(exc)
    return error_response(status, message)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error answering %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, f"internal error: {type(exc).__name__}")


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Starlette's own errors: 404 for an unknown path, 405 for a method the path does not
    have, ..."""
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette's Allow names the methods of the first route on the path only.
        headers["Allow"] = ", ".join(allowed_methods(request))
    return error_response(exc.status_code, str(exc.detail), headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on the request's path, as the router matches them."""
    return [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]


HANDLERS: dict[Any, Any] = {
    TidingsError: tidings_error,
    RequestValidationError: invalid_request,
    HTTPException: http_error,
    **dict.fromkeys(REDIS_UNREACHABLE, redis_error),
    # Only for errors raised outside UnexpectedErrors (which answers the rest), by
    # Starlette's outermost middleware; that one re-raises, and uvicorn closes the connection.
    Exception: unexpected_error,
}


class UnexpectedErrors:
    """Answers an error no handler expected with 500 and the error body, and keeps the
    connection open: Starlette's handler for Exception re-raises after answering, and uvicorn
    then closes the connection, which a client cannot tell from a request lost on the way."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:  # too late for an answer: the connection must go
                raise
            answer = await unexpected_error(Request(scope), exc)
            await answer(scope, receive, send)
