"""Events in and out: emit one or a batch, query them, read one, name one."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tidings import metrics, models
from tidings.api.deps import SECRET_HEADER, Authenticated, PresentSecret, parse_body
from tidings.dispatch import Dispatcher
from tidings.errors import Unauthorized
from tidings.services import DispatcherDep, StoreDep
from tidings.store import CUSTOM_PLATFORM, MISSING_SECRET, Emitted, Store

router = APIRouter()

#: /emit's secret header and body in the OpenAPI document (the body's schema is there for
#: /emit/batch's sake).
EMIT_OPENAPI = {
    "parameters": [
        {"name": SECRET_HEADER, "in": "header", "required": True, "schema": {"type": "string"}}
    ],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EmitRequest"}}},
    },
}


async def emit(
    store: Store, dispatcher: Dispatcher, secret: str, events: list[models.EmitRequest]
) -> list[Emitted]:
    """Store events, then hand their transactions to the workers."""
    who, emitted = await store.emit_with_secret(secret, events)
    for event in events:
        metrics.METRICS.inc(metrics.EVENTS_EMITTED, who.env, event.event)
    await dispatcher(who, emitted)
    return emitted


# /emit reads its header and body itself: pydantic reads the JSON straight into the model,
# which is markedly faster on the hottest path than FastAPI's parameter handling.
@router.post("/emit", response_model=models.EmitResult, openapi_extra=EMIT_OPENAPI)
async def emit_one(request: Request) -> JSONResponse:
    """Store an event and hand it to the workers subscribed to it."""
    secret = request.headers.get(SECRET_HEADER)
    if not secret:
        raise Unauthorized(MISSING_SECRET)
    body = parse_body(models.EmitRequest, await request.body())
    state = request.app.state
    [emitted] = await emit(state.store, state.dispatcher, secret, [body])
    return JSONResponse({"status": "success", "key": emitted.key})


@router.post("/emit/batch", response_model=models.BatchEmitResult)
async def emit_batch(
    body: models.BatchEmitRequest,
    secret: PresentSecret,
    store: StoreDep,
    dispatcher: DispatcherDep,
) -> models.BatchEmitResult:
    """Store up to 1,000 events, all or nothing; their keys come back in order."""
    emitted = await emit(store, dispatcher, secret, body.events)
    return models.BatchEmitResult(keys=[e.key for e in emitted])


@router.post("/query", response_model=models.QueryPage)
async def query(body: models.QueryRequest, who: Authenticated, store: StoreDep) -> models.QueryPage:
    """A page of events, oldest first, filtered by name parts, since and transaction state."""
    return await store.query(who.scope, body)


@router.get("/events/{key}", response_model=models.EventWithTransactions)
async def get_event(key: str, who: Authenticated, store: StoreDep) -> models.EventWithTransactions:
    """One event with all its transactions, outputs included."""
    return await store.get_event(who.scope, key)


@router.post("/get-full-event-name", response_model=models.FullName)
async def get_full_event_name(body: models.FullNameRequest, who: Authenticated) -> models.FullName:
    platform = body.platform or CUSTOM_PLATFORM
    label = body.label or who.name
    return models.FullName(fullName=models.full_event_name(platform, label, body.eventName))
