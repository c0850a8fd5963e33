"""Errors are types with an HTTP status and a message.

They are raised where they happen (store, auth, validation) and turned into the
contract's error body, ``{"status": "error", "message": ...}``, in one place: the API.
The Python client raises the same ``TidingsError`` with the status it received.
"""


class TidingsError(Exception):
    status_code = 500

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code

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
