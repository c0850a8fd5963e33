"""Shopify: ``X-Shopify-Hmac-Sha256``, the base64 of an HMAC-SHA256 of the body keyed with
the app's client secret. Shopify signs no timestamp: a request sent again is caught by its
``X-Shopify-Webhook-Id``, the same on every retry. The event's name is the topic,
``X-Shopify-Topic``, as Shopify writes it: ``orders/create``.
https://shopify.dev/docs/apps/build/webhooks/verify-deliveries
"""

from typing import Any

from tidings.webhooks.models import Connection
from tidings.webhooks.platforms.base import (
    Delivery,
    Inbound,
    Platform,
    Refused,
    Unreadable,
    b64,
    hmac_sha256,
    same,
)

SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"
TOPIC_HEADER = "X-Shopify-Topic"
DELIVERY_HEADER = "X-Shopify-Webhook-Id"


class Shopify(Platform):
    name = "shopify"
    signature_headers = (SIGNATURE_HEADER,)

    def verify(self, connection: Connection, secret: str, request: Inbound) -> None:
        expected = b64(hmac_sha256(secret.encode(), request.body))
        if not same(expected, request.required_header(SIGNATURE_HEADER).strip()):
            raise Refused(f"{SIGNATURE_HEADER} does not match the signing secret")

    def read(self, connection: Connection, request: Inbound, payload: Any) -> Delivery:
        return Delivery(
            event_name=request.required_header(TOPIC_HEADER, Unreadable),
            delivery_id=request.header(DELIVERY_HEADER),
        )


PLATFORM = Shopify()
