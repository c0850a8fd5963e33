"""``POST /webhooks/{id}``: a request to a connection's endpoint becomes an event.

In order: the connection (404 unknown, 410 revoked: senders that follow Standard Webhooks
then stop), its platform's signature check (401), the JSON body (400) and the event's name
(422), each refusal storing nothing; then the event is stored with the request's headers
and query, and the answer, 200, comes once it is durable (handlers run later). A delivery
whose sender's id came before stores nothing new and answers 200 with the first event's key.
Every request taken or refused goes into the connection's log, never its secret.

Failed signature checks are not throttled as failed authentications are: neither an
endpoint's 128-bit address nor an HMAC can be guessed in any number of tries, and a
platform's senders share their addresses among all its customers.
"""

import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import TypeAdapter, ValidationError

from tidings import metrics, models, services
from tidings.api.deps import SECRET_HEADER
from tidings.api.openapi import errors
from tidings.auth import Caller
from tidings.clock import now_ms
from tidings.errors import TidingsError
from tidings.services import SettingsDep, StoreDep
from tidings.webhooks import PREFIX
from tidings.webhooks.connections import Connections, platform_of, public_url
from tidings.webhooks.models import Connection, DeliveryRecord, WebhookAccepted
from tidings.webhooks.platforms.base import Inbound, Platform, Refused, Unreadable
from tidings.work import NewEvent, Scope

log = logging.getLogger("tidings.webhooks")

#: Hop-by-hop headers (RFC 9110, 7.6.1) and credentials: never stored with an event (nor
#: Proxy-*, nor the headers that Connection names).
UNSTORED_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "authorization",
        "cookie",
        SECRET_HEADER.lower(),
    }
)
#: How long a sender's id of a delivery is remembered (at most the retention): longer than
#: any platform here retries or lets one redeliver (Stripe: 3 days; GitHub: 3 days, 7 on
#: GitHub Enterprise Server).
REPEATS_WITHIN_SECONDS = 7 * 24 * 3600

EVENT_NAMES = TypeAdapter(models.Name)
BODY = {
    "requestBody": {
        "required": True,
        "description": "What the platform sends: JSON, signed as it signs.",
        "content": {"application/json": {"schema": {}}},
    }
}

router = APIRouter()


@router.post(
    f"{PREFIX}/{{connection_id}}",
    response_model=WebhookAccepted,
    responses=errors(400, 401, 404, 410, 422),
    openapi_extra=BODY,
)
async def receive(
    connection_id: str, request: Request, store: StoreDep, settings: SettingsDep
) -> WebhookAccepted:
    """A webhook, sent to a connection's endpoint: stored as an event of the connection's
    platform and label, once (a repeated delivery answers the first event's key)."""
    body = await request.body()
    connections = Connections(store.redis, public_url(settings, str(request.base_url)))
    connection, secret = await connections.receiving(connection_id)
    inbound = Inbound(body, joined_headers(request), query_of(request), time.time())
    try:
        event = read(platform_of(connection.platform), connection, secret, inbound)
    except TidingsError as exc:
        log.info(
            "refused a request to %s.%s (connection %s): %s",
            connection.platform,
            connection.label,
            connection.id,
            exc.message,
        )
        refused = DeliveryRecord(at=now_ms(), status=exc.status_code, message=exc.message)
        await connections.log(connection.id, refused)
        raise
    scope = Scope(connection.owner, connection.env)
    [stored] = await store.emit(
        scope,
        [event],
        platform=connection.platform,
        label=connection.label,
        actor=f"{connection.platform}.{connection.label}",
        idempotency_seconds=REPEATS_WITHIN_SECONDS,
    )
    taken = DeliveryRecord(
        at=now_ms(), status=200, key=stored.key, eventName=event.event, duplicate=stored.duplicate
    )
    await connections.log(connection.id, taken)
    if not stored.duplicate:
        metrics.METRICS.inc(metrics.EVENTS_EMITTED, scope.env, metrics.event_label(event, stored))
        caller = Caller(name=connection.label, env=connection.env, owner=connection.owner)
        await services.dispatcher(request)(caller, [stored])
    return WebhookAccepted(key=stored.key, duplicate=stored.duplicate)


def read(
    platform: Platform, connection: Connection, secret: str | None, request: Inbound
) -> NewEvent:
    """The event a request stands for, once its platform has checked its signature."""
    if platform.needs_secret(connection):
        if secret is None:
            raise Refused(
                "this connection has no signing secret yet, so it takes nothing: set it with "
                "`tidings connections update ID --signing-secret ...`"
            )
        platform.verify(connection, secret, request)
    payload = platform.payload(request)
    delivery = platform.read(connection, request, payload)
    try:
        EVENT_NAMES.validate_python(delivery.event_name)
    except ValidationError:
        raise Unreadable(
            f"{delivery.event_name!r} cannot be an event's name: at most 200 characters, "
            "no white space and no |"
        ) from None
    signatures = {name.lower() for name in platform.signature_header_names(connection)}
    return NewEvent(
        delivery.event_name,
        payload,
        headers=stored_headers(request.headers, signatures),
        query=request.query,
        idempotency_key=(
            idempotency_key(connection.id, delivery.delivery_id) if delivery.delivery_id else None
        ),
    )


def stored_headers(headers: dict[str, str], signatures: set[str]) -> dict[str, str]:
    """The headers kept with the event: not hop-by-hop, no credential, no signature."""
    named_hops = {name.strip().lower() for name in headers.get("connection", "").split(",")}
    left_out = UNSTORED_HEADERS | named_hops | signatures
    return {
        name: value
        for name, value in headers.items()
        if name not in left_out and not name.startswith("proxy-")
    }


def joined_headers(request: Request) -> dict[str, str]:
    """Lowercase names; the values of a header sent several times, joined by ", "."""
    joined: dict[str, str] = {}
    for name, value in request.headers.items():
        joined[name] = f"{joined[name]}, {value}" if name in joined else value
    return joined


def query_of(request: Request) -> dict[str, Any]:
    """The query string: a parameter given several times, as a list of its values."""
    values: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        values.setdefault(name, []).append(value)
    return {name: found[0] if len(found) == 1 else found for name, found in values.items()}


def idempotency_key(connection_id: str, delivery_id: str) -> str:
    """The store's idempotency key of a delivery, by which a repeated one is found."""
    return f"webhook:{connection_id}:{delivery_id}"
