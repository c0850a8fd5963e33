"""The error answers each operation may give, for the OpenAPI document (/openapi.json).

FastAPI derives the rest of the document from the routes and models; what it cannot see is
which errors an operation answers, all with the error body (``models.ErrorBody``).
"""

from typing import Any

from tidings import models
from tidings.api.limits import MAX_HEADER_BYTES, MAX_HEADERS

RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    }
}

ERRORS = {
    400: (
        "Malformed JSON, a body that is not a JSON object, filters that do not go together, "
        "or a bad Idempotency-Key."
    ),
    401: "The credential is missing, unknown or revoked.",
    404: "Not found (or, for /admin, the admin API is disabled).",
    409: "Conflicts with what is stored: nothing was changed.",
    410: "Gone: revoked (a webhook's sender should stop sending).",
    413: "The request body is larger than TIDINGS_MAX_BODY_BYTES.",
    422: "A field is missing, of the wrong type or out of range.",
    429: "Too many failed authentications from this client address.",
    431: f"More than {MAX_HEADERS} request headers, or more than {MAX_HEADER_BYTES} bytes of them.",
    500: "An unexpected error; the server logs it.",
    503: "Redis is unreachable.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route for these error statuses."""
    return {
        status: {
            "model": models.ErrorBody,
            "description": ERRORS[status],
            **({"headers": RETRY_AFTER} if status in (429, 503) else {}),
        }
        for status in statuses
    }


#: Any request may be too large or meet an unreachable Redis or an unexpected error.
ANY_REQUEST = errors(413, 431, 500, 503)
#: A JSON body that is not one, or does not fit the operation's model.
JSON_BODY = errors(400, 422)
#: A credential checked through the throttle on failed authentication.
CREDENTIAL = errors(401, 429)
