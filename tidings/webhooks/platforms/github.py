"""GitHub: ``X-Hub-Signature-256: sha256=<hex>``, an HMAC-SHA256 of the body keyed with the
webhook's secret (the older SHA-1 ``X-Hub-Signature`` is not checked). GitHub signs no
timestamp: a request sent again is caught by its ``X-GitHub-Delivery``, which stays the same
when a delivery is redelivered. The event's name is ``X-GitHub-Event`` and the payload's
``action``, if any: ``issues.opened``, ``push``. A webhook whose content type is
``application/x-www-form-urlencoded`` sends the JSON in its ``payload`` field.
https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
"""

import json
from typing import Any
from urllib.parse import parse_qs

from tidings.errors import BadRequest
from tidings.webhooks.models import Connection
from tidings.webhooks.platforms.base import (
    Delivery,
    Inbound,
    Platform,
    Refused,
    Unreadable,
    hmac_sha256,
    same,
)

SIGNATURE_HEADER = "X-Hub-Signature-256"
LEGACY_SIGNATURE_HEADER = "X-Hub-Signature"
EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
FORM = "application/x-www-form-urlencoded"


class GitHub(Platform):
    name = "github"
    signature_headers = (SIGNATURE_HEADER, LEGACY_SIGNATURE_HEADER)

    def verify(self, connection: Connection, secret: str, request: Inbound) -> None:
        scheme, _, signature = request.required_header(SIGNATURE_HEADER).partition("=")
        if scheme != "sha256" or not signature:
            raise Refused(f"{SIGNATURE_HEADER} is not sha256=<signature>")
        expected = hmac_sha256(secret.encode(), request.body).hex()
        if not same(expected, signature):
            raise Refused(f"{SIGNATURE_HEADER} does not match the signing secret")

    def payload(self, request: Inbound) -> Any:
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if content_type != FORM:
            return super().payload(request)
        fields = parse_qs(request.body.decode(errors="replace"))
        try:
            return json.loads(fields["payload"][0])
        except (KeyError, ValueError):
            raise BadRequest("the form's payload field is not JSON") from None

    def read(self, connection: Connection, request: Inbound, payload: Any) -> Delivery:
        event = request.required_header(EVENT_HEADER, Unreadable)
        action = payload.get("action") if isinstance(payload, dict) else None
        return Delivery(
            event_name=f"{event}.{action}" if isinstance(action, str) and action else event,
            delivery_id=request.header(DELIVERY_HEADER),
        )


PLATFORM = GitHub()
