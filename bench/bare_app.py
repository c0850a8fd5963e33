"""The bare /emit that bench/emit_rate.py compares tidings' /emit with: the same server stack
(FastAPI under uvicorn) and the same Redis writes (``Store.emit``, the one emit script, for a
fixed owner, environment and label), without what tidings adds around them: no secret key
lookup, no pydantic validation of the body or the answer, no body-size middleware.

With BARE_PUBLISH=1 it also publishes one Celery message per request, the same ``tidings.run``
message to the same queue that tidings' dispatcher sends, but one message per request.

    REDIS_URL=redis://... BARE_PUBLISH=0 uvicorn bare_app:app --app-dir bench --workers 2
"""

import json
import os

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tidings import models
from tidings.celery_app import create_celery, publish
from tidings.settings import Settings
from tidings.store import Store
from tidings.work import Scope, WorkItem

SCOPE = Scope("default", "test")
LABEL = "bench"

settings = Settings()
store = Store.from_settings(settings)
celery = create_celery(settings, import_handlers=False)
publishes = os.environ.get("BARE_PUBLISH") == "1"
app = FastAPI()


@app.post("/emit")
async def emit(request: Request) -> JSONResponse:
    body = json.loads(await request.body())
    event = models.EmitRequest.model_construct(event=body["event"], payload=body.get("payload", {}))
    [emitted] = await store.emit(
        SCOPE, [event], platform=models.CUSTOM_PLATFORM, label=LABEL, actor=LABEL
    )
    if publishes:
        owner, env, key = SCOPE.owner, SCOPE.env, emitted.key
        publish(celery, [(WorkItem(owner, env, key, tx), queue) for tx, queue in emitted.routes])
    return JSONResponse({"status": "success", "key": emitted.key})


@app.get("/health")
async def health() -> JSONResponse:
    return JSONResponse({"status": "ok"})
