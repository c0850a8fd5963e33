"""/health: Redis, and per queue and environment the live workers that consume it."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tidings import health, models
from tidings.services import SettingsDep, StoreDep

router = APIRouter()


@router.get("/health", response_model=models.Health)
async def health_report(store: StoreDep, settings: SettingsDep) -> JSONResponse:
    """503 while Redis is unreachable or a queue with subscribed handlers has no worker that
    hears."""
    found = await health.report(store, settings)
    return JSONResponse(found.model_dump(), status_code=200 if found.status == "ok" else 503)
