"""The application: the long-lived services, the limits, the error answers and the routers."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from tidings import metrics, services, ui
from tidings.api import admin, errors, events, handlers, health, transactions
from tidings.api import metrics as metrics_page
from tidings.api.content_type import BodiesAreJson
from tidings.api.errors import UnexpectedErrors
from tidings.api.limits import RequestLimits
from tidings.api.openapi import ANY_REQUEST
from tidings.dispatch import Dispatcher
from tidings.errors import REDIS_UNREACHABLE
from tidings.settings import Settings
from tidings.store import Store
from tidings.webhooks import receive as webhooks

log = logging.getLogger("tidings.api.app")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    try:  # data of another schema stops the start (SchemaMismatch)
        await app.state.store.check_schema()
    except REDIS_UNREACHABLE:  # requests answer 503 until it is back
        log.warning("Redis is unreachable: its schema was not checked")
    if not gc.get_freeze_count():  # once a process: tests start many apps in one
        # Leave what start-up built (the libraries, the app, its routes and models) out of
        # garbage collection: a full collection of it stalled every request in flight for
        # 70-100 ms, every few thousand requests (gc.callbacks in a `tidings serve` at 200
        # POST /emit a second, on this project's 2-core machine).
        gc.freeze()
    flushing = asyncio.create_task(metrics.flush_every(app.state.store))
    yield
    flushing.cancel()
    await asyncio.gather(flushing, return_exceptions=True)
    await app.state.dispatcher.close()
    await app.state.store.close()


async def home() -> RedirectResponse:
    return RedirectResponse(ui.PREFIX)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="tidings",
        summary="Self-hosted Event API: emit events, handle them with workers, query transactions.",
        lifespan=lifespan,
        exception_handlers=errors.HANDLERS,
        responses=ANY_REQUEST,
    )
    services.keep(app, settings, Store.from_settings(settings), Dispatcher.from_settings(settings))
    app.add_middleware(BodiesAreJson)
    app.add_middleware(RequestLimits, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(UnexpectedErrors)  # added last: it runs first, around the rest
    for area in (events, transactions, handlers, admin, health, metrics_page, webhooks):
        app.include_router(area.router)
    app.include_router(ui.router)
    app.add_api_route("/", home, methods=["GET"], include_in_schema=False)
    return app
