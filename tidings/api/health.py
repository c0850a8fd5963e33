"""/health: Redis, and per queue and environment the live workers that consume it."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tidings import health, models
from tidings.errors import UNAVAILABLE_RETRY_AFTER_SECONDS
from tidings.services import SettingsDep, StoreDep

router = APIRouter()


@router.get("/health", response_model=models.Health)
async def health_report(store: StoreDep, settings: SettingsDep) -> JSONResponse:
    """503 while Redis is unreachable or a queue with subscribed handlers has no worker that
    hears: the same report, with ``status`` "error" and a ``message`` saying which."""
    found = await health.report(store, settings)
    if found.status == "ok":
        return JSONResponse(found.model_dump())
    headers = {"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)}
    return JSONResponse(found.model_dump(), status_code=503, headers=headers)
