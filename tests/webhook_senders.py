"""Requests signed as each platform signs them, per its documentation, written apart from
tidings/webhooks/platforms so that a mistake there cannot hide here.

- Stripe: ``Stripe-Signature: t={unix},v1={hex HMAC-SHA256(secret, "{t}.{body}")}``
  (docs.stripe.com/webhooks/signature); a retry is signed anew with its own ``t``.
- GitHub: ``X-Hub-Signature-256: sha256={hex HMAC-SHA256(secret, body)}``, beside the SHA-1
  ``X-Hub-Signature``; ``X-GitHub-Event``, ``X-GitHub-Delivery`` (the same on redelivery).
- Shopify: ``X-Shopify-Hmac-Sha256: {base64 HMAC-SHA256(secret, body)}``, ``X-Shopify-Topic``,
  ``X-Shopify-Webhook-Id`` (the same on each retry).
- Standard Webhooks: ``webhook-signature: v1,{base64 HMAC-SHA256(base64decode(secret
  without whsec_), "{id}.{timestamp}.{body}")}``; a retry has a new timestamp, the same id.
- custom, as the tests configure it: ``X-Signature: sha256={hex HMAC-SHA256(secret, body)}``
  and ``X-Delivery-Id``; the event's name in the body's ``kind``.
"""

import base64
import functools
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


@dataclass(frozen=True)
class Sent:
    body: bytes
    headers: dict[str, str]


@dataclass
class Sender:
    """How one platform sends: the connection it needs, and its signed requests."""

    platform: str
    label: str
    #: The event name tidings gives what it sends here (its handler subscribes to it).
    event_name: str
    #: make_secret() -> a new secret as the platform hands them out.
    make_secret: Callable[[], str]
    #: Beside platform, label, env, owner and signingSecret, for POST /admin/connections.
    options: dict[str, str] = field(default_factory=dict)
    #: It signs a timestamp, which tidings checks against the tolerance.
    timestamped: bool = False
    #: sign(body, delivery_id, timestamp, secret) -> the headers it sends.
    sign: Callable[[bytes, str, int, str], dict[str, str]] = field(default=lambda *a: {})
    #: payload(delivery_id) -> the JSON it sends.
    payload: Callable[[str], Any] = field(default=lambda delivery_id: {})

    @functools.cached_property
    def secret(self) -> str:
        """The connection's signing secret."""
        return self.make_secret()

    def send(
        self, delivery_id: str, *, timestamp: int | None = None, secret: str | None = None
    ) -> Sent:
        """A request as the platform sends it (at ``timestamp``, signed with ``secret``)."""
        body = json.dumps(self.payload(delivery_id)).encode()
        when = int(time.time()) if timestamp is None else timestamp
        return Sent(body, self.sign(body, delivery_id, when, secret or self.secret))


def stripe_headers(body: bytes, delivery_id: str, timestamp: int, secret: str) -> dict[str, str]:
    signed = str(timestamp).encode() + b"." + body
    signature = hmac_sha256(secret.encode(), signed).hex()
    return {
        "Stripe-Signature": f"t={timestamp},v1={signature}",
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }


def github_headers(body: bytes, delivery_id: str, timestamp: int, secret: str) -> dict[str, str]:
    return {
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": delivery_id,
        "X-GitHub-Hook-ID": "292430182",
        "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": "sha256=" + hmac_sha256(secret.encode(), body).hex(),
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/044aadd",
    }


def shopify_headers(body: bytes, delivery_id: str, timestamp: int, secret: str) -> dict[str, str]:
    return {
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Hmac-Sha256": base64.b64encode(hmac_sha256(secret.encode(), body)).decode(),
        "X-Shopify-Shop-Domain": "example.myshopify.com",
        "X-Shopify-Webhook-Id": delivery_id,
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "X-Shopify-API-Version": "2025-07",
        "Content-Type": "application/json",
    }


def standard_headers(body: bytes, delivery_id: str, timestamp: int, secret: str) -> dict[str, str]:
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac_sha256(key, signed)).decode()
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        # As while a secret is being rolled: a signature with another key first.
        "webhook-signature": f"v1,{base64.b64encode(b'x' * 32).decode()} v1,{signature}",
        "Content-Type": "application/json",
    }


def custom_headers(body: bytes, delivery_id: str, timestamp: int, secret: str) -> dict[str, str]:
    return {
        "X-Signature": "sha256=" + hmac_sha256(secret.encode(), body).hex(),
        "X-Delivery-Id": delivery_id,
        "Content-Type": "application/json",
    }


SENDERS = {
    sender.platform: sender
    for sender in [
        Sender(
            platform="stripe",
            label="payments",
            event_name="invoice.paid",
            make_secret=lambda: "whsec_" + secrets.token_hex(16),
            timestamped=True,
            sign=stripe_headers,
            payload=lambda delivery_id: {
                "id": delivery_id,
                "object": "event",
                "type": "invoice.paid",
                "data": {"object": {"id": "in_1", "amount_paid": 2000, "currency": "eur"}},
            },
        ),
        Sender(
            platform="github",
            label="repo",
            event_name="issues.opened",
            make_secret=lambda: secrets.token_hex(20),
            sign=github_headers,
            payload=lambda delivery_id: {"action": "opened", "issue": {"number": 7}},
        ),
        Sender(
            platform="shopify",
            label="shop",
            event_name="orders/create",
            make_secret=lambda: secrets.token_hex(16),
            sign=shopify_headers,
            payload=lambda delivery_id: {"id": 820982911946154508, "total_price": "9.50"},
        ),
        Sender(
            platform="standard-webhooks",
            label="svix",
            event_name="contact.created",
            make_secret=lambda: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
            timestamped=True,
            sign=standard_headers,
            payload=lambda delivery_id: {
                "type": "contact.created",
                "timestamp": "2025-11-03T20:26:10.344522Z",
                "data": {"id": "1f81eb52-5198-4599-803e-771906343485"},
            },
        ),
        Sender(
            platform="custom",
            label="partner",
            event_name="order.created",
            make_secret=lambda: secrets.token_hex(16),
            options={
                "eventNameField": "kind",
                "signatureHeader": "X-Signature",
                "signaturePrefix": "sha256=",
                "idHeader": "X-Delivery-Id",
            },
            sign=custom_headers,
            payload=lambda delivery_id: {"kind": "order.created", "order": {"id": 12}},
        ),
    ]
}
