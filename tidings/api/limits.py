"""Limits on what a request may send, checked before anything parses it.

Headers: at most ``MAX_HEADERS`` of them, at most ``MAX_HEADER_BYTES`` of names and values
together, else 431. uvicorn's default HTTP parser (httptools) sets no limit of its own;
with ``--http h11``, h11 refuses a request head over 16 KiB (request line included) with
a plain 400 before this sees it. Body: at most TIDINGS_MAX_BODY_BYTES, else 413.
"""

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.api.errors import error_response

MAX_HEADERS = 100
MAX_HEADER_BYTES = 16 * 1024


def headers_too_large(headers: list[tuple[bytes, bytes]]) -> str | None:
    """What is wrong with a request's headers, or None."""
    if len(headers) > MAX_HEADERS:
        return f"too many request headers: at most {MAX_HEADERS}"
    if sum(len(name) + len(value) for name, value in headers) > MAX_HEADER_BYTES:
        return f"request headers too large: at most {MAX_HEADER_BYTES} bytes in all"
    return None


class RequestLimits:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        problem = headers_too_large(scope["headers"])
        if problem:
            return await error_response(431, problem)(scope, receive, send)
        too_large = f"request body is larger than {self.max_body_bytes} bytes"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and int(length) > self.max_body_bytes:
            return await error_response(413, too_large)(scope, receive, send)
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                # An HTTPException, since FastAPI answers 400 for anything else raised here.
                raise HTTPException(413, too_large)
            return message

        await self.app(scope, counting_receive, send)
