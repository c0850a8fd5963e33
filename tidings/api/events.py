"""Events in and out: emit one or a batch, query them, read one, name one."""

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError
from pydantic_core import to_json

from tidings import metrics, models, services
from tidings.api.deps import (
    SECRET_HEADER,
    Authenticated,
    PresentSecret,
    body_model,
    json_body,
    parse_body,
)
from tidings.api.openapi import CREDENTIAL, JSON_BODY, errors
from tidings.auth import MISSING_SECRET
from tidings.errors import BadRequest, Unauthorized
from tidings.services import StoreDep
from tidings.throttle import client_address
from tidings.work import Emitted, NewEvent

router = APIRouter(responses=CREDENTIAL)

IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Answered (true) when an emit's idempotency key stood for an event stored before.
REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_KEYS = TypeAdapter(models.IdempotencyKey)

#: /emit's secret key, idempotency key and body in the OpenAPI document.
EMIT_OPENAPI = {
    "security": [{"SecretKey": []}],
    "parameters": [
        {
            "name": IDEMPOTENCY_HEADER,
            "in": "header",
            "required": False,
            "description": (
                "Emitting again with the same key within 24 hours stores nothing new and "
                "answers the first event's key (owner and environment share the keys)."
            ),
            "schema": IDEMPOTENCY_KEYS.json_schema(),
        }
    ],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": models.EmitRequest.model_json_schema()}},
    },
}


def new_event(event: models.EmitRequest, idempotency_key: str | None) -> NewEvent:
    """An event to store; its idempotency key apart from webhooks' (tidings/webhooks)."""
    return NewEvent.of(event, None if idempotency_key is None else f"emit:{idempotency_key}")


async def emit(request: Request, secret: str, events: list[NewEvent]) -> list[Emitted]:
    """Store events, then hand their transactions to the workers. The secret is checked in
    the same round trip to Redis as the events are stored, and where the store's Redis is
    the broker and the workers keep up, the transactions go out in it too."""
    dispatcher = services.dispatcher(request)
    async with services.throttle(request).attempt(client_address(request)):
        with dispatcher.publishing_with_store() as messages:
            who, emitted = await services.store(request).emit_with_secret(
                secret, events, idempotency_seconds=models.IDEMPOTENCY_SECONDS, messages=messages
            )
    for event, stored in zip(events, emitted, strict=True):
        if not stored.duplicate:
            metrics.METRICS.inc(metrics.EVENTS_EMITTED, who.env, metrics.event_label(event, stored))
    await dispatcher(who, emitted)
    return emitted


def idempotency_key(request: Request) -> str | None:
    sent = request.headers.get(IDEMPOTENCY_HEADER)
    if sent is None:
        return None
    try:
        return IDEMPOTENCY_KEYS.validate_python(sent)
    except ValidationError:
        raise BadRequest(
            f"{IDEMPOTENCY_HEADER} must be 1 to {models.MAX_IDEMPOTENCY_KEY} printable ASCII "
            "characters without spaces"
        ) from None


# /emit reads its header and body itself: pydantic reads the JSON straight into the model,
# which is markedly faster on the hottest path than FastAPI's parameter handling.
@router.post(
    "/emit", response_model=models.EmitResult, responses=JSON_BODY, openapi_extra=EMIT_OPENAPI
)
async def emit_one(request: Request) -> Response:
    """Store an event and hand it to the workers subscribed to it."""
    secret = request.headers.get(SECRET_HEADER)
    if not secret:
        raise Unauthorized(MISSING_SECRET)
    ikey = idempotency_key(request)
    body = parse_body(models.EmitRequest, await request.body())
    [emitted] = await emit(request, secret, [new_event(body, ikey)])
    replayed = {REPLAYED_HEADER: "true"} if emitted.duplicate else None
    answer = to_json({"status": "success", "key": emitted.key})
    return Response(answer, media_type="application/json", headers=replayed)


@router.post("/emit/batch", response_model=models.BatchEmitResult, responses=JSON_BODY)
async def emit_batch(
    request: Request, body: models.BatchEmitRequest, secret: PresentSecret
) -> models.BatchEmitResult:
    """Store up to 1,000 events, all or nothing; their keys come back in order. An event
    whose idempotencyKey came with one in the last 24 hours is not stored again: its key is
    the first event's."""
    events = [new_event(event, event.idempotencyKey) for event in body.events]
    emitted = await emit(request, secret, events)
    return models.BatchEmitResult(keys=[e.key for e in emitted])


#: /query's secret key and body in the OpenAPI document.
QUERY_OPENAPI = {
    "security": [{"SecretKey": []}],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": models.QueryRequest.model_json_schema()}},
    },
}


# /query reads its secret key and body itself, so that the key is checked in the same round
# trip to Redis as the page is read, and answers the page's JSON as the store makes it,
# without building its models; its errors come in the order FastAPI's dependencies give the
# other routes.
@router.post(
    "/query", response_model=models.QueryPage, responses=JSON_BODY, openapi_extra=QUERY_OPENAPI
)
async def query(request: Request) -> Response:
    """A page of events, oldest first, filtered by name parts, since and transaction state."""
    body = json_body(await request.body())
    secret = request.headers.get(SECRET_HEADER)
    if not secret:
        raise Unauthorized(MISSING_SECRET)
    store = services.store(request)
    async with services.throttle(request).attempt(client_address(request)):
        try:
            page = await store.query_with_secret(secret, body_model(models.QueryRequest, body))
        except (RequestValidationError, BadRequest):
            await store.authenticate(secret)  # a wrong key is told before a wrong query
            raise
    return Response(to_json(page), media_type="application/json")


@router.get(
    "/events/{key}", response_model=models.EventWithTransactions, responses=errors(404, 422)
)
async def get_event(key: str, who: Authenticated, store: StoreDep) -> models.EventWithTransactions:
    """One event with all its transactions, outputs included."""
    return await store.get_event(who.scope, key)


@router.post("/get-full-event-name", response_model=models.FullName, responses=JSON_BODY)
async def get_full_event_name(body: models.FullNameRequest, who: Authenticated) -> models.FullName:
    platform = body.platform or models.CUSTOM_PLATFORM
    label = body.label or who.name
    return models.FullName(fullName=models.full_event_name(platform, label, body.eventName))
