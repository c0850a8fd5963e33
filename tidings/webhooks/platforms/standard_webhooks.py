"""Standard Webhooks (as Svix and others send): ``webhook-id``, ``webhook-timestamp`` (unix
seconds) and ``webhook-signature``, a space-separated list of ``v1,<base64>``, each an
HMAC-SHA256 of ``{id}.{timestamp}.{body}`` keyed with the secret, ``whsec_`` and base64 (one
signature per secret while a secret is being rolled; asymmetric ``v1a`` ones are not
checked). A timestamp further than the tolerance from now, either way, is refused. The
event's name is the payload's ``type``; ``webhook-id`` stays the same on every retry.
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

import base64
import binascii
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
    same,
    text_field,
)

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
#: What ``key`` takes: base64 with its padding, after the prefix.
SECRET_PATTERN = (
    f"^({SECRET_PREFIX})?([A-Za-z0-9+/]{{4}})*([A-Za-z0-9+/]{{2}}==|[A-Za-z0-9+/]{{3}}=)?$"
)
#: The specification's recommendation: five minutes either way.
TOLERANCE_SECONDS = 300


def key(secret: str) -> bytes:
    """The HMAC key a ``whsec_<base64>`` secret stands for; ValueError if it is not one."""
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise ValueError(
            f"a Standard Webhooks signing secret is {SECRET_PREFIX} and base64"
        ) from None


class StandardWebhooks(Platform):
    name = "standard-webhooks"
    signature_headers = (SIGNATURE_HEADER,)

    def check(self, options: ConnectionOptions, secret: str | None) -> None:
        if secret is not None:
            key(secret)

    def rules(self) -> JsonDict:
        secret: JsonDict = {"type": "string", "pattern": SECRET_PATTERN}
        given: JsonDict = {"properties": {"signingSecret": {"anyOf": [{"type": "null"}, secret]}}}
        return {"allOf": [super().rules(), given]}

    def verify(self, connection: Connection, secret: str, request: Inbound) -> None:
        delivery_id = request.required_header(ID_HEADER)
        timestamp = request.required_header(TIMESTAMP_HEADER)
        if not timestamp.isdigit():
            raise Refused(f"{TIMESTAMP_HEADER} is not a unix time in seconds")
        if abs(request.received_at - int(timestamp)) > TOLERANCE_SECONDS:
            raise Refused(
                f"{TIMESTAMP_HEADER} is over {TOLERANCE_SECONDS} s from now: a replay, or a "
                "clock that is wrong"
            )
        signed = f"{delivery_id}.{timestamp}.".encode() + request.body
        expected = b64(hmac_sha256(key(secret), signed))
        given = request.required_header(SIGNATURE_HEADER).split(" ")
        if not any(
            version == "v1" and same(expected, signature)
            for version, _, signature in (entry.partition(",") for entry in given)
        ):
            raise Refused(f"no v1 signature of {SIGNATURE_HEADER} matches the signing secret")

    def read(self, connection: Connection, request: Inbound, payload: Any) -> Delivery:
        return Delivery(
            event_name=text_field(payload, "type", "a Standard Webhooks sender"),
            delivery_id=request.header(ID_HEADER),
        )


PLATFORM = StandardWebhooks()
