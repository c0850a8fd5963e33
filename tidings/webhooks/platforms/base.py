"""What every platform module provides: a check of the sender's signature, and a reading of
the request as an event (its name, and the sender's id of the delivery)."""

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic.config import JsonDict

from tidings.errors import BadRequest, TidingsError, Unauthorized, Unprocessable
from tidings.webhooks.models import Connection, ConnectionOptions


class Refused(Unauthorized):
    """The request is not what the platform signed: a signature missing, malformed or not
    matching, or a timestamp outside the tolerance. Messages never hold a secret."""


class Unreadable(Unprocessable):
    """Signed, but not an event the platform would send: no name, a name tidings cannot take."""


@dataclass(frozen=True)
class Inbound:
    """A request to a connection's endpoint, as a platform checks and reads it."""

    body: bytes
    #: Lowercase names; a header sent several times has its values joined by ", ".
    headers: dict[str, str]
    #: The query string: a parameter given several times has a list of its values.
    query: dict[str, Any]
    #: When it arrived, in epoch seconds.
    received_at: float

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def required_header(self, name: str, refuse: type[TidingsError] = Refused) -> str:
        value = self.header(name)
        if not value:
            raise refuse(f"the {name} header is missing")
        return value


@dataclass(frozen=True)
class Delivery:
    """What a platform reads from a request whose signature it accepted."""

    event_name: str
    #: The sender's id of what it sent, the same on each retry: a repeat is stored once.
    delivery_id: str | None


class Platform:
    """One sender of webhooks. Subclasses set ``name`` and override what differs."""

    name: ClassVar[str]
    #: Headers that carry the signature: never stored, so that a reader of the event cannot
    #: send the same request again.
    signature_headers: ClassVar[tuple[str, ...]] = ()
    #: The ConnectionOptions it takes (only `custom` takes any).
    options: ClassVar[frozenset[str]] = frozenset()

    def check(self, options: ConnectionOptions, secret: str | None) -> None:
        """Refuses (ValueError) options or a secret that cannot work."""

    def rules(self) -> JsonDict:
        """What ``check`` and the options it takes ask of a connection's request, as JSON
        Schema, for the OpenAPI document: the options it does not take stay unset (null)."""
        others = sorted(set(ConnectionOptions.model_fields) - self.options)
        return {"properties": {name: {"type": "null"} for name in others}}

    def signature_header_names(self, connection: Connection) -> tuple[str, ...]:
        return self.signature_headers

    def needs_secret(self, connection: Connection) -> bool:
        """Whether its requests are signed, so that none is taken before a secret is set."""
        return True

    def verify(self, connection: Connection, secret: str, request: Inbound) -> None:
        """Raises Refused unless the request is signed with the secret."""
        raise NotImplementedError

    def payload(self, request: Inbound) -> Any:
        """The JSON body."""
        try:
            return json.loads(request.body)
        except ValueError:
            raise BadRequest("the body is not JSON") from None

    def read(self, connection: Connection, request: Inbound, payload: Any) -> Delivery:
        raise NotImplementedError


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def same(expected: str, given: str) -> bool:
    """Compared in constant time, whatever ``given`` holds."""
    return hmac.compare_digest(expected.encode(), given.encode())


def is_text(field: str) -> JsonDict:
    """JSON Schema: the field is there, and is text (not null)."""
    return {"required": [field], "properties": {field: {"type": "string"}}}


def json_field(payload: Any, path: str) -> Any:
    """``payload["a"]["b"]`` for the path "a.b", or None where it is not there."""
    for part in path.split("."):
        if not isinstance(payload, dict):
            return None
        payload = payload.get(part)
    return payload


def text_field(payload: Any, path: str, sender: str) -> str:
    value = json_field(payload, path)
    if not isinstance(value, str) or not value:
        raise Unreadable(f"{sender} sends its events with a {path!r} text field: this has none")
    return value
