"""Any sender of JSON: the event's name is a field of the body (``eventNameField``, a dotted
path) or fixed (``eventName``); optionally signed with an HMAC-SHA256 of the body, keyed with
the signing secret, in the header ``signatureHeader``, as hex (the default) or base64, after
``signaturePrefix``; and, with ``idHeader``, the header holding the sender's id of a delivery,
so that a repeat is stored once. Without a signature, the endpoint's unguessable address is
all that stands between it and the world: keep it secret.
"""

from typing import Any

from pydantic.config import JsonDict

from tidings.webhooks.models import Connection, ConnectionOptions
from tidings.webhooks.platforms.base import (
    Delivery,
    Inbound,
    Platform,
    Refused,
    b64,
    hmac_sha256,
    is_text,
    same,
    text_field,
)


class Custom(Platform):
    name = "custom"
    options = frozenset(ConnectionOptions.model_fields)

    def check(self, options: ConnectionOptions, secret: str | None) -> None:
        if (options.eventNameField is None) == (options.eventName is None):
            raise ValueError("give the event's name: a field of the body, or a fixed name")
        signature_options = (options.signatureEncoding, options.signaturePrefix)
        if options.signatureHeader is None and any(o is not None for o in signature_options):
            raise ValueError("a signature's encoding and prefix need its header")
        if secret is not None and options.signatureHeader is None:
            raise ValueError("a signing secret needs the header its signatures come in")

    def rules(self) -> JsonDict:
        return {
            "oneOf": [is_text("eventNameField"), is_text("eventName")],
            "allOf": [
                {"if": is_text(needing), "then": is_text("signatureHeader")}
                for needing in ("signatureEncoding", "signaturePrefix", "signingSecret")
            ],
        }

    def needs_secret(self, connection: Connection) -> bool:
        return connection.signatureHeader is not None

    def signature_header_names(self, connection: Connection) -> tuple[str, ...]:
        return (connection.signatureHeader,) if connection.signatureHeader else ()

    def verify(self, connection: Connection, secret: str, request: Inbound) -> None:
        header = str(connection.signatureHeader)
        given = request.required_header(header).strip()
        prefix = connection.signaturePrefix or ""
        if not given.startswith(prefix):
            raise Refused(f"{header} does not start with {prefix!r}")
        digest = hmac_sha256(secret.encode(), request.body)
        expected = b64(digest) if connection.signatureEncoding == "base64" else digest.hex()
        if not same(expected, given.removeprefix(prefix)):
            raise Refused(f"{header} does not match the signing secret")

    def read(self, connection: Connection, request: Inbound, payload: Any) -> Delivery:
        name = connection.eventName
        if name is None:
            name = text_field(payload, str(connection.eventNameField), "this sender")
        return Delivery(
            event_name=name,
            delivery_id=request.header(connection.idHeader) if connection.idHeader else None,
        )


PLATFORM = Custom()
