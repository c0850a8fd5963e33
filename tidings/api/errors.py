"""Every error becomes the contract's error body, ``{"status": "error", "message": ...}``,
here and nowhere else."""

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from tidings.errors import TidingsError

log = logging.getLogger("tidings.api.errors")


def error_response(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"status": "error", "message": message, **extra}, status_code=status)


def validation_message(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    if any(e["type"] == "json_invalid" for e in errors):
        return 400, "malformed JSON in the request body"
    if any(e["type"] == "model_attributes_type" and tuple(e["loc"]) == ("body",) for e in errors):
        return 400, "the body must be a JSON object, sent with Content-Type: application/json"
    parts = []
    for e in errors:
        where = ".".join(str(p) for p in e["loc"] if p != "body") or "body"
        parts.append(f"{where}: {e['msg']}")
    return 422, "invalid request: " + "; ".join(parts)


async def tidings_error(request: Request, exc: TidingsError) -> JSONResponse:
    return error_response(exc.status_code, exc.message)


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    status, message = validation_message(exc)
    return error_response(status, message)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error answering %s %s", request.method, request.url.path)
    return error_response(500, f"internal error: {type(exc).__name__}")


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return error_response(exc.status_code, str(exc.detail))


HANDLERS: dict[Any, Any] = {
    TidingsError: tidings_error,
    RequestValidationError: invalid_request,
    Exception: unexpected_error,
    HTTPException: http_error,
}
