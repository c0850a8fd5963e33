"""HTTP in: the Event API (../shared/spec/SEMANTICS.md) on top of the store.

Errors are raised as ``TidingsError`` anywhere below and answered here, in one place, as
``{"status": "error", "message": ...}``.
"""

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings import health, models, ui
from tidings.dispatch import Dispatcher
from tidings.errors import NotFound, TidingsError, Unauthorized
from tidings.settings import Settings
from tidings.store import CUSTOM_PLATFORM, MISSING_SECRET, Caller, Emitted, Store, WorkItem

SECRET_HEADER = "X-Buildable-Secret"

log = logging.getLogger("tidings.api")


def error_response(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"status": "error", "message": message, **extra}, status_code=status)


class BodyLimit:
    """Answers 413 for bodies over the limit before anything parses them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and int(length) > self.max_bytes:
            too_large = error_response(413, f"request body is larger than {self.max_bytes} bytes")
            return await too_large(scope, receive, send)
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                # An HTTPException, since FastAPI answers 400 for anything else raised here.
                raise HTTPException(413, f"request body is larger than {self.max_bytes} bytes")
            return message

        await self.app(scope, counting_receive, send)


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    if any(e["type"] == "json_invalid" for e in errors):
        return 400, "malformed JSON in the request body"
    if any(e["type"] == "model_attributes_type" and tuple(e["loc"]) == ("body",) for e in errors):
        return 400, "the body must be a JSON object, sent with Content-Type: application/json"
    parts = []
    for e in errors:
        where = ".".join(str(p) for p in e["loc"] if p != "body") or "body"
        parts.append(f"{where}: {e['msg']}")
    return 422, "invalid request: " + "; ".join(parts)


RequestModel = TypeVar("RequestModel", bound=models.Request)


def parse_body(model: type[RequestModel], body: bytes) -> RequestModel:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from None


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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    store = Store.from_settings(settings)
    dispatch = Dispatcher.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await dispatch.close()
        await store.close()

    app = FastAPI(
        title="tidings",
        summary="Self-hosted Event API: emit events, handle them with workers, query transactions.",
        lifespan=lifespan,
    )
    app.state.store = store
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    @app.exception_handler(TidingsError)
    async def tidings_error(request: Request, exc: TidingsError) -> JSONResponse:
        return error_response(exc.status_code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _validation_message(exc)
        return error_response(status, message)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    SecretHeader = Annotated[str | None, Header(alias=SECRET_HEADER)]

    async def present_secret(secret: SecretHeader = None) -> str:
        """A secret was sent (checked before the body is looked at); its check is later."""
        if not secret:
            raise Unauthorized(MISSING_SECRET)
        return secret

    async def caller(secret: SecretHeader = None) -> Caller:
        return await store.authenticate(secret)

    Authenticated = Annotated[Caller, Depends(caller)]

    async def emit(secret: str | None, events: list[models.EmitRequest]) -> list[Emitted]:
        who, emitted = await store.emit_with_secret(secret, events)
        await dispatch(who, emitted)
        return emitted

    # /emit reads its header and body itself: pydantic reads the JSON straight into the
    # model, which is markedly faster on the hottest path than FastAPI's parameter handling.
    @app.post("/emit", response_model=models.EmitResult, openapi_extra=EMIT_OPENAPI)
    async def emit_one(request: Request) -> JSONResponse:
        """Store an event and hand it to the workers subscribed to it."""
        secret = request.headers.get(SECRET_HEADER)
        if not secret:
            raise Unauthorized(MISSING_SECRET)
        body = parse_body(models.EmitRequest, await request.body())
        [emitted] = await emit(secret, [body])
        return JSONResponse({"status": "success", "key": emitted.key})

    @app.post("/emit/batch", response_model=models.BatchEmitResult)
    async def emit_batch(
        body: models.BatchEmitRequest, secret: Annotated[str, Depends(present_secret)]
    ) -> models.BatchEmitResult:
        """Store up to 1,000 events, all or nothing; their keys come back in order."""
        emitted = await emit(secret, body.events)
        return models.BatchEmitResult(keys=[e.key for e in emitted])

    @app.post("/query", response_model=models.QueryPage)
    async def query(body: models.QueryRequest, who: Authenticated) -> models.QueryPage:
        """A page of events, oldest first, filtered by name parts, since and transaction state."""
        return await store.query(who.scope, body)

    @app.post("/update", response_model=models.Event)
    async def update(body: models.UpdateRequest, who: Authenticated) -> models.Event:
        """Set the state of the (key, txKey) transaction directly, creating it if needed."""
        return await store.update(
            who.scope, body.key, body.eventName, body.txKey, body.txState, actor=who.name
        )

    @app.post("/init", response_model=models.Transaction)
    async def init(body: models.InitRequest, who: Authenticated) -> models.Transaction:
        """Claim a transaction: 409 if (key, txKey) exists already."""
        return await store.init(who.scope, body.key, body.txKey, actor=who.name)

    @app.post("/transact", response_model=models.Transaction)
    async def transact(body: models.TransactRequest, who: Authenticated) -> models.Transaction:
        """Finish a claimed transaction with its output and final state."""
        return await store.transact(
            who.scope, body.key, body.txKey, body.state, body.output, actor=who.name
        )

    @app.post("/get-full-event-name", response_model=models.FullName)
    async def get_full_event_name(
        body: models.FullNameRequest, who: Authenticated
    ) -> models.FullName:
        platform = body.platform or CUSTOM_PLATFORM
        label = body.label or who.name
        return models.FullName(fullName=models.full_event_name(platform, label, body.eventName))

    @app.get("/events/{key}", response_model=models.EventWithTransactions)
    async def get_event(key: str, who: Authenticated) -> models.EventWithTransactions:
        """One event with all its transactions, outputs included."""
        return await store.get_event(who.scope, key)

    @app.post("/events/{key}/rerun", response_model=models.Rerun)
    async def rerun(key: str, body: models.RerunRequest, who: Authenticated) -> models.Rerun:
        """Re-run a failed transaction through the workers; its old attempts stay in its
        history."""
        items = await store.rerun(
            who.scope, key, body.txKey, actor=who.name, lease_ms=settings.lease_ms
        )
        return rerun_answer(items)

    @app.post("/rerun", response_model=models.Rerun)
    async def rerun_failed(body: models.RerunFailedRequest, who: Authenticated) -> models.Rerun:
        """Re-run every failed transaction of a handler (txKey) among a filter's events."""
        items = await store.rerun_failed(
            who.scope, body, actor=who.name, lease_ms=settings.lease_ms
        )
        return rerun_answer(items)

    def rerun_answer(items: list[tuple[WorkItem, str]]) -> models.Rerun:
        dispatch.send(items)
        return models.Rerun(rerun=[(item.key, item.tx_key) for item, _ in items])

    @app.get("/handlers", response_model=list[models.HandlerView])
    async def handlers(who: Authenticated) -> list[models.HandlerView]:
        """Every handler subscribed in the caller's environment, with its counts there."""
        return await store.handlers(who.scope)

    app.include_router(ui.create_router(store, settings, dispatch))

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse(ui.PREFIX)

    @app.get("/health", response_model=models.Health)
    async def health_report() -> JSONResponse:
        """Redis, and per queue and environment the live workers that consume it: 503 while
        Redis is unreachable or a queue with subscribed handlers has no worker that hears."""
        found = await health.report(store, settings)
        return JSONResponse(found.model_dump(), status_code=200 if found.status == "ok" else 503)

    async def admin(authorization: Annotated[str | None, Header()] = None) -> None:
        if not settings.admin_token:
            raise NotFound("the admin API is disabled: set TIDINGS_ADMIN_TOKEN to enable it")
        expected = f"Bearer {settings.admin_token}"
        if not authorization or not hmac.compare_digest(authorization.encode(), expected.encode()):
            raise Unauthorized("admin endpoints need Authorization: Bearer <TIDINGS_ADMIN_TOKEN>")

    @app.post("/admin/keys", dependencies=[Depends(admin)], response_model=models.SecretKey)
    async def create_key(body: models.CreateKeyRequest) -> models.SecretKey:
        """Create a secret key; its secret is in this answer and nowhere else."""
        return await store.create_key(body.name, body.env, body.owner)

    @app.get("/admin/keys", dependencies=[Depends(admin)], response_model=list[models.SecretKey])
    async def list_keys(owner: str | None = None) -> list[models.SecretKey]:
        return await store.list_keys(owner)

    @app.post("/admin/keys/revoke", dependencies=[Depends(admin)], response_model=models.SecretKey)
    async def revoke_key(body: models.CreateKeyRequest) -> models.SecretKey:
        return await store.revoke_key(body.name, body.env, body.owner)

    return app
