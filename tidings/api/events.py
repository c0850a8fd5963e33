"""Events in and out: emit one or a batch, query them, read one, name one."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tidings import metrics, models, services
from tidings.api.deps import SECRET_HEADER, Authenticated, PresentSecret, parse_body
from tidings.api.openapi import CREDENTIAL, JSON_BODY, errors
from tidings.auth import MISSING_SECRET
from tidings.errors import Unauthorized
from tidings.services import StoreDep
from tidings.throttle import client_address
from tidings.work import Emitted

router = APIRouter(responses=CREDENTIAL)

#: /emit's secret key and body in the OpenAPI document (the body's schema is there for
#: /emit/batch's sake).
EMIT_OPENAPI = {
    "security": [{"SecretKey": []}],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EmitRequest"}}},
    },
}


async def emit(request: Request, secret: str, events: list[models.EmitRequest]) -> list[Emitted]:
    """Store events, then hand their transactions to the workers. The secret is checked in
    the same round trip to Redis as the events are stored."""
    async with services.throttle(request).attempt(client_address(request)):
        who, emitted = await services.store(request).emit_with_secret(secret, events)
    for event, stored in zip(events, emitted, strict=True):
        metrics.METRICS.inc(metrics.EVENTS_EMITTED, who.env, metrics.event_label(event, stored))
    await services.dispatcher(request)(who, emitted)
    return emitted


# /emit reads its header and body itself: pydantic reads the JSON straight into the model,
# which is markedly faster on the hottest path than FastAPI's parameter handling.
@router.post(
    "/emit", response_model=models.EmitResult, responses=JSON_BODY, openapi_extra=EMIT_OPENAPI
)
async def emit_one(request: Request) -> JSONResponse:
    """Store an event and hand it to the workers subscribed to it."""
    secret = request.headers.get(SECRET_HEADER)
    if not secret:
        raise Unauthorized(MISSING_SECRET)
    body = parse_body(models.EmitRequest, await request.body())
    [emitted] = await emit(request, secret, [body])
    return JSONResponse({"status": "success", "key": emitted.key})


@router.post("/emit/batch", response_model=models.BatchEmitResult, responses=JSON_BODY)
async def emit_batch(
    request: Request, body: models.BatchEmitRequest, secret: PresentSecret
) -> models.BatchEmitResult:
    """Store up to 1,000 events, all or nothing; their keys come back in order."""
    emitted = await emit(request, secret, body.events)
    return models.BatchEmitResult(keys=[e.key for e in emitted])


@router.post("/query", response_model=models.QueryPage, responses=JSON_BODY)
async def query(body: models.QueryRequest, who: Authenticated, store: StoreDep) -> models.QueryPage:
    """A page of events, oldest first, filtered by name parts, since and transaction state."""
    return await store.query(who.scope, body)


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
