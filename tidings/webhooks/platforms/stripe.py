"""Stripe: ``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]``, an HMAC-SHA256 of
``{t}.{body}`` keyed with the endpoint's signing secret (``whsec_...``), several ``v1`` while
a secret is being rolled; a timestamp older than the tolerance is refused, as Stripe's
libraries do. The event's name is its ``type``; its ``id`` stays the same on every retry.
https://docs.stripe.com/webhooks/signature#verify-manually
"""

from typing import Any

from tidings.webhooks.models import Connection
from tidings.webhooks.platforms.base import (
    Delivery,
    Inbound,
    Platform,
    Refused,
    hmac_sha256,
    same,
    text_field,
)

SIGNATURE_HEADER = "Stripe-Signature"
#: Stripe's libraries' default: a delivery signed longer ago than this is refused.
TOLERANCE_SECONDS = 300


class Stripe(Platform):
    name = "stripe"
    signature_headers = (SIGNATURE_HEADER,)

    def verify(self, connection: Connection, secret: str, request: Inbound) -> None:
        timestamp, signatures = "", []
        for element in request.required_header(SIGNATURE_HEADER).split(","):
            prefix, _, value = element.strip().partition("=")
            if prefix == "t":
                timestamp = value
            elif prefix == "v1":  # other schemes (v0: test mode's) are not checked
                signatures.append(value)
        if not timestamp.isdigit() or not signatures:
            raise Refused(f"{SIGNATURE_HEADER} has no t=<timestamp> and v1=<signature>")
        if request.received_at - int(timestamp) > TOLERANCE_SECONDS:
            raise Refused(
                f"{SIGNATURE_HEADER}'s timestamp is over {TOLERANCE_SECONDS} s old: a replay, "
                "or this server's clock is wrong"
            )
        expected = hmac_sha256(secret.encode(), f"{timestamp}.".encode() + request.body).hex()
        if not any(same(expected, signature) for signature in signatures):
            raise Refused(f"no v1 signature of {SIGNATURE_HEADER} matches the signing secret")

    def read(self, connection: Connection, request: Inbound, payload: Any) -> Delivery:
        return Delivery(
            event_name=text_field(payload, "type", "Stripe"),
            delivery_id=text_field(payload, "id", "Stripe"),
        )


PLATFORM = Stripe()
